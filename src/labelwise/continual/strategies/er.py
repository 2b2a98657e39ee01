"""Experience replay (Rolnick et al. 2019) with a reservoir memory of partially labelled images.

Every batch is extended with a memory mini-batch; ``L = L_bce(current, C^t) + lambda_replay *
L_bce(memory, known labels)``. Memory images keep the partial labels of the task they came from (the
"classical replay" of RebLL's Fig. 3; no relabeling).

Examples
--------
>>> from labelwise.continual.strategies import create_strategy
>>> create_strategy("er", memory_per_class=2).uses_memory
True
"""

from __future__ import annotations

from typing import Any

import torch

from labelwise.protocols import StrategyTrainerView

from ..losses import asymmetric_bce
from .base import Strategy, register_strategy

__all__ = ["ER"]


@register_strategy("er")
class ER(Strategy):
    """Reservoir replay with masked BCE on the memory's known labels.

    Parameters
    ----------
    memory_per_class, memory_total, memory_selection, replay_batch_size, seed
        See :class:`~labelwise.continual.strategies.base.Strategy` (default budget: 2 per class).
    lambda_replay : float, default 1.0
        Weight of the memory term (1: current and memory batches count equally).
    """

    name = "er"

    def __init__(self, *, memory_per_class: int | None = 2, memory_total: int | None = None,
                 memory_selection: str = "reservoir", replay_batch_size: int | None = None,
                 lambda_replay: float = 1.0, seed: int = 0) -> None:
        if memory_total is not None:
            memory_per_class = None
        super().__init__(memory_per_class=memory_per_class, memory_total=memory_total,
                         memory_selection=memory_selection, replay_batch_size=replay_batch_size, seed=seed)
        self.lambda_replay = float(lambda_replay)

    def loss_terms(self, trainer: StrategyTrainerView, batch: dict[str, Any],
                   outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        _, mem_logits = self.split(batch, outputs["logits"])
        if mem_logits.shape[0] == 0:
            return {}
        _, y = self.split(batch, batch["target"])
        _, m = self.split(batch, batch["mask"])
        return {"replay": self.lambda_replay * asymmetric_bce(mem_logits, y, m)}
