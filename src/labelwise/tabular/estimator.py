"""A scikit-learn estimator for tabular multi-label data: a registered model trained with a batch sampler.

:class:`MultiLabelClassifier` wraps :func:`labelwise.models.create_model` and
:func:`labelwise.sampling.create_sampler` behind ``fit`` / ``predict`` / ``predict_proba`` /
``decision_function``, with plain constructor parameters, so it works in ``Pipeline``, ``GridSearchCV``,
``cross_validate`` and ``clone``.

Targets
-------
* A 2-D 0/1 indicator matrix ``Y`` ``[n, C]`` (multi-label, the main use): ``predict`` returns the 0/1
  matrix ``score >= threshold``, ``predict_proba`` the ``[n, C]`` label probabilities (the multi-label
  output format of scikit-learn's ``MLPClassifier``), ``decision_function`` the ``[n, C]`` logits, and
  ``classes_`` is ``arange(C)``.
* A 1-D ``y`` (binary or multiclass, any label values) is one-hot encoded and trained one-vs-rest with the
  same BCE; ``predict`` returns the label of the highest score (binary: probability >= ``threshold``),
  ``predict_proba`` the ``[n, n_classes]`` probabilities normalised to sum to 1 and ``classes_`` the
  sorted labels. This makes the estimator usable wherever scikit-learn expects a classifier.

Determinism: with an integer ``random_state`` the model initialisation, dropout and the sampler's batches
are seeded (training runs inside ``torch.random.fork_rng``, so the global torch RNG is untouched) and two
fits give identical predictions on the same machine and thread count.

Examples
--------
>>> import numpy as np
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import MinMaxScaler
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(300, 8)); Y = (X[:, :3] + 0.3 * rng.normal(size=(300, 3)) > 0).astype(int)
>>> clf = make_pipeline(MinMaxScaler(), MultiLabelClassifier(sampler="adaptive", epochs=20, lr=0.01, random_state=0,
...                                                          model_params={"hidden": (32,)}))
>>> clf.fit(X, Y).predict(X).shape
(300, 3)
>>> clf.score(X, Y) > 0.5  # subset accuracy
True
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from labelwise.models import create_model
from labelwise.sampling import create_sampler

from .training import FitResult, fit_tabular, predict_scores

__all__ = ["MultiLabelClassifier"]

logger = logging.getLogger(__name__)


class MultiLabelClassifier(ClassifierMixin, BaseEstimator):
    """A registered labelwise model trained with a batch-selection sampler, as a scikit-learn classifier.

    Parameters
    ----------
    model : str, default "mlp"
        Name for :func:`labelwise.models.create_model`; the model must accept ``in_features`` and
        ``num_classes`` (the tabular models).
    model_params : dict, optional
        Further constructor options of the model (e.g. ``{"hidden": (256,), "dropout": 0.2}``).
    sampler : {"random", "hard", "adaptive", "chain"} or another registered sampler, default "random"
        Batch-selection strategy (:func:`labelwise.sampling.create_sampler`).
    sampler_params : dict, optional
        Options of the sampler (``selection_pressure``, ``warmup_epochs``, ``k``, ...). For loss-based
        strategies the kNN features of the imbalance weights default to the training ``X`` as given to
        ``fit`` (put a scaler before the estimator in a pipeline).
    epochs : int, default 30
        Training epochs (an epoch is ``ceil(n / batch_size)`` batches).
    batch_size : int, default 128
    lr : float, default 1e-3
        Adam learning rate.
    weight_decay : float, default 1e-4
        Adam L2 weight decay.
    loss : str, default "bce"
        Criterion name for :func:`labelwise.losses.create_loss`.
    threshold : float, default 0.5
        Probability threshold of ``predict`` (multi-label and binary targets).
    validation_fraction : float, optional
        Hold out this fraction of the training rows (random, seeded) and keep the epoch with the best
        validation macro-AUC; None (default) trains on every row and keeps the last epoch.
    patience : int, optional
        Early stopping on the validation measure (needs ``validation_fraction``).
    random_state : int, optional
        Seed of the initialisation, dropout, batches and validation split; None draws one from numpy.
    device : str, default "cpu"
        Torch device.
    verbose : int, default 0
        1 logs one line per epoch (INFO, logger ``labelwise.tabular.estimator``).

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained model (in evaluation mode).
    classes_ : ndarray
        ``arange(C)`` for multi-label targets, the sorted class labels for 1-D targets.
    n_features_in_ : int
    fit_result_ : FitResult
        History of the training run (:class:`labelwise.tabular.training.FitResult`).
    """

    def __init__(
        self,
        model: str = "mlp",
        model_params: dict[str, Any] | None = None,
        sampler: str = "random",
        sampler_params: dict[str, Any] | None = None,
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        loss: str = "bce",
        threshold: float = 0.5,
        validation_fraction: float | None = None,
        patience: int | None = None,
        random_state: int | None = None,
        device: str = "cpu",
        verbose: int = 0,
    ) -> None:
        self.model = model
        self.model_params = model_params
        self.sampler = sampler
        self.sampler_params = sampler_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.loss = loss
        self.threshold = threshold
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # -- scikit-learn metadata --------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.classifier_tags.multi_label = True
        return tags

    # -- helpers ------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if not isinstance(self.epochs, (int, np.integer)) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {self.epochs!r}")
        if not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}")
        if self.validation_fraction is not None and not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1) or None, got {self.validation_fraction!r}")
        if self.patience is not None and self.validation_fraction is None:
            raise ValueError("patience needs validation_fraction (early stopping watches the validation measure)")
        for name in ("model_params", "sampler_params"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, dict):
                raise ValueError(f"{name} must be a dict or None, got {type(v).__name__}")

    def _encode_targets(self, y: Any) -> np.ndarray:
        if sp.issparse(y):
            y = y.toarray()
        y = np.asarray(y)
        kind = type_of_target(y, input_name="y")
        if kind == "multilabel-indicator":
            self._target_kind = "multilabel"
            self.classes_ = np.arange(y.shape[1])
            return y.astype(np.uint8)
        check_classification_targets(y)
        if y.ndim == 2:
            if y.shape[1] != 1:
                raise ValueError(f"y of shape {y.shape} is {kind!r}; give a 0/1 indicator matrix for multi-label "
                                 "targets or a 1-D array of class labels")
            y = y.ravel()
        classes, inv = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y has one class ({classes[0]!r}); a classifier needs at least 2 classes")
        self.classes_ = classes
        if classes.size == 2:
            self._target_kind = "binary"
            return inv.reshape(-1, 1).astype(np.uint8)
        self._target_kind = "multiclass"
        out = np.zeros((y.shape[0], classes.size), dtype=np.uint8)
        out[np.arange(y.shape[0]), inv] = 1
        return out

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.randint(0, 2**31 - 1))
        if isinstance(self.random_state, np.random.RandomState):
            return int(self.random_state.randint(0, 2**31 - 1))
        return int(self.random_state)

    # -- API ----------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> MultiLabelClassifier:
        """Train on features ``X`` (dense or scipy.sparse ``[n, d]``) and targets ``y`` (see module notes).

        Returns
        -------
        self
        """
        self._check_params()
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float32, multi_output=True,
                             y_numeric=False, reset=True)
        Y = self._encode_targets(y)
        seed = self._seed()
        n = X.shape[0]
        train_idx = np.arange(n)
        val_idx = None
        if self.validation_fraction is not None:
            perm = np.random.default_rng([seed, 1]).permutation(n)
            n_val = int(round(self.validation_fraction * n))
            if n_val < 1 or n - n_val < 1:
                raise ValueError(f"validation_fraction={self.validation_fraction} leaves an empty part of {n} rows")
            val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        Xtr, Ytr = X[train_idx], Y[train_idx]
        sparams = dict(self.sampler_params or {})
        if self.sampler != "random":
            sparams.setdefault("features", Xtr)
        sampler = create_sampler(self.sampler, Ytr, batch_size=int(self.batch_size), seed=seed, **sparams)
        mparams = copy.deepcopy(self.model_params or {})
        log = (lambda row: logger.info("%s", {k: round(v, 5) for k, v in row.items()})) if self.verbose else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = create_model(self.model, num_classes=Y.shape[1], in_features=X.shape[1], **mparams)
            result: FitResult = fit_tabular(
                net, Xtr, Ytr, sampler=sampler, epochs=int(self.epochs), lr=float(self.lr),
                weight_decay=float(self.weight_decay), loss=self.loss,
                X_val=None if val_idx is None else X[val_idx], Y_val=None if val_idx is None else Y[val_idx],
                patience=self.patience, threshold=float(self.threshold), device=self.device, on_epoch_end=log,
            )
        self.model_ = net
        self.fit_result_ = result
        self.n_outputs_ = Y.shape[1]
        return self

    def _scores(self, X: Any, *, logits: bool = False) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float32, reset=False)
        # float64 inference: a row's output must not depend on the other rows of the call (float32 BLAS
        # results change with the matrix shape in the last bits)
        return predict_scores(self.model_, X, logits=logits, dtype=torch.float64)

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: ``[n, C]`` (multi-label, multiclass) or ``[n]`` (binary)."""
        z = self._scores(X, logits=True)
        return z[:, 0] if self._target_kind == "binary" else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Label probabilities ``[n, C]`` (multi-label) or class probabilities ``[n, n_classes]`` summing to 1."""
        p = self._scores(X)
        if self._target_kind == "multilabel":
            return p
        if self._target_kind == "binary":
            return np.column_stack([1.0 - p[:, 0], p[:, 0]])
        s = p.sum(axis=1, keepdims=True)
        return np.divide(p, s, out=np.full_like(p, 1.0 / p.shape[1]), where=s > 0)

    def predict(self, X: Any) -> np.ndarray:
        """0/1 label matrix (multi-label) or class labels (1-D targets)."""
        p = self._scores(X)
        if self._target_kind == "multilabel":
            return (p >= self.threshold).astype(np.int64)
        if self._target_kind == "binary":
            return self.classes_[(p[:, 0] >= self.threshold).astype(np.int64)]
        return self.classes_[np.argmax(p, axis=1)]
