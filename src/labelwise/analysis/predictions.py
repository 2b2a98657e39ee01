"""Evaluated predictions of a run, stored so the run report can be rebuilt from the run directory alone.

A run writes ``report/predictions_<split>.npz`` (``split`` is ``val`` or ``test``) next to its report: a
compressed NumPy archive (read with ``allow_pickle=False``; no pickle) holding

``scores``       float32 ``[N, C]``: the probabilities of the evaluated samples
``targets``      uint8 ``[N, C]``: their 0/1 targets
``indices``      int64 ``[N]``: their positions in the evaluated dataset (``Predictions.indices``)
``class_names``  str ``[C]``
``thresholds``   float64 ``[C]``: the decision threshold of every class (the tuned per-class thresholds, or
                 the global threshold repeated)
``tuned``        bool ``[]``: whether ``thresholds`` were tuned per class on validation
``split``        str ``[]``: ``val`` or ``test``

Examples
--------
>>> import numpy as np, tempfile, os
>>> from labelwise.analysis.predictions import load_predictions, save_predictions
>>> path = os.path.join(tempfile.mkdtemp(), "predictions_test.npz")
>>> _ = save_predictions(path, np.array([[0.9, 0.2]]), np.array([[1, 0]]), np.array([7]), ["cat", "dog"],
...                      split="test", thresholds=0.5)
>>> p = load_predictions(path)
>>> p.indices.tolist(), p.class_names, p.thresholds.tolist(), p.tuned
([7], ['cat', 'dog'], [0.5, 0.5], False)
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StoredPredictions", "save_predictions", "load_predictions", "predictions_path"]

_KEYS = ("scores", "targets", "indices", "class_names", "thresholds", "tuned", "split")


@dataclass(frozen=True)
class StoredPredictions:
    """The evaluated predictions of one split of a run (see the module documentation for the fields)."""

    scores: np.ndarray
    targets: np.ndarray
    indices: np.ndarray
    class_names: list[str]
    thresholds: np.ndarray
    tuned: bool
    split: str

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def predictions_path(run_dir: str | os.PathLike, split: str) -> Path:
    """``<run_dir>/report/predictions_<split>.npz``.

    Examples
    --------
    >>> predictions_path("runs/qs", "test").as_posix()
    'runs/qs/report/predictions_test.npz'
    """
    return Path(run_dir) / "report" / f"predictions_{split}.npz"


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def save_predictions(
    path: str | os.PathLike,
    scores: Any,
    targets: Any,
    indices: Any,
    class_names: Sequence[str],
    *,
    split: str,
    thresholds: float | Sequence[float] | np.ndarray = 0.5,
    tuned: bool | None = None,
) -> Path:
    """Write the predictions of one evaluated split to a compressed ``.npz`` (atomically).

    Parameters
    ----------
    path : str or path
        File to write (parent directories are created).
    scores, targets : array-like of shape (n_samples, n_classes)
        Probabilities and 0/1 targets.
    indices : array-like of shape (n_samples,)
        Dataset positions of the rows.
    class_names : sequence of str
    split : {"val", "test"}
        The role of the evaluated split in the run.
    thresholds : float or sequence of float
        One global threshold or one per class.
    tuned : bool, optional
        Whether the per-class thresholds were tuned (default: True when a sequence is given).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        Shapes that do not agree, non-finite scores, non-binary targets, or thresholds of the wrong length.

    Examples
    --------
    >>> import tempfile, os
    >>> p = save_predictions(os.path.join(tempfile.mkdtemp(), "p.npz"), [[0.1]], [[0]], [0], ["a"], split="val")
    >>> p.suffix
    '.npz'
    """
    s = _numpy(scores).astype(np.float32)
    t = _numpy(targets)
    i = _numpy(indices).astype(np.int64).reshape(-1)
    names = [str(c) for c in class_names]
    if s.ndim != 2 or s.shape != t.shape:
        raise ValueError(f"save_predictions: scores {s.shape} and targets {t.shape} must be equal [N, C] shapes")
    if s.shape[1] != len(names):
        raise ValueError(f"save_predictions: {len(names)} class names for {s.shape[1]} score columns")
    if i.shape[0] != s.shape[0]:
        raise ValueError(f"save_predictions: {i.shape[0]} indices for {s.shape[0]} rows")
    if not np.isfinite(s).all():
        raise ValueError("save_predictions: scores must be finite")
    if t.size and not np.isin(t, (0, 1)).all():
        raise ValueError("save_predictions: targets must be 0 or 1")
    if split not in ("val", "test"):
        raise ValueError(f"save_predictions: split must be 'val' or 'test', got {split!r}")
    th = np.asarray(thresholds, dtype=np.float64)
    if tuned is None:
        tuned = th.ndim == 1
    th = np.broadcast_to(th, (len(names),)).copy() if th.ndim == 0 else th
    if th.shape != (len(names),) or not np.isfinite(th).all():
        raise ValueError(f"save_predictions: thresholds must be one finite value or {len(names)}, got shape {th.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, scores=s, targets=t.astype(np.uint8), indices=i, class_names=np.array(names, dtype=str),
                            thresholds=th, tuned=np.array(bool(tuned)), split=np.array(split))
    os.replace(tmp, path)
    return path


def load_predictions(path: str | os.PathLike) -> StoredPredictions:
    """Read a file written by :func:`save_predictions` (no pickle is ever loaded).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a predictions archive, a missing key, or inconsistent shapes (the message names the file and key).

    Examples
    --------
    >>> import tempfile, os
    >>> p = save_predictions(os.path.join(tempfile.mkdtemp(), "p.npz"), [[0.1]], [[0]], [0], ["a"], split="val")
    >>> load_predictions(p).split
    'val'
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            data = {k: z[k] for k in _KEYS if k in files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # ValueError: a pickled (object) array
        raise ValueError(f"{path}: not a readable .npz predictions file ({exc})") from exc
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: not a labelwise predictions file (missing {', '.join(missing)})")
    scores, targets, indices = data["scores"], data["targets"], data["indices"]
    names = [str(c) for c in data["class_names"].tolist()]
    if scores.ndim != 2 or scores.shape != targets.shape or scores.shape[1] != len(names):
        raise ValueError(f"{path}: scores {scores.shape}, targets {targets.shape} and {len(names)} class names disagree")
    if indices.shape != (scores.shape[0],):
        raise ValueError(f"{path}: indices has shape {indices.shape}, expected ({scores.shape[0]},)")
    if data["thresholds"].shape != (len(names),):
        raise ValueError(f"{path}: thresholds has shape {data['thresholds'].shape}, expected ({len(names)},)")
    return StoredPredictions(scores=scores.astype(np.float32), targets=targets.astype(np.uint8),
                             indices=indices.astype(np.int64), class_names=names,
                             thresholds=data["thresholds"].astype(np.float64), tuned=bool(data["tuned"]),
                             split=str(data["split"]))
