"""ExStream (Hayes, Cahill & Kanan, ICRA 2019): class-wise cluster buffers in feature space.

Each class ``c`` has a buffer of at most ``b_c`` clusters; a cluster has a centroid ``w`` (a feature vector)
and a count ``n``. A stream item of class ``c`` with feature ``x``:

* if the buffer has room, it becomes a new cluster ``(x, 1)``;
* otherwise the two nearest clusters of the buffer (Euclidean distance between centroids) are merged into
  ``((n_i w_i + n_j w_j) / (n_i + n_j), n_i + n_j)`` and then ``(x, 1)`` is added.

Adaptation to multi-label online continual learning (ours, stated)
-------------------------------------------------------------------
ExStream is single-label and replays stored feature vectors through the top layers of a fixed network. PRS and
DLFL report it on COCOseq / NUS-WIDEseq without an adaptation we could read; ours:

* **Multi-label.** An item is offered to the buffer of *each* of its classes, so a multi-label image may be
  represented in several buffers (every cluster carries the item's full multi-hot label).
* **Budget.** The total budget ``capacity`` is shared by the classes seen so far: ``b_c = capacity // k``, the
  first ``capacity % k`` classes (in order of first appearance) get one more, so the buffers sum to at most
  ``capacity``. When a new class appears the budgets shrink and over-full buffers merge their nearest pairs
  until they fit (a class beyond ``capacity`` seen classes gets no slot).
* **Replay of images.** The online runner replays images through the whole (trained) network, so every cluster
  also keeps a *representative* stored item: on a merge, the representative of the two whose feature lies
  nearer the merged centroid is kept. :meth:`ExStreamMemory.sample` returns representatives.
* **Features.** ``probe`` maps root indices to feature vectors (the runner passes the model's pooled feature,
  eval mode, after the step on the batch); centroids are not recomputed when the backbone changes.

Examples
--------
>>> import numpy as np
>>> m = ExStreamMemory(capacity=2, num_classes=1)
>>> f = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
>>> m.update(np.arange(3), np.ones((3, 1), "uint8"), probe=lambda idx: f[idx])
>>> m.centroids().tolist(), m.counts().tolist()
([[0.5, 0.0], [10.0, 0.0]], [2, 1])
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .memory import StreamMemory

__all__ = ["ExStreamMemory"]

Probe = Callable[[np.ndarray], np.ndarray]


class ExStreamMemory(StreamMemory):
    """ExStream class-wise cluster buffers, adapted to multi-label (module documentation).

    Parameters
    ----------
    capacity, num_classes : int
    seed : int
    """

    name = "exstream"
    needs = "features"

    def __init__(self, capacity: int, num_classes: int, *, seed: int = 0) -> None:
        super().__init__(capacity, num_classes, seed=seed)
        # clusters live in fixed slots (a merge frees one, a new cluster takes the lowest free one)
        self._used = np.zeros(self.capacity, dtype=bool)
        self._cls = np.full(self.capacity, -1, dtype=np.int64)  # class buffer of each cluster
        self._count = np.zeros(self.capacity, dtype=np.int64)
        self._idx = np.zeros(self.capacity, dtype=np.int64)  # representative item
        self._y = np.zeros((self.capacity, self.num_classes), dtype=np.uint8)
        self._cent = np.zeros((self.capacity, 0))  # centroids (width set by the first features)
        self._rep_feat = np.zeros((self.capacity, 0))  # feature of each representative
        self._order: list[int] = []  # classes in order of first appearance
        self.merges = 0

    @property
    def indices(self) -> np.ndarray:
        return self._idx[self._used]

    @property
    def targets(self) -> np.ndarray:
        return self._y[self._used]

    def centroids(self) -> np.ndarray:
        """Cluster centroids ``[K, D]`` (rows in the order of :attr:`indices`)."""
        return self._cent[self._used].copy()

    def counts(self) -> np.ndarray:
        """Stream items absorbed by each cluster ``[K]``."""
        return self._count[self._used].copy()

    def cluster_classes(self) -> np.ndarray:
        """Class buffer of each cluster ``[K]``."""
        return self._cls[self._used].copy()

    def budgets(self) -> dict[int, int]:
        """Per-class buffer sizes ``{class: b_c}`` for the classes seen so far."""
        k = len(self._order)
        if k == 0:
            return {}
        base, extra = divmod(self.capacity, k)
        return {c: base + (1 if r < extra else 0) for r, c in enumerate(self._order)}

    def _slots(self, c: int) -> np.ndarray:
        return np.flatnonzero(self._used & (self._cls == c))

    def update(self, indices: np.ndarray, targets: np.ndarray, *, probe: Probe | None = None) -> None:
        idx, y = self._check(indices, targets)
        if not len(idx):
            return
        if probe is None:
            raise ValueError("exstream: update needs probe= (root indices -> feature vectors)")
        feats = np.asarray(probe(idx), dtype=np.float64)
        if feats.ndim != 2 or len(feats) != len(idx):
            raise ValueError(f"exstream: probe must return [{len(idx)}, D] features, got shape {feats.shape}")
        if self._cent.shape[1] == 0:
            self._cent = np.zeros((self.capacity, feats.shape[1]))
            self._rep_feat = np.zeros((self.capacity, feats.shape[1]))
        elif feats.shape[1] != self._cent.shape[1]:
            raise ValueError(f"exstream: feature width changed from {self._cent.shape[1]} to {feats.shape[1]}")
        for i in range(len(idx)):
            classes = np.flatnonzero(y[i])
            new = [int(c) for c in classes if int(c) not in self._order]
            if new:
                self._order.extend(new)
                for c, b in self.budgets().items():
                    while len(self._slots(c)) > max(b, 0):
                        if b == 0:  # more classes than slots: a class beyond the budget loses its slot
                            self._used[self._slots(c)] = False
                            break
                        self._merge_nearest(c)
            budgets = self.budgets()
            for c in classes:
                b = budgets[int(c)]
                if b == 0:
                    continue
                if len(self._slots(int(c))) >= b:
                    if b == 1:  # a single slot: the new item merges into it
                        self._absorb(int(self._slots(int(c))[0]), feats[i], idx[i], y[i])
                        continue
                    self._merge_nearest(int(c))
                self._append(int(c), feats[i], idx[i], y[i])
            self.seen += 1
            self.stream_counts[classes] += 1

    def _append(self, c: int, f: np.ndarray, index: int, y: np.ndarray) -> None:
        k = int(np.flatnonzero(~self._used)[0])
        self._used[k], self._cls[k], self._count[k] = True, c, 1
        self._cent[k], self._rep_feat[k], self._idx[k], self._y[k] = f, f, index, y

    def _absorb(self, k: int, f: np.ndarray, index: int, y: np.ndarray) -> None:
        """Merge a new item into cluster ``k`` (only when the class has a single slot)."""
        n = self._count[k]
        self._cent[k] = (n * self._cent[k] + f) / (n + 1)
        self._count[k] = n + 1
        if np.linalg.norm(f - self._cent[k]) < np.linalg.norm(self._rep_feat[k] - self._cent[k]):
            self._rep_feat[k], self._idx[k], self._y[k] = f, index, y
        self.merges += 1

    def _merge_nearest(self, c: int) -> None:
        """Merge the two nearest clusters of class ``c`` (count-weighted mean, summed counts); frees a slot."""
        rows = self._slots(c)
        w = self._cent[rows]
        d = ((w[:, None, :] - w[None, :, :]) ** 2).sum(-1)
        d[np.diag_indices(len(rows))] = np.inf
        a, b = np.unravel_index(int(np.argmin(d)), d.shape)
        i, j = int(rows[min(a, b)]), int(rows[max(a, b)])
        ni, nj = self._count[i], self._count[j]
        merged = (ni * self._cent[i] + nj * self._cent[j]) / (ni + nj)
        if np.linalg.norm(self._rep_feat[j] - merged) < np.linalg.norm(self._rep_feat[i] - merged):
            self._rep_feat[i], self._idx[i], self._y[i] = self._rep_feat[j], self._idx[j], self._y[j]
        self._cent[i], self._count[i] = merged, ni + nj
        self._used[j] = False
        self.merges += 1
