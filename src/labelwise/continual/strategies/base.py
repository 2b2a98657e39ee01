"""The strategy base class: one :class:`~labelwise.engine.Callback` that a continual runner drives across tasks.

A strategy decides, for each task ``t`` of a :class:`~labelwise.continual.ClassIncrementalScenario`:

* the training data (:meth:`Strategy.train_data`; default: the task's partially labelled view);
* the criterion on the current-task rows (:meth:`Strategy.criterion`; default masked BCE);
* extra loss terms (:meth:`Strategy.loss_terms`: distillation, replay, regularisation), given the batch, the
  model's outputs and, when a teacher (the frozen model of task ``t-1``) exists, the teacher's outputs;
* what happens when the task ends (:meth:`Strategy.end_task`: memory update, relabeling, teacher copy).

Replay inside the one trainer
-----------------------------
A strategy with a memory appends a memory mini-batch to every training batch in ``on_before_batch`` (one
forward pass over current + memory samples, as Mammoth's ER/DER++ do). ``batch["n_current"]`` holds the number
of current rows; the criterion only sees those (its per-row losses of memory rows are zero) and is divided
by their number (sum over classes, mean over samples, Eq. 1); replay terms are computed in ``extra_loss`` on
rows ``n_current:``. The teacher runs once per batch on the concatenated inputs (``batch["teacher"]``).

Examples
--------
>>> from labelwise.continual.strategies import create_strategy, list_strategies
>>> "rebll" in list_strategies()
True
>>> create_strategy("finetune").name
'finetune'
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from labelwise.engine import Callback
from labelwise.protocols import Dataset, StrategyTrainerView, TrainerView
from labelwise.registry import Registry

from ..losses import asymmetric_bce
from ..memory import ReplayMemory

if TYPE_CHECKING:
    from ..scenarios import ClassIncrementalScenario

__all__ = ["STRATEGIES", "Strategy", "TaskCriterion", "register_strategy", "create_strategy", "list_strategies"]

STRATEGIES = Registry("continual strategy")
register_strategy = STRATEGIES.register


def create_strategy(name: str, **options: Any) -> Strategy:
    """Instantiate the strategy registered as ``name`` with ``options``.

    An unknown name raises ``KeyError``; an option the strategy does not take raises
    :class:`labelwise.registry.OptionError` (a ``ValueError``) naming it and the accepted ones.

    Examples
    --------
    >>> create_strategy("rebll", alpha=1.0).alpha
    1.0
    """
    return STRATEGIES.create(name, **options)


def list_strategies() -> list[str]:
    """Names accepted by :func:`create_strategy`."""
    return STRATEGIES.names()


class TaskCriterion(nn.Module):
    """The criterion the trainer applies: ``loss_fn`` on the current-task rows, scaled to a per-sample mean.

    ``reduction`` is ``"sum"`` for the trainer (which then adds the terms as they are); element-wise values are
    ``weight * l / (n_current * world_size)`` on the first ``n_current`` rows and 0 on memory rows, so the sum
    is ``weight`` times the batch mean of the per-sample sums over classes.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(logits, targets, mask) -> [B, C]`` element-wise loss (zero outside the mask).
    strategy : Strategy
        Gives ``n_current`` and the world size of the running batch.
    weight : float
        Multiplier (``lambda_akd`` in RebLL's Eq. 9).
    """

    def __init__(self, loss_fn: Callable[..., torch.Tensor], strategy: Strategy, weight: float = 1.0) -> None:
        super().__init__()
        self.loss_fn = loss_fn
        self.strategy = strategy
        self.weight = float(weight)
        self.reduction = "sum"

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        n = self.strategy.n_current if self.strategy.n_current is not None else logits.shape[0]
        n = min(int(n), logits.shape[0])
        m = None if mask is None else mask[:n]
        elem = self.loss_fn(logits[:n], targets[:n], m)
        scale = self.weight / (max(n, 1) * self.strategy.world_size)
        elem = elem * scale
        if n < logits.shape[0]:
            elem = torch.cat([elem, elem.new_zeros((logits.shape[0] - n, elem.shape[1]))])
        return elem if self.reduction == "none" else elem.sum()


def bce_elementwise(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Masked element-wise binary cross-entropy (``[B, C]``)."""
    return asymmetric_bce(logits, targets, mask, reduction="none")


_NOT_OPTIONS = ("n_current", "world_size", "scenario", "task", "teacher", "memory", "eval_transform")


class Strategy(Callback):
    """Base class of multi-label class-incremental strategies (plain fine-tuning when used as is).

    Parameters
    ----------
    memory_per_class : int, optional
        Replay budget per seen class (``2`` = "2/class"). None (default) and no ``memory_total``: no memory.
    memory_total : int, optional
        Fixed replay budget.
    memory_selection : {"reservoir", "herding"}
        How the memory is filled (see :class:`~labelwise.continual.ReplayMemory`).
    replay_batch_size : int, optional
        Memory samples appended to each batch (default: the training batch size).
    seed : int
        Seed of the memory and of the replay draws.
    """

    name = "base"
    uses_teacher = False

    @property
    def needs_teacher_outputs(self) -> bool:
        """Whether the teacher runs on every training batch (``batch["teacher"]``)."""
        return self.uses_teacher

    def __init__(self, *, memory_per_class: int | None = None, memory_total: int | None = None,
                 memory_selection: str = "reservoir", replay_batch_size: int | None = None, seed: int = 0) -> None:
        if memory_per_class is not None and memory_total is not None:
            raise ValueError("give at most one of memory_per_class and memory_total")
        if replay_batch_size is not None and int(replay_batch_size) < 1:
            raise ValueError(f"replay_batch_size must be >= 1, got {replay_batch_size}")
        if memory_selection not in ("reservoir", "herding"):
            raise ValueError(f"memory_selection must be 'reservoir' or 'herding', got {memory_selection!r}")
        self.memory_per_class = memory_per_class
        self.memory_total = memory_total
        self.memory_selection = memory_selection
        self.replay_batch_size = replay_batch_size
        self.seed = int(seed)
        self.scenario: Any = None
        self.task: Any = None
        self.teacher: nn.Module | None = None
        self.memory: ReplayMemory | None = None
        self.n_current: int | None = None
        self.world_size = 1
        self.eval_transform: Any = "inherit"
        self._mem_view: Any = None
        self._term_sums: dict[str, float] = {}
        self._term_steps = 0
        self._step = 0

    # -- options -----------------------------------------------------------------------------------------
    @property
    def uses_memory(self) -> bool:
        return self.memory_per_class is not None or self.memory_total is not None

    def options(self) -> dict[str, Any]:
        """The strategy's options (for the run record)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and isinstance(v, int | float | str | bool | type(None))
                and k not in _NOT_OPTIONS}

    # -- runner interface ----------------------------------------------------------------------------------
    def setup(self, scenario: ClassIncrementalScenario, *, eval_transform: Any = "inherit") -> None:
        """Attach the scenario (called once by the runner). ``eval_transform`` is used to relabel / score memory."""
        self.scenario = scenario
        self.eval_transform = eval_transform
        self.teacher = None
        self.task = None
        if self.uses_memory:
            self.memory = ReplayMemory(scenario.num_classes, per_class=self.memory_per_class, total=self.memory_total,
                                       selection=self.memory_selection, seed=self.seed)

    def skip_task(self, task: int) -> bool:
        """True when the runner should not train (nor evaluate) on ``task`` (e.g. Joint trained once at the end)."""
        return False

    def train_data(self, task: int) -> Dataset:
        """The training dataset of ``task`` (default: the partially labelled task view)."""
        return self.scenario.train_view(task)

    def criterion(self, task: int) -> nn.Module:
        """The criterion on the current-task rows (default: masked BCE, Eq. 1)."""
        return TaskCriterion(bce_elementwise, self)

    def begin_task(self, trainer: StrategyTrainerView, task: int) -> None:
        """Called by the runner before ``trainer.fit`` of ``task``."""
        self.task = self.scenario.task(task)
        self._term_sums, self._term_steps = {}, 0
        self._mem_view = None
        if self.memory is not None and len(self.memory):
            self._mem_view = self.memory.view(self.scenario.train)

    def loss_terms(self, trainer: StrategyTrainerView, batch: dict[str, Any],
                   outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named extra loss terms of one batch (already weighted); default none."""
        return {}

    def end_task(self, trainer: StrategyTrainerView, task: int) -> None:
        """Update the memory and the teacher after ``task`` (default: memory update only)."""
        if self.memory is not None:
            self.update_memory(trainer, task)
        if self.uses_teacher:
            self.set_teacher(trainer.model)

    def term_means(self) -> dict[str, float]:
        """Mean of every extra loss term over the steps of the current task."""
        return {k: v / max(self._term_steps, 1) for k, v in self._term_sums.items()}

    # -- helpers -------------------------------------------------------------------------------------------
    def set_teacher(self, model: nn.Module) -> None:
        """Keep a frozen copy of ``model`` as the teacher (the model of the task that just ended)."""
        teacher = copy.deepcopy(model)
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.teacher = teacher

    def task_partial_labels(self, task: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indices in scenario.train, targets, known) of the training images of ``task`` (partial labels)."""
        idx = self.scenario.task_indices(task)
        view = self.scenario.partial_view(idx, self.scenario.task(task).classes)
        return idx, view.targets, view.known_mask

    def update_memory(self, trainer: StrategyTrainerView, task: int) -> np.ndarray:
        """Offer the images of ``task`` to the memory; returns the slots written."""
        idx, targets, known = self.task_partial_labels(task)
        info = self.scenario.task(task)
        features = None
        if self.memory.selection == "herding":
            view = self.scenario.train.view(idx, transform=self.eval_transform)
            features = extract_features(trainer, trainer.model, view)
        return self.memory.add_task(task, idx, targets, known, num_seen_classes=len(info.seen_classes),
                                    features=features, new_classes=info.classes)

    def predict_memory(self, trainer: StrategyTrainerView, model: nn.Module, slots: np.ndarray) -> np.ndarray:
        """Probabilities ``[len(slots), C]`` of ``model`` on memory ``slots`` (evaluation transform)."""
        if len(slots) == 0:
            return np.zeros((0, self.scenario.num_classes), np.float32)
        view = self.scenario.train.view(self.memory.base_indices[slots], transform=self.eval_transform)
        return trainer.predict(model, view).scores

    # -- callback hooks ------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: StrategyTrainerView) -> None:
        self.world_size = trainer.world_size
        if self.teacher is not None:
            self.teacher.to(trainer.device)

    def on_before_batch(self, trainer: StrategyTrainerView, batch: dict[str, Any]) -> dict[str, Any]:
        self._step += 1
        if batch.get("input") is None:
            self.n_current = 0
            return batch
        n = int(batch["target"].shape[0])
        self.n_current = n
        batch["n_current"] = n
        if self._mem_view is not None:
            batch = self._append_memory(trainer, batch)
        if self.teacher is not None and self.needs_teacher_outputs:
            with torch.no_grad(), trainer.fabric.autocast():
                out = self.teacher(batch["input"])
            batch["teacher"] = {k: (v.float() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in out.items()}
        return batch

    def _append_memory(self, trainer: StrategyTrainerView, batch: dict[str, Any]) -> dict[str, Any]:
        from labelwise.data import collate_batch

        size = len(self._mem_view)
        m = self.replay_batch_size or trainer.config.batch_size
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, self._step, trainer.global_rank,
                                                                         self.task.index]).generate_state(1)[0]))
        if size <= m:
            slots = torch.randperm(size, generator=gen)
        else:
            slots = torch.randperm(size, generator=gen)[:m]
        mem = collate_batch([self._mem_view[int(i)] for i in slots])
        if mem.get("input") is None:
            return batch
        mem = trainer.fabric.to_device(mem)
        out = dict(batch)
        for key in ("input", "target", "mask"):
            out[key] = torch.cat([batch[key], mem[key].to(batch[key].dtype)])
        out["index"] = torch.cat([batch["index"], torch.full_like(mem["index"], -1)])
        out["memory_slots"] = mem["index"]  # positions in the memory view = memory slots
        return out

    def extra_loss(self, trainer: StrategyTrainerView, batch: dict[str, Any],
                   outputs: dict[str, Any]) -> torch.Tensor | None:
        terms = self.loss_terms(trainer, batch, outputs)
        if not terms:
            return None
        total = None
        for k, v in terms.items():
            self._term_sums[k] = self._term_sums.get(k, 0.0) + float(v.detach())
            total = v if total is None else total + v
        self._term_steps += 1
        return total

    def on_task_end(self, trainer: StrategyTrainerView, task: Any) -> None:
        self.end_task(trainer, int(task))

    def state_dict(self) -> dict[str, Any]:
        return {"memory": self.memory.state_dict()} if self.memory is not None and len(self.memory) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "memory" in state and self.memory is not None:
            self.memory.load_state_dict(state["memory"])

    # -- batch helpers -------------------------------------------------------------------------------------
    @staticmethod
    def split(batch: dict[str, Any], tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(current rows, memory rows) of a batch-aligned tensor."""
        n = int(batch.get("n_current", tensor.shape[0]))
        return tensor[:n], tensor[n:]

    def class_mask(self, classes: np.ndarray, device: Any) -> torch.Tensor:
        """Bool ``[C]`` tensor marking ``classes``."""
        return torch.from_numpy(self.scenario.class_mask(classes)).to(device)


@torch.no_grad()
def model_outputs(trainer: TrainerView, model: nn.Module, data: Dataset, *, key: str = "features",
                  batch_size: int = 128) -> np.ndarray:
    """``outputs[key]`` of ``model`` on ``data`` (eval mode), in dataset order, computed on this process."""
    from labelwise.data import collate_batch

    device = trainer.device
    was = model.training
    model.eval()
    rows = []
    try:
        loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate_batch)
        for batch in loader:
            if batch.get("input") is None:
                raise ValueError("an input of the memory could not be read")
            out = model(batch["input"].to(device))
            if key not in out:
                raise KeyError(f"{type(model).__name__} returns no {key!r} output (outputs: {sorted(out)})")
            rows.append(out[key].float().cpu())
    finally:
        model.train(was)
    return torch.cat(rows).numpy() if rows else np.zeros((0, 0), np.float32)


def extract_features(trainer: TrainerView, model: nn.Module, data: Dataset, *,
                     batch_size: int = 128) -> np.ndarray:
    """Pooled features (``outputs["features"]``) of ``model`` on ``data``, in dataset order (for herding)."""
    return model_outputs(trainer, model, data, key="features", batch_size=batch_size)
