"""The trainer's DataLoaders: worker count (``"auto"``), pinned memory, persistent workers, per-batch seeds.

``num_workers="auto"`` uses the CPU cores this process may run on (``os.sched_getaffinity``) shared among the
training processes of the node, and no worker for datasets that already hold their inputs in memory
(MultiDigits, tabular arrays: a worker would only copy tensors); on a single usable core it uses none.

With worker processes, every batch carries its own seed (a :class:`SeededBatch`, derived from the run seed,
the epoch, the rank and the batch's position in the epoch) and the worker seeds ``random``, ``numpy`` and
``torch`` with it before loading the batch. The random augmentations of a batch are therefore the same
whatever the number of workers, whether the workers persist across epochs, and after a resume mid-epoch.
Without workers (``num_workers=0``) the items are loaded in the training process with its own RNG streams.

Persistent workers hold the dataset as it was when the loader started (a snapshot of its targets and
transform); changes made to the dataset object during a fit are not seen by them.

Examples
--------
>>> from labelwise.data import ArrayDataset
>>> import numpy as np
>>> ds = ArrayDataset(np.zeros((4, 3), dtype="float32"), np.eye(4, 2, dtype=int), class_names=["a", "b"])
>>> resolve_num_workers("auto", ds), resolve_num_workers(3, ds)
(0, 3)
>>> batch = SeededBatch([0, 2], seed=batch_seed(0, 1, 0, 5))
>>> SeededFetch(ds).__getitems__(batch)[1]["index"]
2
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["SeededBatch", "SeededBatches", "SeededFetch", "batch_seed", "holds_inputs_in_memory",
           "resolve_num_workers", "resolve_pin_memory", "usable_cpus"]


def usable_cpus() -> int:
    """The number of CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def holds_inputs_in_memory(data: Any) -> bool:
    """Whether ``data`` (or the dataset it is a view / subset / concatenation of) holds its inputs in memory."""
    flag = getattr(data, "inputs_in_memory", None)
    if isinstance(flag, bool):
        return flag
    for attr in ("parent", "dataset"):
        inner = getattr(data, attr, None)
        if inner is not None and inner is not data:
            return holds_inputs_in_memory(inner)
    parts = getattr(data, "datasets", None)
    if isinstance(parts, Sequence) and parts:
        return all(holds_inputs_in_memory(p) for p in parts)
    return False


def resolve_num_workers(setting: int | str, data: Any = None, *, processes_per_node: int = 1) -> int:
    """The DataLoader worker count of ``trainer.num_workers`` (an int, or ``"auto"``: module documentation)."""
    if isinstance(setting, int) and not isinstance(setting, bool):
        return setting
    if setting != "auto":
        raise ValueError(f"num_workers must be a non-negative int or 'auto', got {setting!r}")
    if data is not None and holds_inputs_in_memory(data):
        return 0
    n = usable_cpus() // max(1, int(processes_per_node))
    return n if n >= 2 else 0


def resolve_pin_memory(setting: bool | str, device: torch.device) -> bool:
    """``trainer.pin_memory``: ``"auto"`` pins host memory when training on a CUDA device.

    Examples
    --------
    >>> resolve_pin_memory("auto", torch.device("cpu")), resolve_pin_memory(True, torch.device("cpu"))
    (False, True)
    """
    if isinstance(setting, bool):
        return setting
    return torch.device(device).type == "cuda"


def batch_seed(*parts: int) -> int:
    """A 63-bit seed from integer parts (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


class SeededBatch(list):
    """A batch of dataset indices with the seed its items are loaded with (pickled to the worker with it)."""

    def __init__(self, indices: Sequence[int], seed: int) -> None:
        super().__init__(indices)
        self.seed = int(seed)

    def __reduce__(self) -> tuple[Any, ...]:
        return (SeededBatch, (list(self), self.seed))


class SeededBatches:
    """A batch sampler whose batches are :class:`SeededBatch` es; ``current`` (the epoch's sampler) may change.

    ``seed_parts`` of batch ``i`` of the epoch are ``(*base_parts, offset + i)`` where ``offset`` is the number
    of batches the epoch's sampler skips (a resumed epoch continues the seeds of the interrupted one).
    """

    def __init__(self, current: Any, base_parts: Sequence[int] = (), offset: int = 0) -> None:
        self.set(current, base_parts, offset)

    def set(self, current: Any, base_parts: Sequence[int], offset: int = 0) -> None:
        self.current, self.base_parts, self.offset = current, [int(p) for p in base_parts], int(offset)

    def __len__(self) -> int:
        return len(self.current)

    def __iter__(self) -> Iterator[SeededBatch]:
        for i, b in enumerate(self.current):
            yield SeededBatch(b, batch_seed(*self.base_parts, self.offset + i))


class SeededFetch(torch.utils.data.Dataset):
    """Wraps a dataset: a :class:`SeededBatch` is loaded after seeding ``random``, ``numpy`` and ``torch``."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Any:
        return self.data[index]

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        seed = getattr(indices, "seed", None)
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.default_generator.manual_seed(seed)  # the CPU generator the transforms draw from
        return [self.data[i] for i in indices]
