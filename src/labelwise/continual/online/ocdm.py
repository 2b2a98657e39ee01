"""OCDM (Liang & Li, 2022): a memory whose class distribution is optimised toward a target distribution.

"Optimizing Class Distribution in Memory for Multi-Label Online Continual Learning" formulates the memory update
as an optimisation problem: when a stream batch ``B`` arrives at a full memory ``M``, keep the ``|M|`` items of
``M ∪ B`` whose label distribution is closest to the target distribution, i.e. choose the ``|B|`` items to
remove. The problem is solved greedily, one removal at a time:

* label distribution of a set ``S``: ``q_i(S) = l_i(S) / sum_j l_j(S)``, ``l_i`` = items of ``S`` holding class
  ``i`` (a multi-label item counts once per label);
* target: ``p_i = n_i^rho / sum_j n_j^rho`` over the classes seen in the stream, ``n_i`` = stream items holding
  class ``i`` so far (``rho = 0``: uniform over the seen classes; ``rho = 1``: the stream's own distribution);
* distance: ``KL(p || q)`` (``q`` floored at ``1e-12`` so that removing the last item of a class is very
  costly);
* step: remove the candidate ``j`` whose removal gives the smallest ``KL(p || q(S \\ {j}))`` (ties: the first
  in the order memory slots, then the batch); repeat until ``|S| = capacity``. The surviving batch items take
  the freed slots.

While the memory has room, stream items are stored as they come.

Where this follows the paper: the optimisation view, the greedy removal, the power target. Choices of ours,
stated because the text available here does not pin them: ``rho = 0`` by default and KL as the distance.

Examples
--------
>>> import numpy as np
>>> m = OCDMMemory(capacity=4, num_classes=2, rho=0.0)
>>> y = np.array([[1, 0]] * 8 + [[0, 1]] * 2, dtype="uint8")
>>> m.update(np.arange(10), y)
>>> m.class_counts().tolist()
[2, 2]
"""

from __future__ import annotations

import numpy as np

from .memory import SlotMemory

__all__ = ["OCDMMemory", "kl_to_target"]

_FLOOR = 1e-12


def kl_to_target(counts: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``KL(target || counts / counts.sum())`` for each row of ``counts`` (``[K, C]`` or ``[C]``).

    Examples
    --------
    >>> float(kl_to_target(np.array([1.0, 1.0]), np.array([0.5, 0.5])))
    0.0
    """
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    q = c / np.maximum(c.sum(axis=1, keepdims=True), _FLOOR)
    p = np.asarray(target, dtype=np.float64)
    on = p > 0
    out = (p[on][None, :] * (np.log(p[on])[None, :] - np.log(np.maximum(q[:, on], _FLOOR)))).sum(axis=1)
    return out if np.ndim(counts) == 2 else out[0]


class OCDMMemory(SlotMemory):
    """OCDM memory (module documentation).

    Parameters
    ----------
    capacity, num_classes : int
    rho : float, default 0.0
        Power of the target distribution.
    seed : int
        Unused (the update is deterministic); kept for the common interface.
    """

    name = "ocdm"

    def __init__(self, capacity: int, num_classes: int, *, rho: float = 0.0, seed: int = 0) -> None:
        super().__init__(capacity, num_classes, seed=seed)
        self.rho = float(rho)

    def target_distribution(self) -> np.ndarray:
        """``p_i ∝ n_i^rho`` over the classes seen in the stream (0 for unseen classes)."""
        n = self.stream_counts.astype(np.float64)
        p = np.zeros(self.num_classes)
        seen = n > 0
        if seen.any():
            w = n[seen] ** self.rho
            p[seen] = w / w.sum()
        return p

    def distance(self) -> float:
        """``KL(p || q)`` of the memory's label distribution to the target."""
        return float(kl_to_target(self.class_counts(), self.target_distribution()))

    def update(self, indices: np.ndarray, targets: np.ndarray) -> None:
        idx, y = self._check(indices, targets)
        if not len(idx):
            return
        self.seen += len(idx)
        self.stream_counts += y.sum(axis=0, dtype=np.int64)
        room = self.capacity - self._size
        take = min(room, len(idx))
        self._idx[self._size : self._size + take], self._y[self._size : self._size + take] = idx[:take], y[:take]
        self._size += take
        idx, y = idx[take:], y[take:]
        if not len(idx) or self.capacity == 0:
            return
        pool_idx = np.concatenate([self._idx[: self._size], idx])
        pool_y = np.concatenate([self._y[: self._size], y]).astype(np.float64)
        alive = np.ones(len(pool_idx), dtype=bool)
        counts = pool_y.sum(axis=0)
        p = self.target_distribution()
        for _ in range(len(idx)):
            cand = np.flatnonzero(alive)
            dist = kl_to_target(counts[None, :] - pool_y[cand], p)
            j = int(cand[int(np.argmin(dist))])
            alive[j] = False
            counts -= pool_y[j]
        kept_new = np.flatnonzero(alive[self._size :])
        freed = np.flatnonzero(~alive[: self._size])
        self._idx[freed] = idx[kept_new]
        self._y[freed] = y[kept_new].astype(np.uint8)
