"""Stream memories by name: :func:`create_memory` builds any of the online memories (``MEMORY_KINDS``).

Kept apart from :mod:`labelwise.continual.online.memory` (the reservoirs and their base class) so that the
GSS, ExStream and OCDM modules, which subclass that base, are imported by this factory and not by the module
they depend on (no import cycle).

Examples
--------
>>> from labelwise.continual.online.memory_kinds import MEMORY_KINDS, create_memory
>>> create_memory("crs", 4, 2).name, "ocdm" in MEMORY_KINDS
('crs', True)
"""

from __future__ import annotations

from .exstream import ExStreamMemory
from .gss import GradientSampleSelection
from .memory import ClassAgnosticReservoir, PartitioningReservoir, StreamMemory
from .ocdm import OCDMMemory

__all__ = ["MEMORY_KINDS", "create_memory"]

MEMORY_KINDS = ("crs", "prs", "gss", "exstream", "ocdm")


def create_memory(
    kind: str,
    capacity: int,
    num_classes: int,
    *,
    q: float = -0.03,
    seed: int = 0,
    eviction: str = "argmin",
    gss_samples: int = 10,
    ocdm_rho: float = 0.0,
) -> StreamMemory:
    """A stream memory by name: ``"crs"``, ``"prs"`` (``q``, ``eviction``), ``"gss"`` (``gss_samples``),
    ``"exstream"`` or ``"ocdm"`` (``ocdm_rho``).

    Examples
    --------
    >>> create_memory("prs", 10, 3, q=0.5).q, create_memory("ocdm", 10, 3).name
    (0.5, 'ocdm')
    """
    if kind == "crs":
        return ClassAgnosticReservoir(capacity, num_classes, seed=seed)
    if kind == "prs":
        return PartitioningReservoir(capacity, num_classes, q=q, seed=seed, eviction=eviction)
    if kind == "gss":
        return GradientSampleSelection(capacity, num_classes, n_samples=gss_samples, seed=seed)
    if kind == "exstream":
        return ExStreamMemory(capacity, num_classes, seed=seed)
    if kind == "ocdm":
        return OCDMMemory(capacity, num_classes, rho=ocdm_rho, seed=seed)
    raise ValueError(f"unknown memory {kind!r}; expected one of {MEMORY_KINDS}")
