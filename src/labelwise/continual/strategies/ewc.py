"""Elastic weight consolidation (Kirkpatrick et al. 2017), online variant (Schwarz et al. 2018).

After task ``t`` the diagonal Fisher information of the task's masked BCE is estimated from squared
mini-batch gradients over (at most ``fisher_batches``) batches of its training images (evaluation
transform, model in eval mode), and accumulated as ``F <- gamma F + F_t``; the anchor ``theta*`` is the model
after task ``t``. While training later tasks: ``L = L_bce + lambda_ewc / 2 * sum F (theta - theta*)^2``
(:class:`labelwise.continual.fisher.DiagonalFisher`, shared with the online EWC).

Examples
--------
>>> from labelwise.continual.strategies import create_strategy
>>> s = create_strategy("ewc", lambda_ewc=50.0)
>>> s.lambda_ewc, s.gamma
(50.0, 1.0)
"""

from __future__ import annotations

from typing import Any

import torch

from labelwise.protocols import StrategyTrainerView

from ..fisher import DiagonalFisher
from ..losses import asymmetric_bce
from .base import Strategy, register_strategy

__all__ = ["EWC"]


@register_strategy("ewc")
class EWC(Strategy):
    """Online EWC penalty on the parameters learned in earlier tasks.

    Parameters
    ----------
    lambda_ewc : float, default 100.0
        Penalty weight.
    gamma : float, default 1.0
        Decay of the accumulated Fisher (1: plain sum over tasks).
    fisher_batches : int, default 32
        Mini-batches (of the trainer's batch size) used to estimate the Fisher of a task.
    seed : int
    """

    name = "ewc"

    def __init__(self, *, lambda_ewc: float = 100.0, gamma: float = 1.0, fisher_batches: int = 32, seed: int = 0) -> None:
        super().__init__(seed=seed)
        if lambda_ewc < 0 or not 0 <= gamma <= 1 or fisher_batches < 1:
            raise ValueError("lambda_ewc must be >= 0, gamma in [0, 1] and fisher_batches >= 1")
        self.lambda_ewc = float(lambda_ewc)
        self.gamma = float(gamma)
        self.fisher_batches = int(fisher_batches)
        self._ewc = DiagonalFisher(lambda_ewc=self.lambda_ewc, gamma=self.gamma)

    def end_task(self, trainer: StrategyTrainerView, task: int) -> None:
        from labelwise.data import collate_batch

        model = trainer.model
        device = trainer.device
        data = self.scenario.train_view(task)
        if self.eval_transform != "inherit":
            data = data.view(None, transform=self.eval_transform)
        gen = torch.Generator().manual_seed(self.seed + 7919 * (task + 1))
        loader = torch.utils.data.DataLoader(data, batch_size=trainer.config.batch_size, shuffle=True,
                                             generator=gen, collate_fn=collate_batch)
        ewc = self._ewc
        ewc.start_task(model)
        was = model.training
        model.eval()
        batches = 0
        for batch in loader:
            if batches >= self.fisher_batches:
                break
            if batch.get("input") is None:
                continue
            model.zero_grad(set_to_none=True)
            out = model(batch["input"].to(device))
            loss = asymmetric_bce(out["logits"], batch["target"].to(device), batch["mask"].to(device))
            loss.backward()
            ewc.accumulate(model)
            batches += 1
        model.zero_grad(set_to_none=True)
        model.train(was)
        ewc.consolidate(model)

    def loss_terms(self, trainer: StrategyTrainerView, batch: dict[str, Any], outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        penalty = self._ewc.penalty(trainer.model)
        return {} if penalty is None else {"ewc": penalty}
