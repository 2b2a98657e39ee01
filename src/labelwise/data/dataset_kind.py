"""What kind of samples a dataset yields: images (image transforms apply) or feature vectors.

Used by :mod:`labelwise.run` (which transforms to build) and by the report page
(:mod:`labelwise.analysis.html_report`, whether the error gallery can show thumbnails).

Examples
--------
>>> import numpy as np
>>> from labelwise.data import ArrayDataset
>>> from labelwise.data.dataset_kind import is_image_dataset
>>> y = np.array([[1, 0], [0, 1]], np.uint8)
>>> is_image_dataset(ArrayDataset(np.zeros((2, 5), np.float32), y, ["a", "b"]))
False
>>> is_image_dataset(ArrayDataset(np.zeros((2, 3, 8, 8), np.uint8), y, ["a", "b"]))
True
"""

from __future__ import annotations

from typing import Any

import torch

from .base import ArrayDataset, ImageListDataset

__all__ = ["root_dataset", "is_image_dataset"]


def root_dataset(ds: Any) -> Any:
    """Follow ``ds.parent`` (views) up to the dataset that holds the samples."""
    seen = set()
    while hasattr(ds, "parent") and id(ds) not in seen:
        seen.add(id(ds))
        ds = ds.parent
    return ds


def is_image_dataset(ds: Any) -> bool:
    """Whether ``ds`` yields images (so image transforms apply) rather than feature vectors."""
    root = root_dataset(ds)
    if isinstance(root, ImageListDataset):
        return True
    if isinstance(root, ArrayDataset):
        return bool(root.is_image)
    if len(ds) == 0:
        return False
    x = ds.load_input(0)
    from torchvision import tv_tensors

    return isinstance(x, tv_tensors.Image | tv_tensors.Video) or (isinstance(x, torch.Tensor) and x.ndim == 3)
