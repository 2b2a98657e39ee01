"""Elastic weight consolidation's diagonal Fisher penalty, written once for the offline and the online EWC.

Online EWC (Kirkpatrick et al. 2017; Schwarz et al. 2018): during (or after) task ``t`` the squared gradients
of the data loss are summed over steps; at the task boundary the task's Fisher ``F_t`` is their mean over the
steps, ``F <- gamma F + F_t`` and the anchor ``theta*`` becomes the current parameters; training later tasks
adds ``lambda / 2 * sum F (theta - theta*)^2``.

The class-incremental strategy (:class:`labelwise.continual.strategies.EWC`) fills the sums with a second pass
over the task's images after the task; the online method (:class:`labelwise.continual.online.OnlineEWC`) with
the training steps themselves (every image is seen once). Both are this class.

Examples
--------
>>> import torch
>>> net = torch.nn.Linear(3, 2)
>>> ewc = DiagonalFisher(lambda_ewc=10.0)
>>> ewc.start_task(net)
>>> net(torch.randn(4, 3)).sum().backward(); ewc.accumulate(net)
>>> ewc.penalty(net) is None                 # nothing consolidated yet
True
>>> ewc.consolidate(net); float(ewc.penalty(net))
0.0
>>> with torch.no_grad():
...     _ = net.bias.add_(1.0)
>>> float(ewc.penalty(net)) == 0.5 * 10.0 * float(ewc.fisher["bias"].sum())
True
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DiagonalFisher"]


class DiagonalFisher:
    """Diagonal (empirical) Fisher of the tasks so far, their anchor, and the EWC penalty.

    Parameters
    ----------
    lambda_ewc : float
        Penalty weight (>= 0).
    gamma : float
        Decay of the accumulated Fisher in [0, 1] (1: the sum over tasks).

    Attributes
    ----------
    fisher, anchor : dict of str to Tensor
        The consolidated Fisher and ``theta*`` by parameter name (empty before the first task ends).
    """

    def __init__(self, *, lambda_ewc: float = 100.0, gamma: float = 1.0) -> None:
        if lambda_ewc < 0 or not 0 <= gamma <= 1:
            raise ValueError("lambda_ewc must be >= 0 and gamma in [0, 1]")
        self.lambda_ewc = float(lambda_ewc)
        self.gamma = float(gamma)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self._running: dict[str, torch.Tensor] = {}
        self._steps = 0

    def start_task(self, model: nn.Module) -> None:
        """Start the squared-gradient sums of a task over the model's trainable parameters (zeros)."""
        self._running = {n: torch.zeros_like(p) for n, p in model.named_parameters() if p.requires_grad}
        self._steps = 0

    @torch.no_grad()
    def accumulate(self, model: nn.Module) -> None:
        """Add the squared gradients of the data loss just back-propagated (one step)."""
        for n, p in model.named_parameters():
            if n not in self._running or p.grad is None:
                continue
            self._running[n] += p.grad.pow(2)
        self._steps += 1

    @torch.no_grad()
    def consolidate(self, model: nn.Module) -> None:
        """End the task: ``F <- gamma F + mean squared gradient``, ``theta* <- theta``; the sums restart."""
        steps = max(self._steps, 1)
        for n, p in model.named_parameters():
            if n not in self._running:
                continue
            f = self._running[n] / steps
            self.fisher[n] = self.gamma * self.fisher[n] + f if n in self.fisher else f
            self.anchor[n] = p.detach().clone()
            self._running[n].zero_()
        self._steps = 0

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        """``lambda / 2 * sum F (theta - theta*)^2`` over the anchored parameters; None before any."""
        total = None
        for n, p in model.named_parameters():
            if n in self.fisher:
                term = (self.fisher[n].to(p.device) * (p - self.anchor[n].to(p.device)).pow(2)).sum()
                total = term if total is None else total + term
        return None if total is None else 0.5 * self.lambda_ewc * total
