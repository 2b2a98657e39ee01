"""Watching the training loss: stop a run at the first non-finite or diverged step, and on non-finite scores.

The :class:`~labelwise.engine.Trainer` records every step loss (a 0-d tensor, no host copy) with where it was
taken, and checks the recorded losses every step in a single CPU process, every ``log_every_n_steps`` steps
otherwise, and before every checkpoint and evaluation (one host copy, and one all-reduce across processes, per
check). :class:`LossMonitor` is that record and check:

* a NaN/inf step loss raises :class:`NonFiniteLossError`;
* a finite step loss whose magnitude exceeds ``factor`` times the median magnitude of the run's first
  :data:`DIVERGENCE_REFERENCE_STEPS` step losses (never below :data:`DIVERGENCE_REFERENCE_FLOOR`) is a
  divergence: :class:`LossDivergedError` when ``stop`` is set, else one logged warning;
* validation scores that are NaN/inf (weights that diverged after the last checked step) raise
  :class:`LossDivergedError`.

Every message names the epoch and step (1-based), the global step, the learning rate and what happened to the
last checkpoint on disk (the caller says, through ``kept``), and how to avoid it.

Examples
--------
>>> import torch
>>> monitor = LossMonitor(factor=100.0, stop=True)
>>> for step, value in enumerate([1.0, 1.1, 0.9, float("nan")]):
...     monitor.record(torch.tensor(value), epoch=0, step_in_epoch=step, global_step=step + 1, lr=0.1)
>>> try:
...     monitor.check(kept="no checkpoint was written")
... except NonFiniteLossError as err:
...     (err.epoch, err.step_in_epoch, err.global_step)
(1, 4, 4)
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable

import numpy as np
import torch

__all__ = [
    "DIVERGENCE_REFERENCE_FLOOR",
    "DIVERGENCE_REFERENCE_STEPS",
    "LossDivergedError",
    "LossMonitor",
    "NonFiniteLossError",
]

logger = logging.getLogger("labelwise.engine.trainer")  # the trainer's logger: users filter on that name

#: Divergence reference: the median magnitude of this many first step losses of a run, never below the floor
#: (a loss that starts at exactly 0 would otherwise make any positive loss a divergence).
DIVERGENCE_REFERENCE_STEPS = 50
DIVERGENCE_REFERENCE_FLOOR = 1e-3


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the run stopped before saving anything computed from it.

    The message names the epoch and step (1-based), the global step, the learning rate and the last
    checkpoint on disk (written before the loss diverged). Attributes: ``epoch``, ``step_in_epoch``,
    ``global_step``, ``lr``, ``loss``.
    """

    def __init__(self, message: str, *, epoch: int, step_in_epoch: int, global_step: int, lr: float, loss: float):
        super().__init__(message)
        self.epoch, self.step_in_epoch, self.global_step, self.lr, self.loss = epoch, step_in_epoch, global_step, lr, loss


class LossDivergedError(FloatingPointError):
    """The training diverged while its loss stayed finite (``trainer.stop_on_divergence``).

    Raised when a step loss exceeds ``trainer.divergence_factor`` times the median of the run's first step
    losses, or when the model's validation scores are NaN/inf after an epoch. The message names the epoch
    and step (1-based), the learning rate and the last checkpoint on disk. Attributes: ``epoch``,
    ``step_in_epoch`` (None for the validation case), ``global_step``, ``lr``, ``loss`` (None for the
    validation case) and ``reference`` (the median the loss was compared with, or None).
    """

    def __init__(self, message: str, *, epoch: int, step_in_epoch: int | None, global_step: int, lr: float,
                 loss: float | None, reference: float | None):
        super().__init__(message)
        self.epoch, self.step_in_epoch, self.global_step, self.lr = epoch, step_in_epoch, global_step, lr
        self.loss, self.reference = loss, reference


class LossMonitor:
    """The step losses of one run not yet checked, and the check.

    Parameters
    ----------
    factor : float or None
        A finite step loss above ``factor`` times the reference median is a divergence (``None``: never).
    stop : bool
        Raise :class:`LossDivergedError` at a divergence (else log one warning and go on).

    Examples
    --------
    >>> import torch
    >>> monitor = LossMonitor(factor=10.0, stop=False)
    >>> for step, value in enumerate([1.0, 1.0, 50.0]):
    ...     monitor.record(torch.tensor(value), epoch=0, step_in_epoch=step, global_step=step + 1, lr=0.1)
    >>> monitor.check(kept="no checkpoint was written")  # logs a warning, training goes on
    >>> monitor.divergence
    'the training loss first diverged at epoch 1, step 3 (global step 3) with learning rate 0.1'
    """

    def __init__(self, factor: float | None, stop: bool):
        self.factor, self.stop = factor, stop
        self._losses: list[torch.Tensor] = []  # losses of the steps not yet checked for finiteness
        self._records: list[tuple[int, int, int, float]] = []  # (epoch, step_in_epoch, global_step, lr), 0-based epoch/step
        self.reference: list[float] = []  # |loss| of the first steps: the scale a divergence is measured by
        self.divergence: str | None = None  # where the loss first diverged (warning mode), for later messages

    def record(self, loss: torch.Tensor, *, epoch: int, step_in_epoch: int, global_step: int, lr: float) -> None:
        """Keep one step's loss (no host copy) with its 0-based ``epoch`` / ``step_in_epoch`` and global step."""
        self._losses.append(loss.detach().float().reshape(()))
        self._records.append((epoch, step_in_epoch, global_step, lr))

    def check(self, *, kept: str | Callable[[], str], all_reduce_min: Callable[[torch.Tensor], torch.Tensor] | None = None,
              warn: bool = True) -> None:
        """Check the recorded losses: stop at the first non-finite one, and at the first divergence.

        Parameters
        ----------
        kept : str or callable
            What the error says about the checkpoint on disk (a callable is asked only when raising).
        all_reduce_min : callable, optional
            Element-wise minimum over the processes, so that all agree on the first bad step (one call).
        warn : bool
            Log the divergence warning (the process of global rank 0 only).
        """
        if not self._losses:
            return
        raw = torch.stack(self._losses).tolist()  # one host copy per check
        records = self._records
        self._losses, self._records = [], []
        n = len(records)
        bad = next((j for j, v in enumerate(raw) if not math.isfinite(v)), n)
        diverged, reference = self._first_divergence(raw[:bad])
        if all_reduce_min is not None:
            first = all_reduce_min(torch.tensor([bad, diverged]))
            bad, diverged = (int(v) for v in first.reshape(-1).tolist())
        if bad < n and bad <= diverged:
            epoch, step, global_step, lr = records[bad]
            value = raw[bad] if not math.isfinite(raw[bad]) else float("nan")
            raise NonFiniteLossError(
                f"the training loss is {value} at epoch {epoch + 1}, step {step + 1} (global step {global_step}) "
                f"with learning rate {lr:.6g}; the run stopped there and {_said(kept)}. Lower "
                "trainer.lr, set trainer.grad_clip_norm, or check the data for NaN/inf values",
                epoch=epoch + 1, step_in_epoch=step + 1, global_step=global_step, lr=lr, loss=value,
            )
        if diverged >= n or self.divergence is not None:
            return
        epoch, step, global_step, lr = records[diverged]
        loss = raw[diverged]
        where = f"epoch {epoch + 1}, step {step + 1} (global step {global_step}) with learning rate {lr:.6g}"
        ratio = f"{abs(loss) / reference:.3g} times" if reference else "far above"
        what = (f"the training loss diverged: {loss:.4g} at {where} is {ratio} the median magnitude "
                f"{reference:.4g} of the first {len(self.reference)} step losses (more than "
                f"trainer.divergence_factor={self.factor:g})")
        self.divergence = f"the training loss first diverged at {where}"
        if self.stop:
            raise LossDivergedError(
                f"{what}; the run stopped there and {_said(kept)}. Lower trainer.lr, set "
                "trainer.grad_clip_norm, or set trainer.stop_on_divergence=false to only warn",
                epoch=epoch + 1, step_in_epoch=step + 1, global_step=global_step, lr=lr, loss=loss,
                reference=reference,
            )
        if warn:
            logger.warning("%s; training continues (trainer.stop_on_divergence=false) but is unlikely to recover: "
                           "lower trainer.lr or set trainer.grad_clip_norm", what)

    def _first_divergence(self, losses: list[float]) -> tuple[int, float]:
        """Index of the first of ``losses`` (finite) that diverges (``len(losses)`` if none) and its reference.

        The losses before it that do not diverge extend the reference window (the first
        :data:`DIVERGENCE_REFERENCE_STEPS` step losses of the run).
        """
        ref = self.reference
        reference = 0.0
        for j, v in enumerate(losses):
            if self.factor is not None and ref:
                reference = max(statistics.median(ref), DIVERGENCE_REFERENCE_FLOOR)
                if abs(v) > self.factor * reference:
                    return j, reference
            if len(ref) < DIVERGENCE_REFERENCE_STEPS:
                ref.append(abs(v))
        return len(losses), reference

    def check_scores(self, scores: np.ndarray, *, epoch: int, global_step: int, lr: float,
                     kept: str | Callable[[], str]) -> None:
        """Stop with :class:`LossDivergedError` when validation ``scores`` are not finite (diverged weights).

        ``epoch`` is the 1-based epoch just evaluated.
        """
        if scores.size == 0 or np.isfinite(scores).all():
            return
        cause = f" ({self.divergence})" if self.divergence else ""
        raise LossDivergedError(
            f"the model's validation scores are NaN or infinite after epoch {epoch} with learning rate "
            f"{lr:.6g}: the training diverged{cause}; the run stopped there and {_said(kept)}. Lower "
            "trainer.lr, set trainer.grad_clip_norm, or check the validation data for NaN/inf values",
            epoch=epoch, step_in_epoch=None, global_step=global_step, lr=lr, loss=None, reference=None,
        )


def _said(kept: str | Callable[[], str]) -> str:
    return kept() if callable(kept) else kept
