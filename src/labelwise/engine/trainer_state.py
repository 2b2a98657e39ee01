"""A trainer's checkpoint state: what ``last`` checkpoints hold to resume a run, and the sidecar metadata.

:func:`trainer_state` and :func:`checkpoint_metadata` are written by :meth:`Trainer.save_checkpoint`;
:func:`restore_trainer_state` loads them back when ``Trainer.fit(resume=...)`` continues a run (see
:mod:`labelwise.engine.checkpoint` for the files).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._version import __version__
from .checkpoint import FORMAT_VERSION, load_checkpoint
from .seeding import rng_state

__all__ = ["trainer_state", "checkpoint_metadata", "restore_trainer_state", "load_callback_states", "jsonable_metrics"]


def trainer_state(trainer: Any) -> dict[str, Any]:
    """The resume state of ``trainer``: progress counters, optimiser, scheduler, EMA, RNG, sampler, callbacks."""
    sched = trainer.scheduler.state_dict() if trainer.scheduler is not None else None
    state: dict[str, Any] = {
        "epoch": trainer.epoch,
        "step_in_epoch": trainer.step_in_epoch,
        "global_step": trainer.global_step,
        "best_metric": trainer.best_metric,
        "best_epoch": trainer.best_epoch,
        "bad_evals": trainer.bad_evals,
        "should_stop": trainer.should_stop,
        "accum": {**trainer._accum, "loss_sum": trainer._accum["loss_sum"] + (float(trainer._loss_acc) if trainer._loss_acc is not None else 0.0)},
        "world_size": trainer.world_size,
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": sched,
        "ema": trainer.ema.state_dict() if trainer.ema is not None else None,
        "raw_model": trainer.model.state_dict() if trainer.ema is not None else None,
        "rng": rng_state(),
        "sampler": trainer.batch_sampler.state_dict() if hasattr(trainer.batch_sampler, "state_dict") else None,
        "callbacks": [{"class": type(cb).__name__, "state": cb.state_dict()} for cb in trainer.callbacks],
        "per_class_thresholds": trainer.per_class_thresholds,
        "last_metrics": jsonable_metrics(trainer.last_metrics),
    }
    scaler = getattr(getattr(trainer.fabric, "_precision", None), "scaler", None)
    if scaler is not None:
        state["grad_scaler"] = scaler.state_dict()
    return state

def checkpoint_metadata(trainer: Any, kind: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The sidecar metadata of the ``kind`` checkpoint (``"best"``, ``"last"``) of ``trainer``."""
    return {
        "kind": kind,
        "labelwise_version": __version__,
        "checkpoint_format_version": FORMAT_VERSION,
        "run_config": trainer.run_config,
        "trainer_config": trainer.config.model_dump(mode="json"),
        "class_names": trainer.class_names,
        "thresholds": {"global": trainer.config.threshold, "per_class": trainer.per_class_thresholds},
        "metrics": jsonable_metrics(metrics),
        # 1-based: the epoch the weights come from (in progress for a mid-epoch "last")
        "epoch": trainer.epoch if trainer._epoch_done else trainer.epoch + 1,
        "step_in_epoch": trainer.step_in_epoch,
        "global_step": trainer.global_step,
        "monitor": trainer.config.monitor,
        "monitor_mode": trainer.config.monitor_mode,
        "best_metric": trainer.best_metric,
        "best_epoch": trainer.best_epoch,
        "ema": trainer.ema is not None,
        "model_class": f"{type(trainer.model).__module__}.{type(trainer.model).__qualname__}",
    }


def restore_trainer_state(trainer: Any, resume: str | os.PathLike) -> dict[str, Any]:
    """Load the checkpoint ``resume`` (weights and resume state) into ``trainer``; returns the saved RNG state.

    A ``ValueError`` names the checkpoint when it cannot continue this run (no resume state, EMA on one side
    only, other class names, no scheduler state).
    """
    ckpt = load_checkpoint(resume, device="cpu", load_state=True)
    if ckpt.state is None:
        raise ValueError(f"{ckpt.path}: checkpoint has no resume state (a 'best' checkpoint?); resume from 'last'")
    st = ckpt.state
    if trainer.ema is not None and st.get("raw_model") is None:
        raise ValueError(f"{ckpt.path}: ema_decay is set but the checkpoint was trained without EMA")
    if trainer.ema is None and st.get("raw_model") is not None:
        raise ValueError(f"{ckpt.path}: the checkpoint was trained with EMA; set ema_decay to resume it")
    if ckpt.class_names is not None and trainer.class_names is not None and ckpt.class_names != trainer.class_names:
        raise ValueError(f"{ckpt.path}: checkpoint class names differ from the training data's")
    if trainer.ema is not None:
        trainer.model.load_state_dict(st["raw_model"])
        trainer.ema.module.load_state_dict(ckpt.weights)
        trainer.ema.load_state_dict(st["ema"])
    else:
        trainer.model.load_state_dict(ckpt.weights)
    trainer.optimizer.load_state_dict(st["optimizer"])
    if trainer.scheduler is not None:
        if st.get("scheduler") is None:
            raise ValueError(f"{ckpt.path}: the checkpoint has no lr scheduler state but schedule={trainer.config.schedule!r}")
        trainer.scheduler.load_state_dict(st["scheduler"])
    if st.get("sampler") is not None and hasattr(trainer.batch_sampler, "load_state_dict"):
        trainer.batch_sampler.load_state_dict(st["sampler"])
    load_callback_states(trainer.callbacks, st.get("callbacks") or [], ckpt.path)
    scaler = getattr(getattr(trainer.fabric, "_precision", None), "scaler", None)
    if scaler is not None and st.get("grad_scaler") is not None:
        scaler.load_state_dict(st["grad_scaler"])
    if int(st.get("world_size", 1)) != trainer.world_size:
        warnings.warn(
            f"resuming a run saved with {st.get('world_size')} process(es) on {trainer.world_size}: the global "
            "batches are the same, the RNG state is rank 0's",
            stacklevel=3,
        )
    trainer.epoch = int(st["epoch"])
    trainer.step_in_epoch = int(st["step_in_epoch"])
    trainer.global_step = int(st["global_step"])
    trainer.best_metric = st["best_metric"]
    trainer.best_epoch = st["best_epoch"]
    trainer.bad_evals = int(st["bad_evals"])
    trainer.should_stop = bool(st["should_stop"])
    trainer._accum = dict(st["accum"])
    trainer._loss_acc = None
    trainer.per_class_thresholds = st.get("per_class_thresholds")
    trainer.last_metrics = dict(st.get("last_metrics") or {})
    return st["rng"]

def load_callback_states(callbacks: list[Any], saved: list[dict[str, Any]], path: Path) -> None:
    """Give each saved callback state to the next unused callback of the same class (in order).

    A saved non-empty state without a matching callback is an error (a strategy would silently lose
    its memory); callbacks without saved state keep their fresh state, with a warning.
    """
    used: set[int] = set()
    for entry in saved:
        match = next(
            (i for i, cb in enumerate(callbacks) if i not in used and type(cb).__name__ == entry["class"]), None
        )
        if match is None:
            if entry["state"]:
                raise ValueError(
                    f"{path}: the checkpoint holds the state of a {entry['class']} callback but the trainer "
                    f"has none (callbacks: {[type(cb).__name__ for cb in callbacks]})"
                )
            continue
        used.add(match)
        callbacks[match].load_state_dict(entry["state"])
    for i, cb in enumerate(callbacks):
        if i not in used:
            warnings.warn(f"{path}: no saved state for callback {type(cb).__name__}; it starts fresh", stacklevel=4)


def jsonable_metrics(obj: Any) -> Any:
    """``obj`` with tensors and arrays as lists, numpy scalars as numbers and NaN as None (JSON/YAML-safe)."""
    if isinstance(obj, dict):
        return {str(k): jsonable_metrics(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable_metrics(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj
