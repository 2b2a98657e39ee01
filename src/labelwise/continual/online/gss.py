"""GSS-Greedy (Aljundi et al., NeurIPS 2019): a stream memory that keeps items with diverse gradients.

Every stored item ``i`` carries a score ``C_i``. For a stream item with loss gradient ``g`` and the gradients
``G_1..G_n`` of ``n`` items drawn at random from the memory (``n_samples``, 10), the item's score is

    ``c = max_j cos(g, G_j) + 1``  (in ``[0, 2]``; low = the item's gradient points away from the memory's).

* While the memory has room the item is stored with its score ``c``.
* Once it is full, an item with ``c < 1`` (its gradient has a negative cosine with every sampled memory
  gradient) is a candidate: a stored item ``i`` is drawn with probability ``C_i / sum_j C_j`` and replaced,
  with probability ``C_i / (C_i + c)``, by the new item, which takes the score ``c``. Items with ``c >= 1`` are
  dropped. So redundant gradients are evicted first and the memory stays within ``capacity``.

The memory needs gradients: :meth:`GradientSampleSelection.update` takes ``probe``, a callable mapping root
dataset indices to per-item gradient vectors ``[k, P]`` (the online runner passes the gradient of the item's
BCE loss with respect to the trained parameters, model in eval mode, after the step on the batch).

Where this follows the paper and where the public code
-------------------------------------------------------
* Paper (Algorithm 2, GSS-Greedy): the per-item score ``max cos + 1``, the ``c < 1`` test per item, the draw
  ``C_i / sum C`` and the replacement probability ``C_i / (C_i + c)``; per-item gradients of the ``n = 10``
  sampled memory items.
* Public code (``rahafaljundi/Gradient-based-Sample-Selection``, ``model/GSS_Greedy.py``): the memory
  gradients are drawn once per stream batch, with the model in eval mode after the update step (as here); there
  they are gradients of ``n`` random memory *batches*, the admission test is made once on the whole batch's
  gradient, and candidates are drawn with min-max normalised scores; items stored while the memory is empty get
  the score 0.1 on its unshifted ``max cos`` scale, i.e. ``empty_score = 1.1`` here.
* Multi-label: the loss of an item is its multi-label BCE (the paper is single-label; PRS and DLFL report GSS
  on COCOseq / NUS-WIDEseq without a description we could read, so this is our adaptation).

Examples
--------
>>> import numpy as np
>>> g = np.array([[1.0, 0.0]] * 8 + [[-1.0, 0.1], [0.0, -1.0]])  # eight redundant items, two diverse ones
>>> m = GradientSampleSelection(capacity=4, num_classes=2, seed=0)
>>> y = np.eye(2, dtype="uint8")[np.arange(10) % 2]
>>> m.update(np.arange(10), y, probe=lambda idx: g[idx])
>>> len(m) <= 4, m.seen
(True, 10)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .memory import SlotMemory

__all__ = ["GradientSampleSelection"]

Probe = Callable[[np.ndarray], np.ndarray]


def _max_cosine(g: np.ndarray, G: np.ndarray, G_norms: np.ndarray) -> float:
    """``max_j cos(g, G_j)`` (``G_norms``: the row norms of ``G``)."""
    gn = float(np.sqrt(np.dot(g.astype(np.float64), g.astype(np.float64))))
    cos = (G @ g).astype(np.float64) / np.maximum(G_norms * gn, 1e-12)
    return float(cos.max())


class GradientSampleSelection(SlotMemory):
    """GSS-Greedy memory (module documentation).

    Parameters
    ----------
    capacity, num_classes : int
    n_samples : int, default 10
        ``n``: memory items whose gradients score a new item (the paper's and the public code's 10).
    empty_score : float, default 1.1
        Score of an item stored while the memory is empty (the public code's 0.1 on the unshifted scale).
    seed : int
    """

    name = "gss"
    needs = "gradients"

    def __init__(
        self, capacity: int, num_classes: int, *, n_samples: int = 10, empty_score: float = 1.1, seed: int = 0
    ) -> None:
        super().__init__(capacity, num_classes, seed=seed)
        if int(n_samples) < 1:
            raise ValueError(f"gss: n_samples must be >= 1, got {n_samples}")
        self.n_samples = int(n_samples)
        self.empty_score = float(empty_score)
        self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x655]))
        self.scores = np.zeros(self.capacity, dtype=np.float64)
        self.replaced = 0

    def update(self, indices: np.ndarray, targets: np.ndarray, *, probe: Probe | None = None) -> None:
        idx, y = self._check(indices, targets)
        if not len(idx):
            return
        if probe is None:
            raise ValueError("gss: update needs probe= (root indices -> per-item gradient vectors)")
        grads = np.asarray(probe(idx), dtype=np.float32)
        if grads.ndim != 2 or len(grads) != len(idx):
            raise ValueError(f"gss: probe must return [{len(idx)}, P] gradients, got shape {grads.shape}")
        if self._size:
            k = min(self.n_samples, self._size)
            slots = self._rng.choice(self._size, k, replace=False)
            mem_grads = np.asarray(probe(self._idx[slots]), dtype=np.float32)
        else:
            mem_grads = np.zeros((0, grads.shape[1]), dtype=np.float32)
        mem_norms = np.sqrt((mem_grads.astype(np.float64) ** 2).sum(axis=1)) if len(mem_grads) else None
        for i in range(len(idx)):
            c = _max_cosine(grads[i], mem_grads, mem_norms) + 1.0 if len(mem_grads) else self.empty_score
            if self._size < self.capacity:
                self._write(self._size, idx[i], y[i], c)
                self._size += 1
            elif self.capacity > 0 and c < 1.0:
                s = self.scores[: self._size]
                total = s.sum()
                prob = s / total if total > 0 else np.full(self._size, 1.0 / self._size)
                slot = int(self._rng.choice(self._size, p=prob))
                if self._rng.random() < s[slot] / (s[slot] + c):
                    self._write(slot, idx[i], y[i], c)
                    self.replaced += 1
        self.seen += len(idx)
        self.stream_counts += y.sum(axis=0, dtype=np.int64)

    def _write(self, slot: int, index: int, y: np.ndarray, score: float) -> None:
        self._idx[slot], self._y[slot], self.scores[slot] = index, y, score
