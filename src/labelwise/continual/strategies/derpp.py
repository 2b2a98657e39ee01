"""DER++ (Buzzega et al. 2020): replay of labels and of the logits stored with each memory sample.

``L = L_bce(current) + alpha_der * MSE(z_mem, z_stored) + beta_der * L_bce(memory, known labels)``. The MSE
runs over the classes known when the logits were stored (``C^{1:t'}`` for a slot written after task ``t'``).

Deviation: the logits are stored once, at the end of the task the sample was drawn from, by the model that
has just learned it (evaluation transform), instead of during the epoch (Mammoth); and one memory mini-batch
serves both terms instead of two independent ones (same expected gradient).

Examples
--------
>>> from labelwise.continual.strategies import create_strategy
>>> s = create_strategy("derpp")
>>> s.alpha_der, s.beta_der, s.memory_per_class
(0.1, 0.5, 2)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from labelwise.protocols import StrategyTrainerView

from ..losses import asymmetric_bce
from .base import Strategy, model_outputs, register_strategy

__all__ = ["DERpp"]


@register_strategy("derpp")
class DERpp(Strategy):
    """Dark experience replay ++ with a reservoir memory.

    Parameters
    ----------
    alpha_der : float, default 0.1
        Weight of the logit-matching (MSE) term.
    beta_der : float, default 0.5
        Weight of the label-replay (BCE) term.
    memory_per_class, memory_total, memory_selection, replay_batch_size, seed
        See :class:`~labelwise.continual.strategies.base.Strategy` (default budget 2 per class).
    """

    name = "derpp"

    def __init__(self, *, alpha_der: float = 0.1, beta_der: float = 0.5, memory_per_class: int | None = 2,
                 memory_total: int | None = None, memory_selection: str = "reservoir",
                 replay_batch_size: int | None = None, seed: int = 0) -> None:
        if memory_total is not None:
            memory_per_class = None
        super().__init__(memory_per_class=memory_per_class, memory_total=memory_total,
                         memory_selection=memory_selection, replay_batch_size=replay_batch_size, seed=seed)
        self.alpha_der = float(alpha_der)
        self.beta_der = float(beta_der)

    def end_task(self, trainer: StrategyTrainerView, task: int) -> None:
        written = self.update_memory(trainer, task)
        if len(written):
            view = self.scenario.train.view(self.memory.base_indices[written], transform=self.eval_transform)
            logits = model_outputs(trainer, trainer.model, view, key="logits")
            self.memory.store_logits(written, logits, self.scenario.task(task).seen_classes)

    def loss_terms(self, trainer: StrategyTrainerView, batch: dict[str, Any],
                   outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        _, z = self.split(batch, outputs["logits"])
        if z.shape[0] == 0:
            return {}
        slots = batch["memory_slots"].cpu().numpy()
        stored = torch.from_numpy(np.asarray(self.memory.logits[slots])).to(z.device)
        valid = torch.from_numpy(np.asarray(self.memory.logit_mask[slots])).to(z.device)
        sq = (z.float() - stored).pow(2) * valid
        mse = sq.sum() / valid.sum().clamp(min=1)
        _, y = self.split(batch, batch["target"])
        _, m = self.split(batch, batch["mask"])
        return {"der_mse": self.alpha_der * mse, "der_bce": self.beta_der * asymmetric_bce(z, y, m)}
