"""Dataset registry: ``load_dataset(name, root=..., split=..., **options)``.

Every on-disk format and the embedded benchmark registers a factory ``f(root, split, **options)`` that
returns a :class:`~labelwise.data.base.MultiLabelDataset`.

Examples
--------
>>> from labelwise.data import load_dataset, list_datasets
>>> "multidigits20" in list_datasets()
True
"""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import MultiLabelDataset

DATASETS = Registry("dataset", supplied=("root", "split"))
register_dataset = DATASETS.register


def load_dataset(name: str, root: str | None = None, split: str = "train", **options: Any) -> MultiLabelDataset:
    """Build the dataset registered as ``name``.

    Parameters
    ----------
    name : str
        A registered name (see :func:`list_datasets`), e.g. ``"multidigits20"``, ``"voc2007"``, ``"coco2014"``,
        ``"nuswide"``, ``"csv"``, ``"mulan"``.
    root : str, optional
        Directory holding the dataset files (the embedded benchmark uses it as its cache directory).
    split : str
        ``"train"``, ``"val"``, ``"test"``, ... as the format defines.
    **options
        Format-specific keyword options: their names are checked against the factory's signature
        (:meth:`labelwise.registry.Registry.create`), their values by the factory.

    Raises
    ------
    KeyError
        Unknown ``name``.
    labelwise.registry.OptionError
        An option the format does not take (a ``ValueError`` naming it and the accepted ones).
    """
    return DATASETS.create(name, root=root, split=split, **options)


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return DATASETS.names()
