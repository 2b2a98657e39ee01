"""Learning without Forgetting (Li & Hoiem 2017) for sigmoid outputs.

``L = L_bce(C^t) + lambda_lwf * T^2 * BCE(sigmoid(z_old / T), sigmoid(z / T))`` over the old classes
``C^{1:t-1}`` of the current images (the teacher is the model of the previous task).

Examples
--------
>>> from labelwise.continual.strategies import create_strategy
>>> s = create_strategy("lwf", temperature=2.0)
>>> s.uses_teacher, s.temperature
(True, 2.0)
"""

from __future__ import annotations

from typing import Any

import torch

from labelwise.protocols import StrategyTrainerView

from ..losses import temperature_kd
from .base import Strategy, register_strategy

__all__ = ["LwF"]


@register_strategy("lwf")
class LwF(Strategy):
    """BCE on the new classes plus temperature-scaled binary distillation on the old ones.

    Parameters
    ----------
    lambda_lwf : float, default 1.0
        Weight of the distillation term.
    temperature : float, default 2.0
        Distillation temperature ``T`` (LwF's value).
    seed : int
    """

    name = "lwf"
    uses_teacher = True

    def __init__(self, *, lambda_lwf: float = 1.0, temperature: float = 2.0, seed: int = 0) -> None:
        super().__init__(seed=seed)
        if lambda_lwf < 0 or temperature <= 0:
            raise ValueError(f"lambda_lwf must be >= 0 and temperature > 0, got {lambda_lwf}, {temperature}")
        self.lambda_lwf = float(lambda_lwf)
        self.temperature = float(temperature)

    def loss_terms(self, trainer: StrategyTrainerView, batch: dict[str, Any],
                   outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        if "teacher" not in batch or len(self.task.past_classes) == 0:
            return {}
        cur, _ = self.split(batch, outputs["logits"])
        old, _ = self.split(batch, batch["teacher"]["logits"])
        mask = self.class_mask(self.task.past_classes, cur.device)
        kd = temperature_kd(cur, old, mask, temperature=self.temperature)
        return {"lwf": self.lambda_lwf * kd}
