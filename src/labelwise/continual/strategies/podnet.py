"""PODNet (Douillard et al. 2020) for multi-label outputs: pooled-output distillation plus replay.

``L = L_bce(current) + L_bce(memory) + w_t (lambda_spatial * POD-spatial(feature maps) + lambda_flat *
POD-flat(pooled features))`` with the adaptive weight ``w_t = sqrt(|C^{1:t}| / |C^t|)`` of PODNet, on every
sample of the batch (current and memory) against the model of the previous task.

Deviations: POD-spatial is applied to the backbone's final feature map (labelwise models expose that one
map); the classifier stays the model's own head with BCE (PODNet's LSC cosine classifier and NCA loss are
single-label softmax constructs).

Examples
--------
>>> from labelwise.continual.strategies import create_strategy
>>> s = create_strategy("podnet")
>>> s.lambda_spatial, s.lambda_flat, s.uses_teacher
(3.0, 1.0, True)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from labelwise.protocols import StrategyTrainerView

from ..losses import asymmetric_bce, pod_flat, pod_spatial
from .base import Strategy, register_strategy

__all__ = ["PODNet"]


@register_strategy("podnet")
class PODNet(Strategy):
    """Pooled-output distillation on feature maps and pooled features, with reservoir replay.

    Parameters
    ----------
    lambda_spatial : float, default 3.0
        Weight of POD-spatial (PODNet's CIFAR100 value).
    lambda_flat : float, default 1.0
        Weight of POD-flat.
    memory_per_class, memory_total, memory_selection, replay_batch_size, seed
        See :class:`~labelwise.continual.strategies.base.Strategy` (default budget 2 per class).
    """

    name = "podnet"
    uses_teacher = True

    def __init__(self, *, lambda_spatial: float = 3.0, lambda_flat: float = 1.0, memory_per_class: int | None = 2,
                 memory_total: int | None = None, memory_selection: str = "reservoir",
                 replay_batch_size: int | None = None, seed: int = 0) -> None:
        if memory_total is not None:
            memory_per_class = None
        super().__init__(memory_per_class=memory_per_class, memory_total=memory_total,
                         memory_selection=memory_selection, replay_batch_size=replay_batch_size, seed=seed)
        self.lambda_spatial = float(lambda_spatial)
        self.lambda_flat = float(lambda_flat)

    def loss_terms(self, trainer: StrategyTrainerView, batch: dict[str, Any],
                   outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        _, z = self.split(batch, outputs["logits"])
        if z.shape[0]:
            _, y = self.split(batch, batch["target"])
            _, m = self.split(batch, batch["mask"])
            terms["replay"] = asymmetric_bce(z, y, m)
        if "teacher" in batch:
            w = math.sqrt(len(self.task.seen_classes) / len(self.task.classes))
            t = batch["teacher"]
            if "feature_map" not in outputs or "features" not in outputs:
                raise KeyError("PODNet needs models returning 'feature_map' and 'features'")
            terms["pod_spatial"] = w * self.lambda_spatial * pod_spatial(outputs["feature_map"], t["feature_map"])
            terms["pod_flat"] = w * self.lambda_flat * pod_flat(outputs["features"], t["features"])
        return terms
