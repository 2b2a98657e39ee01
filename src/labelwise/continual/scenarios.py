"""Multi-label class-incremental scenarios ``{Bx-Cy}`` over any :class:`~labelwise.data.MultiLabelDataset`.

Protocol (KRT, ICCV 2023; CSC, ECCV 2024; RebLL, AAAI 2025)
----------------------------------------------------------
* The classes are put in an order (``"alphabetical"`` by class name, the default and the KRT/CSC/RebLL
  convention; ``"dataset"`` keeps the dataset's column order; ``"random"`` is a seeded permutation) and cut
  into a base task of ``x`` classes followed by tasks of ``y`` classes (``B0-C5``: every task has 5 classes).
  A last task that does not fill ``y`` classes keeps the remainder.
* Task ``t`` trains on the images holding at least one class of ``C^t``. Only ``C^t`` is labelled
  (task-level partial labels): the known-label mask marks the ``C^t`` columns, and the targets of every other
  column are **zeroed** so that no label of a past or future class can reach the training loop, whatever
  the loss does with the mask.
* After task ``t`` the model is evaluated on the test images holding any seen class (``C^{1:t}``), over the
  seen classes only.

Examples
--------
>>> import numpy as np
>>> from labelwise.data import ArrayDataset
>>> y = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]])
>>> train = ArrayDataset(np.zeros((4, 2), "float32"), y, class_names=["dog", "cat", "bus", "ant"])
>>> sc = ClassIncrementalScenario(train, train, base=2, increment=1)
>>> sc.class_order_names
['ant', 'bus', 'cat', 'dog']
>>> [sc.task_class_names(t) for t in range(sc.num_tasks)]
[['ant', 'bus'], ['cat'], ['dog']]
>>> task = sc.train_view(0)
>>> task.base_indices.tolist(), task.known_mask[0].tolist(), task.targets[0].tolist()
([0, 2], [False, False, True, True], [0, 0, 0, 1])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelwise.protocols import Dataset

__all__ = ["ClassIncrementalScenario", "TaskInfo", "parse_scenario", "class_order"]

_SCENARIO_RE = re.compile(r"^\s*B(\d+)\s*-\s*C(\d+)\s*$", re.IGNORECASE)
CLASS_ORDERS = ("alphabetical", "dataset", "random")


def parse_scenario(text: str) -> tuple[int, int]:
    """Parse ``"B4-C2"`` into ``(base, increment)``.

    Examples
    --------
    >>> parse_scenario("B20-C4"), parse_scenario("b0-c5")
    ((20, 4), (0, 5))
    >>> parse_scenario("B4C2")
    Traceback (most recent call last):
    ...
    ValueError: scenario 'B4C2' is not of the form 'B<x>-C<y>' (e.g. 'B4-C2')
    """
    m = _SCENARIO_RE.match(str(text))
    if m is None:
        raise ValueError(f"scenario {text!r} is not of the form 'B<x>-C<y>' (e.g. 'B4-C2')")
    return int(m.group(1)), int(m.group(2))


def class_order(class_names: Sequence[str], order: str | Sequence[str] | Sequence[int] = "alphabetical", *,
                seed: int = 0) -> np.ndarray:
    """Column indices of ``class_names`` in incremental order.

    Parameters
    ----------
    class_names : sequence of str
        The dataset's classes (column order).
    order : {"alphabetical", "dataset", "random"} or sequence
        A named order, or an explicit order as class names or column indices (a permutation).
    seed : int
        Seed of the ``"random"`` order.

    Examples
    --------
    >>> class_order(["b", "c", "a"]).tolist(), class_order(["b", "c", "a"], "dataset").tolist()
    ([2, 0, 1], [0, 1, 2])
    >>> class_order(["b", "c", "a"], ["c", "a", "b"]).tolist()
    [1, 2, 0]
    """
    names = list(class_names)
    c = len(names)
    if isinstance(order, str):
        if order == "alphabetical":
            return np.array(sorted(range(c), key=lambda i: names[i]), dtype=np.int64)
        if order == "dataset":
            return np.arange(c, dtype=np.int64)
        if order == "random":
            return np.random.default_rng(seed).permutation(c).astype(np.int64)
        raise ValueError(f"class_order must be one of {CLASS_ORDERS} or an explicit list, got {order!r}")
    items = list(order)
    if all(isinstance(v, str) for v in items):
        unknown = [v for v in items if v not in names]
        if unknown:
            raise KeyError(f"class_order names unknown classes {unknown[:5]} (classes: {names[:10]}...)")
        idx = np.array([names.index(v) for v in items], dtype=np.int64)
    else:
        idx = np.asarray(items, dtype=np.int64)
    if sorted(idx.tolist()) != list(range(c)):
        raise ValueError(f"class_order must list every one of the {c} classes exactly once, got {items[:10]}...")
    return idx


@dataclass(frozen=True)
class TaskInfo:
    """One task of a scenario: its position, its new classes and every class seen so far (column indices)."""

    index: int
    classes: np.ndarray
    seen_classes: np.ndarray

    @property
    def past_classes(self) -> np.ndarray:
        """``C^{1:t-1}``: the classes of the earlier tasks."""
        return self.seen_classes[: len(self.seen_classes) - len(self.classes)]


class ClassIncrementalScenario:
    """A ``{Bx-Cy}`` multi-label class-incremental scenario over a training and a test dataset.

    Parameters
    ----------
    train, test : MultiLabelDataset
        Datasets with the same ``class_names``; their own ``known_mask`` (e.g. VOC difficult-only objects
        marked unknown) is kept: a label unknown in the dataset stays unknown in every task.
    base : int
        Classes of the first task (``x``; 0 means the first task has ``increment`` classes, as ``B0-C5``).
    increment : int
        Classes of every following task (``y``).
    class_order : {"alphabetical", "dataset", "random"} or sequence, default "alphabetical"
        See :func:`class_order`.
    seed : int
        Seed of the random class order.

    Attributes
    ----------
    order : ndarray of int
        Column indices in incremental order.
    tasks : list of TaskInfo

    Examples
    --------
    >>> import numpy as np
    >>> from labelwise.data import ArrayDataset
    >>> ds = ArrayDataset(np.zeros((3, 1), "float32"), np.eye(3, dtype="uint8"), class_names=list("abc"))
    >>> sc = ClassIncrementalScenario.from_string(ds, ds, "B1-C1")
    >>> sc.num_tasks, sc.name, [t.classes.tolist() for t in sc.tasks]
    (3, 'B1-C1', [[0], [1], [2]])
    """

    def __init__(
        self,
        train: Dataset,
        test: Dataset | None,
        *,
        base: int,
        increment: int,
        class_order: str | Sequence[str] | Sequence[int] = "alphabetical",
        seed: int = 0,
    ) -> None:
        names = list(train.class_names)
        if test is not None and list(test.class_names) != names:
            raise ValueError("train and test datasets must have the same class_names in the same order")
        c = len(names)
        base, increment = int(base), int(increment)
        if increment < 1:
            raise ValueError(f"increment must be >= 1, got {increment}")
        if base < 0 or base > c:
            raise ValueError(f"base must be in [0, {c}] for a dataset of {c} classes, got {base}")
        if base == c and c > 0:
            raise ValueError(f"base={base} uses every class: there is no incremental task")
        self.train = train
        self.test = test
        self.base = base
        self.increment = increment
        self.class_names = names
        self.order = _order(names, class_order, seed)
        cuts = [0] + ([base] if base > 0 else [])
        while cuts[-1] < c:
            cuts.append(min(cuts[-1] + increment, c))
        self.tasks: list[TaskInfo] = []
        for t in range(len(cuts) - 1):
            self.tasks.append(TaskInfo(t, self.order[cuts[t]: cuts[t + 1]].copy(), self.order[: cuts[t + 1]].copy()))

    @classmethod
    def from_string(cls, train: Dataset, test: Dataset | None, scenario: str, **kwargs: Any) -> ClassIncrementalScenario:
        """Build from ``"B<x>-C<y>"`` (see :func:`parse_scenario`)."""
        base, inc = parse_scenario(scenario)
        return cls(train, test, base=base, increment=inc, **kwargs)

    # -- description -----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"B{self.base}-C{self.increment}"

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_order_names(self) -> list[str]:
        return [self.class_names[i] for i in self.order]

    def task_class_names(self, task: int) -> list[str]:
        return [self.class_names[i] for i in self.task(task).classes]

    def task(self, task: int) -> TaskInfo:
        if not 0 <= int(task) < self.num_tasks:
            raise IndexError(f"task {task} out of range: scenario {self.name} has {self.num_tasks} tasks")
        return self.tasks[int(task)]

    def task_of_class(self) -> np.ndarray:
        """``int [C]``: the task in which each class column is learned."""
        out = np.empty(self.num_classes, dtype=np.int64)
        for t in self.tasks:
            out[t.classes] = t.index
        return out

    def __repr__(self) -> str:
        return f"ClassIncrementalScenario({self.name}, tasks={self.num_tasks}, classes={self.num_classes})"

    # -- views -----------------------------------------------------------------------------------------
    def class_mask(self, classes: np.ndarray) -> np.ndarray:
        m = np.zeros(self.num_classes, dtype=bool)
        m[np.asarray(classes, dtype=np.int64)] = True
        return m

    def task_indices(self, task: int, *, split: str = "train") -> np.ndarray:
        """Positions (in ``train`` or ``test``) of the images holding at least one class of task ``task``."""
        ds = self._split(split)
        cols = self.task(task).classes
        return np.flatnonzero(ds.targets[:, cols].any(axis=1))

    def train_view(self, task: int) -> Dataset:
        """Training data of ``task``: images with a class of ``C^t``, only ``C^t`` known, other targets zeroed."""
        return self.partial_view(self.task_indices(task), self.task(task).classes)

    def partial_view(self, indices: np.ndarray, known_classes: np.ndarray, *, split: str = "train",
                     transform: Any = "inherit") -> Dataset:
        """A view of ``indices`` where only ``known_classes`` are labelled (other targets zeroed)."""
        ds = self._split(split)
        idx = np.asarray(indices, dtype=np.int64)
        col = self.class_mask(known_classes)
        known = np.broadcast_to(col, (len(idx), self.num_classes)).copy()
        if ds.known_mask is not None:
            known &= ds.known_mask[idx]
        targets = ds.targets[idx] * known
        return ds.view(idx, targets=targets.astype(np.uint8), known_mask=known, transform=transform)

    def joint_view(self, task: int) -> Dataset:
        """Training data of every task up to ``task`` with all seen classes known (the Joint upper bound)."""
        seen = self.task(task).seen_classes
        idx = np.flatnonzero(self.train.targets[:, seen].any(axis=1))
        return self.partial_view(idx, seen)

    def test_indices(self, task: int) -> np.ndarray:
        """Test images holding any class seen up to ``task``."""
        seen = self.task(task).seen_classes
        return np.flatnonzero(self._split("test").targets[:, seen].any(axis=1))

    def test_view(self, task: int) -> Dataset:
        """Test images holding any seen class (all of their labels; evaluate over ``seen_classes``)."""
        return self._split("test").view(self.test_indices(task))

    def _split(self, split: str) -> Dataset:
        if split == "train":
            return self.train
        if split == "test":
            if self.test is None:
                raise ValueError("this scenario has no test dataset")
            return self.test
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")

    def summary(self) -> list[dict[str, Any]]:
        """One dict per task: classes, number of training and test images."""
        rows = []
        for t in self.tasks:
            rows.append({
                "task": t.index,
                "classes": self.task_class_names(t.index),
                "train_images": int(len(self.task_indices(t.index))),
                "test_images": int(len(self.test_indices(t.index))) if self.test is not None else None,
            })
        return rows


def _order(names: list[str], order: Any, seed: int) -> np.ndarray:
    return class_order(names, order, seed=seed)
