"""AGCN (Du et al., ICME 2022): augmented graph convolutional network for lifelong multi-label recognition.

Needs the GCN classifier head (``model.name: agcn``, :mod:`labelwise.models.heads.gcn_classifier`). When task
``t`` starts, the strategy builds the augmented correlation matrix (ACM) over ``C^{1:t}``
(:func:`~labelwise.continual.label_graph.augmented_correlation_matrix`): the new-new block from the task's
hard labels, the old-new and new-old blocks from the task's hard labels and the old model's soft labels on the
same images (the "expert network"), the old-old block from the previous ACM; the head's graph is set to it. Loss
of task ``t > 0``::

    L = lambda_cls * L_cls(C^t) + lambda_kd * L_kd(C^{1:t-1}) + lambda_rp * L_rp

* ``L_cls``, ``L_kd``: binary cross-entropy averaged over the classes (the public code's
  ``MultiLabelSoftMarginLoss``), ``L_kd`` against the old model's probabilities on the old classes;
* ``L_rp`` (relationship preserving): mean squared error between the new and the old GCN's classifiers (the
  graph outputs) of the old classes (the public code's ``MSELoss`` on ``h[:, old]``).

Soft labels: sigmoid probabilities of the old model (``soft_label="sigmoid"``, the paper's soft labels of a
multi-label expert); ``"softmax"`` normalises them over the old classes as the public code does. The ACM is
computed once from the whole task before training (the public code accumulates the same counts batch by batch
during its single epoch). The public script leaves the loss weights ``a, b, c`` undefined; ours are 1.

Examples
--------
>>> from labelwise.continual.strategies import create_strategy
>>> s = create_strategy("agcn")
>>> s.threshold, s.cross_threshold, s.reweight, s.lambda_kd, s.lambda_rp
(0.4, 0.3, 0.25, 1.0, 1.0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labelwise.protocols import StrategyTrainerView

from ..label_graph import augmented_correlation_matrix
from ..losses import asymmetric_bce, binary_kd
from .base import Strategy, TaskCriterion, model_outputs, register_strategy

if TYPE_CHECKING:
    from ..scenarios import ClassIncrementalScenario

__all__ = ["AGCN"]


@register_strategy("agcn")
class AGCN(Strategy):
    """Augmented correlation matrix across tasks + GCN classifiers + KD + relationship-preserving loss.

    Parameters
    ----------
    threshold, cross_threshold, reweight : float
        ACM binarisation thresholds of the intra-task (0.4) and inter-task (0.3) blocks and the neighbour weight
        (0.25).
    soft_label : {"sigmoid", "softmax"}, default "sigmoid"
    lambda_cls, lambda_kd, lambda_rp : float, default 1.0
    seed : int
    """

    name = "agcn"
    uses_teacher = True

    def __init__(self, *, threshold: float = 0.4, cross_threshold: float = 0.3, reweight: float = 0.25,
                 soft_label: str = "sigmoid", lambda_cls: float = 1.0, lambda_kd: float = 1.0,
                 lambda_rp: float = 1.0, seed: int = 0) -> None:
        super().__init__(seed=seed)
        if soft_label not in ("sigmoid", "softmax"):
            raise ValueError(f"soft_label must be 'sigmoid' or 'softmax', got {soft_label!r}")
        if min(threshold, cross_threshold, reweight, lambda_cls, lambda_kd, lambda_rp) < 0:
            raise ValueError("thresholds, reweight and loss weights must be >= 0")
        self.threshold, self.cross_threshold, self.reweight = float(threshold), float(cross_threshold), float(reweight)
        self.soft_label = soft_label
        self.lambda_cls, self.lambda_kd, self.lambda_rp = float(lambda_cls), float(lambda_kd), float(lambda_rp)
        self.acm: np.ndarray | None = None

    def criterion(self, task: int) -> nn.Module:
        scale = 1.0 / max(len(self.scenario.task(task).classes), 1)
        return TaskCriterion(lambda z, y, m: asymmetric_bce(z, y, m, reduction="none") * scale, self,
                             weight=self.lambda_cls)

    def soft_labels(self, logits: np.ndarray, old: np.ndarray) -> np.ndarray:
        """The old model's soft labels ``[N, C]`` (old-class columns filled) from its logits."""
        z = torch.as_tensor(logits, dtype=torch.float32)
        out = torch.zeros_like(z)
        idx = torch.as_tensor(old, dtype=torch.long)
        out[:, idx] = torch.sigmoid(z[:, idx]) if self.soft_label == "sigmoid" else F.softmax(z[:, idx], dim=1)
        return out.numpy()

    def on_fit_start(self, trainer: StrategyTrainerView) -> None:
        super().on_fit_start(trainer)
        head = getattr(trainer.model, "head", None)
        if not callable(getattr(head, "set_adjacency", None)):
            raise TypeError(f"strategy 'agcn' needs the GCN classifier head (model.name: agcn); "
                            f"{type(trainer.model).__name__} has no head.set_adjacency")
        info = self.task
        idx, hard, _ = self.task_partial_labels(info.index)
        soft = None
        if len(info.past_classes):
            if self.teacher is None:
                raise RuntimeError(f"task {info.index} of 'agcn' needs the model of task {info.index - 1}")
            view = self.scenario.train.view(idx, transform=self.eval_transform)
            soft = self.soft_labels(model_outputs(trainer, self.teacher, view, key="logits"), info.past_classes)
        self.acm = augmented_correlation_matrix(
            self.acm, info.past_classes, info.classes, hard, soft, num_classes=self.scenario.num_classes,
            threshold=self.threshold, cross_threshold=self.cross_threshold, reweight=self.reweight)
        head.set_adjacency(self.acm)

    def setup(self, scenario: ClassIncrementalScenario, *, eval_transform: Any = "inherit") -> None:
        super().setup(scenario, eval_transform=eval_transform)
        self.acm = None

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.acm is not None:
            state["acm"] = np.asarray(self.acm, dtype=np.float64).copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "acm" in state:
            self.acm = np.asarray(state["acm"], dtype=np.float64)

    def loss_terms(self, trainer: StrategyTrainerView, batch: dict[str, Any],
                   outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        past = self.task.past_classes
        if not len(past) or "teacher" not in batch:
            return {}
        logits = outputs["logits"]
        n = int(batch.get("n_current", logits.shape[0]))
        old = self.class_mask(past, logits.device)
        terms = {"kd": self.lambda_kd * binary_kd(logits[:n], batch["teacher"]["logits"][:n], old) / len(past)}
        if self.lambda_rp:
            if "classifiers" not in outputs:
                raise KeyError("strategy 'agcn' needs a model returning 'classifiers' (model.name: agcn)")
            pidx = torch.as_tensor(past, dtype=torch.long, device=logits.device)
            w, w_old = outputs["classifiers"][pidx], batch["teacher"]["classifiers"][pidx]
            terms["relation"] = self.lambda_rp * F.mse_loss(w.float(), w_old.float().detach())
        return terms
