"""Shared machinery of the batch-selection samplers: epochs and seeds, warm-up, the per-sample loss table,
the selection loss, DDP gathering and checkpoint state.

A sampler is both a *global batch sampler* (the protocol of :mod:`labelwise.engine.samplers`:
``__iter__`` yielding lists of dataset indices, ``__len__``, ``set_epoch``, ``state_dict`` /
``load_state_dict``) and a trainer :class:`~labelwise.engine.Callback` whose ``on_after_batch`` records
the per-sample selection losses of the batch just trained on.

Determinism under DDP: the batch of step ``t`` of epoch ``e`` is drawn from
``numpy.random.default_rng([seed, e, t])`` and from the loss table, and every process holds the same table
because each update gathers ``(indices, losses)`` from all processes first. Every process therefore draws
identical global batches; the trainer gives each its shard.

Warm-up epochs (``epoch < warmup_epochs``) use the batches of a seeded random permutation, exactly those of
:class:`labelwise.engine.samplers.RandomBatchSampler` with the same seed, so every strategy shares the
warm-up trajectory of the random baseline (the paper shares warm-up parameters across strategies);
``warmup_order="sequential"`` reproduces MLAdaBatch's unshuffled warm-up.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from labelwise.engine.callbacks import Callback
from labelwise.engine.samplers import RandomBatchSampler
from labelwise.metrics.distributed import all_gather_rows
from labelwise.protocols import Batch, ModelOutputs, TrainerView

__all__ = ["BatchSelectionSampler", "selection_bce", "gather_rows"]


def selection_bce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample multi-label BCE: the mean over known labels of the binary cross-entropy with logits.

    This is ``torch.nn.MultiLabelSoftMarginLoss(reduction="none")`` (what MLAdaBatch uses) restricted to the
    known labels; a sample without known labels has loss 0. Computed in float32.

    Examples
    --------
    >>> import torch
    >>> logits, target = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    >>> ref = torch.nn.MultiLabelSoftMarginLoss(reduction="none")(logits, target)
    >>> bool(torch.allclose(selection_bce(logits, target), ref))
    True
    """
    x = logits.detach().float()
    y = target.detach().float()
    elem = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    if mask is None:
        return elem.mean(dim=1)
    m = mask.detach().to(elem.dtype)
    return (elem * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def _world_size(trainer: TrainerView) -> int:
    ws = getattr(trainer, "world_size", None)
    if isinstance(ws, int):
        return ws
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def gather_rows(trainer: TrainerView, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Concatenate the rows of ``tensors`` over all processes (rank order); the local rows may differ in number.

    :func:`labelwise.metrics.distributed.all_gather_rows` of each tensor (the default process group: the
    trainer's under DDP); on a single process (``trainer.world_size == 1``) the tensors are returned unchanged.
    """
    if _world_size(trainer) <= 1:
        return tensors
    return tuple(all_gather_rows(t) for t in tensors)


def _dataset_inputs(data: Any) -> Any | None:
    """The raw input array of an ArrayDataset (or a view of one), else None."""
    inputs = getattr(data, "inputs", None)
    if inputs is not None:
        return inputs
    parent = getattr(data, "parent", None)
    if parent is not None:
        base = _dataset_inputs(parent)
        if base is not None:
            return base[torch.as_tensor(np.asarray(data.indices))] if hasattr(base, "shape") else None
    return None


def _targets_of(dataset_or_targets: Any) -> np.ndarray:
    from labelwise.data.base import check_targets

    if hasattr(dataset_or_targets, "targets") and not isinstance(dataset_or_targets, np.ndarray):
        return np.asarray(dataset_or_targets.targets, dtype=np.uint8)
    return check_targets(dataset_or_targets, source="sampler targets")


class BatchSelectionSampler(Callback):
    """Base class: global batches per epoch, warm-up, loss table and imbalance weights.

    Subclasses implement :meth:`_draw` (one post-warm-up batch) and :meth:`_rebuild` / :meth:`_update_table`
    (their probability structure).

    Parameters
    ----------
    dataset_or_targets : MultiLabelDataset or array-like of shape (n, q)
        The training data (its ``targets`` are used; its inputs may serve as kNN features).
    batch_size : int
        Global batch size.
    warmup_epochs : int
        Epochs of random (or sequential) batches before selection starts (``gamma``, default 3).
    warmup_order : {"random", "sequential"}
        Batches of the warm-up epochs.
    seed : int
        Base seed of every draw.
    drop_last : bool
        Drop the last incomplete batch of warm-up epochs (``len`` becomes ``n // batch_size``).
    selection_loss : {"bce", "model"}
        ``"bce"`` (default, the paper): per-sample mean BCE over the known labels of ``outputs["logits"]``;
        ``"model"``: the trainer's per-sample training loss (must be >= 0).
    """

    strategy = "base"

    def __init__(
        self,
        dataset_or_targets: Any,
        *,
        batch_size: int,
        warmup_epochs: int = 3,
        warmup_order: str = "random",
        seed: int = 0,
        drop_last: bool = False,
        selection_loss: str = "bce",
    ) -> None:
        self.targets = _targets_of(dataset_or_targets)
        self.num_samples = int(self.targets.shape[0])
        if self.num_samples < 1:
            raise ValueError("cannot sample from an empty dataset")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if int(warmup_epochs) < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if warmup_order not in ("random", "sequential"):
            raise ValueError(f"warmup_order must be 'random' or 'sequential', got {warmup_order!r}")
        if selection_loss not in ("bce", "model"):
            raise ValueError(f"selection_loss must be 'bce' or 'model', got {selection_loss!r}")
        if drop_last and self.num_samples < batch_size:
            raise ValueError(f"drop_last=True with {self.num_samples} samples < batch_size {batch_size} gives no batch")
        self.batch_size = int(batch_size)
        self.warmup_epochs = int(warmup_epochs)
        self.warmup_order = warmup_order
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.selection_loss = selection_loss
        self.epoch = 0
        self.losses = np.zeros(self.num_samples, dtype=np.float32)
        self.seen = np.zeros(self.num_samples, dtype=bool)

    # -- batch-sampler protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches :meth:`__iter__` yields."""
        self.epoch = int(epoch)

    def in_warmup(self, epoch: int | None = None) -> bool:
        """Whether ``epoch`` (default: the current one) is a warm-up epoch."""
        return (self.epoch if epoch is None else int(epoch)) < self.warmup_epochs

    def rng(self, epoch: int, step: int) -> np.random.Generator:
        """The generator of step ``step`` of ``epoch`` (identical on every process)."""
        return np.random.default_rng([self.seed, int(epoch), int(step)])

    def _warmup_batches(self) -> Iterator[list[int]]:
        """The batches of a warm-up epoch: those of the trainer's random sampler (or in dataset order)."""
        batches = RandomBatchSampler(self.num_samples, self.batch_size, shuffle=self.warmup_order == "random",
                                     drop_last=self.drop_last, seed=self.seed)
        batches.set_epoch(self.epoch)
        return iter(batches)

    def __iter__(self) -> Iterator[list[int]]:
        if self.in_warmup():
            yield from self._warmup_batches()
            return
        epoch = self.epoch
        self._before_selection()
        for step in range(len(self)):
            yield self._draw(self.batch_size, self.rng(epoch, step)).tolist()

    # -- hooks for subclasses ---------------------------------------------------------------------
    def _before_selection(self) -> None:
        """Called when a selection epoch starts (e.g. to compute weights from collected features)."""

    def _draw(self, k: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _update_table(self, indices: np.ndarray, losses: np.ndarray) -> None:
        """Record new raw losses of unique ``indices`` in the probability structure."""

    def _rebuild(self) -> None:
        """Rebuild the probability structure from ``self.losses`` (resume, new weights)."""

    # -- callback: record the losses of the batch just trained on ---------------------------------
    def _local_losses(self, batch: dict[str, Any], outputs: dict[str, Any], per_sample_loss: Any) -> torch.Tensor:
        if self.selection_loss == "model":
            if per_sample_loss is None:
                raise ValueError("selection_loss='model' needs the trainer's per-sample loss, got None")
            return per_sample_loss.detach().float().reshape(-1)
        if "logits" not in outputs:
            raise KeyError(f"the sampler needs outputs['logits']; the model returned keys {sorted(outputs)}")
        return selection_bce(outputs["logits"], batch["target"], batch.get("mask"))

    def on_after_batch(
        self,
        trainer: TrainerView,
        batch: Batch,
        outputs: ModelOutputs,
        per_sample_loss: torch.Tensor | None,
    ) -> None:
        """Gather ``(index, selection loss)`` of the batch from all processes and update the table."""
        if batch.get("index") is None:
            return
        index = torch.as_tensor(batch["index"]).reshape(-1)
        loss = self._local_losses(batch, outputs, per_sample_loss)
        packed = torch.stack([index.to(loss.device, torch.float64), loss.to(torch.float64)], dim=1)
        extra = self._extra_rows(batch, outputs, loss.device)
        gathered = gather_rows(trainer, packed, *extra)
        self._record(gathered[0][:, 0].cpu().numpy(), gathered[0][:, 1].cpu().numpy(), gathered[1:])

    def _extra_rows(self, batch: dict[str, Any], outputs: dict[str, Any], device: Any) -> tuple[torch.Tensor, ...]:
        return ()

    def _record(self, index: np.ndarray, loss: np.ndarray, extra: tuple[torch.Tensor, ...] = ()) -> None:
        idx = index.astype(np.int64)
        if idx.size == 0:
            return
        if idx.min() < 0 or idx.max() >= self.num_samples:
            bad = idx[(idx < 0) | (idx >= self.num_samples)][0]
            raise IndexError(f"batch index {bad} is outside the sampler's dataset of {self.num_samples} samples")
        bad = ~np.isfinite(loss) | (loss < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"selection loss of sample {idx[i]} is {loss[i]!r}; it must be finite and >= 0")
        # keep the last occurrence of a repeated index (identical on every process)
        rev_unique, rev_first = np.unique(idx[::-1], return_index=True)
        keep = idx.size - 1 - rev_first
        idx, loss = rev_unique, loss[keep].astype(np.float32)
        self.losses[idx] = loss
        self.seen[idx] = True
        self._update_table(idx, loss)
        self._record_extra(idx, keep, extra)

    def _record_extra(self, idx: np.ndarray, keep: np.ndarray, extra: tuple[torch.Tensor, ...]) -> None:
        pass

    # -- checkpoint state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Epoch, seed, loss table and the strategy's extra state (tensors and JSON values)."""
        return {
            "strategy": self.strategy,
            "num_samples": self.num_samples,
            "seed": self.seed,
            "epoch": self.epoch,
            "losses": torch.from_numpy(self.losses.copy()),
            "seen": torch.from_numpy(self.seen.copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; subsequent batches are identical to the uninterrupted run."""
        if "strategy" not in state:  # labelwise.engine.samplers.RandomBatchSampler's state
            raise ValueError(f"the sampler state is of the trainer's random batch sampler, not of {self.strategy!r}; "
                             "resume with the same sampler (sampler.name=random)")
        if state["strategy"] != self.strategy:
            raise ValueError(f"sampler state is for strategy {state['strategy']!r}, not {self.strategy!r}")
        if int(state["num_samples"]) != self.num_samples:
            raise ValueError(
                f"sampler state is for {state['num_samples']} samples but the dataset has {self.num_samples}"
            )
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.losses = _to_numpy(state["losses"]).astype(np.float32).copy()
        self.seen = _to_numpy(state["seen"]).astype(bool).copy()
        self._rebuild()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_samples={self.num_samples}, batch_size={self.batch_size}, "
            f"warmup_epochs={self.warmup_epochs}, seed={self.seed})"
        )


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
