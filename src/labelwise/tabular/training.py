"""A lean in-memory training loop for tabular multi-label data, driven by a batch-selection sampler.

The MULAN pipeline and the scikit-learn estimator train many small models (thousands per benchmark run):
for them the general :class:`labelwise.engine.Trainer` (DataLoader, per-item ``__getitem__``, checkpoints,
logging) costs more than the model itself. :func:`fit_tabular` keeps the inputs in one tensor (or one
``scipy.sparse`` matrix), slices each batch with one indexing call and runs the same contract as the
trainer:

* batches come from a global batch sampler (:mod:`labelwise.sampling`): ``set_epoch(e)`` then iteration;
  a sampler that is a :class:`~labelwise.engine.Callback` receives ``on_after_batch(None, batch, outputs,
  per_sample_loss)`` with the training step's own outputs (no extra forward pass);
* the model contract is the trainer's, from the same code (:mod:`labelwise.engine.step`): models return
  ``{"logits": [B, C], ...}``; a model with ``needs_targets = True`` gets ``forward(x, targets=y)`` while
  training; a model with ``loss(outputs, batch, criterion)`` supplies its own per-sample loss (its batch
  mean is the step loss); ``outputs["loss_logits"]`` (a list) is summed over; a model with ``prepare(X, Y)``
  is given the training data once before the first epoch (data-dependent set-up, e.g. CLIF's label
  co-occurrence graph);
* the loss is the criterion's element-wise loss averaged over the ``B x C`` entries (reduction
  ``"mean"``), and the per-sample loss given to callbacks is its sum over labels (the trainer's
  convention);
* Adam with L2 weight decay (``torch.optim.Adam(weight_decay=...)``), as in MLAdaBatch.

Model selection: after every epoch the validation data are scored and the ``monitor`` measure of
:func:`labelwise.metrics.mulan_report` is compared with the best so far; the best weights are kept as a
deep copy of the state dict (every tensor cloned - MLAdaBatch's ``state_dict().copy()`` is shallow, so its
"best" model silently becomes the last one) and loaded back at the end.

Examples
--------
>>> import numpy as np, torch
>>> from labelwise.models import create_model
>>> from labelwise.sampling import create_sampler
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 5)).astype("float32"); Y = (X[:, :3] > 0).astype("uint8")
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> model = create_model("mlp", num_classes=3, in_features=5, hidden=(16,), dropout=0.0)
>>> sampler = create_sampler("adaptive", Y, batch_size=32, warmup_epochs=1, features=X)
>>> result = fit_tabular(model, X, Y, sampler=sampler, epochs=3, lr=0.01, X_val=X, Y_val=Y)
>>> len(result.history), result.best_epoch in (1, 2, 3), result.monitor
(3, True, 'macro_auc')
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from labelwise.engine.callbacks import Callback
from labelwise.engine.step import forward_and_loss, model_outputs
from labelwise.losses import create_loss
from labelwise.metrics import mulan_report

__all__ = [
    "FitResult",
    "fit_tabular",
    "predict_scores",
    "as_feature_matrix",
    "LOWER_IS_BETTER",
    "per_sample_bce",
]

#: MULAN measures where a smaller value is better.
LOWER_IS_BETTER = frozenset({"ranking_loss", "hamming_loss", "one_error", "coverage"})


@dataclass
class FitResult:
    """What :func:`fit_tabular` returns.

    Attributes
    ----------
    best_epoch : int
        1-based epoch whose weights the model holds at the end (the last epoch without validation data).
    best_score : float
        The monitored validation measure at ``best_epoch`` (``nan`` without validation data).
    monitor : str
        The monitored measure.
    history : list of dict
        One row per epoch: ``epoch``, ``train_loss`` (mean over the epoch's steps of the batch loss),
        ``epoch_time`` (seconds of training, evaluation excluded), ``wall_time`` (cumulative training
        seconds), ``full_train_loss`` (mean per-sample BCE over the whole training set after the epoch,
        when ``full_train_loss=True``) and ``val_<measure>`` for every measure of the validation report.
    train_time : float
        Total training seconds (evaluation excluded).
    stopped_early : bool
        Whether early stopping ended the run before ``epochs``.
    loss_snapshots : dict of int to ndarray
        Per-sample training BCE (mean over labels, ``[n]``) after each epoch listed in ``snapshot_epochs``.
    """

    best_epoch: int
    best_score: float
    monitor: str
    history: list[dict[str, float]] = field(default_factory=list)
    train_time: float = 0.0
    stopped_early: bool = False
    loss_snapshots: dict[int, np.ndarray] = field(default_factory=dict)


def as_feature_matrix(X: Any) -> torch.Tensor | sp.csr_matrix:
    """Features as a float32 CPU tensor ``[n, d]`` (dense input) or a float32 CSR matrix (sparse input).

    Examples
    --------
    >>> as_feature_matrix([[1, 2], [3, 4]]).dtype
    torch.float32
    >>> import scipy.sparse as sp
    >>> type(as_feature_matrix(sp.eye(2, format="coo"))).__name__
    'csr_matrix'
    """
    if sp.issparse(X):
        out = sp.csr_matrix(X, dtype=np.float32)
        if not np.isfinite(out.data).all():
            raise ValueError("features contain a non-finite value")
        return out
    t = X.detach().cpu() if isinstance(X, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    t = t.float()
    if t.ndim != 2:
        raise ValueError(f"features must be a 2-D [samples, features] matrix, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        r, c = (~torch.isfinite(t)).nonzero()[0].tolist()
        raise ValueError(f"feature row {r}, column {c} is not finite")
    return t


def _rows(X: torch.Tensor | sp.csr_matrix, idx: np.ndarray) -> torch.Tensor:
    if isinstance(X, torch.Tensor):
        return X[torch.from_numpy(idx)]
    return torch.from_numpy(X[idx].toarray())


def _targets(Y: Any, n: int, what: str) -> np.ndarray:
    y = np.asarray(Y)
    if y.ndim != 2 or y.shape[0] != n:
        raise ValueError(f"{what} must be a [{n}, labels] 0/1 matrix, got shape {y.shape}")
    if y.dtype != np.bool_ and not np.isin(y, (0, 1)).all():
        r, c = np.argwhere(~np.isin(y, (0, 1)))[0]
        raise ValueError(f"{what} row {r}, column {c} is {y[r, c]!r}; targets must be 0 or 1")
    return y.astype(np.float32)


@torch.inference_mode()
def predict_scores(model: torch.nn.Module, X: Any, *, batch_size: int = 4096, logits: bool = False,
                   dtype: torch.dtype | None = None) -> np.ndarray:
    """Probabilities (``sigmoid`` of ``outputs["logits"]``, or the logits) of ``X`` in evaluation mode.

    With ``dtype`` (e.g. ``torch.float64``) a copy of the model in that precision scores the inputs (the
    model itself is not modified).

    Examples
    --------
    >>> import torch
    >>> from labelwise.models import create_model
    >>> m = create_model("mlp", num_classes=2, in_features=3, hidden=())
    >>> predict_scores(m, torch.zeros(4, 3)).shape
    (4, 2)
    """
    Xm = X if isinstance(X, (torch.Tensor, sp.csr_matrix)) else as_feature_matrix(X)
    n = Xm.shape[0]
    if dtype is not None:
        model = copy.deepcopy(model).to(dtype)
    was_training = model.training
    model.eval()
    try:
        device = next(iter(model.parameters())).device
    except StopIteration:
        device = torch.device("cpu")
    parts = []
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(start + batch_size, n))
        xb = _rows(Xm, idx).to(device)
        out = model_outputs(model, xb if dtype is None else xb.to(dtype))["logits"]
        out = out.float() if dtype is None else out
        parts.append((out if logits else torch.sigmoid(out)).cpu())
    model.train(was_training)
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(parts).numpy()


def per_sample_bce(scores: np.ndarray, targets: np.ndarray, *, eps: float = 1e-7) -> np.ndarray:
    """Per-sample BCE (mean over labels) of probabilities ``scores`` against 0/1 ``targets``.

    Examples
    --------
    >>> import numpy as np
    >>> per_sample_bce(np.array([[0.5, 0.5]]), np.array([[1, 0]])).round(4).tolist()
    [0.6931]
    """
    p = np.clip(np.asarray(scores, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(targets, dtype=np.float64)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p)).mean(axis=1)


def _better(new: float, best: float, mode: str) -> bool:
    if math.isnan(new):
        return False
    if math.isnan(best):
        return True
    return new > best if mode == "max" else new < best


def fit_tabular(
    model: torch.nn.Module,
    X: Any,
    Y: Any,
    *,
    sampler: Any,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    betas: tuple[float, float] = (0.9, 0.999),
    loss: str = "bce",
    loss_params: dict[str, Any] | None = None,
    X_val: Any = None,
    Y_val: Any = None,
    monitor: str = "macro_auc",
    patience: int | None = None,
    min_epochs: int = 0,
    threshold: float = 0.5,
    empty_class: str = "exclude",
    full_train_loss: bool = False,
    snapshot_epochs: Sequence[int] = (),
    device: str | torch.device = "cpu",
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    keep: str = "best",
    lr_warmup_steps: int = 0,
) -> FitResult:
    """Train ``model`` on in-memory features with batches drawn by ``sampler``; keep the best epoch.

    Parameters
    ----------
    model : nn.Module
        Returns ``{"logits": [B, C], ...}`` (see the module notes for ``needs_targets`` / ``loss``).
    X : array-like, Tensor or scipy.sparse matrix, shape (n, d)
        Training features (sparse matrices are densified one batch at a time).
    Y : array-like of 0/1, shape (n, C)
        Training targets.
    sampler : batch sampler
        Yields lists of row indices of ``X`` per step (``set_epoch``, ``__iter__``); e.g.
        :func:`labelwise.sampling.create_sampler`. Callbacks among them get ``on_after_batch``.
    epochs : int
        Number of epochs (an epoch is ``len(sampler)`` steps).
    lr, weight_decay, betas
        Adam settings (weight decay as L2, Adam's ``weight_decay``).
    loss, loss_params
        Criterion name and options for :func:`labelwise.losses.create_loss` (default BCE).
    X_val, Y_val : optional
        Validation data scored after every epoch; the weights of the best ``monitor`` value are kept.
    monitor : str
        A key of :func:`labelwise.metrics.mulan_report` (default ``"macro_auc"``); lower-is-better keys
        (:data:`LOWER_IS_BETTER`) are minimised.
    patience : int, optional
        Stop after this many epochs without improvement (counted after ``min_epochs``); None trains all
        ``epochs``.
    min_epochs : int
        Epochs before early stopping may trigger (e.g. the sampler's warm-up).
    threshold, empty_class
        Passed to :func:`~labelwise.metrics.mulan_report` for validation. Its warnings about labels
        without positives in the validation data are silenced (they repeat every epoch).
    full_train_loss : bool
        Also record the mean per-sample BCE over the whole training set after every epoch (one extra
        inference pass per epoch; used by the convergence plots).
    snapshot_epochs : sequence of int
        1-based epochs after which to store every training sample's BCE (loss-density plots).
    device : str or torch.device
        Where the model runs.
    on_epoch_end : callable, optional
        Called with each history row.
    keep : {"best", "last"}
        Weights held at the end: the best validation epoch's (default) or the last epoch's (MLAdaBatch's
        shallow ``state_dict().copy()`` amounts to the last; ``best_epoch`` then is the last epoch and
        ``best_score`` its validation value).
    lr_warmup_steps : int
        Linear learning-rate warm-up, MLAdaBatch's schedule: the first update uses ``lr``, and after update
        ``t`` the rate becomes ``lr * min(1, t / lr_warmup_steps)``. 0 (default): constant ``lr``.

    Returns
    -------
    FitResult
    """
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if patience is not None and int(patience) < 1:
        raise ValueError(f"patience must be >= 1 or None, got {patience}")
    if keep not in ("best", "last"):
        raise ValueError(f"keep must be 'best' or 'last', got {keep!r}")
    if int(lr_warmup_steps) < 0:
        raise ValueError(f"lr_warmup_steps must be >= 0, got {lr_warmup_steps}")
    mode = "min" if monitor in LOWER_IS_BETTER else "max"
    Xm = as_feature_matrix(X)
    n = Xm.shape[0]
    y_np = _targets(Y, n, "Y")
    y_all = torch.from_numpy(y_np)
    has_val = X_val is not None
    if has_val:
        Xv = as_feature_matrix(X_val)
        yv = _targets(Y_val, Xv.shape[0], "Y_val")
        if yv.shape[1] != y_np.shape[1]:
            raise ValueError(f"Y_val has {yv.shape[1]} labels but Y has {y_np.shape[1]}")
    device = torch.device(device)
    model.to(device)
    prepare = getattr(model, "prepare", None)
    if callable(prepare):  # data-dependent set-up from the training data (e.g. CLIF's label graph)
        prepare(Xm, y_np)
    criterion = create_loss(loss, **{**(loss_params or {}), "reduction": "mean"})
    warm = int(lr_warmup_steps)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    global_step = 0
    callback = sampler if isinstance(sampler, Callback) or hasattr(sampler, "on_after_batch") else None
    snapshots = {int(e) for e in snapshot_epochs}

    best_score, best_epoch, best_state = float("nan"), 0, None
    history: list[dict[str, float]] = []
    wall = 0.0
    since_best = 0
    stopped = False
    snaps: dict[int, np.ndarray] = {}
    for epoch in range(int(epochs)):
        model.train()
        sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64)
        steps = 0
        for batch_idx in sampler:
            idx = np.asarray(batch_idx, dtype=np.int64)
            if idx.size == 0:
                continue
            index = torch.from_numpy(idx)
            xb = _rows(Xm, idx).to(device, non_blocking=True)
            yb = y_all[index].to(device, non_blocking=True)
            batch = {"input": xb, "target": yb, "mask": None, "index": index}
            optimizer.zero_grad(set_to_none=True)
            outputs, terms = forward_and_loss(model, batch, criterion)
            per_sample = terms.per_sample
            step_loss = terms.reduce()
            step_loss.backward()
            optimizer.step()
            global_step += 1
            if warm:
                for group in optimizer.param_groups:
                    group["lr"] = lr * min(1.0, global_step / warm)
            loss_sum += step_loss.detach().double().cpu()
            steps += 1
            if callback is not None:
                callback.on_after_batch(None, batch, outputs, per_sample.detach())
        epoch_time = time.perf_counter() - t0
        wall += epoch_time
        row: dict[str, float] = {"epoch": epoch + 1, "train_loss": float(loss_sum) / max(steps, 1),
                                 "epoch_time": epoch_time, "wall_time": wall}
        if full_train_loss or (epoch + 1) in snapshots:
            per = per_sample_bce(predict_scores(model, Xm), y_np)
            if full_train_loss:
                row["full_train_loss"] = float(per.mean())
            if (epoch + 1) in snapshots:
                snaps[epoch + 1] = per.astype(np.float32)
        if has_val:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                report = mulan_report(predict_scores(model, Xv), yv, threshold=threshold, empty_class=empty_class)
            if monitor not in report:
                raise KeyError(f"monitor {monitor!r} is not a validation measure; have {sorted(report)}")
            row.update({f"val_{k}": float(v) for k, v in report.items()})
            score = float(report[monitor])
            if keep == "last":
                best_score, best_epoch = score, epoch + 1
            elif best_state is None or _better(score, best_score, mode):
                best_score, best_epoch = score, epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                since_best = 0
            else:
                since_best += 1
        history.append(row)
        if on_epoch_end is not None:
            on_epoch_end(row)
        if patience is not None and has_val and epoch + 1 >= min_epochs and since_best >= patience:
            stopped = epoch + 1 < int(epochs)
            break
    if has_val and best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = len(history)
    model.eval()
    return FitResult(best_epoch=best_epoch, best_score=best_score, monitor=monitor, history=history,
                     train_time=wall, stopped_early=stopped, loss_snapshots=snaps)
