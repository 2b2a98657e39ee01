"""CSC (Du et al., ECCV 2024): confidence self-calibration = label-relationship calibration (CI-GCN) +
max-entropy regularisation.

Needs the class-incremental GCN head (``model.name: ci_gcn``, :mod:`labelwise.models.heads.ci_gcn`): before each
task the head's label graph is extended to the seen classes ``C^{1:t}`` (``head.set_active_classes``), the
learnt static graph keeps its old block and gains rows/columns for the new classes, and the per-image dynamic
graph spans the same nodes. Loss of task ``t > 0`` (public code; the first task uses ``L_cls`` alone)::

    L = alpha * L_cls(C^t) + (1 - alpha) * L_kd(C^{1:t-1}) + lambda_entropy * L_me(C^{1:t})

* ``L_cls``: binary cross-entropy on the new classes, **averaged over the classes** (the public code's
  ``MultiLabelSoftMarginLoss``; ``class_mean=False`` sums them, the labelwise convention);
* ``L_kd``: the same loss between the output and the old model's probabilities on the old classes;
* ``L_me = mean_b sum_{c in C^{1:t}} p_c log(p_c + 1e-5)``: the negative (partial) entropy of the seen-class
  outputs; minimising it raises the entropy, i.e. penalises over-confident outputs
  (:func:`~labelwise.continual.losses.max_entropy`; ``entropy="binary"`` uses the full binary entropy).

Defaults are the public code's: ``alpha = 0.5`` (its help text says 0.15), ``lambda_entropy = 0.04`` (its
``beta = -0.04`` with ``loss_ent = -beta * ...``), no memory (``replay=False`` there; RebLL's tables run CSC
with buffer 0). ``memory_per_class`` adds a replay term ``replay_alpha * L_cls`` on the memory's known labels
(``replay_alpha = 0.5``).

Examples
--------
>>> from labelwise.continual.strategies import create_strategy
>>> s = create_strategy("csc")
>>> s.alpha, s.lambda_entropy, s.entropy, s.uses_teacher, s.uses_memory
(0.5, 0.04, 'partial', True, False)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from labelwise.protocols import StrategyTrainerView

from ..losses import asymmetric_bce, binary_kd, max_entropy
from .base import Strategy, TaskCriterion, register_strategy

__all__ = ["CSC"]


@register_strategy("csc")
class CSC(Strategy):
    """Class-incremental GCN graph extension + KD + max-entropy regularisation.

    Parameters
    ----------
    alpha : float, default 0.5
        Weight of ``L_cls``; ``1 - alpha`` weighs ``L_kd`` (tasks after the first).
    lambda_entropy : float, default 0.04
        Weight of ``L_me``.
    entropy : {"partial", "binary"}, default "partial"
        ``p log p`` (public code) or the binary entropy.
    class_mean : bool, default True
        Average ``L_cls``/``L_kd`` over classes (public code) instead of summing.
    replay_alpha : float, default 0.5
        Weight of the replay term when a memory is configured.
    memory_per_class, memory_total, memory_selection, replay_batch_size, seed
        See :class:`~labelwise.continual.strategies.base.Strategy` (default: no memory).
    """

    name = "csc"
    uses_teacher = True

    def __init__(self, *, alpha: float = 0.5, lambda_entropy: float = 0.04, entropy: str = "partial",
                 class_mean: bool = True, replay_alpha: float = 0.5, memory_per_class: int | None = None,
                 memory_total: int | None = None, memory_selection: str = "reservoir",
                 replay_batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__(memory_per_class=memory_per_class, memory_total=memory_total,
                         memory_selection=memory_selection, replay_batch_size=replay_batch_size, seed=seed)
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if entropy not in ("partial", "binary"):
            raise ValueError(f"entropy must be 'partial' or 'binary', got {entropy!r}")
        if lambda_entropy < 0 or replay_alpha < 0:
            raise ValueError("lambda_entropy and replay_alpha must be >= 0")
        self.alpha = float(alpha)
        self.lambda_entropy = float(lambda_entropy)
        self.entropy = entropy
        self.class_mean = bool(class_mean)
        self.replay_alpha = float(replay_alpha)

    def _scale(self, classes: Any) -> float:
        return 1.0 / max(len(classes), 1) if self.class_mean else 1.0

    def criterion(self, task: int) -> nn.Module:
        info = self.scenario.task(task)
        scale = self._scale(info.classes)
        weight = self.alpha if task > 0 else 1.0
        return TaskCriterion(lambda z, y, m: asymmetric_bce(z, y, m, reduction="none") * scale, self, weight=weight)

    def on_fit_start(self, trainer: StrategyTrainerView) -> None:
        super().on_fit_start(trainer)
        head = getattr(trainer.model, "head", None)
        if not callable(getattr(head, "set_active_classes", None)):
            raise TypeError(f"strategy 'csc' needs the class-incremental GCN head (model.name: ci_gcn); "
                            f"{type(trainer.model).__name__} has no head.set_active_classes")
        head.set_active_classes(torch.as_tensor(self.task.seen_classes))

    def loss_terms(self, trainer: StrategyTrainerView, batch: dict[str, Any],
                   outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        logits = outputs["logits"]
        n = int(batch.get("n_current", logits.shape[0]))
        past = self.task.past_classes
        if len(past) and "teacher" in batch:
            old = self.class_mask(past, logits.device)
            kd = binary_kd(logits[:n], batch["teacher"]["logits"][:n], old) * self._scale(past)
            terms["kd"] = (1 - self.alpha) * kd
            if self.lambda_entropy:
                seen = self.class_mask(self.task.seen_classes, logits.device)
                terms["max_entropy"] = self.lambda_entropy * max_entropy(logits, seen, form=self.entropy)
        if logits.shape[0] > n:
            y, m = batch["target"][n:], batch["mask"][n:]
            terms["replay"] = self.replay_alpha * asymmetric_bce(logits[n:], y, m) * self._scale(self.task.past_classes)
        return terms
