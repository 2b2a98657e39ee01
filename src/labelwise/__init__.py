"""labelwise: multi-label learning on one data layer, one metrics engine and one trainer.

The package's public face: the names below are imported on first use (module ``__getattr__``), so
``import labelwise`` stays cheap (no torch, timm or Lightning until a name is used).

==========================  ====================================================================
name                        from
==========================  ====================================================================
``load_dataset``            :mod:`labelwise.data` (also ``list_datasets``, ``MultiLabelDataset``,
                            ``ArrayDataset``, ``collate_batch``)
``multilabel_report``       :mod:`labelwise.metrics` (also ``mulan_report``, ``pedestrian_report``,
                            ``tune_thresholds``, ``Evaluator``)
``create_loss``             :mod:`labelwise.losses` (also ``list_losses``)
``create_model``            :mod:`labelwise.models` (also ``list_models``)
``Trainer``                 :mod:`labelwise.engine` (also ``TrainerConfig``, ``Callback``, ``Predictions``)
``create_sampler``          :mod:`labelwise.sampling`
``load_config``             :mod:`labelwise.config` (also ``RunConfig``, ``ConfigError``)
``train_from_config``       :mod:`labelwise.run` (also ``evaluate_checkpoint``, ``load_model``)
``Predictor``               :mod:`labelwise.inference`
``export_checkpoint``       :mod:`labelwise.export`
==========================  ====================================================================

Subpackages
-----------
data       datasets, on-disk formats, the embedded MultiDigits benchmark, statistics, splits
metrics    multi-label, MULAN, pedestrian and continual metrics; the Evaluator
losses     BCE, focal, asymmetric and asymmetric polynomial losses (all accept a known-label mask)
models     backbones (timm), heads and tabular models behind ``create_model``
engine     the Fabric trainer, optimisers, schedules, EMA, checkpoints
sampling   loss-based batch selection (hard, adaptive, chain) and imbalance weights
analysis   run reports, label-feature angles, label grouping
continual  class-incremental and online continual learning
tabular    the MULAN protocol and the scikit-learn estimator

docs/architecture.md lists which package may import which ("Layers").

Examples
--------
>>> import labelwise
>>> labelwise.multilabel_report([[0.9, 0.2], [0.1, 0.7]], [[1, 0], [0, 1]])["mAP"]
1.0
>>> "create_model" in dir(labelwise) and "create_model" in labelwise.__all__
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # the names below, for type checkers and IDEs; at run time they are imported on first use
    from .config import ConfigError, RunConfig, load_config
    from .data import ArrayDataset, MultiLabelDataset, collate_batch, list_datasets, load_dataset
    from .engine import Callback, Predictions, Trainer, TrainerConfig
    from .export import export_checkpoint
    from .inference import Predictor
    from .losses import create_loss, list_losses
    from .metrics import Evaluator, mulan_report, multilabel_report, pedestrian_report, tune_thresholds
    from .models import create_model, list_models
    from .run import evaluate_checkpoint, load_model, train_from_config
    from .sampling import create_sampler

#: public name -> the module that defines it (imported on first access); ``__all__`` lists the same names.
_EXPORTS: dict[str, str] = {
    "load_dataset": "labelwise.data",
    "list_datasets": "labelwise.data",
    "MultiLabelDataset": "labelwise.data",
    "ArrayDataset": "labelwise.data",
    "collate_batch": "labelwise.data",
    "multilabel_report": "labelwise.metrics",
    "mulan_report": "labelwise.metrics",
    "pedestrian_report": "labelwise.metrics",
    "tune_thresholds": "labelwise.metrics",
    "Evaluator": "labelwise.metrics",
    "create_loss": "labelwise.losses",
    "list_losses": "labelwise.losses",
    "create_model": "labelwise.models",
    "list_models": "labelwise.models",
    "Trainer": "labelwise.engine",
    "TrainerConfig": "labelwise.engine",
    "Callback": "labelwise.engine",
    "Predictions": "labelwise.engine",
    "create_sampler": "labelwise.sampling",
    "load_config": "labelwise.config",
    "RunConfig": "labelwise.config",
    "ConfigError": "labelwise.config",
    "train_from_config": "labelwise.run",
    "evaluate_checkpoint": "labelwise.run",
    "load_model": "labelwise.run",
    "Predictor": "labelwise.inference",
    "export_checkpoint": "labelwise.export",
}

__all__ = [
    "__version__",
    "load_dataset",
    "list_datasets",
    "MultiLabelDataset",
    "ArrayDataset",
    "collate_batch",
    "multilabel_report",
    "mulan_report",
    "pedestrian_report",
    "tune_thresholds",
    "Evaluator",
    "create_loss",
    "list_losses",
    "create_model",
    "list_models",
    "Trainer",
    "TrainerConfig",
    "Callback",
    "Predictions",
    "create_sampler",
    "load_config",
    "RunConfig",
    "ConfigError",
    "train_from_config",
    "evaluate_checkpoint",
    "load_model",
    "Predictor",
    "export_checkpoint",
]


def __getattr__(name: str) -> Any:
    """Import a public name on first access and cache it in the package namespace."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labelwise' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
