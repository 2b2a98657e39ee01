"""The MULAN cross-validation protocol of multi-label batch selection (Zhou et al., section 4.1): the steps of
one dataset and one fold.

Protocol (every choice is a :class:`MulanProtocol` field; defaults in brackets):

1. Read the whole dataset (``load_mulan(name, split="all")``: the union of the predefined train/test files
   when there is no union file) and drop labels with fewer than ``min_positives`` positives [21, i.e.
   MLAdaBatch's "at most 20 positives are dropped"; samples left without labels are kept].
2. ``n_folds``-fold iterative stratification [5]. The validation scheme is ``validation``:
   ``"test_half"`` [default, the published protocol]: the held-out fold is split again by iterative
   stratification into validation (``val_fraction`` [0.5]) and test, the other folds train;
   ``"train_split"``: the validation part is carved out of the training folds (``val_fraction`` of them)
   and the whole held-out fold is the test set. With ``"test_half"`` the folds equal
   :func:`labelwise.data.splits.train_val_test`.
3. Per fold, on the training rows only: optional document-frequency feature selection
   (``feature_selection``, per dataset: rcv1 and yahoo are reduced to the dimensionality of the paper's
   Table 1 by default), then feature scaling (``scaling`` ["minmax"]; MLAdaBatch fits it on all rows, a
   leak), then the kNN imbalance weights of the adaptive/chain samplers (computed once per fold on the
   scaled training features and shared by every selection pressure).
4. Every (model, strategy, s_e) trains from the same seed, so the warm-up epochs are identical across
   strategies (the paper shares the warm-up parameters): Adam, batch 128, weight decay 1e-4, betas
   (0.9, 0.999), warm-up 3 epochs. After every epoch the validation macro-AUC is computed and the best
   epoch's weights are kept (a deep copy). For hard/adaptive/chain, s_e is chosen from
   ``selection_pressures`` [(2, 8, 16, 64)] by the best validation macro-AUC of the fold.
5. The six measures of section 4.1 (Macro-F, Micro-F, Macro-AUC, Ranking Loss, Hamming Loss, One Error;
   :func:`labelwise.metrics.mulan_report`, threshold 0.5) on the test part with the selected model.
6. :func:`~labelwise.tabular.statistics.summary_table`: mean and standard deviation (``ddof=0``) over folds
   per dataset x model x strategy; :func:`~labelwise.tabular.statistics.wilcoxon_table`: Wilcoxon
   signed-rank test across datasets of each strategy against ``random`` on the fold means (Table 3), with
   lower-is-better measures negated so that a positive difference always means "better".

:func:`labelwise.tabular.pipeline.run_benchmark` runs these steps over datasets and folds;
:mod:`labelwise.tabular.results` writes the tables and files.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from labelwise.data.splits import iterative_stratified_kfold, iterative_train_test_split
from labelwise.metrics import mulan_report
from labelwise.models import create_model
from labelwise.sampling import create_sampler, imbalance_weights

from .preprocessing import SCALINGS, FeatureScaler, document_frequency_selection, drop_rare_labels
from .statistics import HIGHER_IS_BETTER
from .training import fit_tabular, predict_scores

__all__ = [
    "TABLE1_DATASETS",
    "PAPER_FEATURE_SELECTION",
    "MulanProtocol",
    "BenchmarkData",
    "load_benchmark_data",
    "make_splits",
    "PreparedFold",
    "prepare_fold",
    "run_candidate",
    "select_candidate",
    "run_fold",
]

logger = logging.getLogger(__name__)

#: The 13 datasets of Table 1 present in the shared MULAN collection (mediamill is absent), Table 1 order.
TABLE1_DATASETS = (
    "corel5k", "rcv1subset3", "rcv1subset1", "rcv1subset2", "yahoo-Arts1", "cal500", "yahoo-Business1",
    "tmc2007", "bibtex", "enron", "yeast", "langlog", "scene",
)

#: Document-frequency feature selection reproducing Table 1's dimensionality: rcv1 subsets keep 2% of
#: 47,236 features (944), yahoo Arts/Business keep 10% of 23,146 / 21,924 (2,314 / 2,192).
PAPER_FEATURE_SELECTION: dict[str, float | int] = {"rcv1subset*": 0.02, "yahoo-*": 0.10}

_VALIDATION = ("test_half", "train_split")


@dataclass
class MulanProtocol:
    """Settings of the cross-validation protocol (defaults: the paper's section 4.1 and MLAdaBatch).

    Parameters
    ----------
    strategies : sequence of str
        Sampler names (:data:`labelwise.sampling.SAMPLERS`); ``"random"`` is the baseline.
    models : sequence of str
        Model names for :func:`labelwise.models.create_model` (tabular models taking ``in_features``).
    model_params : dict of str to dict
        Extra constructor options per model name (e.g. ``{"mlp": {"hidden": (256,), "dropout": 0.2}}``).
    sampler_params : dict of str to dict
        Extra sampler options per strategy (e.g. ``{"chain": {"include_seed_label": True}}``).
    n_folds : int
        Cross-validation folds (5).
    run_folds : int, optional
        Run only the first ``run_folds`` folds (quick runs); None runs all.
    validation : {"test_half", "train_split"}
        Where the validation data come from (see the module notes).
    val_fraction : float
        Fraction of the held-out fold (``"test_half"``) or of the training folds (``"train_split"``) used
        for validation.
    min_positives : int
        Labels with fewer positives in the whole dataset are dropped (21: MLAdaBatch's rule).
    scaling : {"minmax", "standard", "none"}
        Feature scaling fit on the training rows.
    feature_selection : dict, optional
        Dataset-name pattern (``fnmatch``, case-insensitive) to a fraction or number of features kept by
        document frequency on the training rows; default :data:`PAPER_FEATURE_SELECTION`; ``{}`` keeps
        every feature (rcv1 and yahoo are then trained on their full sparse features).
    selection_pressures : sequence of float
        Candidate s_e of the loss-based strategies, chosen on validation.
    pressure_selection : {"fold", "first_fold"}
        ``"fold"`` (default): every fold tries every s_e and keeps the best on its own validation part;
        ``"first_fold"``: fold 0 tries every s_e, the other folds reuse its choice (per dataset, model and
        strategy) - a cheaper protocol (about 2.5x fewer runs with four candidates) for large benchmarks.
    warmup_epochs, k
        Sampler warm-up epochs (gamma) and kNN size of the imbalance weights.
    epochs, patience
        Maximum epochs and early-stopping patience on the validation measure (None: no early stopping;
        never before the end of the warm-up).
    batch_size, lr, weight_decay, betas
        Adam settings.
    monitor : str
        Validation measure of model and s_e selection (``"macro_auc"``).
    threshold : float
        Decision threshold of the thresholded measures.
    empty_class : {"exclude", "zero"}
        Labels without positives (F1) or single-valued (AUC) in a test part: excluded from the macro
        average (default) or counted as 0.
    seed : int
        Seeds the folds, the model initialisation and the samplers.
    device : str
        Torch device.
    threshold_rule : {"ge", "gt"}
        ``"ge"`` (default): a label is predicted when ``score >= threshold``; ``"gt"``: when
        ``score > threshold``, which at 0.5 is MLAdaBatch's ``np.round`` (a score of exactly 0.5 is negative).
    scaling_fit : {"train", "all"}
        Rows the scaler is fit on: the training rows (default) or every row of the dataset (MLAdaBatch's
        leak, for reproducing its numbers).
    keep : {"best", "last"}
        The weights tested: the best validation epoch's (default) or the last epoch's (what MLAdaBatch's
        shallow ``state_dict().copy()`` amounts to).
    lr_warmup_epochs : int
        Linear learning-rate warm-up over this many epochs of ``floor(n_train / batch_size)`` steps each
        (MLAdaBatch's schedule, see ``fit_tabular(lr_warmup_steps=...)``; 0: none). MLAdaBatch warms up its
        adaptive runs over the 3 sampler warm-up epochs and its random runs not at all.
    lr_warmup_epochs_by_strategy, weight_decay_by_strategy : dict
        Per-strategy overrides of ``lr_warmup_epochs`` and ``weight_decay`` (MLAdaBatch's random baseline
        has no weight decay: ``{"random": 0.0}``).
    """

    strategies: Sequence[str] = ("random", "hard", "adaptive", "chain")
    models: Sequence[str] = ("mlp",)
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    sampler_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_folds: int = 5
    run_folds: int | None = None
    validation: str = "test_half"
    val_fraction: float = 0.5
    min_positives: int = 21
    scaling: str = "minmax"
    feature_selection: dict[str, float | int] | None = None
    selection_pressures: Sequence[float] = (2.0, 8.0, 16.0, 64.0)
    pressure_selection: str = "fold"
    warmup_epochs: int = 3
    k: int = 5
    epochs: int = 50
    patience: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    monitor: str = "macro_auc"
    threshold: float = 0.5
    empty_class: str = "exclude"
    seed: int = 0
    device: str = "cpu"
    threshold_rule: str = "ge"
    scaling_fit: str = "train"
    keep: str = "best"
    lr_warmup_epochs: int = 0
    lr_warmup_epochs_by_strategy: dict[str, int] = field(default_factory=dict)
    weight_decay_by_strategy: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from labelwise.sampling import SAMPLERS

        self.strategies = tuple(self.strategies)
        self.models = tuple(self.models)
        self.selection_pressures = tuple(float(s) for s in self.selection_pressures)
        self.betas = tuple(float(b) for b in self.betas)
        if not self.strategies:
            raise ValueError("strategies is empty")
        for s in self.strategies:
            SAMPLERS.get(s)  # KeyError with close matches for an unknown strategy
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies contains a duplicate: {self.strategies}")
        if not self.models:
            raise ValueError("models is empty")
        if self.validation not in _VALIDATION:
            raise ValueError(f"validation must be one of {_VALIDATION}, got {self.validation!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {self.scaling!r}")
        if int(self.n_folds) < 2:
            raise ValueError(f"n_folds must be >= 2, got {self.n_folds}")
        if self.run_folds is not None and not 1 <= int(self.run_folds) <= int(self.n_folds):
            raise ValueError(f"run_folds must be in [1, n_folds={self.n_folds}], got {self.run_folds}")
        if not self.selection_pressures or any(s <= 0 for s in self.selection_pressures):
            raise ValueError(f"selection_pressures must be positive numbers, got {self.selection_pressures}")
        if int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if self.empty_class not in ("exclude", "zero"):
            raise ValueError(f"empty_class must be 'exclude' or 'zero', got {self.empty_class!r}")
        if self.pressure_selection not in ("fold", "first_fold"):
            raise ValueError(f"pressure_selection must be 'fold' or 'first_fold', got {self.pressure_selection!r}")
        if self.monitor not in HIGHER_IS_BETTER:
            raise ValueError(f"monitor must be one of {sorted(HIGHER_IS_BETTER)}, got {self.monitor!r}")
        if self.feature_selection is None:
            self.feature_selection = dict(PAPER_FEATURE_SELECTION)
        if self.threshold_rule not in ("ge", "gt"):
            raise ValueError(f"threshold_rule must be 'ge' or 'gt', got {self.threshold_rule!r}")
        if self.scaling_fit not in ("train", "all"):
            raise ValueError(f"scaling_fit must be 'train' or 'all', got {self.scaling_fit!r}")
        if self.keep not in ("best", "last"):
            raise ValueError(f"keep must be 'best' or 'last', got {self.keep!r}")
        if int(self.lr_warmup_epochs) < 0 or any(int(v) < 0 for v in self.lr_warmup_epochs_by_strategy.values()):
            raise ValueError("lr_warmup_epochs must be >= 0")

    @property
    def decision_threshold(self) -> float:
        """The threshold given to :func:`~labelwise.metrics.mulan_report` (``>=``): ``threshold``, or with
        ``threshold_rule="gt"`` the next float32 above it (the scores are float32, so ``score >= t'`` is
        exactly ``score > threshold``, also under NumPy 2's casting of a Python float to the array's dtype)."""
        if self.threshold_rule == "ge":
            return float(self.threshold)
        return float(np.nextafter(np.float32(self.threshold), np.float32(np.inf)))

    def features_kept(self, dataset: str) -> float | int | None:
        """The document-frequency selection that applies to ``dataset`` (first matching pattern), or None."""
        for pattern, keep in (self.feature_selection or {}).items():
            if fnmatch.fnmatch(dataset.lower(), pattern.lower()):
                return keep
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy of the settings."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=list))


@dataclass
class BenchmarkData:
    """One dataset prepared for the protocol: features (dense float32 or CSR), kept targets and names."""

    name: str
    X: Any
    Y: np.ndarray
    class_names: list[str]
    dropped_labels: list[str]

    @property
    def num_features(self) -> int:
        return int(self.X.shape[1])


def load_benchmark_data(name: str, *, root: str | os.PathLike | None = None, min_positives: int = 21) -> BenchmarkData:
    """Read a MULAN dataset whole (``split="all"``) and drop labels with fewer than ``min_positives`` positives.

    The dataset's ``name`` is the collection's directory name (``"corel5k"`` for ``"Corel5k"``), or the
    directory / file stem of a path.

    Examples
    --------
    >>> data = load_benchmark_data("emotions", min_positives=21)  # doctest: +SKIP
    >>> data.X.shape, data.Y.shape  # doctest: +SKIP
    ((593, 72), (593, 6))
    """
    from labelwise.data.formats.mulan import load_mulan

    ds = load_mulan(name, split="all", root=root)
    keep = drop_rare_labels(ds.targets, min_positives)
    if keep.size == 0:
        raise ValueError(f"{name}: no label has at least {min_positives} positives")
    names = list(ds.class_names)
    dropped = [names[j] for j in range(len(names)) if j not in set(keep.tolist())]
    X = ds.features
    if not sp.issparse(X):
        X = np.ascontiguousarray(X, dtype=np.float32)
    p = Path(name)
    display = (p.stem if p.is_file() else p.name) if p.exists() else str(ds.name)
    return BenchmarkData(name=display, X=X, Y=np.ascontiguousarray(ds.targets[:, keep], dtype=np.uint8),
                         class_names=[names[j] for j in keep], dropped_labels=dropped)


def make_splits(targets: Any, *, n_folds: int = 5, seed: int = 0, validation: str = "test_half",
                val_fraction: float = 0.5) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(train, val, test)`` row indices of every fold (see the module notes for ``validation``).

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.random.default_rng(0).random((40, 3)) < 0.4
    >>> tr, va, te = make_splits(Y, n_folds=4, seed=0)[1]
    >>> len(tr), len(va) + len(te), len(set(tr) | set(va) | set(te))
    (30, 10, 40)
    """
    if validation not in _VALIDATION:
        raise ValueError(f"validation must be one of {_VALIDATION}, got {validation!r}")
    y = np.asarray(targets)
    out = []
    for train, held in iterative_stratified_kfold(y, n_splits=n_folds, seed=seed):
        if validation == "test_half":
            rel_test, rel_val = iterative_train_test_split(y[held], test_size=val_fraction, seed=seed + 1)
            out.append((train, np.sort(held[rel_val]), np.sort(held[rel_test])))
        else:
            rel_train, rel_val = iterative_train_test_split(y[train], test_size=val_fraction, seed=seed + 1)
            out.append((np.sort(train[rel_train]), np.sort(train[rel_val]), held))
    return out


def _rows(X: Any, idx: np.ndarray) -> Any:
    return X[idx]


def _cols(X: Any, cols: np.ndarray | None) -> Any:
    if cols is None:
        return X
    return X[:, cols]


def _test_report(scores: np.ndarray, targets: np.ndarray, protocol: MulanProtocol) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rep = mulan_report(scores, targets, threshold=protocol.decision_threshold, empty_class=protocol.empty_class)
    pos = targets.sum(0)
    rep["labels_without_test_positive"] = int((pos == 0).sum())
    rep["labels_auc_undefined"] = int(((pos == 0) | (pos == targets.shape[0])).sum())
    return rep


_WEIGHTED = ("adaptive", "chain")


@dataclass
class PreparedFold:
    """One fold ready for training: scaled features, targets and the kNN imbalance weights (if needed).

    Built by :func:`prepare_fold`; every candidate (:func:`run_candidate`) of the fold shares it.
    """

    dataset: str
    fold: int
    Xtr: Any
    Xva: Any
    Xte: Any
    Ytr: np.ndarray
    Yva: np.ndarray
    Yte: np.ndarray
    weights: np.ndarray | None
    prep_time: float
    knn_time: float


def prepare_fold(data: BenchmarkData, split: tuple[np.ndarray, np.ndarray, np.ndarray], *, fold: int,
                 protocol: MulanProtocol) -> PreparedFold:
    """Feature selection and scaling fit on the training rows (or on all rows with ``scaling_fit="all"``),
    and the kNN imbalance weights when a weighted strategy (adaptive, chain) is in ``protocol``.
    """
    train, val, test = split
    t0 = time.perf_counter()
    keep = protocol.features_kept(data.name)
    cols = document_frequency_selection(_rows(data.X, train), keep) if keep is not None else None
    fit_rows = np.arange(data.Y.shape[0]) if protocol.scaling_fit == "all" else train
    scaler = FeatureScaler(protocol.scaling).fit(_cols(_rows(data.X, fit_rows), cols))
    Xtr = scaler.transform(_cols(_rows(data.X, train), cols))
    Xva = scaler.transform(_cols(_rows(data.X, val), cols))
    Xte = scaler.transform(_cols(_rows(data.X, test), cols))
    Ytr, Yva, Yte = data.Y[train], data.Y[val], data.Y[test]
    weights = None
    knn_time = 0.0
    if any(s in _WEIGHTED for s in protocol.strategies):
        tk = time.perf_counter()
        weights = imbalance_weights(Xtr, Ytr, k=protocol.k).astype(np.float32)
        knn_time = time.perf_counter() - tk
    return PreparedFold(dataset=data.name, fold=fold, Xtr=Xtr, Xva=Xva, Xte=Xte, Ytr=Ytr, Yva=Yva, Yte=Yte,
                        weights=weights, prep_time=time.perf_counter() - t0, knn_time=knn_time)


def run_candidate(prepared: PreparedFold, model_name: str, strategy: str, s_e: float | None, *,
                  protocol: MulanProtocol) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Train one (model, strategy, s_e) on a prepared fold and score it on the test part.

    Returns the record (see :func:`run_fold`, with ``selected`` False) and the per-epoch history.
    """
    pf = prepared
    seed = protocol.seed + 1000 * pf.fold
    mparams = copy.deepcopy(protocol.model_params.get(model_name, {}))
    sparams = dict(protocol.sampler_params.get(strategy, {}))
    if s_e is not None:
        sparams.setdefault("warmup_epochs", protocol.warmup_epochs)
        sparams.setdefault("k", protocol.k)
        sparams["selection_pressure"] = s_e
        if strategy in _WEIGHTED and pf.weights is not None and "imbalance_weights" not in sparams:
            sparams["weights"] = pf.weights  # computed once per fold, shared by the strategies
    sampler = create_sampler(strategy, pf.Ytr, batch_size=protocol.batch_size, seed=seed, **sparams)
    wd = protocol.weight_decay_by_strategy.get(strategy, protocol.weight_decay)
    lr_warmup = protocol.lr_warmup_epochs_by_strategy.get(strategy, protocol.lr_warmup_epochs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(model_name, num_classes=pf.Ytr.shape[1], in_features=pf.Xtr.shape[1], **mparams)
        res = fit_tabular(
            model, pf.Xtr, pf.Ytr, sampler=sampler, epochs=protocol.epochs, lr=protocol.lr,
            weight_decay=wd, betas=protocol.betas, X_val=pf.Xva, Y_val=pf.Yva,
            monitor=protocol.monitor, patience=protocol.patience,
            min_epochs=protocol.warmup_epochs + 1, threshold=protocol.decision_threshold,
            empty_class=protocol.empty_class, device=protocol.device, keep=protocol.keep,
            lr_warmup_steps=lr_warmup * max(1, len(pf.Ytr) // protocol.batch_size),
        )
    rep = _test_report(predict_scores(model, pf.Xte), pf.Yte, protocol)
    rec = {
        "dataset": pf.dataset, "model": model_name, "strategy": strategy, "fold": pf.fold,
        "selection_pressure": s_e, "selected": False, "best_epoch": res.best_epoch,
        "epochs_run": len(res.history), f"val_{protocol.monitor}": res.best_score,
        "train_time": res.train_time, "n_train": len(pf.Ytr), "n_val": len(pf.Yva), "n_test": len(pf.Yte),
        "n_labels": int(pf.Ytr.shape[1]), "n_features": int(pf.Xtr.shape[1]),
        "prep_time": pf.prep_time, "knn_time": pf.knn_time, **rep,
    }
    return rec, res.history


def select_candidate(cands: Sequence[dict[str, Any]], monitor: str) -> int:
    """Index of the candidate with the best ``val_<monitor>`` (the first on ties; NaN never wins)."""
    sign = HIGHER_IS_BETTER[monitor]
    vals = [c[f"val_{monitor}"] for c in cands]
    order = [i for i in range(len(cands)) if not math.isnan(vals[i])]
    return max(order, key=lambda i: (sign * vals[i], -i)) if order else 0


def run_fold(data: BenchmarkData, split: tuple[np.ndarray, np.ndarray, np.ndarray], *, fold: int,
             protocol: MulanProtocol, log: Callable[[str], None] | None = logger.info,
             fixed_pressures: dict[str, float] | None = None,
             ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, float]]]]:
    """Train and test every (model, strategy, s_e) of ``protocol`` on one fold.

    ``fixed_pressures`` (``"<model>/<strategy>"`` to s_e) replaces the candidates of those strategies by
    one value (see ``MulanProtocol.pressure_selection``).

    Returns
    -------
    records : list of dict
        One per candidate: ``dataset``, ``model``, ``strategy``, ``fold``, ``selection_pressure`` (None
        for random), ``selected`` (the s_e chosen on validation), ``best_epoch``, ``epochs_run``,
        ``val_<monitor>``, ``train_time``, ``n_train``/``n_val``/``n_test``, ``n_labels``, ``n_features``
        and every test measure.
    histories : dict
        Per-epoch history of each candidate, keyed ``"<dataset>/<model>/<strategy>/s<se>/fold<k>"``.
    """
    prepared = prepare_fold(data, split, fold=fold, protocol=protocol)
    records: list[dict[str, Any]] = []
    histories: dict[str, list[dict[str, float]]] = {}
    for model_name in protocol.models:
        for strategy in protocol.strategies:
            pressures: tuple[float | None, ...] = (None,) if strategy == "random" else protocol.selection_pressures
            if strategy != "random" and fixed_pressures and f"{model_name}/{strategy}" in fixed_pressures:
                pressures = (float(fixed_pressures[f"{model_name}/{strategy}"]),)
            cands = []
            for s_e in pressures:
                rec, history = run_candidate(prepared, model_name, strategy, s_e, protocol=protocol)
                key = f"{data.name}/{model_name}/{strategy}/s{'-' if s_e is None else f'{s_e:g}'}/fold{fold}"
                histories[key] = history
                cands.append(rec)
                if log is not None:
                    log(f"{data.name} fold {fold} {model_name} {strategy}"
                        + ("" if s_e is None else f" s_e={s_e:g}")
                        + f": val {protocol.monitor} {rec[f'val_{protocol.monitor}']:.4f} (epoch {rec['best_epoch']}), "
                        f"test macro_auc {rec['macro_auc']:.4f}, {rec['train_time']:.1f}s")
            cands[select_candidate(cands, protocol.monitor)]["selected"] = True
            records.extend(cands)
    return records, histories


_DATA_CACHE: dict[tuple[str, str, int, int, str, float, int], tuple[BenchmarkData, list]] = {}


def _data_and_splits(name: str, root: Any, protocol: MulanProtocol) -> tuple[BenchmarkData, list]:
    key = (str(name), str(root), protocol.min_positives, protocol.n_folds, protocol.validation,
           protocol.val_fraction, protocol.seed)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # keep one dataset in memory
        data = load_benchmark_data(name, root=root, min_positives=protocol.min_positives)
        splits = make_splits(data.Y, n_folds=protocol.n_folds, seed=protocol.seed, validation=protocol.validation,
                             val_fraction=protocol.val_fraction)
        _DATA_CACHE[key] = (data, splits)
    return _DATA_CACHE[key]
