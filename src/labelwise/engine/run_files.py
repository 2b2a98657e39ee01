"""The files of a training run directory, written by their one owner, the :class:`~labelwise.engine.Trainer`.

``config.yaml`` (the resolved run configuration), ``metrics.csv`` and ``tb/`` (one row per epoch), the split
results (``<split>_metrics.json``, ``report/*.png``, ``report/predictions_<split>.npz`` and the page
``report/index.html``) and ``checkpoints/``. ``labelwise.run`` evaluates the test split through the trainer
(:meth:`Trainer.write_split_results`), so nothing else writes into the directory. Only the process of global
rank 0 writes.

Examples
--------
>>> import tempfile, pathlib
>>> run = RunFiles(tempfile.mkdtemp())
>>> p = run.write_config({"model": {"name": "mlp"}}); p.name, p.read_text()
('config.yaml', 'model:\\n  name: mlp\\n')
>>> run.write_metrics_json("test", {"mAP": 0.5, "AP": [float("nan"), 1.0]}).read_text()
'{\\n  "mAP": 0.5,\\n  "AP": [\\n    null,\\n    1.0\\n  ]\\n}\\n'
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import atomic_write_text
from .logging import MetricsCSV, TensorBoardLogger
from .trainer_state import jsonable_metrics

__all__ = ["RunFiles"]


def _finite_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_json(v) for v in obj]
    if isinstance(obj, torch.Tensor | np.ndarray):
        return _finite_json(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class RunFiles:
    """The paths and writers of one run directory.

    Parameters
    ----------
    path : str or path
        The run directory (created by the writers when missing).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``."""
        return self.path / "checkpoints"

    @property
    def metrics_csv(self) -> Path:
        """``metrics.csv``."""
        return self.path / "metrics.csv"

    def write_config(self, content: dict[str, Any]) -> Path:
        """Write ``config.yaml`` (atomically); NaN values become null."""
        import yaml

        self.path.mkdir(parents=True, exist_ok=True)
        out = self.path / "config.yaml"
        atomic_write_text(out, yaml.safe_dump(jsonable_metrics(content), sort_keys=False))
        return out

    def open_metrics(self, *, resume_before_epoch: int | None = None) -> MetricsCSV:
        """The ``metrics.csv`` log (rows of epochs before ``resume_before_epoch`` kept when resuming)."""
        return MetricsCSV(self.metrics_csv, resume_before_epoch=resume_before_epoch)

    def open_tensorboard(self, *, purge_step: int | None = None) -> TensorBoardLogger:
        """The TensorBoard writer of ``tb/``."""
        return TensorBoardLogger(self.path / "tb", purge_step=purge_step)

    def write_metrics_json(self, split: str, metrics: dict[str, Any]) -> Path:
        """Write ``<split>_metrics.json`` (non-finite values as null)."""
        out = self.path / f"{split}_metrics.json"
        atomic_write_text(out, json.dumps(_finite_json(metrics), indent=2) + "\n")
        return out

    def write_report(self, split: str, preds: Any, class_names: list[str] | None, *,
                     thresholds: list[float] | None, global_threshold: float, dataset: Any = None) -> list[Path]:
        """The report of a split's predictions: ``report/*.png``, ``report/predictions_<split>.npz``, the page.

        Returns the PNG paths ([] with a warning when the plotting package is not available).
        """
        try:
            from labelwise.analysis.report import write_report
        except ImportError as exc:
            warnings.warn(f"run report skipped: labelwise.analysis.report is not available ({exc})", stacklevel=2)
            return []
        metrics_csv = self.metrics_csv if self.metrics_csv.is_file() else None
        written = write_report(self.path, preds[0], preds[1], class_names, metrics_csv=metrics_csv, split=split)
        from labelwise.analysis.html_report import write_split_report

        write_split_report(self.path, preds, class_names, split=split, thresholds=thresholds,
                           global_threshold=global_threshold, dataset=dataset)
        return list(written)
