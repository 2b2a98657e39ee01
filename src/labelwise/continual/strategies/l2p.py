"""L2P (Wang et al., CVPR 2022) for multi-label class-incremental learning: a prompt pool on a frozen ViT.

Needs the prompt-pool model (``model.name: l2p``, :mod:`labelwise.models.prompt_pool`). Loss of task ``t``::

    L = L_bce(C^t) + lambda_pull * mean_b sum_{m in K_x} (1 - cos(q(x), k_m))

* Only the prompts, the keys and the classifier train (the ViT is frozen).
* The classification loss only sees the current classes ``C^t`` (L2P masks the logits of the other classes of
  the task; with sigmoid outputs and the task's known-label mask the other classes get no gradient, which is
  the same thing);
* the surrogate loss pulls the ``N`` selected keys ``K_x`` towards the query of the image
  (``outputs["key_similarity"]``, the cosine of each selected key).

``lambda_pull = 0.1`` is the pull-constraint coefficient of the public PyTorch re-implementation
(l2p-pytorch); BCE replaces the single-label softmax cross-entropy. No memory (L2P is rehearsal-free).

Examples
--------
>>> import torch
>>> from labelwise.continual.strategies import create_strategy
>>> s = create_strategy("l2p")
>>> s.lambda_pull, s.uses_teacher, s.uses_memory
(0.1, False, False)
>>> float(surrogate_loss(torch.tensor([[1.0, 0.5], [0.0, 1.0]])))    # mean over 2 images of sum (1 - cos)
0.75
"""

from __future__ import annotations

from typing import Any

import torch

from labelwise.protocols import StrategyTrainerView

from .base import Strategy, register_strategy

__all__ = ["L2P", "surrogate_loss"]


def surrogate_loss(key_similarity: torch.Tensor) -> torch.Tensor:
    """``mean_b sum_n (1 - cos(q_b, k_{b,n}))`` over the selected keys ``[B, N]``."""
    return (1 - key_similarity.float()).sum(dim=1).mean()


@register_strategy("l2p")
class L2P(Strategy):
    """Masked BCE on the current task + the key-query surrogate loss.

    Parameters
    ----------
    lambda_pull : float, default 0.1
        Weight of the surrogate (key pull) loss.
    seed : int
    """

    name = "l2p"

    def __init__(self, *, lambda_pull: float = 0.1, seed: int = 0) -> None:
        super().__init__(seed=seed)
        if lambda_pull < 0:
            raise ValueError(f"lambda_pull must be >= 0, got {lambda_pull}")
        self.lambda_pull = float(lambda_pull)

    def loss_terms(self, trainer: StrategyTrainerView, batch: dict[str, Any],
                   outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        if "key_similarity" not in outputs:
            raise KeyError("strategy 'l2p' needs the prompt-pool model (model.name: l2p) returning 'key_similarity'")
        if not self.lambda_pull:
            return {}
        return {"pull": self.lambda_pull * surrogate_loss(outputs["key_similarity"])}
