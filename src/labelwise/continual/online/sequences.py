"""Online multi-label task sequences: COCOseq, NUS-WIDEseq (Kim et al., PRS, ECCV 2020) and a MultiDigits one.

A sequence is a stream of tasks with *disjoint* class sets: task ``t`` holds images whose labels all belong to
its classes, so a stream batch only shows the current task's classes. Labels are full multi-hot vectors over
all classes (the PRS protocol trains a BCE over every output, not on task-masked labels). The test set of a
task holds test images of its classes; after a task the model is evaluated on the test images of every task
seen so far, over the classes that have a positive there.

COCOseq / NUS-WIDEseq (the published split files)
-------------------------------------------------
``root`` is the ``prs_cocoseq_nuswideseq`` folder (a copy of ``cdjkim/PRS`` at ``136cee1``)::

    dataset/data_source/COCOseq/multihot_map.json              class name -> column (70 classes)
    dataset/data_source/COCOseq/ids/{train,test,teorg}_task<k>_id_coco.json
    dataset/data_source/NUSWIDEseq/multihot_map.json           49 classes
    dataset/data_source/NUSWIDEseq/ids/{train,test,teorg}_task<k>_id_nuswide.json
    code/episodes/coco-split_0312.yaml, nw-split_310542.yaml   the task order of the stream
    code/resources/{major,moderate,minor}_cats{,_nuswide}.json the class groups PRS evaluates

* COCOseq ids are COCO-2014 image ids drawn from train2014 *and* val2014; the labels are every instance
  annotation (crowd included) of the 70 classes (what PRS's ``dataset_maker.py`` does).
* NUS-WIDEseq ids are positions in ``ImageList/TrainImagelist.txt`` (``train`` files) or ``TestImagelist.txt``
  (``test`` and ``teorg`` files), with the ``TrainTestLabels`` ground truth of the 49 concepts.
* ``teorg`` ("test, original") files are the larger test pools the ``test`` sets were drawn from (NUS-WIDE) or
  an alternative test set (COCO: it does not contain the ``test`` ids); PRS evaluates on ``test``.
* Task order: COCOseq ``[0, 3, 1, 2]``, NUS-WIDEseq ``[3, 1, 0, 5, 4, 2]`` (read from the episode YAMLs).

Sizes in the files: COCOseq train 8365/7814/11603/7290 (35 072), test 1960/1690/1400/1316 (6366; the DLFL
paper's "6,346" is a typo: its own per-task numbers sum to 6366); NUS-WIDEseq train
17672/18402/3623/1948/2373/4730 (48 748; the paper's total "48,724" does not match its own per-task numbers,
which sum to 48 748), test 250/294/738/585/200/299 (2366; the paper says 2,367). PRS's maker silently drops
NUS-WIDE images whose URL is dead, so a rebuilt NUS-WIDEseq is usually smaller than the id files.

Class groups
------------
PRS reports majority (over 900 training images), moderate (200-900) and minority (under 200) classes. The
evaluation code reads them from the shipped files (``groups="files"``, 18/38/14 COCO classes, 10/18/21
NUS-WIDE classes); ``groups="counts"`` recomputes them from the training labels with
:func:`class_groups` and :func:`compare_groups` lists the classes where the two disagree.

MultiDigits sequence
--------------------
:func:`multidigits_sequence` builds a stream of the same shape from ``multidigits80`` (offline): scene contexts
are dealt to ``num_tasks`` tasks, each class goes to the task whose contexts use it most, and only images whose
labels fall inside one task are kept (about 60 % of them with the defaults). The long-tailed class prior makes
per-class stream counts span three orders of magnitude; the group thresholds are PRS's 200/900 scaled by the
stream size (``200 / 35072`` and ``900 / 35072`` of the number of training images).

Examples
--------
>>> seq = multidigits_sequence(n_train=600, n_test=300, image_size=24, cache=False)
>>> seq.num_tasks, seq.num_classes, sum(len(t) for t in seq.train_tasks) == seq.num_train
(4, 80, True)
>>> sorted(seq.groups)
['majority', 'minority', 'moderate']
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.protocols import Dataset

__all__ = [
    "GROUP_NAMES",
    "PRS_THRESHOLDS",
    "OnlineSequence",
    "PRSSplit",
    "read_prs_split",
    "class_groups",
    "compare_groups",
    "cocoseq",
    "nuswideseq",
    "multidigits_sequence",
    "load_sequence",
]

GROUP_NAMES = ("majority", "moderate", "minority")
#: PRS's thresholds on the number of training images of a class: minority < 200 <= moderate <= 900 < majority.
PRS_THRESHOLDS = (200, 900)
_COCOSEQ_TRAIN = 35072

_PRS_LAYOUT = {
    "coco": {"dir": "COCOseq", "suffix": "coco", "episode": "coco-split_0312.yaml", "groups": ""},
    "nuswide": {
        "dir": "NUSWIDEseq",
        "suffix": "nuswide",
        "episode": "nw-split_310542.yaml",
        "groups": "_nuswide",
    },
}
_PRS_GROUP_FILES = {"majority": "major_cats", "moderate": "moderate_cats", "minority": "minor_cats"}


@dataclass
class OnlineSequence:
    """A stream of tasks with disjoint class sets over a root training and test dataset.

    Attributes
    ----------
    name : str
    train, test : MultiLabelDataset
        Root datasets; ``train_tasks[t]`` / ``test_tasks[t]`` index into them.
    train_tasks, test_tasks : list of int arrays
        Per task, in stream order.
    task_ids : list of int
        The original task id of each stream position (the published order for COCOseq / NUS-WIDEseq).
    groups : dict
        ``"majority"``, ``"moderate"``, ``"minority"`` -> class indices.
    info : dict
        Provenance and construction notes.
    """

    name: str
    train: Dataset
    test: Dataset
    train_tasks: list[np.ndarray]
    test_tasks: list[np.ndarray]
    task_ids: list[int]
    groups: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return list(self.train.class_names)

    @property
    def num_classes(self) -> int:
        return len(self.train.class_names)

    @property
    def num_tasks(self) -> int:
        return len(self.train_tasks)

    @property
    def num_train(self) -> int:
        return int(sum(len(t) for t in self.train_tasks))

    def stream_indices(self) -> np.ndarray:
        """All training indices in task order (unshuffled within a task)."""
        return np.concatenate(self.train_tasks) if self.train_tasks else np.zeros(0, np.int64)

    def train_counts(self) -> np.ndarray:
        """Positive training images per class over the whole stream (``int [C]``)."""
        return np.asarray(self.train.targets[self.stream_indices()], dtype=np.int64).sum(axis=0)

    def task_classes(self, t: int) -> np.ndarray:
        """Classes with a positive training image in stream task ``t``."""
        return np.flatnonzero(np.asarray(self.train.targets[self.train_tasks[t]]).any(axis=0))

    def summary(self) -> dict[str, Any]:
        """Task sizes, classes per task and group sizes (for logs and tests)."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "task_ids": list(self.task_ids),
            "train_sizes": [len(t) for t in self.train_tasks],
            "test_sizes": [len(t) for t in self.test_tasks],
            "classes_per_task": [len(self.task_classes(t)) for t in range(self.num_tasks)],
            "group_sizes": {g: len(self.groups.get(g, ())) for g in GROUP_NAMES},
        }

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"OnlineSequence({self.name!r}, classes={s['num_classes']}, tasks={s['task_ids']}, "
            f"train={s['train_sizes']}, test={s['test_sizes']})"
        )


# ---------------------------------------------------------------------------------------------------------
# class groups
# ---------------------------------------------------------------------------------------------------------
def class_groups(
    counts: Sequence[int] | np.ndarray, thresholds: Sequence[float] = PRS_THRESHOLDS
) -> dict[str, np.ndarray]:
    """Majority / moderate / minority classes from per-class training counts.

    Minority: ``count < lo``; moderate: ``lo <= count <= hi``; majority: ``count > hi``.

    Examples
    --------
    >>> g = class_groups([50, 200, 900, 901, 10])
    >>> {k: v.tolist() for k, v in g.items()}
    {'majority': [3], 'moderate': [1, 2], 'minority': [0, 4]}
    """
    c = np.asarray(counts, dtype=np.float64)
    lo, hi = (float(t) for t in thresholds)
    if not lo <= hi:
        raise ValueError(f"thresholds must be increasing, got {tuple(thresholds)}")
    return {
        "majority": np.flatnonzero(c > hi),
        "moderate": np.flatnonzero((c >= lo) & (c <= hi)),
        "minority": np.flatnonzero(c < lo),
    }


def compare_groups(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], class_names: Sequence[str]
) -> list[tuple[str, str, str]]:
    """Classes whose group differs between two groupings: ``(class, group in a, group in b)``.

    Examples
    --------
    >>> a = {"majority": [0], "moderate": [1], "minority": [2]}
    >>> b = {"majority": [0, 1], "moderate": [], "minority": [2]}
    >>> compare_groups(a, b, ["x", "y", "z"])
    [('y', 'moderate', 'majority')]
    """

    def lookup(g: dict[str, Any]) -> dict[int, str]:
        return {int(c): name for name in GROUP_NAMES for c in g.get(name, ())}

    la, lb = lookup(a), lookup(b)
    out = []
    for i, name in enumerate(class_names):
        ga, gb = la.get(i, "-"), lb.get(i, "-")
        if ga != gb:
            out.append((name, ga, gb))
    return out


# ---------------------------------------------------------------------------------------------------------
# the published PRS split files
# ---------------------------------------------------------------------------------------------------------
@dataclass
class PRSSplit:
    """The content of the PRS split files of one dataset (no images).

    Attributes
    ----------
    dataset : {"coco", "nuswide"}
    class_names : list of str
        In column order (``multihot_map.json``).
    train_ids, test_ids, teorg_ids : list of int arrays
        Per original task id ``0..K-1``.
    order : list of int
        Task order of the stream (episode YAML).
    group_names : dict
        ``"majority"`` / ``"moderate"`` / ``"minority"`` -> class names (shipped files).
    """

    dataset: str
    class_names: list[str]
    train_ids: list[np.ndarray]
    test_ids: list[np.ndarray]
    teorg_ids: list[np.ndarray]
    order: list[int]
    group_names: dict[str, list[str]]
    root: Path

    @property
    def num_tasks(self) -> int:
        return len(self.train_ids)

    def groups(self) -> dict[str, np.ndarray]:
        """The shipped groups as class indices."""
        col = {n: i for i, n in enumerate(self.class_names)}
        return {
            g: np.array(sorted(col[n] for n in names), dtype=np.int64)
            for g, names in self.group_names.items()
        }


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"PRS split file {path} not found")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON ({exc})") from None


def _read_ids(path: Path) -> np.ndarray:
    ids = _read_json(path)
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise ValueError(f"{path}: expected a JSON list of integer ids")
    arr = np.asarray(ids, dtype=np.int64)
    if len(np.unique(arr)) != len(arr):
        raise ValueError(f"{path}: duplicated ids")
    return arr


def _read_episode(path: Path, dataset: str) -> list[int]:
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"PRS episode file {path} not found")
    stages = yaml.safe_load(path.read_text())
    order = []
    for k, stage in enumerate(stages or []):
        try:
            ((name, task),) = stage["subsets"]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: stage {k} has no single 'subsets: [[name, task]]' entry") from None
        if name != dataset:
            raise ValueError(f"{path}: stage {k} names dataset {name!r}, expected {dataset!r}")
        if int(stage.get("epoch", 1)) != 1:
            raise ValueError(f"{path}: stage {k} has epoch {stage.get('epoch')}, the online protocol needs 1")
        order.append(int(task))
    return order


def read_prs_split(root: str | os.PathLike, dataset: str = "coco") -> PRSSplit:
    """Read the PRS split files of ``dataset`` (``"coco"`` or ``"nuswide"``) under ``root``.

    Examples
    --------
    >>> s = read_prs_split("../shared/datasets/prs_cocoseq_nuswideseq", "coco")  # doctest: +SKIP
    >>> [len(i) for i in s.train_ids], s.order  # doctest: +SKIP
    ([8365, 7814, 11603, 7290], [0, 3, 1, 2])
    """
    if dataset not in _PRS_LAYOUT:
        raise ValueError(f"dataset must be one of {sorted(_PRS_LAYOUT)}, got {dataset!r}")
    lay = _PRS_LAYOUT[dataset]
    root = Path(root)
    src = root / "dataset" / "data_source" / lay["dir"]
    mapping = _read_json(src / "multihot_map.json")
    if not isinstance(mapping, dict) or sorted(mapping.values()) != list(range(len(mapping))):
        raise ValueError(f"{src / 'multihot_map.json'}: expected a name -> column map with columns 0..C-1")
    class_names = [n for n, _ in sorted(mapping.items(), key=lambda kv: kv[1])]
    ids: dict[str, list[np.ndarray]] = {}
    for kind in ("train", "test", "teorg"):
        files = sorted(
            (src / "ids").glob(f"{kind}_task*_id_{lay['suffix']}.json"),
            key=lambda p: int(p.name.split("_")[1][len("task") :]),
        )
        if not files:
            raise FileNotFoundError(f"no {kind}_task*_id_{lay['suffix']}.json files in {src / 'ids'}")
        ids[kind] = [_read_ids(p) for p in files]
    k = len(ids["train"])
    if len(ids["test"]) != k:
        raise ValueError(f"{src / 'ids'}: {k} train task files but {len(ids['test'])} test task files")
    order = _read_episode(root / "code" / "episodes" / lay["episode"], dataset)
    if sorted(order) != list(range(k)):
        raise ValueError(f"{lay['episode']}: task order {order} is not a permutation of 0..{k - 1}")
    group_names: dict[str, list[str]] = {}
    for g, stem in _PRS_GROUP_FILES.items():
        path = root / "code" / "resources" / f"{stem}{lay['groups']}.json"
        names = _read_json(path)
        unknown = [n for n in names if n not in mapping]
        if unknown:
            raise ValueError(f"{path}: classes {unknown} are not in multihot_map.json")
        group_names[g] = list(names)
    return PRSSplit(dataset, class_names, ids["train"], ids["test"], ids["teorg"], order, group_names, root)


def _pick_groups(split: PRSSplit, groups: str, counts: np.ndarray) -> dict[str, np.ndarray]:
    if groups == "files":
        return split.groups()
    if groups == "counts":
        return class_groups(counts)
    raise ValueError(f"groups must be 'files' or 'counts', got {groups!r}")


def _default_image_transform(image_size: int) -> Any:
    import torch
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.Resize((image_size, image_size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )


def _column_map(names: Sequence[str], wanted: Sequence[str], source: str) -> np.ndarray:
    col = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in col]
    if missing:
        raise ValueError(f"{source}: classes {missing} of the PRS split are not among its classes")
    return np.array([col[n] for n in wanted], dtype=np.int64)



def _task_ranges(id_lists: list[np.ndarray]) -> list[np.ndarray]:
    """Positions of each task's ids in their concatenation (tasks in file order)."""
    starts = np.cumsum([0] + [len(a) for a in id_lists])
    return [np.arange(starts[t], starts[t + 1]) for t in range(len(id_lists))]


def _prs_sequence(name: str, split: PRSSplit, groups: str, train_built: tuple[Any, list[np.ndarray]],
                  test_built: tuple[Any, list[np.ndarray]], roots: dict[str, str]) -> OnlineSequence:
    """An :class:`OnlineSequence` from the PRS split and the train/test datasets built from its ids."""
    (train, tr_idx), (test, te_idx) = train_built, test_built
    counts = np.asarray(train.targets, dtype=np.int64).sum(axis=0)
    return OnlineSequence(
        name,
        train,
        test,
        [tr_idx[t] for t in split.order],
        [te_idx[t] for t in split.order],
        list(split.order),
        _pick_groups(split, groups, counts),
        {"source": "cdjkim/PRS split files", **roots, "groups": groups},
    )

def cocoseq(
    prs_root: str | os.PathLike,
    coco_root: str | os.PathLike,
    *,
    groups: str = "files",
    image_size: int = 256,
    transform: Any = "default",
    on_error: str = "raise",
) -> OnlineSequence:
    """COCOseq: the PRS split of COCO 2014 (70 classes, 4 tasks, order ``[0, 3, 1, 2]``).

    Parameters
    ----------
    prs_root : path
        The ``prs_cocoseq_nuswideseq`` folder.
    coco_root : path
        COCO 2014 (``annotations/instances_{train,val}2014.json``, ``train2014/``, ``val2014/``).
    groups : {"files", "counts"}
        Class groups from the shipped PRS files or recomputed from the training labels.
    image_size : int
        Square resize of the default transform (PRS: 256).
    transform : callable, "default" or None
    on_error : {"raise", "skip"}
    """
    from labelwise.data.base import ImageListDataset
    from labelwise.data.formats.coco import load_coco

    split = read_prs_split(prs_root, "coco")
    parts = [load_coco(coco_root, s, keep_empty=True, iscrowd="positive") for s in ("train", "val")]
    paths: dict[int, str] = {}
    labels: dict[int, np.ndarray] = {}
    for ds in parts:
        cols = _column_map(ds.class_names, split.class_names, ds.name)
        y = ds.targets[:, cols]
        for i, img_id in enumerate(ds.image_ids):
            paths[int(img_id)] = ds.path(i)
            labels[int(img_id)] = y[i]
    tf = _default_image_transform(image_size) if transform == "default" else transform

    def build(id_lists: list[np.ndarray], kind: str) -> tuple[Any, list[np.ndarray]]:
        all_ids = np.concatenate(id_lists)
        missing = [int(i) for i in all_ids if int(i) not in paths]
        if missing:
            raise ValueError(
                f"COCOseq {kind}: {len(missing)} image ids of the split files are not in the COCO 2014 "
                f"annotations under {coco_root} (first: {missing[:5]})"
            )
        ds = ImageListDataset(
            [paths[int(i)] for i in all_ids],
            np.stack([labels[int(i)] for i in all_ids]),
            split.class_names,
            on_error=on_error,
            transform=tf,
            name=f"cocoseq-{kind}",
        )
        ds.image_ids = all_ids
        return ds, _task_ranges(id_lists)

    return _prs_sequence("cocoseq", split, groups, build(split.train_ids, "train"), build(split.test_ids, "test"),
                         {"prs_root": str(prs_root), "coco_root": str(coco_root)})


def nuswideseq(
    prs_root: str | os.PathLike,
    nuswide_root: str | os.PathLike,
    *,
    image_root: str | os.PathLike | None = None,
    groups: str = "files",
    image_size: int = 256,
    transform: Any = "default",
    on_error: str = "raise",
) -> OnlineSequence:
    """NUS-WIDEseq: the PRS split of NUS-WIDE (49 classes, 6 tasks, order ``[3, 1, 0, 5, 4, 2]``).

    ``nuswide_root`` holds the official lists and ground truth (see :func:`labelwise.data.formats.nuswide.load_nuswide`);
    train ids index ``TrainImagelist.txt``, test ids ``TestImagelist.txt``. Use ``on_error="skip"`` for copies
    with missing images (skipped items are dropped from batches).
    """
    from labelwise.data.base import ImageListDataset
    from labelwise.data.formats.nuswide import load_nuswide

    split = read_prs_split(prs_root, "nuswide")
    tf = _default_image_transform(image_size) if transform == "default" else transform

    def build(kind: str, id_lists: list[np.ndarray]) -> tuple[Any, list[np.ndarray]]:
        full = load_nuswide(nuswide_root, kind, image_root=image_root, on_error=on_error)
        cols = _column_map(full.class_names, split.class_names, full.name)
        all_ids = np.concatenate(id_lists)
        bad = all_ids[(all_ids < 0) | (all_ids >= len(full))]
        if len(bad):
            raise ValueError(
                f"NUS-WIDEseq {kind}: ids {bad[:5].tolist()} are outside the {len(full)} images of the "
                f"{kind} image list under {nuswide_root}"
            )
        ds = ImageListDataset(
            [full.path(int(i)) for i in all_ids],
            np.asarray(full.targets)[all_ids][:, cols],
            split.class_names,
            on_error=on_error,
            transform=tf,
            name=f"nuswideseq-{kind}",
        )
        ds.list_ids = all_ids
        return ds, _task_ranges(id_lists)

    return _prs_sequence("nuswideseq", split, groups, build("train", split.train_ids), build("test", split.test_ids),
                         {"prs_root": str(prs_root), "nuswide_root": str(nuswide_root)})


# ---------------------------------------------------------------------------------------------------------
# MultiDigits
# ---------------------------------------------------------------------------------------------------------
def _assign_tasks(targets: np.ndarray, contexts: np.ndarray, num_tasks: int) -> np.ndarray:
    """Task of each class: contexts dealt round-robin to tasks, class -> task whose contexts use it most."""
    y = np.asarray(targets, dtype=bool)
    k = int(contexts.max()) + 1
    freq = np.stack(
        [y[contexts == c].mean(axis=0) if (contexts == c).any() else np.zeros(y.shape[1]) for c in range(k)]
    )
    task_of_ctx = np.arange(k) % num_tasks
    per_task = np.stack([freq[task_of_ctx == t].sum(axis=0) for t in range(num_tasks)])
    return per_task.argmax(axis=0)


def _task_members(targets: np.ndarray, task_of_class: np.ndarray, num_tasks: int) -> np.ndarray:
    """Task of each image whose labels all fall in one task (-1 otherwise, or without labels)."""
    y = np.asarray(targets, dtype=bool)
    out = np.full(len(y), -1, dtype=np.int64)
    for t in range(num_tasks):
        inside = ~(y & (task_of_class != t)[None, :]).any(axis=1) & y.any(axis=1)
        out[inside] = t
    return out


def _balanced_test(targets: np.ndarray, member: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Greedy PRS-style test selection: up to ``per_class`` images of every class (rarest classes first)."""
    y = np.asarray(targets, dtype=bool)
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(member >= 0)
    pool = pool[rng.permutation(len(pool))]
    chosen = np.zeros(len(y), dtype=bool)
    have = np.zeros(y.shape[1], dtype=np.int64)
    for c in np.argsort(y[pool].sum(axis=0), kind="stable"):
        for i in pool[y[pool, c] & ~chosen[pool]]:
            if have[c] >= per_class:
                break
            chosen[i] = True
            have += y[i]
    return chosen


def multidigits_sequence(
    *,
    n_train: int = 6000,
    n_test: int = 6000,
    image_size: int = 32,
    num_tasks: int = 4,
    seed: int = 0,
    order: Sequence[int] | None = None,
    thresholds: Sequence[float] | None = None,
    test_per_class: int | None = 30,
    cardinality: float = 2.0,
    num_contexts: int = 4,
    context_strength: float = 0.95,
    tail: float = 0.9,
    test_tail: float = 0.0,
    cache: bool = True,
    root: str | os.PathLike | None = None,
    min_scale: float | None = None,
    max_scale: float | None = None,
) -> OnlineSequence:
    """A long-tailed COCOseq-shaped stream on ``multidigits80`` (runs offline).

    Parameters
    ----------
    n_train, n_test : int
        Images generated per split before filtering (about 60 % are kept with the defaults).
    image_size : int
    num_tasks : int
        Number of tasks (4 like COCOseq).
    seed : int
        Generator seed of the images (the stream order is shuffled by the runner's seed).
    order : sequence of int, optional
        Task order (default ``0..num_tasks-1``).
    thresholds : (lo, hi), optional
        Group thresholds; default PRS's 200/900 scaled by ``num_train / 35072``.
    test_per_class : int, optional
        Like PRS's test sets (about 100 images per class): the test images are chosen greedily, rarest class
        first, until every class has this many (or all it has); None keeps every test image inside a task.
    cardinality, num_contexts, context_strength, tail : MultiDigits options
        Fewer, stronger contexts than the variant defaults so that most images fall inside one task.
    test_tail : float
        Long-tail exponent of the test split's generator (0: balanced pool to choose the test images from).
    cache, root : MultiDigits cache options.
    min_scale, max_scale : float, optional
        MultiDigits digit sizes as fractions of the image side (default: the generator's; the pretrained-start
        regime of the benchmarks uses 0.1-0.25 at 128 px).
    """
    from labelwise.data import load_dataset

    opts = {
        "image_size": image_size,
        "seed": seed,
        "cardinality": cardinality,
        "num_contexts": num_contexts,
        "context_strength": context_strength,
        "cache": cache,
        "root": root,
    }
    opts.update({k: v for k, v in {"min_scale": min_scale, "max_scale": max_scale}.items() if v is not None})
    train = load_dataset("multidigits80", split="train", n_train=n_train, tail=tail, **opts)
    test = load_dataset("multidigits80", split="test", n_test=n_test, tail=test_tail, **opts)
    task_of_class = _assign_tasks(train.targets, train.contexts, num_tasks)
    tr_task = _task_members(train.targets, task_of_class, num_tasks)
    te_task = _task_members(test.targets, task_of_class, num_tasks)
    if test_per_class is not None:
        te_task[~_balanced_test(test.targets, te_task, int(test_per_class), seed)] = -1
    order = list(range(num_tasks)) if order is None else [int(t) for t in order]
    if sorted(order) != list(range(num_tasks)):
        raise ValueError(f"order {order} is not a permutation of 0..{num_tasks - 1}")
    train_tasks = [np.flatnonzero(tr_task == t) for t in order]
    test_tasks = [np.flatnonzero(te_task == t) for t in order]
    n_stream = int(sum(len(t) for t in train_tasks))
    if thresholds is None:
        thresholds = tuple(round(t * n_stream / _COCOSEQ_TRAIN, 1) for t in PRS_THRESHOLDS)
    counts = np.asarray(train.targets[np.concatenate(train_tasks)], dtype=np.int64).sum(axis=0)
    return OnlineSequence(
        "multidigits80seq",
        train,
        test,
        train_tasks,
        test_tasks,
        order,
        class_groups(counts, thresholds),
        {
            "source": "multidigits80",
            "thresholds": list(thresholds),
            "task_of_class": task_of_class.tolist(),
            "generated": {"n_train": n_train, "n_test": n_test},
            "test_per_class": test_per_class,
            "tail": tail,
            "test_tail": test_tail,
            **{k: v for k, v in opts.items() if k not in ("cache", "root")},
        },
    )


def load_sequence(name: str, **options: Any) -> OnlineSequence:
    """Build a sequence by name: ``"multidigits"``, ``"cocoseq"`` or ``"nuswideseq"`` (options passed on).

    Examples
    --------
    >>> load_sequence("multidigits", n_train=400, n_test=200, image_size=24, cache=False).num_tasks
    4
    """
    builders = {
        "multidigits": multidigits_sequence,
        "multidigits80seq": multidigits_sequence,
        "cocoseq": cocoseq,
        "nuswideseq": nuswideseq,
    }
    if name not in builders:
        raise KeyError(f"unknown online sequence {name!r}; expected one of {sorted(builders)}")
    return builders[name](**options)
