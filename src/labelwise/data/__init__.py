"""Data layer: one :class:`MultiLabelDataset` abstraction, a registry, on-disk formats, the embedded
MultiDigits benchmark, statistics and multi-label splits."""

from .base import (
    ArrayDataset,
    CollatedBatch,
    DatasetView,
    ImageListDataset,
    ImageLoadError,
    MultiLabelDataset,
    check_class_names,
    check_targets,
    collate_batch,
)
from .registry import DATASETS, list_datasets, load_dataset, register_dataset

# Importing the modules below registers their datasets.
from . import formats, multidigits  # noqa: E402,F401  isort: skip

__all__ = [
    "ArrayDataset",
    "CollatedBatch",
    "DatasetView",
    "ImageListDataset",
    "ImageLoadError",
    "MultiLabelDataset",
    "check_class_names",
    "check_targets",
    "collate_batch",
    "DATASETS",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]
