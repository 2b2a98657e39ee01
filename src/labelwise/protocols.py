"""The hand-offs between layers, as :class:`typing.Protocol` and :class:`typing.TypedDict` types.

docs/architecture.md ("Contracts") describes them in words; these are the same contracts for type checkers
and for ``isinstance`` checks (the protocols are ``runtime_checkable``: that checks the attributes exist, not
their types). Nothing here imports another labelwise module: every layer may use it.

==============================  ===============================================================================
type                            what is handed over
==============================  ===============================================================================
:class:`Sample`                 ``dataset[i]``: one input with its target, known-label mask and index
:class:`Batch`                  what ``collate_batch`` makes of samples: what the training step and callbacks see
:class:`Dataset`                a multi-label dataset (``MultiLabelDataset`` and its views)
:class:`ModelOutputs`           what ``model(x)`` returns: ``logits`` and optional extras
:class:`MultiLabelModel`        a model: inputs ``[B, ...]`` -> :class:`ModelOutputs`
:class:`BatchSampler`           global batches of dataset indices, re-drawn per epoch (``set_epoch``)
:class:`TrainerView`            what callbacks read from the trainer (``labelwise.engine.Trainer``)
:class:`StrategyTrainerView`    what continual strategies also use: prediction and the device placement
==============================  ===============================================================================

Examples
--------
>>> import numpy as np
>>> from labelwise.data import ArrayDataset
>>> from labelwise.engine import RandomBatchSampler, Trainer
>>> from labelwise.protocols import BatchSampler, Dataset, StrategyTrainerView, TrainerView
>>> ds = ArrayDataset(np.zeros((4, 3), np.float32), np.eye(4, 2, dtype=np.uint8), ["a", "b"])
>>> isinstance(ds, Dataset), isinstance(ds.view([0, 1]), Dataset)
(True, True)
>>> isinstance(RandomBatchSampler(4, 2), BatchSampler), isinstance(Trainer(), TrainerView)
(True, True)
>>> isinstance(Trainer(), StrategyTrainerView)
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, Required, TypedDict, runtime_checkable

import numpy as np
import torch

__all__ = ["Sample", "Batch", "Dataset", "ModelOutputs", "MultiLabelModel", "BatchSampler", "TrainerView",
           "StrategyTrainerView"]


class Sample(TypedDict):
    """One item of a dataset, ``dataset[i]``."""

    input: Any
    """The input after the transform: an image tensor ``[3, H, W]`` or a feature vector ``float32 [D]``."""
    target: torch.Tensor
    """``float32 [C]`` 0/1 labels."""
    mask: torch.Tensor
    """``bool [C]``: which labels are known (unknown ones contribute no loss)."""
    index: int
    """The sample's index in the dataset (de-duplicates DDP padding in the Evaluator)."""


class Batch(TypedDict, total=False):
    """A collated batch (``labelwise.data.collate_batch``), as the training step and callbacks see it."""

    input: Required[torch.Tensor]
    target: Required[torch.Tensor]
    """``float32 [B, C]``."""
    mask: Required[torch.Tensor]
    """``bool [B, C]``."""
    index: Required[torch.Tensor]
    """``long [B]``."""
    skipped: int
    """Unreadable samples dropped from this batch (``on_error="skip"``)."""


@runtime_checkable
class Dataset(Protocol):
    """A multi-label dataset: ``MultiLabelDataset``, its views and anything shaped like them."""

    targets: np.ndarray
    """``uint8 [N, C]``, always in memory."""
    class_names: list[str]
    known_mask: np.ndarray | None
    """``bool [N, C]``, or None when every label is known."""
    transform: Callable[..., Any] | None

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample | None: ...

    def load_input(self, index: int) -> Any:
        """The raw input of sample ``index`` (before the transform)."""
        ...

    def view(self, indices: Sequence[int] | np.ndarray, **replace: Any) -> Dataset:
        """A subset with optionally replaced ``targets``, ``known_mask`` or ``transform``."""
        ...


class ModelOutputs(TypedDict, total=False):
    """What ``model(x)`` returns; models may add method-specific keys."""

    logits: Required[torch.Tensor]
    """``[B, C]``: the prediction (probabilities are ``sigmoid(logits)``)."""
    loss_logits: list[torch.Tensor]
    """Logits the criterion is applied to and summed over (default ``[logits]``)."""
    features: torch.Tensor
    """Pooled features ``[B, D]``."""
    feature_map: torch.Tensor
    """``[B, D, H, W]``."""


@runtime_checkable
class MultiLabelModel(Protocol):
    """A model of :func:`labelwise.models.create_model`: a module mapping inputs to :class:`ModelOutputs`.

    Optional parts, looked up with ``getattr``: ``needs_targets`` (``forward(x, targets=None)``),
    ``loss(outputs, batch, criterion) -> [B]``, ``param_groups()`` and, for tabular models, ``prepare(X, Y)``.
    """

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> ModelOutputs: ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...


@runtime_checkable
class BatchSampler(Protocol):
    """Global batches of dataset indices (every process draws the same ones and takes its shard).

    ``state_dict`` / ``load_state_dict`` are optional (then saved in and restored from checkpoints).
    """

    def __iter__(self) -> Iterator[list[int]]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None:
        """Draw the batches of ``epoch`` (0-based)."""
        ...


@runtime_checkable
class TrainerView(Protocol):
    """What callbacks (continual strategies, samplers) read from the trainer that calls them."""

    config: Any
    """The trainer's ``TrainerConfig``."""
    model: torch.nn.Module | None
    """The model being trained (set up for the device), None outside ``fit``."""
    output_dir: Path | None
    callbacks: Sequence[Any]
    epoch: int
    """Completed epochs (0-based count)."""
    global_step: int

    @property
    def world_size(self) -> int: ...

    @property
    def global_rank(self) -> int: ...

    @property
    def is_global_zero(self) -> bool: ...

    @property
    def device(self) -> torch.device: ...

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate ``tensor`` of every process along dim 0 (uneven row counts allowed)."""
        ...


@runtime_checkable
class StrategyTrainerView(TrainerView, Protocol):
    """What a continual strategy (``labelwise.continual.strategies``) reads from the trainer that calls it.

    A :class:`TrainerView` that can also score a dataset (relabeling, stored logits) and place a batch on the
    device and in the precision of training (memory replay, teacher outputs).
    """

    fabric: Any
    """The Lightning ``Fabric`` of the current ``fit`` (``autocast()``, ``to_device(batch)``); None before."""

    def predict(self, model: torch.nn.Module, data: Dataset) -> Any:
        """``(scores, targets)`` of ``model`` on ``data`` in dataset order; ``.scores`` is float32 ``[N, C]``."""
        ...
