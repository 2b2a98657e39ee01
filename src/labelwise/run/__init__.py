"""Python API of a configured run: build data, model, loss and trainer from a :class:`~labelwise.config.RunConfig`.

``labelwise train`` is :func:`train_from_config`, ``labelwise evaluate`` is :func:`evaluate_checkpoint`;
both are usable directly from Python::

    from labelwise.config import load_config
    from labelwise.run import train_from_config
    summary = train_from_config(load_config("quickstart", ["trainer.max_epochs=2"]))
    summary["test_metrics"]["mAP"], summary["output_dir"]

Run directories are protected: the run holds ``.labelwise.lock`` for its whole life (a second run writing into
the same directory is refused, naming the holder; see :mod:`labelwise.engine.run_lock`), and a new run refuses
a non-empty directory (a previous run, or files that are not a run) unless ``overwrite=True``
(``labelwise train --overwrite``); continuing a run with ``resume`` writes into its own directory. Both are
:func:`labelwise.engine.run_dir.claim_output_dir`, shared by every command that writes an output directory.

What a run directory holds after :func:`train_from_config`::

    config.yaml               the resolved configuration (load it again with load_config)
    metrics.csv, tb/          one row per epoch; TensorBoard events
    checkpoints/best.*        safetensors weights + JSON sidecar (run config, class names, thresholds)
    checkpoints/last.*        the same plus the resume state (optimiser, schedule, RNG, ...)
    test_metrics.json         metrics of the best checkpoint on the test split
    report/*.png              per-class AP, precision-recall curves (val and test), learning curves
    report/index.html         the self-contained report page (labelwise.analysis.html_report); rebuilt
                              from report/predictions_{val,test}.npz by `labelwise report RUN`
"""

from __future__ import annotations

from ..config import build_transform
from ..engine.run_dir import RUN_FILES, prepare_output_dir  # noqa: F401 (RUN_FILES: re-exported)
from .build import (
    DataSplits,
    build_callbacks,
    build_datasets,
    build_loss,
    build_model,
    build_sampler,
    data_loss_options,
)
from .checkpoints import evaluate_checkpoint, load_model, load_run_split
from .formatting import format_metrics
from .train import train_from_config

__all__ = [
    "DataSplits",
    "build_datasets",
    "load_run_split",
    "build_transform",
    "build_model",
    "build_loss",
    "build_sampler",
    "build_callbacks",
    "data_loss_options",
    "train_from_config",
    "prepare_output_dir",
    "evaluate_checkpoint",
    "load_model",
    "format_metrics",
]
