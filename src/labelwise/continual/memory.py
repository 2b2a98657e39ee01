"""Replay memory for multi-label class-incremental learning.

A :class:`ReplayMemory` stores *base indices* into the root training dataset (never the inputs), plus its own
label matrix ``targets`` (uint8 ``[M, C]``), known-label mask ``known`` (bool ``[M, C]``), the task each slot
was drawn from (``task``), which entries were filled in by relabeling (``relabeled``) and, optionally, stored
logits (DER++). A slot drawn from task ``t`` starts with the labels of ``C^t`` only (the partial labels it had
in its task); :meth:`relabel` completes other columns from a model's predictions (RebLL's online relabeling).

Budget
------
``per_class=k`` gives a capacity of ``k * |C^{1:t}|`` after task ``t`` (the "2/class" of KRT/CSC/RebLL);
``total=M`` a fixed capacity. The size never exceeds the capacity.

Selection
---------
``"reservoir"`` (Rolnick et al. 2019; what RebLL's OR builds on): every training image of a task is offered
once, in a seeded random order, to a reservoir over the whole stream (all tasks so far), so the memory is a
uniform sample of every image seen. ``"herding"`` (iCaRL, as KRT): for each new class, ``k`` exemplars among
its positive images chosen greedily so that the mean of their L2-normalised features follows the class mean;
exemplars of earlier classes are kept (``per_class`` budget only).

Examples
--------
>>> import numpy as np
>>> mem = ReplayMemory(num_classes=4, per_class=1, seed=0)
>>> targets = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0]], dtype="uint8")
>>> known = np.zeros((3, 4), bool); known[:, :2] = True
>>> mem.add_task(0, np.array([10, 11, 12]), targets, known, num_seen_classes=2).tolist()
[0, 1]
>>> len(mem), mem.capacity
(2, 2)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelwise.protocols import Dataset

__all__ = ["ReplayMemory", "herding_selection"]


class ReplayMemory:
    """A class-incremental replay buffer of base indices with its own (relabelable) label matrix.

    Parameters
    ----------
    num_classes : int
        Columns of the label matrix (all classes of the scenario).
    per_class : int, optional
        Budget per seen class (capacity ``per_class * seen classes``).
    total : int, optional
        Fixed total budget (exclusive with ``per_class``).
    selection : {"reservoir", "herding"}
        How slots are filled (module documentation).
    seed : int
        Seed of the reservoir stream order and replacements.
    """

    def __init__(self, num_classes: int, *, per_class: int | None = None, total: int | None = None,
                 selection: str = "reservoir", seed: int = 0) -> None:
        if (per_class is None) == (total is None):
            raise ValueError("give exactly one of per_class (e.g. 2 for '2/class') and total")
        if per_class is not None and int(per_class) < 0:
            raise ValueError(f"per_class must be >= 0, got {per_class}")
        if total is not None and int(total) < 0:
            raise ValueError(f"total must be >= 0, got {total}")
        if selection not in ("reservoir", "herding"):
            raise ValueError(f"selection must be 'reservoir' or 'herding', got {selection!r}")
        if selection == "herding" and per_class is None:
            raise ValueError("herding selection needs a per_class budget")
        self.num_classes = int(num_classes)
        self.per_class = None if per_class is None else int(per_class)
        self.total = None if total is None else int(total)
        self.selection = selection
        self.seed = int(seed)
        self.capacity = 0 if self.per_class is not None else self.total
        self.num_seen = 0  # items offered to the reservoir so far (all tasks)
        self._rng = np.random.default_rng(self.seed)
        c = self.num_classes
        self.base_indices = np.zeros(0, dtype=np.int64)
        self.targets = np.zeros((0, c), dtype=np.uint8)
        self.known = np.zeros((0, c), dtype=bool)
        self.relabeled = np.zeros((0, c), dtype=bool)
        self.task = np.zeros(0, dtype=np.int64)
        self.logits: np.ndarray | None = None
        self.logit_mask: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.base_indices.shape[0])

    def __repr__(self) -> str:
        return f"ReplayMemory(size={len(self)}, capacity={self.capacity}, selection={self.selection!r})"

    # -- filling ---------------------------------------------------------------------------------------
    def capacity_for(self, num_seen_classes: int) -> int:
        """The capacity once ``num_seen_classes`` classes have been learned."""
        return self.per_class * int(num_seen_classes) if self.per_class is not None else int(self.total)

    def add_task(self, task: int, base_indices: np.ndarray, targets: np.ndarray, known: np.ndarray, *,
                 num_seen_classes: int, features: np.ndarray | None = None,
                 new_classes: np.ndarray | None = None) -> np.ndarray:
        """Offer the training images of ``task`` to the memory; returns the slots written.

        Parameters
        ----------
        task : int
        base_indices : int array [N]
            The task's images (root-dataset indices).
        targets, known : arrays [N, C]
            Their partial labels (targets already zeroed outside ``known``).
        num_seen_classes : int
            ``|C^{1:t}|``, which sets the capacity of a ``per_class`` budget.
        features : float array [N, D], optional
            Features for herding (required with ``selection="herding"``).
        new_classes : int array, optional
            ``C^t`` (required with ``selection="herding"``).
        """
        idx = np.asarray(base_indices, dtype=np.int64).reshape(-1)
        targets = np.asarray(targets, dtype=np.uint8)
        known = np.asarray(known, dtype=bool)
        if targets.shape != (len(idx), self.num_classes) or known.shape != targets.shape:
            raise ValueError(
                f"targets/known must have shape ({len(idx)}, {self.num_classes}), got {targets.shape} and {known.shape}"
            )
        self.capacity = self.capacity_for(num_seen_classes)
        if self.selection == "herding":
            if features is None or new_classes is None:
                raise ValueError("herding selection needs features and new_classes")
            chosen = herding_selection(np.asarray(features, dtype=np.float64), targets, new_classes, self.per_class)
            return self._append(task, idx[chosen], targets[chosen], known[chosen])
        return self._reservoir(task, idx, targets, known)

    def _reservoir(self, task: int, idx: np.ndarray, targets: np.ndarray, known: np.ndarray) -> np.ndarray:
        n_new = len(idx)
        if n_new == 0:
            return np.zeros(0, dtype=np.int64)
        perm = self._rng.permutation(n_new)
        cap = self.capacity
        size = len(self)
        if size > cap:  # capacity shrank (a total budget changed): keep a random subset
            keep = np.sort(self._rng.choice(size, cap, replace=False))
            self._keep(keep)
            size = cap
        # 1) free slots are filled in stream order
        n_fill = min(cap - size, n_new)
        fill = perm[:n_fill]
        written = list(range(size, size + n_fill))
        self._append(task, idx[fill], targets[fill], known[fill])
        # 2) the rest of the stream: item at stream position p replaces slot j ~ U{0..p} if j < capacity
        rest = perm[n_fill:]
        if len(rest) and cap > 0:
            pos = self.num_seen + n_fill + np.arange(len(rest))
            j = np.floor(self._rng.random(len(rest)) * (pos + 1)).astype(np.int64)
            hit = j < cap
            slots, items = j[hit], rest[hit]
            # later items overwrite earlier ones: keep the last item per slot
            uniq, last_rev = np.unique(slots[::-1], return_index=True)
            items = items[::-1][last_rev]
            self._write(uniq, task, idx[items], targets[items], known[items])
            written.extend(uniq.tolist())
        self.num_seen += n_new
        return np.unique(np.asarray(written, dtype=np.int64))

    def _append(self, task: int, idx: np.ndarray, targets: np.ndarray, known: np.ndarray) -> np.ndarray:
        start = len(self)
        self.base_indices = np.concatenate([self.base_indices, idx])
        self.targets = np.concatenate([self.targets, targets * known])
        self.known = np.concatenate([self.known, known])
        self.relabeled = np.concatenate([self.relabeled, np.zeros_like(known)])
        self.task = np.concatenate([self.task, np.full(len(idx), int(task), dtype=np.int64)])
        if self.logits is not None:
            self.logits = np.concatenate([self.logits, np.zeros((len(idx), self.num_classes), np.float32)])
            self.logit_mask = np.concatenate([self.logit_mask, np.zeros((len(idx), self.num_classes), bool)])
        return np.arange(start, len(self))

    def _write(self, slots: np.ndarray, task: int, idx: np.ndarray, targets: np.ndarray, known: np.ndarray) -> None:
        self.base_indices[slots] = idx
        self.targets[slots] = targets * known
        self.known[slots] = known
        self.relabeled[slots] = False
        self.task[slots] = int(task)
        if self.logits is not None:
            self.logits[slots] = 0.0
            self.logit_mask[slots] = False

    def _keep(self, keep: np.ndarray) -> None:
        for name in ("base_indices", "targets", "known", "relabeled", "task", "logits", "logit_mask"):
            val = getattr(self, name)
            if val is not None:
                setattr(self, name, val[keep])

    # -- labels ----------------------------------------------------------------------------------------
    def relabel(self, slots: np.ndarray, classes: np.ndarray, probabilities: np.ndarray, *,
                threshold: float = 0.5) -> None:
        """Set the labels of ``classes`` on ``slots`` to ``probabilities > threshold`` and mark them known.

        ``probabilities`` is ``[len(slots), C]`` (full columns) or ``[len(slots), len(classes)]``. Entries that
        were already known (ground truth of the slot's own task) are never overwritten.

        Examples
        --------
        >>> import numpy as np
        >>> mem = ReplayMemory(num_classes=3, total=2)
        >>> k = np.array([[True, False, False]] * 2)
        >>> _ = mem.add_task(0, np.array([5, 6]), np.array([[1, 0, 0], [0, 0, 0]]), k, num_seen_classes=1)
        >>> mem.relabel(np.array([0, 1]), np.array([1, 2]), np.array([[0.9, 0.2], [0.6, 0.7]]), threshold=0.65)
        >>> mem.targets.tolist(), bool(mem.known.all())
        ([[1, 1, 0], [0, 0, 1]], True)
        """
        slots = np.asarray(slots, dtype=np.int64).reshape(-1)
        classes = np.asarray(classes, dtype=np.int64).reshape(-1)
        p = np.asarray(probabilities, dtype=np.float64)
        if p.shape == (len(slots), self.num_classes):
            p = p[:, classes]
        if p.shape != (len(slots), len(classes)):
            raise ValueError(
                f"probabilities must be [{len(slots)}, {self.num_classes}] or [{len(slots)}, {len(classes)}], got {p.shape}"
            )
        if not len(slots) or not len(classes):
            return
        sub_known = self.known[np.ix_(slots, classes)]
        new = (p > threshold).astype(np.uint8)
        old = self.targets[np.ix_(slots, classes)]
        self.targets[np.ix_(slots, classes)] = np.where(sub_known, old, new)
        self.relabeled[np.ix_(slots, classes)] |= ~sub_known
        self.known[np.ix_(slots, classes)] = True

    def store_logits(self, slots: np.ndarray, logits: np.ndarray, valid_classes: np.ndarray) -> None:
        """Store logits (DER/DER++) for ``slots``; only ``valid_classes`` columns count in the replay loss."""
        if self.logits is None:
            self.logits = np.zeros((len(self), self.num_classes), np.float32)
            self.logit_mask = np.zeros((len(self), self.num_classes), bool)
        slots = np.asarray(slots, dtype=np.int64)
        self.logits[slots] = np.asarray(logits, dtype=np.float32)
        mask = np.zeros(self.num_classes, bool)
        mask[np.asarray(valid_classes, dtype=np.int64)] = True
        self.logit_mask[slots] = mask

    def view(self, dataset: Dataset, *, transform: Any = "inherit") -> Dataset:
        """A dataset view of the memory over the root ``dataset`` with the memory's labels and known mask."""
        return dataset.view(self.base_indices, targets=self.targets, known_mask=self.known, transform=transform)

    def class_counts(self) -> np.ndarray:
        """Positive labels per class in the memory (``int [C]``)."""
        return self.targets.sum(axis=0).astype(np.int64)

    # -- state -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        st = {"base_indices": self.base_indices, "targets": self.targets, "known": self.known,
              "relabeled": self.relabeled, "task": self.task, "capacity": int(self.capacity),
              "num_seen": int(self.num_seen), "rng": self._rng.bit_generator.state}
        if self.logits is not None:
            st["logits"], st["logit_mask"] = self.logits, self.logit_mask
        return st

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_indices = np.asarray(state["base_indices"], dtype=np.int64)
        self.targets = np.asarray(state["targets"], dtype=np.uint8).reshape(-1, self.num_classes)
        self.known = np.asarray(state["known"], dtype=bool).reshape(-1, self.num_classes)
        self.relabeled = np.asarray(state["relabeled"], dtype=bool).reshape(-1, self.num_classes)
        self.task = np.asarray(state["task"], dtype=np.int64)
        self.capacity = int(state["capacity"])
        self.num_seen = int(state["num_seen"])
        self._rng.bit_generator.state = state["rng"]
        if "logits" in state:
            self.logits = np.asarray(state["logits"], dtype=np.float32).reshape(-1, self.num_classes)
            self.logit_mask = np.asarray(state["logit_mask"], dtype=bool).reshape(-1, self.num_classes)


def herding_selection(features: np.ndarray, targets: np.ndarray, classes: np.ndarray, k: int) -> np.ndarray:
    """iCaRL herding per class: indices (into ``features``) of ``k`` exemplars per class of ``classes``.

    For each class, among its positive samples (not yet chosen for an earlier class), greedily add the
    sample that brings the mean of the chosen L2-normalised features closest to the class mean.

    Examples
    --------
    >>> import numpy as np
    >>> f = np.array([[1.0, 0], [1.0, 1.0], [0, 1.0], [5.0, 0]])
    >>> y = np.array([[1, 0], [1, 0], [1, 0], [0, 1]])
    >>> herding_selection(f, y, np.array([0, 1]), 1).tolist()     # the middle sample is closest to the mean
    [1, 3]
    """
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    taken = np.zeros(len(f), dtype=bool)
    chosen: list[int] = []
    for c in np.asarray(classes, dtype=np.int64):
        cand = np.flatnonzero((targets[:, c] > 0) & ~taken)
        if len(cand) == 0:
            continue
        fc = f[cand]
        mu = fc.mean(axis=0)
        acc = np.zeros_like(mu)
        avail = np.ones(len(cand), dtype=bool)
        for step in range(1, min(k, len(cand)) + 1):
            dist = np.linalg.norm(mu[None, :] - (acc[None, :] + fc) / step, axis=1)
            dist[~avail] = np.inf
            i = int(np.argmin(dist))
            avail[i] = False
            acc += fc[i]
            chosen.append(int(cand[i]))
            taken[cand[i]] = True
    return np.asarray(chosen, dtype=np.int64)
