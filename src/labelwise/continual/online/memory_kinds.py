"""Stream memories by name: :func:`create_memory` builds any of the online memories (``MEMORY_KINDS``).

``MEMORY_KINDS`` is a :class:`~labelwise.registry.Registry` of the memory classes (``crs``, ``prs``, ``gss``,
``exstream``, ``ocdm``); ``MEMORY_KINDS.create(kind, capacity=..., num_classes=..., **options)`` checks the
options against the class. Kept apart from :mod:`labelwise.continual.online.memory` (the reservoirs and their
base class) so that the GSS, ExStream and OCDM modules, which subclass that base, are imported by this
factory and not by the module they depend on (no import cycle).

Examples
--------
>>> from labelwise.continual.online.memory_kinds import MEMORY_KINDS, create_memory
>>> create_memory("crs", 4, 2).name, "ocdm" in MEMORY_KINDS
('crs', True)
>>> MEMORY_KINDS.names(), MEMORY_KINDS.options("prs")
(['crs', 'exstream', 'gss', 'ocdm', 'prs'], ['eviction', 'q', 'seed'])
"""

from __future__ import annotations

from labelwise.registry import Registry

from .exstream import ExStreamMemory
from .gss import GradientSampleSelection
from .memory import ClassAgnosticReservoir, PartitioningReservoir, StreamMemory
from .ocdm import OCDMMemory

__all__ = ["MEMORY_KINDS", "create_memory"]

#: The online memories by name (their classes; ``capacity`` and ``num_classes`` are given by the runner).
MEMORY_KINDS = Registry("memory", supplied=("capacity", "num_classes"))
MEMORY_KINDS.register("crs")(ClassAgnosticReservoir)
MEMORY_KINDS.register("prs")(PartitioningReservoir)
MEMORY_KINDS.register("gss")(GradientSampleSelection)
MEMORY_KINDS.register("exstream")(ExStreamMemory)
MEMORY_KINDS.register("ocdm")(OCDMMemory)


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

    The online run's settings are given to every kind; each kind's class takes those it has (``gss_samples``
    is GSS's ``n_samples``, ``ocdm_rho`` OCDM's ``rho``). An unknown ``kind`` raises ``ValueError``.

    Examples
    --------
    >>> create_memory("prs", 10, 3, q=0.5).q, create_memory("ocdm", 10, 3).name
    (0.5, 'ocdm')
    """
    try:
        accepted = MEMORY_KINDS.options(kind) or ()
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    settings = {"q": q, "seed": seed, "eviction": eviction, "n_samples": gss_samples, "rho": ocdm_rho}
    options = {key: value for key, value in settings.items() if key in accepted}
    return MEMORY_KINDS.create(kind, capacity=capacity, num_classes=num_classes, **options)
