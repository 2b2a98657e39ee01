"""Callback hooks around the trainer's training step.

Continual strategies, replay buffers and adaptive batch samplers plug into the training loop through a
:class:`Callback`. Every hook is a no-op by default; override the ones you need. Hooks are called on every
process (rank); write files only when ``trainer.is_global_zero``. The types of the hand-offs (the trainer as
callbacks see it, the batch, the model outputs) are in :mod:`labelwise.protocols`.

Order of calls inside :meth:`Trainer.fit`::

    on_fit_start(trainer)
    for each epoch:
        on_epoch_start(trainer, epoch)
        for each batch:
            batch = on_before_batch(trainer, batch)          # e.g. merge replayed memory samples
            outputs = model(batch["input"])
            loss = criterion terms + sum(extra_loss(trainer, batch, outputs))   # e.g. distillation
            backward, clip, optimiser step, scheduler step, EMA update
            on_after_batch(trainer, batch, outputs, per_sample_loss)           # e.g. sampler loss table
        on_epoch_end(trainer, epoch, metrics)               # metrics: the row written to metrics.csv
    on_fit_end(trainer)

``on_task_end(trainer, task)`` is called by continual runners through :meth:`Trainer.end_task`.

Callbacks a run configuration can name (its ``callbacks:`` list) are registered in :data:`CALLBACKS`
(``@CALLBACKS.register("name")``; the options are the constructor's keyword arguments). Batch samplers
are callbacks too, but a run builds them from its ``sampler:`` section (:mod:`labelwise.sampling`).

Examples
--------
>>> import torch
>>> from labelwise.engine import Callback
>>> class CountSamples(Callback):
...     def __init__(self):
...         self.seen = 0
...     def on_after_batch(self, trainer, batch, outputs, per_sample_loss):
...         self.seen += int(batch["target"].shape[0])
...     def state_dict(self):
...         return {"seen": self.seen}
...     def load_state_dict(self, state):
...         self.seen = int(state["seen"])
>>> cb = CountSamples()
>>> cb.on_after_batch(None, {"target": torch.zeros(4, 3)}, {}, None)
>>> cb.state_dict()
{'seen': 4}
"""

from __future__ import annotations

from typing import Any

import torch

from ..protocols import Batch, ModelOutputs, TrainerView
from ..registry import Registry

__all__ = ["Callback", "CALLBACKS"]

#: Callbacks by name, for the ``callbacks:`` list of a run configuration.
CALLBACKS = Registry("callback")


class Callback:
    """Base class of trainer hooks; every method is a no-op.

    ``state_dict()`` must return a structure of JSON values (str, int, float, bool, None, lists, dicts) and
    tensors / numpy arrays; it is saved in every checkpoint and given back to ``load_state_dict`` on resume.
    Callbacks are matched to their saved state by position and class name.
    """

    def on_fit_start(self, trainer: TrainerView) -> None:
        """Called once at the start of :meth:`Trainer.fit`, after the model and optimiser are set up."""

    def on_epoch_start(self, trainer: TrainerView, epoch: int) -> None:
        """Called at the start of every training epoch (``epoch`` counts from 0)."""

    def on_before_batch(self, trainer: TrainerView, batch: Batch) -> Batch:
        """Return the batch to train on (already on the device); may add or replace samples."""
        return batch

    def extra_loss(self, trainer: TrainerView, batch: Batch, outputs: ModelOutputs) -> torch.Tensor | None:
        """An extra scalar loss term added to the criterion's (e.g. distillation); None for nothing."""
        return None

    def on_after_batch(
        self,
        trainer: TrainerView,
        batch: Batch,
        outputs: ModelOutputs,
        per_sample_loss: torch.Tensor | None,
    ) -> None:
        """Called after the optimiser step with the detached per-sample loss ``[B]`` of this process's batch."""

    def on_epoch_end(self, trainer: TrainerView, epoch: int, metrics: dict[str, Any]) -> None:
        """Called after each epoch (and its evaluation) with the metrics row of the epoch."""

    def on_fit_end(self, trainer: TrainerView) -> None:
        """Called once at the end of :meth:`Trainer.fit`."""

    def on_task_end(self, trainer: TrainerView, task: Any) -> None:
        """Called by continual runners through :meth:`Trainer.end_task` when a task is finished."""

    def state_dict(self) -> dict[str, Any]:
        """State saved in checkpoints (JSON values and tensors)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""
