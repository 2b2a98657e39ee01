"""RebLL (Du et al., AAAI 2025): asymmetric knowledge distillation (AKD) + online relabeling (OR).

Loss of task ``t`` (Eq. 9)::

    L = lambda_akd * L_cls + (1 - lambda_akd) * L_akd + lambda_er * L_er

* ``L_cls`` (Eq. 3-4): BCE on ``C^t`` with the positive part down-weighted by ``(1 - p)^{alpha ln|C^{1:t}|}``
  (= ASL with ``gamma_pos = alpha ln|C^{1:t}|, gamma_neg = 0, clip = 0``).
* ``L_akd`` (Eq. 5-6): KD on ``C^{1:t-1}`` with the old model's probabilities as targets and the same
  down-weighting of the positive part.
* ``L_er`` (Eq. 7-8): BCE on the relabelled memory over ``C^{1:t-1}`` with the *negative* part down-weighted by
  ``p^{beta ln|C^{1:t}|}``.
* Online relabeling (Fig. 3), after task ``t``: the memory images drawn from tasks ``1..t-1`` get labels for
  ``C^t`` from the new model ``f^t``; the memory images drawn from task ``t`` get labels for ``C^{1:t-1}`` from
  the old model ``f^{t-1}``; a label is positive when the probability exceeds ``relabel_threshold``.

On the first task (no old model) ``L = L_cls``. Every row of the ablation tables is a switch:

==========================  =====================================================================
Table 4 Fine-Tuning (Lbce)  ``cls_loss="bce", distill=None, replay=False``  (= strategy ``finetune``)
Table 4 AKD (Lcls)          ``cls_loss="asymmetric", distill=None, replay=False``
Table 4 KD (Lbce + Lkd)     ``cls_loss="bce", distill="kd", replay=False``  (= strategy ``kd``)
Table 4 AKD (Lcls + Lakd)   ``replay=False``                                 (= strategy ``akd``)
Table 5 + Replay (Lbce)     ``relabel=False, replay_loss="bce"``
Table 5 + OR (Lbce)         ``replay_loss="bce"``
Table 5 + OR (Ler)          defaults                                         (= strategy ``rebll``)
Table 6 fixed factor        ``decay="fixed", alpha=2.0``
==========================  =====================================================================

The relabeling threshold ``n`` is not given in the paper; the default 0.5 is ours. ``log`` is the natural
logarithm.

Examples
--------
>>> from labelwise.continual.strategies import create_strategy
>>> s = create_strategy("rebll")
>>> s.alpha, s.beta, s.lambda_akd, s.lambda_er, s.memory_per_class
(1.2, 0.7, 0.15, 0.3, 2)
>>> create_strategy("akd").uses_memory, create_strategy("kd").distill
(False, 'kd')
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import nn

from labelwise.protocols import StrategyTrainerView

from ..losses import asymmetric_bce, binary_kd, decay_exponent
from .base import Strategy, TaskCriterion, register_strategy

__all__ = ["RebLL", "AKD", "KD"]


@register_strategy("rebll")
class RebLL(Strategy):
    """Rebalanced multi-label class-incremental learning: AKD (loss level) + OR (label level).

    Parameters
    ----------
    alpha : float, default 1.2
        Decay factor of the positive parts of ``L_cls`` and ``L_akd``.
    beta : float, default 0.7
        Decay factor of the negative part of ``L_er``.
    lambda_akd : float, default 0.15
        Weight of ``L_cls`` (``1 - lambda_akd`` weighs ``L_akd``), Eq. 9.
    lambda_er : float, default 0.30
        Weight of ``L_er``.
    decay : {"adaptive", "fixed"}, default "adaptive"
        Exponent ``factor * ln|C^{1:t}|`` or the constant ``factor`` (Table 6).
    cls_loss : {"asymmetric", "bce"}, default "asymmetric"
        ``L_cls`` (Eq. 3-4) or plain BCE (Eq. 1).
    distill : {"akd", "kd", None}, default "akd"
        ``L_akd`` (Eq. 5-6), ``L_kd`` (Eq. 2), or no distillation.
    distill_memory : bool, default False
        Also distil on the replayed memory images (the paper distils the training images).
    replay : bool, default True
        Keep a memory and replay it.
    relabel : bool, default True
        Online relabeling of the memory (OR, first step).
    replay_loss : {"er", "bce"}, default "er"
        ``L_er`` (Eq. 7-8) or plain BCE on the memory's known labels.
    relabel_threshold : float, default 0.5
        ``n``: a relabelled class is positive when the relabeling model's probability is ``> n``.
    memory_per_class : int, default 2
        Budget per seen class (2 for VOC, 5 for COCO in the paper); ``memory_total`` for a fixed budget.
    memory_total, memory_selection, replay_batch_size, seed
        See :class:`~labelwise.continual.strategies.base.Strategy`.
    """

    name = "rebll"

    def __init__(self, *, alpha: float = 1.2, beta: float = 0.7, lambda_akd: float = 0.15, lambda_er: float = 0.30,
                 decay: str = "adaptive", cls_loss: str = "asymmetric", distill: str | None = "akd",
                 distill_memory: bool = False, replay: bool = True, relabel: bool = True, replay_loss: str = "er",
                 relabel_threshold: float = 0.5, memory_per_class: int | None = 2, memory_total: int | None = None,
                 memory_selection: str = "reservoir", replay_batch_size: int | None = None, seed: int = 0) -> None:
        if decay not in ("adaptive", "fixed"):
            raise ValueError(f"decay must be 'adaptive' or 'fixed', got {decay!r}")
        if cls_loss not in ("asymmetric", "bce"):
            raise ValueError(f"cls_loss must be 'asymmetric' or 'bce', got {cls_loss!r}")
        if distill not in ("akd", "kd", None):
            raise ValueError(f"distill must be 'akd', 'kd' or None, got {distill!r}")
        if replay_loss not in ("er", "bce"):
            raise ValueError(f"replay_loss must be 'er' or 'bce', got {replay_loss!r}")
        if not 0 <= lambda_akd <= 1:
            raise ValueError(f"lambda_akd must be in [0, 1], got {lambda_akd}")
        if alpha < 0 or beta < 0 or lambda_er < 0:
            raise ValueError("alpha, beta and lambda_er must be >= 0")
        if not 0 < relabel_threshold < 1:
            raise ValueError(f"relabel_threshold must be in (0, 1), got {relabel_threshold}")
        if not replay:
            memory_per_class = memory_total = None
        elif memory_total is not None:
            memory_per_class = None
        elif memory_per_class is None:
            raise ValueError("replay=True needs memory_per_class or memory_total")
        super().__init__(memory_per_class=memory_per_class, memory_total=memory_total,
                         memory_selection=memory_selection, replay_batch_size=replay_batch_size, seed=seed)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.lambda_akd = float(lambda_akd)
        self.lambda_er = float(lambda_er)
        self.decay = decay
        self.cls_loss = cls_loss
        self.distill = distill
        self.distill_memory = bool(distill_memory)
        self.replay = bool(replay)
        self.relabel = bool(relabel) and self.replay
        self.replay_loss = replay_loss
        self.relabel_threshold = float(relabel_threshold)

    @property
    def uses_teacher(self) -> bool:  # type: ignore[override]
        return self.distill is not None or self.relabel

    @property
    def needs_teacher_outputs(self) -> bool:
        return self.distill is not None

    # -- exponents -----------------------------------------------------------------------------------------
    def gamma_pos(self, task: int) -> float:
        """Exponent of the positive parts of ``L_cls`` / ``L_akd`` at ``task``."""
        return decay_exponent(self.alpha, len(self.scenario.task(task).seen_classes), adaptive=self.decay == "adaptive")

    def gamma_neg(self, task: int) -> float:
        """Exponent of the negative part of ``L_er`` at ``task``."""
        return decay_exponent(self.beta, len(self.scenario.task(task).seen_classes), adaptive=self.decay == "adaptive")

    # -- losses --------------------------------------------------------------------------------------------
    def criterion(self, task: int) -> nn.Module:
        gamma = self.gamma_pos(task) if self.cls_loss == "asymmetric" else 0.0
        fn = functools.partial(asymmetric_bce, gamma_pos=gamma, gamma_neg=0.0, reduction="none")
        has_kd = self.distill is not None and task > 0
        return TaskCriterion(lambda z, y, m: fn(z, y, m), self, weight=self.lambda_akd if has_kd else 1.0)

    def loss_terms(self, trainer: StrategyTrainerView, batch: dict[str, Any],
                   outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        past = self.task.past_classes
        if len(past) == 0:
            return terms
        logits = outputs["logits"]
        past_mask = self.class_mask(past, logits.device)
        if self.distill is not None and "teacher" in batch:
            z, zt = logits, batch["teacher"]["logits"]
            if not self.distill_memory:
                z, _ = self.split(batch, z)
                zt, _ = self.split(batch, zt)
            gamma = self.gamma_pos(self.task.index) if self.distill == "akd" else 0.0
            terms["l_" + self.distill] = (1 - self.lambda_akd) * binary_kd(z, zt, past_mask, gamma_pos=gamma)
        _, zm = self.split(batch, logits)
        if zm.shape[0]:
            _, y = self.split(batch, batch["target"])
            _, m = self.split(batch, batch["mask"])
            gamma = self.gamma_neg(self.task.index) if self.replay_loss == "er" else 0.0
            terms["l_er"] = self.lambda_er * asymmetric_bce(zm, y, m & past_mask, gamma_neg=gamma)
        return terms

    # -- online relabeling ---------------------------------------------------------------------------------
    def end_task(self, trainer: StrategyTrainerView, task: int) -> None:
        if self.memory is not None:
            self.update_memory(trainer, task)
            if self.relabel:
                self.relabel_memory(trainer, task, new_model=trainer.model, old_model=self.teacher)
        if self.uses_teacher:
            self.set_teacher(trainer.model)

    def relabel_memory(self, trainer: StrategyTrainerView, task: int, *, new_model: nn.Module,
                       old_model: nn.Module | None) -> None:
        """OR step 1 (Fig. 3) after ``task``: ``C^t`` on older memory with ``new_model``; ``C^{1:t-1}`` on
        the memory drawn from ``task`` with ``old_model``."""
        info = self.scenario.task(task)
        mem = self.memory
        older = np.flatnonzero(mem.task < task)
        if len(older):
            mem.relabel(older, info.classes, self.predict_memory(trainer, new_model, older),
                        threshold=self.relabel_threshold)
        current = np.flatnonzero(mem.task == task)
        if len(current) and len(info.past_classes):
            if old_model is None:
                raise RuntimeError(f"relabeling after task {task} needs the model of task {task - 1}")
            mem.relabel(current, info.past_classes, self.predict_memory(trainer, old_model, current),
                        threshold=self.relabel_threshold)


@register_strategy("akd")
class AKD(RebLL):
    """RebLL's AKD alone (``L_cls + L_akd``, no memory): Table 1/2 "RebLL (AKD)" and Table 4's last row."""

    name = "akd"

    def __init__(self, **options: Any) -> None:
        options.setdefault("replay", False)
        super().__init__(**options)


@register_strategy("kd")
class KD(RebLL):
    """The KD baseline of RebLL (Eq. 1-2): ``lambda_akd * L_bce + (1 - lambda_akd) * L_kd``, no memory."""

    name = "kd"

    def __init__(self, **options: Any) -> None:
        options.setdefault("replay", False)
        options.setdefault("cls_loss", "bce")
        options.setdefault("distill", "kd")
        super().__init__(**options)
