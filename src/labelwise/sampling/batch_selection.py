"""Multi-label adaptive batch selection samplers (Zhou, Liu, Wang & Tsoumakas; MLAdaBatch).

Strategies (registered in :data:`SAMPLERS`, built by :func:`create_sampler`):

``random``
    Batches of a seeded random permutation per epoch (the baseline): the trainer's
    :class:`labelwise.engine.samplers.RandomBatchSampler`.
``hard``
    Rank-based selection on the per-sample BCE (Eq. 3; ``imbalance_weights=False`` and no quantization,
    the paper's "Hard" ablation).
``adaptive``
    Eq. 4-7: selection loss ``w ⊙ l`` with the kNN imbalance weights ``w`` and the quantization index
    ``Q = ceil(l / (l_max / n))``; ``p ∝ s_e^(Q/n)``.
``chain``
    The adaptive probabilities drawn as a label chain (section 3.5, :mod:`labelwise.sampling.chain`).

After ``warmup_epochs`` epochs of random batches, every epoch has ``len(sampler) = ceil(n / batch_size)``
batches of ``batch_size`` distinct samples, each drawn with the probabilities computed from the loss table
as it is after the previous training step. The table holds the latest selection loss of every sample:
after each step the batch's entries are overwritten (losses gathered from all processes) and the
probabilities of *all* samples follow (the paper's version; MLAdaBatch only refreshes the batch's own
entries). Probabilities are never materialized in the training loop; see :mod:`labelwise.sampling.rank`
for the exact ``O(batch)`` draws.

Examples
--------
>>> import numpy as np, torch
>>> from labelwise.sampling import create_sampler
>>> Y = np.array([[1, 0], [0, 1], [1, 1], [0, 1], [1, 0], [0, 1]])
>>> s = create_sampler("hard", Y, batch_size=4, warmup_epochs=1, selection_pressure=8.0)
>>> s.set_epoch(0)
>>> for b in s:  # warm-up epoch: the trainer feeds the losses back
...     logits = torch.zeros(len(b), 2); logits[:, 0] = torch.arange(len(b), dtype=torch.float32)
...     s.on_after_batch(None, {"index": torch.tensor(b), "target": torch.as_tensor(Y[b]).float()},
...                      {"logits": logits}, None)
>>> s.set_epoch(1)
>>> [len(b) for b in s], len(s)
([4, 4], 2)
>>> round(float(s.probabilities().sum()), 12)
1.0
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from labelwise.engine.callbacks import Callback
from labelwise.engine.samplers import RandomBatchSampler
from labelwise.registry import Registry

from .base import BatchSelectionSampler, _dataset_inputs, _targets_of, _to_numpy
from .chain import LabelChain
from .imbalance import imbalance_weights
from .rank import QuantizedLossTable, RankedLossTable

__all__ = [
    "SAMPLERS",
    "TRAINER_SAMPLER_OPTIONS",
    "create_sampler",
    "sampler_options",
    "RandomSampler",
    "HardBatchSampler",
    "AdaptiveBatchSampler",
    "ChainBatchSampler",
]

#: Batch-selection strategies by name.
SAMPLERS = Registry("sampler", supplied=("dataset_or_targets", "batch_size"))


@SAMPLERS.register("random")
class RandomSampler(RandomBatchSampler, Callback):
    """The registry's ``random``: the trainer's :class:`~labelwise.engine.samplers.RandomBatchSampler`.

    A thin adapter (no second implementation): it takes the training data or targets like the other
    strategies, ignores their selection options, and is a no-op :class:`~labelwise.engine.Callback` (it
    records no loss). The batches of epoch ``e`` are those of ``default_rng([seed, e])``'s permutation.

    Examples
    --------
    >>> s = RandomSampler([[1], [0], [1]], batch_size=2, seed=0)
    >>> sorted(i for b in s for i in b), len(s)
    ([0, 1, 2], 2)
    """

    strategy = "random"

    def __init__(self, dataset_or_targets: Any, *, batch_size: int, seed: int = 0, drop_last: bool = False,
                 shuffle: bool = True) -> None:
        super().__init__(len(_targets_of(dataset_or_targets)), batch_size, shuffle=shuffle, drop_last=drop_last,
                         seed=seed)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("strategy") == "random":  # written when "random" was a loss-table sampler
            state = {k: state[k] for k in ("epoch", "seed", "num_samples")}
        super().load_state_dict(state)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_samples={self.num_samples}, batch_size={self.batch_size}, "
                f"seed={self.seed})")


class _LossSelection(BatchSelectionSampler):
    """Loss-table samplers with optional imbalance weights (shared by hard, adaptive and chain)."""

    _default_weights = False

    def __init__(
        self,
        dataset_or_targets: Any,
        *,
        batch_size: int,
        selection_pressure: float = 2.0,
        warmup_epochs: int = 3,
        warmup_order: str = "random",
        seed: int = 0,
        drop_last: bool = False,
        selection_loss: str = "bce",
        imbalance_weights: bool | None = None,
        k: int = 5,
        features: Any = "auto",
        weights: Any = None,
    ) -> None:
        super().__init__(dataset_or_targets, batch_size=batch_size, warmup_epochs=warmup_epochs,
                         warmup_order=warmup_order, seed=seed, drop_last=drop_last, selection_loss=selection_loss)
        self.selection_pressure = float(selection_pressure)
        if weights is not None and imbalance_weights is False:
            raise ValueError("weights= gives precomputed imbalance weights; it contradicts imbalance_weights=False")
        self.use_weights = self._default_weights if imbalance_weights is None else bool(imbalance_weights)
        self.k = int(k)
        self.weights = np.ones(self.num_samples, dtype=np.float32)
        self.weights_ready = True
        self.feature_source = "none"
        self._bank: np.ndarray | None = None
        self._bank_seen: np.ndarray | None = None
        self.table = self._make_table()
        if weights is not None:
            self.use_weights = True
            self.weights = self._check_weights(weights)
            self.feature_source = "given"
        elif self.use_weights:
            self._init_weights(dataset_or_targets, features)

    def _check_weights(self, weights: Any) -> np.ndarray:
        w = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=np.float64)
        if w.shape != (self.num_samples,):
            raise ValueError(f"weights must have shape ({self.num_samples},) (one per sample), got {w.shape}")
        if not np.isfinite(w).all() or (w <= 0).any():
            bad = int(np.flatnonzero(~np.isfinite(w) | (w <= 0))[0])
            raise ValueError(f"weights must be finite and positive; sample {bad} has {w[bad]!r}")
        return w.astype(np.float32)

    # -- imbalance weights ------------------------------------------------------------------------
    def _init_weights(self, data: Any, features: Any) -> None:
        if isinstance(features, str):
            if features not in ("auto", "input", "model"):
                raise ValueError(f"features must be 'auto', 'input', 'model' or an array, got {features!r}")
            source = features
            if source == "auto":
                source = "input" if _dataset_inputs(data) is not None else "model"
            if source == "model":
                if self.warmup_epochs < 1:
                    raise ValueError("features='model' collects outputs['features'] during the last warm-up "
                                     "epoch, so it needs warmup_epochs >= 1")
                self.feature_source = "model"
                self.weights_ready = False
                return
            inputs = _dataset_inputs(data)
            if inputs is None:
                raise ValueError(f"features='input' needs a dataset holding its inputs in memory (an ArrayDataset), "
                                 f"got {type(data).__name__}; pass features='model' or a feature array")
            feats: Any = inputs
            self.feature_source = "input"
        elif features is None:
            raise ValueError("imbalance weights need features: pass features='auto'|'input'|'model' or an array, "
                             "or imbalance_weights=False")
        else:
            feats = features
            self.feature_source = "array"
        if hasattr(feats, "detach"):
            feats = feats.detach().cpu().reshape(feats.shape[0], -1).float().numpy()
        if feats.shape[0] != self.num_samples:
            raise ValueError(f"features have {feats.shape[0]} rows but there are {self.num_samples} samples")
        self.weights = imbalance_weights(feats, self.targets, k=self.k).astype(np.float32)

    def _collecting(self) -> bool:
        return self.feature_source == "model" and not self.weights_ready and self.epoch == self.warmup_epochs - 1

    def _extra_rows(self, batch: dict[str, Any], outputs: dict[str, Any], device: Any) -> tuple[torch.Tensor, ...]:
        if not self._collecting():
            return ()
        if "features" not in outputs:
            raise KeyError("features='model' needs outputs['features'] from the model; "
                           f"it returned keys {sorted(outputs)}")
        return (outputs["features"].detach().float().reshape(outputs["features"].shape[0], -1).to(device),)

    def _record_extra(self, idx: np.ndarray, keep: np.ndarray, extra: tuple[torch.Tensor, ...]) -> None:
        if not extra:
            return
        feats = extra[0].cpu().numpy()[keep]
        if self._bank is None:
            self._bank = np.zeros((self.num_samples, feats.shape[1]), dtype=np.float32)
            self._bank_seen = np.zeros(self.num_samples, dtype=bool)
        self._bank[idx] = feats
        self._bank_seen[idx] = True

    def _before_selection(self) -> None:
        if self.weights_ready:
            return
        if self._bank is None or self._bank_seen is None or self._bank_seen.sum() <= self.k:
            raise RuntimeError("features='model': no (or too few) model features were collected during the last "
                               "warm-up epoch; was on_after_batch called with outputs['features']?")
        seen = self._bank_seen
        if not seen.all():
            warnings.warn(f"{int((~seen).sum())} samples were not seen in the last warm-up epoch; their imbalance "
                          "weight is 1", UserWarning, stacklevel=2)
        w = np.ones(self.num_samples, dtype=np.float32)
        w[seen] = imbalance_weights(self._bank[seen], self.targets[seen], k=self.k)
        self.weights = w
        self.weights_ready = True
        self._bank = self._bank_seen = None
        self._rebuild()

    # -- table --------------------------------------------------------------------------------------
    def _make_table(self) -> Any:
        raise NotImplementedError

    def _update_table(self, indices: np.ndarray, losses: np.ndarray) -> None:
        self.table.update(indices, losses * self.weights[indices])

    def _rebuild(self) -> None:
        self.table.set_scores(self.losses * self.weights)

    def probabilities(self) -> np.ndarray:
        """Selection probabilities of all samples under the current table (float64 ``[n]``, materialized)."""
        return self.table.probabilities()

    def _draw(self, k: int, rng: np.random.Generator) -> np.ndarray:
        return self.table.draw(k, rng)

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(
            selection_pressure=self.selection_pressure,
            weights=torch.from_numpy(self.weights.copy()),
            weights_ready=self.weights_ready,
        )
        if self._bank is not None:
            state["feature_bank"] = torch.from_numpy(self._bank.copy())
            state["feature_seen"] = torch.from_numpy(self._bank_seen.copy())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = _to_numpy(state["weights"]).astype(np.float32).copy()
        self.weights_ready = bool(state["weights_ready"])
        if "feature_bank" in state:
            self._bank = _to_numpy(state["feature_bank"]).astype(np.float32).copy()
            self._bank_seen = _to_numpy(state["feature_seen"]).astype(bool).copy()
        else:
            self._bank = self._bank_seen = None
        if float(state["selection_pressure"]) != self.selection_pressure:
            warnings.warn(f"restoring a sampler state with selection_pressure={state['selection_pressure']} "
                          f"into one with {self.selection_pressure}; using the restored value",
                          UserWarning, stacklevel=2)
            self.selection_pressure = float(state["selection_pressure"])
            self.table = self._make_table()
        super().load_state_dict(state)  # restores the losses and calls _rebuild()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_samples={self.num_samples}, batch_size={self.batch_size}, "
                f"selection_pressure={self.selection_pressure}, warmup_epochs={self.warmup_epochs}, "
                f"imbalance_weights={self.use_weights}, seed={self.seed})")


@SAMPLERS.register("hard")
class HardBatchSampler(_LossSelection):
    """Rank-based batch selection (Eq. 3): ``p(i) ∝ s_e^(r_i / n)``, ``r`` the ascending loss rank.

    Parameters
    ----------
    dataset_or_targets : MultiLabelDataset or array-like of shape (n, q)
        Training data or its targets.
    batch_size : int
        Global batch size.
    selection_pressure : float
        ``s_e`` (default 2, MLAdaBatch's default; the paper searches 2, 8, 16, 64).
    warmup_epochs, warmup_order, seed, drop_last, selection_loss
        See :class:`~labelwise.sampling.base.BatchSelectionSampler`.
    imbalance_weights : bool
        Multiply the selection loss by the kNN imbalance weights (default False for ``hard``).
    k, features
        kNN size and feature source of the weights (see :class:`AdaptiveBatchSampler`).

    Examples
    --------
    >>> import numpy as np
    >>> s = HardBatchSampler(np.eye(3, dtype=int), batch_size=2, selection_pressure=8.0, warmup_epochs=0)
    >>> s._record(np.array([0, 1, 2]), np.array([0.3, 0.1, 0.2]))
    >>> s.probabilities().round(4).tolist()
    [0.5714, 0.1429, 0.2857]
    """

    strategy = "hard"
    _default_weights = False

    def _make_table(self) -> RankedLossTable:
        return RankedLossTable(self.num_samples, selection_pressure=self.selection_pressure)


@SAMPLERS.register("adaptive")
class AdaptiveBatchSampler(_LossSelection):
    """Multi-label adaptive batch selection (Eq. 4-7).

    The selection loss of sample ``i`` is ``w_i * l_i`` (``l`` the per-sample BCE, ``w = 1 + eps`` the
    kNN local-imbalance weights of :func:`labelwise.sampling.imbalance.imbalance_weights`), and
    ``p(i) ∝ s_e^(Q_i / n)`` with ``Q_i = ceil(w_i l_i / (l_max / n))``.

    Parameters
    ----------
    dataset_or_targets : MultiLabelDataset or array-like of shape (n, q)
        Training data or its targets.
    batch_size : int
        Global batch size.
    selection_pressure : float
        ``s_e`` (default 2).
    imbalance_weights : bool
        Use the weights ``w`` (default True; False gives "hard + quantization", what the released
        MLAdaBatch script runs).
    k : int
        Neighbours of the local imbalance (default 5, self excluded, Euclidean).
    features : {"auto", "input", "model"} or array-like of shape (n, d)
        Feature space of the kNN search. ``"input"``: the dataset's raw inputs, flattened (an
        :class:`~labelwise.data.ArrayDataset` or a view of one: tabular features, or small in-memory images;
        transforms are not applied). ``"model"``: ``outputs["features"]`` collected during the last warm-up
        epoch (gathered across processes); the weights are computed when selection starts. An array (dense
        or ``scipy.sparse``) is used as given. ``"auto"`` (default): ``"input"`` when the dataset holds its
        inputs in memory, else ``"model"``.
    weights : array-like of shape (n,), optional
        Precomputed imbalance weights (e.g. :func:`~labelwise.sampling.imbalance.imbalance_weights` computed
        once and shared by several samplers on the same training data); no kNN search is run.
    warmup_epochs, warmup_order, seed, drop_last, selection_loss
        See :class:`~labelwise.sampling.base.BatchSelectionSampler`.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    >>> Y = np.array([[1, 1], [1, 1], [1, 0], [1, 0], [1, 0], [0, 1]])
    >>> s = AdaptiveBatchSampler(Y, batch_size=2, features=X, k=2, warmup_epochs=0)
    >>> s.weights.tolist()
    [1.5, 1.5, 1.0, 1.0, 1.0, 1.0]
    """

    strategy = "adaptive"
    _default_weights = True

    def _make_table(self) -> QuantizedLossTable:
        return QuantizedLossTable(self.num_samples, selection_pressure=self.selection_pressure)


@SAMPLERS.register("chain")
class ChainBatchSampler(AdaptiveBatchSampler):
    """Adaptive batch selection with label chains (section 3.5; see :mod:`labelwise.sampling.chain`).

    Parameters are those of :class:`AdaptiveBatchSampler`, plus ``num_related`` (``|L_c|``, default
    ``ceil(Card)``) and ``include_seed_label`` (add the seed label itself to ``L_c``; default False).

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 1]])
    >>> s = ChainBatchSampler(Y, batch_size=3, warmup_epochs=0, imbalance_weights=False)
    >>> [len(set(b)) for b in s]
    [3, 3]
    """

    strategy = "chain"

    def __init__(self, dataset_or_targets: Any, *, num_related: int | None = None,
                 include_seed_label: bool = False, **kwargs: Any) -> None:
        super().__init__(dataset_or_targets, **kwargs)
        self.chain = LabelChain(self.targets, num_related=num_related, include_seed_label=include_seed_label)

    def _draw(self, k: int, rng: np.random.Generator) -> np.ndarray:
        return self.chain.draw(self.table, k, rng)


def create_sampler(strategy: str, dataset_or_targets: Any, *, batch_size: int,
                   **kwargs: Any) -> BatchSelectionSampler | RandomSampler:
    """Build the batch sampler of ``strategy`` (``"random"``, ``"hard"``, ``"adaptive"`` or ``"chain"``).

    Parameters
    ----------
    strategy : str
        A name registered in :data:`SAMPLERS`.
    dataset_or_targets : MultiLabelDataset or array-like of shape (n, q)
        Training data or its 0/1 targets.
    batch_size : int
        Global batch size.
    **kwargs
        Options of the strategy's class: ``selection_pressure``, ``warmup_epochs`` (3), ``warmup_order``,
        ``seed``, ``drop_last``, ``selection_loss``, ``imbalance_weights``, ``k`` (5), ``features``,
        ``weights`` (precomputed imbalance weights, shape ``(n,)``), ``num_related``, ``include_seed_label``.
        ``random`` takes ``seed``, ``drop_last`` and ``shuffle`` only.

    Raises
    ------
    KeyError
        Unknown ``strategy``.
    labelwise.registry.OptionError
        An option the strategy does not take (a ``ValueError`` naming it and the accepted ones).

    Examples
    --------
    >>> import numpy as np
    >>> s = create_sampler("adaptive", np.array([[1, 0], [0, 1], [1, 1]]), batch_size=2,
    ...                    imbalance_weights=False)
    >>> type(s).__name__, len(s)
    ('AdaptiveBatchSampler', 2)
    """
    return SAMPLERS.create(strategy, dataset_or_targets=dataset_or_targets, batch_size=batch_size, **kwargs)


#: Sampler arguments a training run takes from its ``trainer`` section (option -> the run's key).
TRAINER_SAMPLER_OPTIONS: dict[str, str] = {
    "batch_size": "trainer.batch_size",
    "seed": "trainer.seed",
    "drop_last": "trainer.drop_last",
}


def sampler_options(strategy: str) -> list[str]:
    """Options of ``strategy`` a run configuration may set (its ``sampler:`` section), sorted.

    The strategy's options in :data:`SAMPLERS` (:meth:`labelwise.registry.Registry.options`: the keyword
    arguments of the class's ``__init__``, followed through ``**kwargs`` into the base classes, so ``chain``
    has ``adaptive``'s too) without the arguments taken from the ``trainer`` section
    (:data:`TRAINER_SAMPLER_OPTIONS`) and ``weights`` (a precomputed array, not a configuration value).

    Examples
    --------
    >>> sampler_options("random")
    ['shuffle']
    >>> "num_related" in sampler_options("chain") and "selection_pressure" in sampler_options("chain")
    True
    """
    return [key for key in SAMPLERS.options(strategy) or () if key not in ("weights", *TRAINER_SAMPLER_OPTIONS)]
