"""Batch samplers: seeded global batches, and their sharding across DDP processes.

A *global* batch sampler yields lists of dataset indices, one list per optimisation step, identical on
every process. The trainer wraps it in :class:`ShardedBatchSampler`, which gives process ``rank`` the
strided shard ``batch[rank::world_size]`` of every global batch. Custom samplers (adaptive batch selection,
replay) implement the same small protocol as :class:`RandomBatchSampler`:

``__iter__`` (lists of ints), ``__len__`` (batches per epoch), ``set_epoch(epoch)``, ``state_dict()`` and
``load_state_dict(state)``.

They must draw the same batches on every process (seed their generators from the trainer's seed and the
epoch, and update their state from quantities that are identical on every process, e.g. losses gathered
with ``trainer.all_gather``). A sampler that is also a :class:`~labelwise.engine.Callback` receives the
training hooks (``on_after_batch`` with per-sample losses).

Mid-epoch resume re-iterates the epoch after ``set_epoch(epoch)`` and skips the batches already trained
on, so it is exact for samplers whose epoch order is a function of their state at the start of the
epoch (the default sampler: a function of ``seed`` and ``epoch``).

For evaluation, :class:`EvalShardSampler` pads the index list like
:class:`torch.utils.data.DistributedSampler` so every process runs the same number of batches; the padded
duplicates are removed by sample index when the predictions are gathered.

Examples
--------
>>> from labelwise.engine.samplers import RandomBatchSampler, ShardedBatchSampler, EvalShardSampler
>>> s = RandomBatchSampler(10, batch_size=4, seed=0)
>>> s.set_epoch(0)
>>> [len(b) for b in s], len(s)
([4, 4, 2], 3)
>>> sorted(i for b in s for i in b) == list(range(10))
True
>>> g = next(iter(s)); r0 = next(iter(ShardedBatchSampler(s, rank=0, world_size=2)))
>>> r0 == g[0::2]
True
>>> list(EvalShardSampler(5, batch_size=2, rank=1, world_size=2))
[[1, 3], [0]]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..protocols import BatchSampler

__all__ = ["RandomBatchSampler", "ShardedBatchSampler", "EvalShardSampler"]


class RandomBatchSampler:
    """Global batches of a seeded random permutation per epoch (or in order with ``shuffle=False``).

    The permutation of epoch ``e`` is drawn from ``numpy.random.default_rng([seed, e])``: it depends only
    on ``seed`` and ``e``, so runs are reproducible and resumable and every process draws the same batches.

    Parameters
    ----------
    num_samples : int
        Dataset size.
    batch_size : int
        Global batch size.
    shuffle : bool
        Shuffle every epoch (default) or keep dataset order.
    drop_last : bool
        Drop the last incomplete batch.
    seed : int
        Base seed.
    """

    def __init__(
        self, num_samples: int, batch_size: int, *, shuffle: bool = True, drop_last: bool = False, seed: int = 0
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if drop_last and num_samples < batch_size:
            raise ValueError(f"drop_last=True with {num_samples} samples < batch_size {batch_size} gives no batch")
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch``."""
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """The sample order of the current epoch (int64 ``[num_samples]``)."""
        if not self.shuffle:
            return np.arange(self.num_samples, dtype=np.int64)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples).astype(np.int64)

    def __iter__(self) -> Iterator[list[int]]:
        order = self.order()
        stop = len(self) * self.batch_size if self.drop_last else self.num_samples
        for start in range(0, stop, self.batch_size):
            yield order[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "seed": self.seed, "num_samples": self.num_samples}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "strategy" in state:  # a labelwise.sampling sampler's state: the run trained with another sampler
            raise ValueError(f"the sampler state is of labelwise.sampling's {state['strategy']!r} sampler, not of "
                             f"RandomBatchSampler; resume with the same sampler (sampler.name={state['strategy']})")
        if int(state.get("num_samples", self.num_samples)) != self.num_samples:
            raise ValueError(
                f"sampler state is for {state['num_samples']} samples but the dataset has {self.num_samples}"
            )
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])


class ShardedBatchSampler:
    """This process's shard ``batch[rank::world_size]`` of every global batch of ``batch_sampler``.

    Global batches with fewer samples than processes are skipped (with a warning), since a process without
    samples cannot join the gradient all-reduce. ``skip`` drops the first batches of the epoch (mid-epoch
    resume).
    """

    def __init__(self, batch_sampler: BatchSampler, *, rank: int = 0, world_size: int = 1, skip: int = 0) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside [0, {world_size})")
        self.batch_sampler = batch_sampler
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.skip = int(skip)

    def __iter__(self) -> Iterator[list[int]]:
        for k, batch in enumerate(self.batch_sampler):
            if k < self.skip:
                continue
            batch = list(batch)
            if len(batch) < self.world_size:
                warnings.warn(
                    f"skipping a global batch of {len(batch)} sample(s) < {self.world_size} processes",
                    stacklevel=2,
                )
                continue
            yield batch[self.rank :: self.world_size]

    def __len__(self) -> int:
        return max(len(self.batch_sampler) - self.skip, 0)


class EvalShardSampler:
    """Sequential evaluation batches of process ``rank``, padded so that every process has as many samples.

    The index list ``0..n-1`` is padded by wrapping around to a multiple of ``world_size`` (as
    :class:`torch.utils.data.DistributedSampler` does); process ``rank`` takes ``indices[rank::world_size]``
    in batches of ``batch_size``. Padded samples are duplicates: remove them by sample index.
    """

    def __init__(self, num_samples: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> None:
        if num_samples < 1:
            raise ValueError(f"cannot evaluate on an empty dataset (num_samples={num_samples})")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.rank = int(rank)
        self.world_size = int(world_size)

    def indices(self) -> np.ndarray:
        total = math.ceil(self.num_samples / self.world_size) * self.world_size
        idx = np.arange(total, dtype=np.int64) % self.num_samples
        return idx[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        idx = self.indices()
        for start in range(0, len(idx), self.batch_size):
            yield idx[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        return math.ceil(math.ceil(self.num_samples / self.world_size) / self.batch_size)
