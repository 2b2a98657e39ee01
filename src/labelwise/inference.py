"""Prediction with a trained checkpoint: images in, label names and scores out.

:class:`Predictor` loads a checkpoint (the model, its evaluation transform, class names and decision
thresholds) and scores image files. :func:`collect_inputs` turns what a user points at (image files,
folders searched recursively, CSV files with a path column) into a list of image paths, and
:func:`write_predictions` writes CSV or JSON.

Decision thresholds: a global threshold (the run's ``trainer.threshold``, 0.5 by default, or any value
given), or per-class thresholds tuned on the validation set during training
(``trainer.tune_thresholds: true``), stored in the checkpoint.

Examples
--------
>>> from labelwise.inference import Predictor, collect_inputs, write_predictions   # doctest: +SKIP
>>> predictor = Predictor.from_checkpoint("runs/quickstart")                        # doctest: +SKIP
>>> paths = collect_inputs(["photos/"])                                             # doctest: +SKIP
>>> result = predictor.predict(paths, per_class_thresholds=True)                    # doctest: +SKIP
>>> result.labels[0], result.scores.shape                                           # doctest: +SKIP
(['cat', 'dog'], (120, 20))
>>> write_predictions("preds.csv", result)                                          # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["IMAGE_EXTENSIONS", "Predictor", "PredictionResult", "collect_inputs", "label_separator",
           "write_predictions"]

#: File extensions treated as images when a folder is searched (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _read_csv_paths(path: Path, column: str | None) -> list[str]:
    from .data.formats.image_list import find_path_column

    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = [f for f in (reader.fieldnames or []) if f is not None]
        if not fields:
            raise ValueError(f"{path}: empty CSV (expected a header with a path column)")
        col = find_path_column(fields, column, source=str(path), option="--path-column")
        out = []
        for line, row in enumerate(reader, start=2):
            value = (row.get(col) or "").strip()
            if not value:
                raise ValueError(f"{path}, line {line}: empty {col!r}")
            p = Path(value)
            out.append(str(p if p.is_absolute() else path.parent / p))
        return out


def collect_inputs(inputs: Iterable[str | os.PathLike], *, path_column: str | None = None,
                   extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[str]:
    """Expand image files, folders (searched recursively, sorted) and CSV lists into image paths.

    Parameters
    ----------
    inputs : iterable of str or path
        Image files, directories, or ``.csv`` files whose path column (``path``, ``image``, ``filename``,
        ``file``, ``filepath`` or ``image_path``, or ``path_column``) lists images; relative paths in a CSV
        are relative to the CSV's folder.
    path_column : str, optional
        The CSV column holding the paths.
    extensions : sequence of str
        Image extensions searched for in folders.

    Returns
    -------
    list of str
        Paths in input order (folders sorted), duplicates kept.

    Raises
    ------
    FileNotFoundError
        An input does not exist.
    ValueError
        A folder without images, a CSV without a path column, a file that is neither an image nor a CSV.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); os.makedirs(os.path.join(d, "sub"))
    >>> for name in ("b.png", "a.jpg", "sub/c.PNG", "notes.txt"):
    ...     _ = open(os.path.join(d, name), "wb").write(b"x")
    >>> [os.path.relpath(p, d) for p in collect_inputs([d])]
    ['a.jpg', 'b.png', 'sub/c.PNG']
    """
    exts = tuple(e.lower() for e in extensions)
    paths: list[str] = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise FileNotFoundError(f"input not found: {p}")
        if p.is_dir():
            found = sorted(str(q) for q in p.rglob("*") if q.is_file() and q.suffix.lower() in exts)
            if not found:
                raise ValueError(f"{p}: no image files ({', '.join(exts)}) in this folder or below")
            paths.extend(found)
        elif p.suffix.lower() == ".csv":
            paths.extend(_read_csv_paths(p, path_column))
        elif p.suffix.lower() in exts:
            paths.append(str(p))
        else:
            raise ValueError(f"{p}: not an image ({', '.join(exts)}), a folder or a .csv list")
    return paths


@dataclass
class PredictionResult:
    """Scores and thresholded labels of a list of inputs.

    Attributes
    ----------
    paths : list of str
        The inputs that were scored (unreadable ones skipped on request are not listed).
    scores : ndarray of float32, shape (n, n_classes)
        Probabilities (sigmoid of the logits).
    class_names : list of str
    thresholds : ndarray of float, shape (n_classes,)
        The decision threshold of each class.
    skipped : list of str
        Inputs that could not be read (with ``on_error="skip"``).
    separator : str
        Joins the label names of one input in a CSV (the training data's label separator, see
        :func:`label_separator`).
    """

    paths: list[str]
    scores: np.ndarray
    class_names: list[str]
    thresholds: np.ndarray
    skipped: list[str] = field(default_factory=list)
    separator: str = "|"

    @property
    def predicted(self) -> np.ndarray:
        """Boolean ``[n, C]``: ``scores >= thresholds``."""
        return self.scores >= self.thresholds[None, :]

    @property
    def labels(self) -> list[list[str]]:
        """Predicted label names per input (in class order)."""
        names = np.asarray(self.class_names, dtype=object)
        return [list(names[row]) for row in self.predicted]


class _PathDataset(torch.utils.data.Dataset):
    """Images by path, decoded like :class:`~labelwise.data.ImageListDataset`, then transformed."""

    def __init__(self, paths: Sequence[str], transform: Callable[..., Any] | None, on_error: str) -> None:
        from .data import ImageListDataset

        self.images = ImageListDataset(paths, np.zeros((len(paths), 1), dtype=np.uint8), ["_"], on_error=on_error,
                                       transform=transform, name="predict")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        return self.images[i]


class Predictor:
    """Score images with a trained model.

    Parameters
    ----------
    model : nn.Module
        Returns a dict with ``"logits"`` (any labelwise model) or a logits tensor.
    class_names : sequence of str
        One name per output.
    transform : callable, optional
        Evaluation transform applied to each decoded image (``torchvision.tv_tensors.Image`` uint8).
    threshold : float
        Global decision threshold on probabilities.
    per_class_thresholds : sequence of float, optional
        Tuned thresholds, one per class (used when :meth:`predict` is asked for them).
    device : str or torch.device
        Where the model runs (default: CUDA when available, else CPU).
    batch_size : int
        Images per forward pass.
    num_workers : int
        DataLoader worker processes for decoding.

    Examples
    --------
    >>> import torch
    >>> from labelwise.models import create_model
    >>> model = create_model("mlp", num_classes=2, in_features=3, hidden=(4,))
    >>> p = Predictor(model, class_names=["cat", "dog"], threshold=0.5, device="cpu")
    >>> p.scores_from_tensor(torch.zeros(5, 3)).shape
    (5, 2)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        class_names: Sequence[str],
        transform: Callable[..., Any] | None = None,
        threshold: float = 0.5,
        per_class_thresholds: Sequence[float] | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        self.class_names = [str(c) for c in class_names]
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if per_class_thresholds is not None:
            pct = np.asarray(per_class_thresholds, dtype=np.float64).reshape(-1)
            if pct.shape[0] != len(self.class_names):
                raise ValueError(f"{pct.shape[0]} per-class thresholds for {len(self.class_names)} classes")
            if not np.isfinite(pct).all():
                raise ValueError("per-class thresholds must be finite")
            per_class_thresholds = pct
        self.threshold = float(threshold)
        self.per_class_thresholds = per_class_thresholds
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.transform = transform
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.source: str | None = None
        self.label_separator = "|"

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | os.PathLike,
        *,
        which: str = "best",
        device: str | torch.device | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> Predictor:
        """Load a checkpoint (file, ``checkpoints`` directory or run directory; ``which`` picks best/last).

        The transform is the run's evaluation transform (``data.image_size``, ``data.eval_transform``,
        ``data.normalize``); the thresholds are the run's ``trainer.threshold`` and, when tuned, the stored
        per-class thresholds.

        Examples
        --------
        >>> predictor = Predictor.from_checkpoint("runs/quickstart", device="cpu")   # doctest: +SKIP
        """
        from .run import build_transform, load_model

        dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        model, cfg, ckpt = load_model(checkpoint, which=which, device=dev)
        th = ckpt.thresholds or {}
        transform = build_transform(cfg.data, train=False) if cfg.data.image_size is not None else None
        self = cls(
            model,
            class_names=ckpt.class_names,
            transform=transform,
            threshold=float(th.get("global") or cfg.trainer.threshold),
            per_class_thresholds=th.get("per_class"),
            device=dev,
            batch_size=batch_size,
            num_workers=num_workers,
        )
        self.source = str(ckpt.path)
        self.label_separator = label_separator(cfg.data.name, cfg.data.options, self.class_names)
        return self

    # -- scoring ------------------------------------------------------------------------------------
    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x.to(self.device))
        logits = out["logits"] if isinstance(out, dict) else out
        if logits.ndim != 2 or logits.shape[1] != len(self.class_names):
            raise ValueError(f"model returned logits of shape {tuple(logits.shape)} for {len(self.class_names)} classes")
        return logits

    @torch.no_grad()
    def scores_from_tensor(self, x: torch.Tensor) -> np.ndarray:
        """Probabilities ``float32 [N, C]`` of an already transformed batch ``x``."""
        return torch.sigmoid(self._logits(x).float()).cpu().numpy()

    @torch.no_grad()
    def predict_scores(self, paths: Sequence[str | os.PathLike], *, on_error: str = "raise",
                       progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities of image files and the positions of the ones that were read.

        Parameters
        ----------
        paths : sequence of str or path
            Image files.
        on_error : {"raise", "skip"}
            An unreadable image raises :class:`~labelwise.data.ImageLoadError` naming it, or is skipped.
        progress : bool, optional
            Show a progress bar (default: when stderr is a terminal).

        Returns
        -------
        scores : ndarray float32 [n_read, C]
        kept : ndarray int64 [n_read]
            Positions in ``paths`` of the scored images.
        """
        from tqdm.auto import tqdm

        from .data import collate_batch

        paths = [os.fspath(p) for p in paths]
        ds = _PathDataset(paths, self.transform, on_error)
        loader = torch.utils.data.DataLoader(ds, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                                             collate_fn=collate_batch)
        show = sys.stderr.isatty() if progress is None else bool(progress)
        scores, kept = [], []
        for batch in tqdm(loader, desc="predict", disable=not show, leave=False, dynamic_ncols=True):
            if batch["input"] is None:
                continue
            scores.append(self.scores_from_tensor(batch["input"]))
            kept.append(batch["index"].numpy())
        c = len(self.class_names)
        s = np.concatenate(scores).astype(np.float32) if scores else np.zeros((0, c), dtype=np.float32)
        k = np.concatenate(kept).astype(np.int64) if kept else np.zeros((0,), dtype=np.int64)
        return s, k

    def thresholds(self, *, threshold: float | None = None, per_class_thresholds: bool = False) -> np.ndarray:
        """The per-class decision thresholds to use (``[C]``).

        ``per_class_thresholds=True`` needs thresholds stored in the checkpoint (trained with
        ``trainer.tune_thresholds: true``); otherwise ``threshold`` (default: the run's global threshold).

        Examples
        --------
        >>> import torch
        >>> p = Predictor(torch.nn.Identity(), class_names=["a", "b"], per_class_thresholds=[0.3, 0.7], device="cpu")
        >>> p.thresholds().tolist(), p.thresholds(per_class_thresholds=True).tolist()
        ([0.5, 0.5], [0.3, 0.7])
        """
        if per_class_thresholds:
            if threshold is not None:
                raise ValueError("give either a global threshold or per_class_thresholds=True, not both")
            if self.per_class_thresholds is None:
                src = f" {self.source}" if self.source else ""
                raise ValueError(
                    f"checkpoint{src} has no per-class thresholds; train with trainer.tune_thresholds=true"
                )
            return np.asarray(self.per_class_thresholds, dtype=np.float64)
        t = self.threshold if threshold is None else float(threshold)
        if not 0.0 < t < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {t}")
        return np.full(len(self.class_names), t, dtype=np.float64)

    def predict(
        self,
        inputs: Sequence[str | os.PathLike],
        *,
        threshold: float | None = None,
        per_class_thresholds: bool = False,
        on_error: str = "raise",
        progress: bool | None = None,
    ) -> PredictionResult:
        """Score image files and threshold the scores into label names.

        Parameters
        ----------
        inputs : sequence of str or path
            Image files (use :func:`collect_inputs` for folders and CSV lists).
        threshold : float, optional
            Global threshold (default: the run's).
        per_class_thresholds : bool
            Use the tuned per-class thresholds stored with the checkpoint.
        on_error : {"raise", "skip"}
            Unreadable images: fail naming the file, or skip them (listed in ``result.skipped``, warned).
        progress : bool, optional
            Progress bar (default: when stderr is a terminal).

        Returns
        -------
        PredictionResult
        """
        th = self.thresholds(threshold=threshold, per_class_thresholds=per_class_thresholds)
        paths = [os.fspath(p) for p in inputs]
        if not paths:
            raise ValueError("no inputs to predict")
        scores, kept = self.predict_scores(paths, on_error=on_error, progress=progress)
        kept_set = set(kept.tolist())
        skipped = [p for i, p in enumerate(paths) if i not in kept_set]
        if skipped:
            warnings.warn(f"skipped {len(skipped)} unreadable image(s), e.g. {skipped[0]}", RuntimeWarning, stacklevel=2)
        return PredictionResult([paths[i] for i in kept], scores, list(self.class_names), th, skipped,
                                separator=self.label_separator)


def label_separator(data_name: str, options: dict[str, Any], class_names: Sequence[str] = ()) -> str:
    """The separator that joins predicted label names: the one the run's CSV labels were read with.

    A ``csv`` run uses its ``data.options.separator`` (default a space, as :func:`load_image_csv
    <labelwise.data.formats.image_list.load_image_csv>`); other datasets, or class names that contain that
    separator, use ``|``.

    Examples
    --------
    >>> label_separator("csv", {"separator": ";"}), label_separator("csv", {}), label_separator("voc2007", {})
    (';', ' ', '|')
    """
    if data_name != "csv":
        return "|"
    import inspect

    from .data.formats.image_list import load_image_csv

    sep = options.get("separator", inspect.signature(load_image_csv).parameters["separator"].default)
    if not isinstance(sep, str) or not sep or any(sep in c for c in class_names):
        return "|"
    return sep


def write_predictions(path: str | os.PathLike, result: PredictionResult, *, fmt: str | None = None) -> Path:
    """Write predictions as CSV (``path,labels,<one score column per class>``) or JSON.

    The format follows the suffix (``.csv`` / ``.json``) unless ``fmt`` is given. In the CSV, ``labels``
    holds the predicted names joined by ``result.separator`` (the training data's label separator, so the file
    reads back as a CSV image list with the same options; ``|`` by default); score columns are named after
    the classes (prefixed ``score_`` if a class is called ``path`` or ``labels``). The JSON is an object
    ``{"class_names", "thresholds", "predictions": [{"path", "labels": [...], "scores": {class: score}}],
    "skipped": [...]}``.

    Examples
    --------
    >>> import tempfile, os
    >>> r = PredictionResult(["a.png"], np.array([[0.9, 0.2]], dtype=np.float32), ["cat", "dog"], np.array([0.5, 0.5]))
    >>> p = write_predictions(os.path.join(tempfile.mkdtemp(), "p.csv"), r)
    >>> print(p.read_text().strip())
    path,labels,cat,dog
    a.png,cat,0.900000,0.200000
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in ("csv", "json"):
        raise ValueError(f"{path}: unknown prediction format {fmt!r}; use a .csv or .json file")
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = result.labels
    if fmt == "csv":
        reserved = {"path", "labels"} & set(result.class_names)
        prefix = "score_" if reserved else ""
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["path", "labels", *[prefix + c for c in result.class_names]])
            for p, lab, row in zip(result.paths, labels, result.scores):
                w.writerow([p, result.separator.join(lab), *[f"{v:.6f}" for v in row]])
    else:
        items = [
            {"path": p, "labels": lab, "scores": {c: round(float(v), 6) for c, v in zip(result.class_names, row)}}
            for p, lab, row in zip(result.paths, labels, result.scores)
        ]
        doc = {"class_names": result.class_names, "thresholds": [float(t) for t in result.thresholds],
               "predictions": items, "skipped": result.skipped}
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path
