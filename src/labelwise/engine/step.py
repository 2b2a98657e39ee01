"""The training step's model contract, written once: forward with targets, model-provided losses, masks,
``loss_logits`` and the reduction of the step loss.

Every training loop of labelwise (the :class:`~labelwise.engine.Trainer`, the lean tabular loop
:func:`labelwise.tabular.training.fit_tabular` and the online runner :func:`labelwise.continual.online.run_online`)
reads the model through these functions, so a model that follows the contract of docs/architecture.md
("Models") trains the same way in all of them:

* :func:`model_outputs`: ``model(x, targets=y)`` for a model with ``needs_targets = True`` (when targets are
  given, i.e. while training), else ``model(x)``; the result must be a dict with ``"logits"``;
* :func:`loss_terms`: the per-sample loss ``[B]`` and its local sum. A model with
  ``loss(outputs, batch, criterion)`` supplies it; otherwise the criterion is applied to every entry of
  ``outputs["loss_logits"]`` (default ``[outputs["logits"]]``) with the batch's known-label ``mask``, element-wise
  (``reduction="none"`` for the call), and the element losses are summed over classes and over the terms.
  A criterion without a ``reduction`` attribute is called as it is: it returns element-wise ``[B, C]``
  losses (treated as ``"mean"``) or a scalar (used as is; no per-sample losses);
* :meth:`StepLoss.reduce`: the step loss, the local sum divided by the denominator of the criterion's
  reduction: ``"mean"`` the number of known entries, ``"batchmean"`` the number of samples, ``"sum"`` 1
  (a model's own loss: ``"sum"`` sums, any other reduction divides by the number of samples). The trainer
  passes the *global* counts and the world size, so that DDP's average of the gradients is the gradient of
  the loss of the whole global batch (see :mod:`labelwise.engine.trainer`); a single-process loop passes
  neither. (The two forms, ``total * (world / n)`` and ``total / n``, are kept as they were in the loops
  they came from, so the numbers of every loop are unchanged to the last bit for the same seed.)

Examples
--------
>>> import torch
>>> from labelwise.losses import create_loss
>>> model = torch.nn.Linear(3, 2)
>>> net = lambda x: {"logits": model(x)}
>>> batch = {"input": torch.ones(4, 3), "target": torch.zeros(4, 2), "mask": None}
>>> outputs, terms = forward_and_loss(net, batch, create_loss("bce"))
>>> terms.per_sample.shape, terms.denominator
(torch.Size([4]), 'known')
>>> bool(torch.isclose(terms.reduce(), create_loss("bce")(outputs["logits"], batch["target"])))
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["REDUCTIONS", "StepLoss", "model_outputs", "loss_terms", "forward_and_loss", "criterion_reduction"]

#: The criterion reductions a training step can reproduce from per-sample losses.
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "batchmean")

_DENOMINATOR = {"mean": "known", "batchmean": "batch", "sum": "one"}


def criterion_reduction(criterion: Any) -> str | None:
    """The criterion's ``reduction`` (None without the attribute); a ``ValueError`` unless it is in :data:`REDUCTIONS`.

    Examples
    --------
    >>> from labelwise.losses import create_loss
    >>> criterion_reduction(create_loss("asl"))
    'sum'
    >>> criterion_reduction(create_loss("bce", reduction="none"))
    Traceback (most recent call last):
    ...
    ValueError: criterion BCELoss has reduction='none'; a training step needs one of mean, sum, batchmean (it computes per-sample losses itself)
    """
    reduction = getattr(criterion, "reduction", None)
    if reduction is not None and reduction not in REDUCTIONS:
        raise ValueError(
            f"criterion {type(criterion).__name__} has reduction={reduction!r}; a training step needs one of "
            f"{', '.join(REDUCTIONS)} (it computes per-sample losses itself)"
        )
    return reduction


@contextlib.contextmanager
def _reduction(criterion: Any, value: str) -> Iterator[None]:
    old = criterion.reduction
    criterion.reduction = value
    try:
        yield
    finally:
        criterion.reduction = old


def model_outputs(model: Any, x: Any, targets: torch.Tensor | None = None, *,
                  module: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Run ``model`` on ``x`` as the contract says and check that it returned a dict with ``"logits"``.

    Parameters
    ----------
    model : nn.Module
        The model whose attributes are read (``needs_targets``).
    x : Tensor
        The batch's inputs.
    targets : Tensor, optional
        The batch's targets; given while training. A model with ``needs_targets = True`` then receives
        ``forward(x, targets=targets)``.
    module : callable, optional
        What is called instead of ``model`` (the trainer's Fabric/compiled wrapper of it).

    Examples
    --------
    >>> import torch
    >>> model_outputs(torch.nn.Linear(2, 1), torch.zeros(1, 2))
    Traceback (most recent call last):
    ...
    TypeError: Linear.forward must return a dict with 'logits', got Tensor
    """
    run = model if module is None else module
    if targets is not None and getattr(model, "needs_targets", False):
        outputs = run(x, targets=targets)
    else:
        outputs = run(x)
    if not isinstance(outputs, dict) or "logits" not in outputs:
        raise TypeError(f"{type(model).__name__}.forward must return a dict with 'logits', got {type(outputs).__name__}")
    return outputs


@dataclass(frozen=True)
class StepLoss:
    """The loss of one step before its reduction (what :func:`loss_terms` returns).

    Attributes
    ----------
    total : Tensor
        The local sum of the per-sample losses (a scalar criterion: its value).
    per_sample : Tensor or None
        Per-sample losses ``[B]`` (float32), the sum over classes and ``loss_logits`` terms of the element
        losses, or the model's own loss; None for a criterion that returns a scalar.
    denominator : {"known", "batch", "one", "scalar"}
        What :meth:`reduce` divides ``total`` by: the number of known entries, the number of samples, 1,
        or nothing (a scalar criterion).
    known, batch_size : int or Tensor, optional
        This batch's number of known entries (``mask.sum()``, or all entries without a mask) and of samples:
        the default counts of :meth:`reduce`.
    """

    total: torch.Tensor
    per_sample: torch.Tensor | None
    denominator: str
    known: Any = None
    batch_size: int | None = None

    def reduce(self, *, known: Any = None, batch_size: Any = None, world_size: int | None = None) -> torch.Tensor:
        """The step loss: ``total`` divided by the denominator (``total`` itself for a scalar criterion).

        Parameters
        ----------
        known, batch_size : int, float or Tensor, optional
            The number of known entries and of samples the denominator counts (global counts under DDP).
            Default: this batch's (the attributes); at least 1.
        world_size : int, optional
            Given by a loop that runs under DDP (the trainer, also on one process): the loss is
            ``total * (world_size / denominator)``, so that DDP's average of the gradients over the processes is
            the gradient of the global batch's loss. None (a single-process loop): ``total / denominator``
            (the mean of the per-sample losses for the ``"batch"`` denominator), the criterion's own reduction.

        Examples
        --------
        >>> import torch
        >>> t = StepLoss(torch.tensor(6.0), torch.tensor([2.0, 4.0]), "batch", batch_size=2)
        >>> float(t.reduce()), float(t.reduce(batch_size=4, world_size=2))
        (3.0, 3.0)
        """
        if self.denominator == "scalar":
            return self.total
        if self.denominator == "one":
            denom: Any = 1.0
        elif self.denominator == "known":
            denom = known if known is not None else self.known
        else:
            denom = batch_size if batch_size is not None else self.batch_size
        if world_size is None:
            if self.denominator == "batch" and batch_size is None:
                return self.per_sample.mean()
            if isinstance(denom, torch.Tensor):
                return self.total / denom.clamp(min=1).to(self.total.dtype)
            return self.total / max(denom, 1)
        if isinstance(denom, torch.Tensor):  # no host sync for a count computed on the device
            scale = (world_size / denom.to(torch.float64).clamp(min=1.0)).to(self.total.dtype)
        else:
            scale = world_size / max(float(denom), 1.0)
        return self.total * scale


def _counts(batch: dict[str, Any]) -> dict[str, Any]:
    targets, mask = batch["target"], batch.get("mask")
    return {"known": int(targets.numel()) if mask is None else mask.sum(), "batch_size": int(targets.shape[0])}


def loss_terms(model: Any, outputs: dict[str, Any], batch: dict[str, Any], criterion: Any) -> StepLoss:
    """The per-sample losses of a batch and their sum, as the model contract says (module documentation).

    Parameters
    ----------
    model : nn.Module
        Read for ``loss(outputs, batch, criterion)``.
    outputs : dict
        The model's outputs (``"logits"``, optionally ``"loss_logits"``).
    batch : dict
        ``"target"`` ``[B, C]`` and optionally ``"mask"`` (bool known-label mask).
    criterion : callable
        ``criterion(logits, targets, mask)``; a ``reduction`` attribute, when present, must be in
        :data:`REDUCTIONS`.

    Examples
    --------
    >>> import torch
    >>> from labelwise.losses import create_loss
    >>> batch = {"target": torch.ones(2, 3), "mask": torch.tensor([[True, True, False]] * 2)}
    >>> out = {"logits": torch.zeros(2, 3), "loss_logits": [torch.zeros(2, 3), torch.zeros(2, 3)]}
    >>> t = loss_terms(torch.nn.Identity(), out, batch, create_loss("bce", reduction="sum"))
    >>> [round(v, 4) for v in t.per_sample.tolist()], t.denominator      # 2 known labels x 2 terms x log 2
    ([2.7726, 2.7726], 'one')
    """
    if not isinstance(outputs, dict) or "logits" not in outputs:
        raise TypeError(f"{type(model).__name__}.forward must return a dict with 'logits', got {type(outputs).__name__}")
    reduction = criterion_reduction(criterion)
    own_loss = getattr(model, "loss", None)
    if callable(own_loss):
        per_sample = own_loss(outputs, batch, criterion)
        if per_sample.ndim != 1 or per_sample.shape[0] != batch["target"].shape[0]:
            raise ValueError(
                f"{type(model).__name__}.loss must return per-sample losses [B={batch['target'].shape[0]}], "
                f"got shape {tuple(per_sample.shape)}"
            )
        per_sample = per_sample.float()
        return StepLoss(per_sample.sum(), per_sample, "one" if reduction == "sum" else "batch", **_counts(batch))
    targets, mask = batch["target"], batch.get("mask")
    logits_list = outputs.get("loss_logits") or [outputs["logits"]]
    if reduction is None:
        total: torch.Tensor | None = None
        for lg in logits_list:
            out = criterion(lg.float(), targets, mask)
            total = out if total is None else total + out
        if total.ndim == 0:
            return StepLoss(total, None, "scalar", **_counts(batch))
        if total.shape != logits_list[0].shape:
            raise ValueError(f"criterion returned shape {tuple(total.shape)}; expected a scalar or [B, C]")
        per_sample = total.sum(dim=1)
        return StepLoss(per_sample.sum(), per_sample, "known", **_counts(batch))
    per_sample = None
    with _reduction(criterion, "none"):
        for lg in logits_list:
            elem = criterion(lg.float(), targets, mask)
            if elem.shape != lg.shape:
                raise ValueError(
                    f"criterion {type(criterion).__name__} with reduction='none' returned shape "
                    f"{tuple(elem.shape)}; expected the element-wise losses {tuple(lg.shape)}"
                )
            s = elem.sum(dim=1)
            per_sample = s if per_sample is None else per_sample + s
    return StepLoss(per_sample.sum(), per_sample, _DENOMINATOR[reduction], **_counts(batch))


def forward_and_loss(model: Any, batch: dict[str, Any], criterion: Any, *,
                     module: Callable[..., Any] | None = None) -> tuple[dict[str, Any], StepLoss]:
    """Forward a training batch and compute its loss terms: :func:`model_outputs` then :func:`loss_terms`.

    Parameters
    ----------
    model : nn.Module
        The model (its ``needs_targets`` and ``loss`` are read).
    batch : dict
        ``"input"``, ``"target"`` and optionally ``"mask"``.
    criterion : callable
        See :func:`loss_terms`.
    module : callable, optional
        What runs the forward pass instead of ``model`` (a DDP or compiled wrapper).

    Returns
    -------
    outputs : dict
        The model's outputs.
    terms : StepLoss
        Per-sample losses and their sum; ``terms.reduce()`` is the step loss of a single process.
    """
    outputs = model_outputs(model, batch["input"], batch["target"], module=module)
    return outputs, loss_terms(model, outputs, batch, criterion)
