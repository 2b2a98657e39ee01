"""Online EWC for the single-pass stream: the Fisher is gathered while the task streams by.

The offline :class:`labelwise.continual.strategies.EWC` estimates the Fisher after a task with a second pass
over the task's images; the online protocol sees every image once, so here the diagonal (empirical) Fisher of
task ``t`` is the mean over its steps of the squared gradients of the data loss (stream + replay batch),
read after the data loss is back-propagated and before the penalty is (no extra pass over the data). At the task
boundary ``F <- gamma F + F_t`` and ``theta* <- theta`` (online EWC, Schwarz et al. 2018); the loss adds
``lambda / 2 * sum F (theta - theta*)^2``.

Examples
--------
>>> import torch
>>> net = torch.nn.Linear(3, 2)
>>> ewc = OnlineEWC(net, lambda_ewc=10.0)
>>> float(ewc.penalty(net).detach())
0.0
>>> net(torch.randn(4, 3)).sum().backward(); ewc.accumulate(net)
>>> ewc.end_task(net); float(ewc.penalty(net).detach())
0.0
>>> with torch.no_grad():
...     _ = net.weight.add_(1.0)
>>> bool(ewc.penalty(net) > 0)
True
"""

from __future__ import annotations

import torch
from torch import nn

from ..fisher import DiagonalFisher

__all__ = ["OnlineEWC"]


class OnlineEWC(DiagonalFisher):
    """Diagonal Fisher accumulated from the training gradients of the current task (:class:`DiagonalFisher`).

    Parameters
    ----------
    model : nn.Module
        Its trainable parameters are tracked.
    lambda_ewc : float
        Penalty weight.
    gamma : float
        Decay of the accumulated Fisher (1: sum over tasks).
    """

    def __init__(self, model: nn.Module, *, lambda_ewc: float = 100.0, gamma: float = 1.0) -> None:
        super().__init__(lambda_ewc=lambda_ewc, gamma=gamma)
        self.start_task(model)

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """``lambda / 2 * sum F (theta - theta*)^2`` (0 before the first task ends)."""
        total = super().penalty(model)
        return torch.zeros(()) if total is None else total

    def end_task(self, model: nn.Module) -> None:
        """Consolidate the task's Fisher and anchor the current parameters."""
        self.consolidate(model)
