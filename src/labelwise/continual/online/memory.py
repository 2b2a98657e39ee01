"""Stream memories for online multi-label continual learning: CRS and PRS.

Both hold at most ``capacity`` stream items, as *indices into the root training dataset* plus their multi-hot
labels, and are offered every stream batch once (:meth:`update`); :meth:`sample` draws a replay batch.

CRS (class-agnostic reservoir sampling, Vitter's algorithm R; Chaudhry et al. 2019)
    Every item seen so far is in the memory with the same probability ``capacity / seen``. Implemented with
    :class:`labelwise.continual.ReplayMemory` (``total=capacity``, ``"reservoir"``), which keeps the reservoir
    over all ``update`` calls.

PRS (partitioning reservoir sampling; Kim et al., ECCV 2020)
    ``n_i`` counts the stream items holding class ``i`` so far (before the current item). The *target
    partition* of the memory is ``p_i = n_i^q / sum_j n_j^q`` over the seen classes (``q = 1``: proportional to
    the stream, like CRS; ``q = 0``: equal shares; ``q < 0`` favours rare classes; PRS uses ``q = -0.03`` on
    COCOseq and ``0.02`` on NUS-WIDEseq). Once the memory is full, an item with classes ``y`` is

    * **sampled in** with probability ``s = sum_{i in y} w_i min(1, m_i / n_i)``, ``m_i = capacity * p_i`` and
      ``w = softmax(-n_y)`` over the item's classes (its rarest class dominates);
    * and then a slot is **sampled out**: with ``l_i`` the positives of class ``i`` in the memory and
      ``L = sum_i l_i`` (a multi-label item counts once per label), ``delta_i = l_i - p_i L``; a class ``i``
      is drawn with probability ``softmax(delta)`` over the classes present in the memory; among the memory
      items holding ``i``, the candidates are those lacking the most under-filled classes (``delta <= 0``);
      the candidate whose removal leaves the smallest total deviation ``sum_c |l_c - p_c L|`` is replaced.

    Differences from the public implementation (``cdjkim/PRS``): the target partition there is computed over the
    classes *present in the memory*; here over every class seen in the stream (the paper's definition). The
    published code also keeps the *first* candidate unless one leaves a total deviation below the memory size
    (its running minimum starts at the capacity), and its deviation counts only the classes still present after
    the removal. ``eviction="reference"`` reproduces both (see :class:`PartitioningReservoir`); the default
    ``eviction="argmin"`` is the documented rule. The random draws use a seeded NumPy generator.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = (rng.random((500, 6)) < np.array([0.6, 0.3, 0.1, 0.05, 0.02, 0.01])).astype("uint8")
>>> y[y.sum(1) == 0, 0] = 1
>>> prs = PartitioningReservoir(capacity=50, num_classes=6, q=0.0, seed=0)
>>> crs = ClassAgnosticReservoir(capacity=50, num_classes=6, seed=0)
>>> for s in range(0, 500, 10):
...     prs.update(np.arange(s, s + 10), y[s:s + 10]); crs.update(np.arange(s, s + 10), y[s:s + 10])
>>> len(prs), len(crs)
(50, 50)
>>> bool(prs.partition_distance() < crs_distance(crs, prs.target_partition()))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..memory import ReplayMemory

__all__ = [
    "StreamMemory",
    "ClassAgnosticReservoir",
    "PartitioningReservoir",
    "crs_distance",
]


class StreamMemory:
    """Base class: ``indices`` (int64 ``[M]``) and ``targets`` (uint8 ``[M, C]``) of the stored items.

    ``needs`` is ``None`` for memories that look at labels only; ``"gradients"`` (GSS) or ``"features"``
    (ExStream) when :meth:`update` also takes ``probe=``, a callable mapping root-dataset indices to one vector
    per item (the online runner builds it from the model).
    """

    name = "base"
    needs: str | None = None

    def __init__(self, capacity: int, num_classes: int, *, seed: int = 0) -> None:
        if int(capacity) < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.capacity = int(capacity)
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.seen = 0
        self.stream_counts = np.zeros(self.num_classes, dtype=np.int64)

    @property
    def indices(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def targets(self) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.indices)

    def update(self, indices: np.ndarray, targets: np.ndarray) -> None:
        """Offer a stream batch (root-dataset ``indices`` and multi-hot ``targets`` ``[B, C]``)."""
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``min(n, len)`` distinct stored items drawn uniformly: (indices, targets)."""
        size = len(self)
        k = min(int(n), size)
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros((0, self.num_classes), np.uint8)
        slots = rng.choice(size, k, replace=False)
        return self.indices[slots], self.targets[slots]

    def class_counts(self) -> np.ndarray:
        """Positives per class in the memory (``int [C]``)."""
        return self.targets.sum(axis=0).astype(np.int64)

    def _check(self, indices: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        y = np.asarray(targets)
        if y.shape != (len(idx), self.num_classes):
            raise ValueError(f"{self.name}: targets must be [{len(idx)}, {self.num_classes}], got {y.shape}")
        return idx, (y > 0).astype(np.uint8)


class SlotMemory(StreamMemory):
    """A memory of ``capacity`` slots: ``_idx`` (root-dataset indices), ``_y`` (targets), the first ``_size`` used.

    The base of the memories that write items into fixed slots (PRS, OCDM, GSS).
    """

    def __init__(self, capacity: int, num_classes: int, *, seed: int = 0) -> None:
        super().__init__(capacity, num_classes, seed=seed)
        self._idx = np.zeros(self.capacity, dtype=np.int64)
        self._y = np.zeros((self.capacity, self.num_classes), dtype=np.uint8)
        self._size = 0

    @property
    def indices(self) -> np.ndarray:
        return self._idx[: self._size]

    @property
    def targets(self) -> np.ndarray:
        return self._y[: self._size]


class ClassAgnosticReservoir(StreamMemory):
    """CRS: a uniform reservoir over the whole stream (see the module documentation).

    Examples
    --------
    >>> import numpy as np
    >>> m = ClassAgnosticReservoir(capacity=3, num_classes=2, seed=0)
    >>> m.update(np.arange(10), np.eye(2, dtype="uint8")[np.arange(10) % 2])
    >>> len(m), m.seen, sorted(set(m.indices.tolist())) == sorted(m.indices.tolist())
    (3, 10, True)
    """

    name = "crs"

    def __init__(self, capacity: int, num_classes: int, *, seed: int = 0) -> None:
        super().__init__(capacity, num_classes, seed=seed)
        self._mem = ReplayMemory(num_classes, total=self.capacity, selection="reservoir", seed=seed)
        self._ones = None

    @property
    def indices(self) -> np.ndarray:
        return self._mem.base_indices

    @property
    def targets(self) -> np.ndarray:
        return self._mem.targets

    def update(self, indices: np.ndarray, targets: np.ndarray) -> None:
        idx, y = self._check(indices, targets)
        if not len(idx):
            return
        self._mem.add_task(0, idx, y, np.ones_like(y, dtype=bool), num_seen_classes=self.num_classes)
        self.seen += len(idx)
        self.stream_counts += y.sum(axis=0, dtype=np.int64)


class PartitioningReservoir(SlotMemory):
    """PRS: a reservoir whose class partition is steered toward ``p_i ∝ n_i^q`` (module documentation).

    Parameters
    ----------
    capacity : int
    num_classes : int
    q : float
        Power of the target partition (PRS: -0.03 on COCOseq, 0.02 on NUS-WIDEseq).
    seed : int
    eviction : {"argmin", "reference"}
        ``"argmin"`` (default, the paper): the partition over every class seen in the stream, and the candidate
        whose removal minimises ``sum_c |l_c - p_c L|`` over all seen classes is evicted.
        ``"reference"`` (the published ``cdjkim/PRS`` code): after every stream item the partition is recomputed
        over the classes *present in the memory* (a class that left the memory keeps its last share for the
        sample-in test; one never present has share 0); the deviation after removing a candidate counts only
        the classes still present; the first candidate (memory slot order) is kept unless a candidate's
        deviation is below ``capacity``, and then the first candidate with the smallest deviation wins.

    Examples
    --------
    >>> import numpy as np
    >>> m = PartitioningReservoir(capacity=4, num_classes=3, q=0.0, seed=0)
    >>> y = np.array([[1, 0, 0]] * 8 + [[0, 1, 0], [0, 0, 1]], dtype="uint8")
    >>> m.update(np.arange(10), y)
    >>> len(m), m.class_counts().tolist()
    (4, [2, 1, 1])
    """

    name = "prs"

    def __init__(
        self, capacity: int, num_classes: int, *, q: float = -0.03, seed: int = 0, eviction: str = "argmin"
    ) -> None:
        super().__init__(capacity, num_classes, seed=seed)
        if eviction not in ("argmin", "reference"):
            raise ValueError(f"prs: eviction must be 'argmin' or 'reference', got {eviction!r}")
        self.q = float(q)
        self.eviction = eviction
        self._ref_p = np.zeros(self.num_classes)  # "reference": shares of the published code (stale when absent)
        self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5052]))
        self._l = np.zeros(self.num_classes, dtype=np.int64)  # positives per class in the memory
        self.admitted = 0  # items written after the memory was full

    def class_counts(self) -> np.ndarray:
        return self._l.copy()

    def target_partition(self) -> np.ndarray:
        """``p_i = n_i^q / sum_j n_j^q`` over the classes seen in the stream (0 for unseen classes).

        With ``eviction="reference"``: the shares of the published code (over the classes present in the memory
        after the previous stream item)."""
        if self.eviction == "reference":
            return self._ref_p.copy()
        n = self.stream_counts.astype(np.float64)
        p = np.zeros(self.num_classes)
        seen = n > 0
        if seen.any():
            w = n[seen] ** self.q
            p[seen] = w / w.sum()
        return p

    def partition_distance(self) -> float:
        """Total variation between the memory's class partition ``l / L`` and the target partition."""
        total = self._l.sum()
        if total == 0:
            return 0.0
        return float(0.5 * np.abs(self._l / total - self.target_partition()).sum())

    def sample_in_probability(self, classes: np.ndarray, p: np.ndarray | None = None) -> float:
        """PRS's sample-in probability of an item holding ``classes`` (before counting it)."""
        if len(classes) == 0:
            return 0.0
        p = self.target_partition() if p is None else p
        n = self.stream_counts[classes].astype(np.float64)
        m = self.capacity * p[classes]
        ratio = np.where(n > m, m / np.maximum(n, 1e-12), 1.0)
        w = np.exp(-(n - n.min()))
        w /= w.sum()
        return float(np.clip((w * ratio).sum(), 0.0, 1.0))

    def _sample_out(self, p: np.ndarray) -> int:
        l_ = self._l.astype(np.float64)
        delta = l_ - p * l_.sum()
        present = np.flatnonzero(self._l > 0)
        d = delta[present]
        prob = np.exp(d - d.max())
        prob /= prob.sum()
        cls = int(present[self._rng.choice(len(present), p=prob)])
        return self._evict_from(cls, p)

    def _evict_from(self, cls: int, p: np.ndarray) -> int:
        """The slot evicted once class ``cls`` has been drawn (candidates, then the deviation rule)."""
        y = self._y[: self._size]
        l_ = self._l.astype(np.float64)
        total = l_.sum()
        delta = l_ - p * total
        cand = np.flatnonzero(y[:, cls] > 0)
        under = (delta <= 0) & (self._l > 0)
        score = ((1 - y[cand]) * under[None, :]).sum(axis=1)
        cand = cand[score == score.max()]
        yc = y[cand].astype(np.float64)
        after = l_[None, :] - yc
        after_total = total - yc.sum(axis=1, keepdims=True)
        dev = np.abs(after - p[None, :] * after_total)
        if self.eviction == "argmin":
            return int(cand[int(np.argmin(dev.sum(axis=1)))])
        diff = (dev * (after > 0)).sum(axis=1)  # only the classes still present after the removal
        below = np.flatnonzero(diff < self.capacity)
        if not len(below):
            return int(cand[0])
        return int(cand[below[int(np.argmin(diff[below]))]])

    def _refresh_reference_partition(self) -> None:
        present = self._l > 0
        if present.any():
            w = self.stream_counts[present].astype(np.float64) ** self.q
            self._ref_p[present] = w / w.sum()

    def update(self, indices: np.ndarray, targets: np.ndarray) -> None:
        idx, y = self._check(indices, targets)
        for i in range(len(idx)):
            classes = np.flatnonzero(y[i])
            if self._size < self.capacity:
                self._idx[self._size], self._y[self._size] = idx[i], y[i]
                self._size += 1
                self._l += y[i]
            elif self.capacity > 0 and len(classes):
                p = self.target_partition()
                if self._rng.random() < self.sample_in_probability(classes, p):
                    slot = self._sample_out(p)
                    self._l -= self._y[slot]
                    self._idx[slot], self._y[slot] = idx[i], y[i]
                    self._l += y[i]
                    self.admitted += 1
            self.seen += 1
            self.stream_counts[classes] += 1
            if self.eviction == "reference":
                self._refresh_reference_partition()

    def state_dict(self) -> dict[str, Any]:
        return {
            "indices": self.indices.copy(),
            "targets": self.targets.copy(),
            "stream_counts": self.stream_counts.copy(),
            "seen": self.seen,
            "rng": self._rng.bit_generator.state,
        }


def crs_distance(memory: StreamMemory, target: np.ndarray) -> float:
    """Total variation between any memory's class partition and ``target`` (to compare CRS with PRS)."""
    counts = memory.class_counts().astype(np.float64)
    if counts.sum() == 0:
        return 0.0
    return float(0.5 * np.abs(counts / counts.sum() - np.asarray(target)).sum())
