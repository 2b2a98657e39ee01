"""KRT (Dong et al., ICCV 2023): knowledge restoration (dynamic pseudo-labels) and knowledge transfer (tokens).

Needs a model with label-specific token outputs: ``model.name: krt`` (the class-token cross-attention head,
:mod:`labelwise.models.heads.class_tokens`). Loss of task ``t``::

    L = ASL(z, y; C^t) + ASL(z, y_hat; C^{1:t-1}) + lambda_token * L_token (+ ASL on replayed memory labels)

* **Knowledge restoration (dynamic pseudo-labels, DPL)**: the old model ``f^{t-1}`` labels the old classes
  ``C^{1:t-1}`` of every new-task image: ``y_hat_c = 1[sigmoid(f^{t-1}(x))_c > tau_t]`` (positive above the
  threshold, negative otherwise), and the ASL classification loss covers them like ground truth.
  ``tau_t`` starts at ``pseudo_threshold`` (0.8). With ``pseudo_label_cardinality`` (KRT: 1.4 on VOC, 2.9 on
  COCO) the threshold is *dynamic*: before each task it moves in steps of ``pseudo_threshold_step`` (0.005)
  until the mean number of pseudo-labels per training image reaches the target
  ``cardinality * |C^{1:t-1}| / C`` (lowered while there are too few, raised while there are too many, within
  ``[pseudo_threshold_min, 1)``).
* **Knowledge transfer**: the head's per-class retention tokens of old classes are frozen when a task starts
  (``head.freeze_classes``); the shared transfer token keeps training. The **token loss** distils the old
  model's token outputs of the old classes: ``L_token = mean_b sum_{c in C^{1:t-1}} (1 - cos(e_bc, e_bc^old))``.
* Classification loss: ASL with ``gamma_neg = 4``, ``gamma_pos = 0``, ``clip = 0.05`` (KRT's), summed over
  classes, averaged over samples.

Memory: none by default (RebLL's tables run KRT with buffer 0); ``memory_per_class`` with
``memory_selection="herding"`` gives KRT's iCaRL exemplars, replayed with ASL on their known labels.

Examples
--------
>>> from labelwise.continual.strategies import create_strategy
>>> s = create_strategy("krt")
>>> s.pseudo_threshold, s.lambda_token, s.gamma_neg, s.clip, s.uses_memory
(0.8, 1.0, 4.0, 0.05, False)
>>> dynamic_threshold(np.array([[0.9, 0.7], [0.6, 0.1]]), target=1.0, start=0.8, step=0.05, minimum=0.5)
0.65
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from labelwise.losses import asymmetric_loss
from labelwise.protocols import StrategyTrainerView

from ..losses import token_distillation
from .base import Strategy, TaskCriterion, model_outputs, register_strategy

__all__ = ["KRT", "dynamic_threshold", "restore_labels"]


def restore_labels(teacher_logits: torch.Tensor, old_mask: torch.Tensor, threshold: float) -> torch.Tensor:
    """KRT's knowledge restoration: 0/1 pseudo-labels ``1[sigmoid(z_old) > threshold]`` on the old classes
    (``old_mask``), 0 elsewhere.

    Examples
    --------
    >>> z = torch.tensor([[3.0, -3.0, 3.0]])
    >>> restore_labels(z, torch.tensor([True, True, False]), 0.8).tolist()
    [[1.0, 0.0, 0.0]]
    """
    p = torch.sigmoid(teacher_logits.float())
    return ((p > threshold) & old_mask.to(p.device)).float()


def dynamic_threshold(probs: np.ndarray, *, target: float, start: float = 0.8, step: float = 0.005,
                      minimum: float = 0.5) -> float:
    """The threshold on ``probs`` ``[N, K]`` (old-class probabilities) whose mean count of positives per image
    reaches ``target``, moving from ``start`` in steps of ``step`` (down while too few, up while too many)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.size == 0:
        return float(start)

    def mean_count(tau: float) -> float:
        return float((probs > tau).sum(axis=1).mean())

    tau = float(start)
    if mean_count(tau) < target:
        while tau - step >= minimum - 1e-12 and mean_count(tau) < target:
            tau -= step
    else:
        while tau + step < 1.0 and mean_count(tau + step) >= target:
            tau += step
    return round(tau, 10)


@register_strategy("krt")
class KRT(Strategy):
    """Knowledge restoration (old-class pseudo-labels) and transfer (frozen class tokens + token distillation).

    Parameters
    ----------
    pseudo_threshold : float, default 0.8
        Pseudo-label threshold (the start of the dynamic threshold).
    pseudo_label_cardinality : float, optional
        Mean labels per image of the full dataset (KRT: VOC 1.4, COCO 2.9); enables the dynamic threshold.
    pseudo_threshold_step : float, default 0.005
    pseudo_threshold_min : float, default 0.5
    lambda_token : float, default 1.0
        Weight of the token distillation.
    gamma_neg, gamma_pos, clip : float
        ASL parameters (KRT: 4, 0, 0.05).
    memory_per_class, memory_total, memory_selection, replay_batch_size, seed
        See :class:`~labelwise.continual.strategies.base.Strategy` (default: no memory).
    """

    name = "krt"
    uses_teacher = True

    def __init__(self, *, pseudo_threshold: float = 0.8, pseudo_label_cardinality: float | None = None,
                 pseudo_threshold_step: float = 0.005, pseudo_threshold_min: float = 0.5, lambda_token: float = 1.0,
                 gamma_neg: float = 4.0, gamma_pos: float = 0.0, clip: float = 0.05,
                 memory_per_class: int | None = None, memory_total: int | None = None,
                 memory_selection: str = "reservoir", replay_batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__(memory_per_class=memory_per_class, memory_total=memory_total,
                         memory_selection=memory_selection, replay_batch_size=replay_batch_size, seed=seed)
        if not 0 < pseudo_threshold < 1 or not 0 < pseudo_threshold_min <= pseudo_threshold:
            raise ValueError(f"need 0 < pseudo_threshold_min <= pseudo_threshold < 1, got {pseudo_threshold_min}, "
                             f"{pseudo_threshold}")
        if pseudo_threshold_step <= 0:
            raise ValueError(f"pseudo_threshold_step must be > 0, got {pseudo_threshold_step}")
        if pseudo_label_cardinality is not None and pseudo_label_cardinality <= 0:
            raise ValueError(f"pseudo_label_cardinality must be > 0, got {pseudo_label_cardinality}")
        if lambda_token < 0:
            raise ValueError(f"lambda_token must be >= 0, got {lambda_token}")
        self.pseudo_threshold = float(pseudo_threshold)
        self.pseudo_label_cardinality = None if pseudo_label_cardinality is None else float(pseudo_label_cardinality)
        self.pseudo_threshold_step = float(pseudo_threshold_step)
        self.pseudo_threshold_min = float(pseudo_threshold_min)
        self.lambda_token = float(lambda_token)
        self.gamma_neg, self.gamma_pos, self.clip = float(gamma_neg), float(gamma_pos), float(clip)
        self.threshold: float = self.pseudo_threshold  # the threshold of the running task
        self.thresholds: list[float] = []

    def _asl(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return asymmetric_loss(logits, targets, mask, gamma_neg=self.gamma_neg, gamma_pos=self.gamma_pos,
                               clip=self.clip, reduction="none")

    def criterion(self, task: int) -> nn.Module:
        return TaskCriterion(self._asl, self)

    def on_fit_start(self, trainer: StrategyTrainerView) -> None:
        super().on_fit_start(trainer)
        head = getattr(trainer.model, "head", None)
        if not callable(getattr(head, "freeze_classes", None)):
            raise TypeError(f"strategy 'krt' needs the class-token head (model.name: krt); "
                            f"{type(trainer.model).__name__} has no head.freeze_classes")
        past = self.task.past_classes
        if len(past):
            head.freeze_classes(torch.as_tensor(past))
        self.threshold = self.pseudo_threshold
        if len(past) and self.pseudo_label_cardinality is not None and self.teacher is not None:
            view = self.scenario.train.view(self.scenario.task_indices(self.task.index), transform=self.eval_transform)
            z = model_outputs(trainer, self.teacher, view, key="logits")
            probs = 1.0 / (1.0 + np.exp(-z[:, past]))
            target = self.pseudo_label_cardinality * len(past) / self.scenario.num_classes
            self.threshold = dynamic_threshold(probs, target=target, start=self.pseudo_threshold,
                                               step=self.pseudo_threshold_step, minimum=self.pseudo_threshold_min)
        if len(past):
            self.thresholds.append(self.threshold)

    def loss_terms(self, trainer: StrategyTrainerView, batch: dict[str, Any],
                   outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        logits = outputs["logits"]
        past = self.task.past_classes
        n = int(batch.get("n_current", logits.shape[0]))
        if "teacher" in batch and len(past):
            old = self.class_mask(past, logits.device)
            z, zt = logits[:n], batch["teacher"]["logits"][:n]
            pseudo = restore_labels(zt, old, self.threshold)
            terms["restore"] = self._asl(z, pseudo, old.expand_as(z)).sum() / max(n, 1)
            if self.lambda_token:
                if "label_features" not in outputs:
                    raise KeyError("strategy 'krt' needs a model returning 'label_features' (model.name: krt)")
                terms["token"] = self.lambda_token * token_distillation(
                    outputs["label_features"][:n], batch["teacher"]["label_features"][:n], old)
        if logits.shape[0] > n:
            y, m = batch["target"][n:], batch["mask"][n:]
            terms["replay"] = self._asl(logits[n:], y, m).sum() / (logits.shape[0] - n)
        return terms
