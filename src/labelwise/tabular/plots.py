"""Figures of the batch-selection study (Zhou et al.): convergence by epoch and by wall time (Fig. 3),
validation macro-AUC by epoch (Fig. 4) and the density of the per-sample training loss grouped by the
number of minority labels of each sample (Fig. 1 / Fig. 5).

:func:`convergence_study` trains one model per strategy on one fold of a MULAN dataset with the pipeline's
preprocessing and records what the figures need; the ``plot_*`` functions draw from plain histories and
arrays, so they also work on the ``histories.json`` written by :func:`labelwise.tabular.save_results`.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> hist = {"random": [{"epoch": 1, "train_loss": 0.5, "wall_time": 0.1}, {"epoch": 2, "train_loss": 0.4,
...                                                                              "wall_time": 0.2}]}
>>> fig = plot_convergence(hist)
>>> [ax.get_xlabel() for ax in fig.axes]
['epoch', 'training time (s)']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "plot_convergence",
    "plot_validation",
    "plot_loss_density",
    "minority_label_counts",
    "convergence_study",
]

_COLORS = {"random": "tab:blue", "hard": "tab:orange", "adaptive": "tab:red", "chain": "tab:green"}


def _loss_key(rows: Sequence[Mapping[str, float]], key: str | None) -> str:
    if key is not None:
        return key
    return "full_train_loss" if rows and "full_train_loss" in rows[0] else "train_loss"


def plot_convergence(histories: Mapping[str, Sequence[Mapping[str, float]]], *, key: str | None = None,
                     title: str | None = None, log_y: bool = False) -> Any:
    """Training loss per strategy by epoch (left) and by cumulative training time (right), as Fig. 3.

    Parameters
    ----------
    histories : mapping of str to list of dict
        Strategy label to :attr:`FitResult.history` rows (``epoch``, ``wall_time`` and the loss key).
    key : str, optional
        Loss column; default ``full_train_loss`` when recorded (the loss of the whole training set after
        each epoch), else ``train_loss`` (mean of the epoch's batch losses - biased upwards for loss-based
        strategies, which pick hard batches).
    title : str, optional
    log_y : bool
        Logarithmic loss axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, rows in histories.items():
        if not rows:
            continue
        k = _loss_key(rows, key)
        y = [r[k] for r in rows]
        color = _COLORS.get(label.split()[0])
        ax_e.plot([r["epoch"] for r in rows], y, label=label, color=color)
        ax_t.plot([r["wall_time"] for r in rows], y, label=label, color=color)
    ax_e.set_xlabel("epoch")
    ax_t.set_xlabel("training time (s)")
    for ax in (ax_e, ax_t):
        ax.set_ylabel("training loss")
        if log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    ax_e.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_validation(histories: Mapping[str, Sequence[Mapping[str, float]]], *, metric: str = "val_macro_auc",
                    title: str | None = None) -> Any:
    """Validation measure per strategy by epoch (Fig. 4).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = plot_validation({"adaptive": [{"epoch": 1, "val_macro_auc": 0.8}]})
    >>> fig.axes[0].get_ylabel()
    'val_macro_auc'
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.8))
    for label, rows in histories.items():
        pts = [(r["epoch"], r[metric]) for r in rows if metric in r]
        if pts:
            ax.plot(*zip(*pts), label=label, color=_COLORS.get(label.split()[0]))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def minority_label_counts(targets: Any) -> np.ndarray:
    """Number of minority labels (``IRLbl > MeanIR``, on ``targets``) of each sample.

    Examples
    --------
    >>> minority_label_counts([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 0]]).tolist()
    [0, 0, 1, 0]
    """
    from labelwise.sampling import minority_labels

    y = np.asarray(targets)
    return y[:, minority_labels(y)].sum(axis=1).astype(np.int64)


def plot_loss_density(losses: Mapping[Any, np.ndarray] | np.ndarray, targets: Any, *, groups: int = 3,
                      title: str | None = None, points: int = 200) -> Any:
    """Density of ``log10`` per-sample loss, one curve per number of minority labels (0, 1, 2, > 2), as Fig. 1.

    Parameters
    ----------
    losses : ndarray of shape (n,) or mapping of label to ndarray
        Per-sample training losses (e.g. :attr:`FitResult.loss_snapshots`); a mapping draws one panel per
        entry (e.g. epochs 30 and 70).
    targets : array-like of shape (n, C)
        Training targets (minority labels are computed on them).
    groups : int
        One curve for each count ``0, 1, ..., groups - 1`` of minority labels and one for more
        (default 3: 0, 1, 2 and > 2, as in the paper).
    title : str, optional
    points : int
        Evaluation points of each kernel density estimate.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> rng = np.random.default_rng(0)
    >>> Y = (rng.random((300, 6)) < np.linspace(0.5, 0.02, 6)).astype(int)
    >>> fig = plot_loss_density({30: rng.exponential(size=300)}, Y)
    >>> fig.axes[0].get_title()
    'epoch 30'
    """
    import matplotlib.pyplot as plt
    from scipy.stats import gaussian_kde

    panels = dict(losses) if isinstance(losses, Mapping) else {None: np.asarray(losses)}
    counts = minority_label_counts(targets)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    palette = ["tab:blue", "gold", "tab:red", "tab:green", "tab:purple", "tab:brown"]
    for ax, (label, loss) in zip(axes[0], panels.items()):
        loss = np.asarray(loss, dtype=np.float64)
        if loss.shape != counts.shape:
            raise ValueError(f"losses have shape {loss.shape} but targets have {counts.shape[0]} samples")
        z = np.log10(np.clip(loss, 1e-12, None))
        grid = np.linspace(z.min() - 0.5, z.max() + 0.5, points)
        for g in range(groups + 1):
            sel = counts == g if g < groups else counts >= groups
            name = f"{g} minority" if g < groups else f"> {groups - 1} minority"
            vals = z[sel]
            if vals.size >= 2 and np.ptp(vals) > 0:
                ax.plot(grid, gaussian_kde(vals)(grid), color=palette[g % len(palette)],
                        label=f"{name} (n={vals.size})")
            elif vals.size:
                ax.axvline(vals[0], color=palette[g % len(palette)], label=f"{name} (n={vals.size})")
        ax.set_xlabel("log10 per-sample loss")
        ax.set_ylabel("density")
        if label is not None:
            ax.set_title(f"epoch {label}" if isinstance(label, (int, np.integer)) else str(label))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def convergence_study(dataset: str, *, strategies: Sequence[str] = ("random", "hard", "adaptive"),
                      protocol: Any = None, fold: int = 0, selection_pressure: float = 2.0,
                      snapshot_epochs: Sequence[int] = (), root: str | os.PathLike | None = None,
                      ) -> dict[str, Any]:
    """Train one model per strategy on one fold with the pipeline's preprocessing, recording the full
    training loss after every epoch, the validation measures and optional per-sample loss snapshots.

    Parameters
    ----------
    dataset : str
        MULAN name or path.
    strategies : sequence of str
        Samplers to compare (Fig. 3 uses random, hard and adaptive).
    protocol : MulanProtocol, optional
        Model, optimiser, scaling, epochs... (default ``MulanProtocol()``; its ``strategies`` and
        ``selection_pressures`` are ignored).
    fold : int
        Which cross-validation fold.
    selection_pressure : float
        s_e of the loss-based strategies.
    snapshot_epochs : sequence of int
        Epochs after which to store every training sample's loss (Fig. 1 uses 30 and 70).

    Returns
    -------
    dict
        ``histories`` (strategy to history rows), ``snapshots`` (strategy to ``{epoch: losses}``),
        ``targets`` (training targets) and ``dataset``.
    """
    import torch

    from labelwise.models import create_model
    from labelwise.sampling import create_sampler, imbalance_weights

    from .preprocessing import FeatureScaler, document_frequency_selection
    from .protocol import MulanProtocol, load_benchmark_data, make_splits
    from .training import fit_tabular

    protocol = protocol or MulanProtocol()
    data = load_benchmark_data(dataset, root=root, min_positives=protocol.min_positives)
    train, val, _ = make_splits(data.Y, n_folds=protocol.n_folds, seed=protocol.seed,
                                validation=protocol.validation, val_fraction=protocol.val_fraction)[fold]
    keep = protocol.features_kept(data.name)
    cols = document_frequency_selection(data.X[train], keep) if keep is not None else None
    Xtr_raw = data.X[train] if cols is None else data.X[train][:, cols]
    Xva_raw = data.X[val] if cols is None else data.X[val][:, cols]
    scaler = FeatureScaler(protocol.scaling).fit(Xtr_raw)
    Xtr, Xva = scaler.transform(Xtr_raw), scaler.transform(Xva_raw)
    Ytr, Yva = data.Y[train], data.Y[val]
    weights = imbalance_weights(Xtr, Ytr, k=protocol.k) if any(s in ("adaptive", "chain") for s in strategies) else None
    model_name = protocol.models[0]
    histories, snapshots = {}, {}
    seed = protocol.seed + 1000 * fold
    for strategy in strategies:
        kw: dict[str, Any] = {}
        if strategy != "random":
            kw = {"selection_pressure": selection_pressure, "warmup_epochs": protocol.warmup_epochs, "k": protocol.k}
            if strategy in ("adaptive", "chain"):
                kw["weights"] = weights  # computed once, shared by adaptive and chain
        sampler = create_sampler(strategy, Ytr, batch_size=protocol.batch_size, seed=seed, **kw)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = create_model(model_name, num_classes=Ytr.shape[1], in_features=Xtr.shape[1],
                                 **protocol.model_params.get(model_name, {}))
            res = fit_tabular(model, Xtr, Ytr, sampler=sampler, epochs=protocol.epochs, lr=protocol.lr,
                              weight_decay=protocol.weight_decay, betas=protocol.betas, X_val=Xva, Y_val=Yva,
                              monitor=protocol.monitor, full_train_loss=True, snapshot_epochs=snapshot_epochs,
                              device=protocol.device)
        histories[strategy] = res.history
        snapshots[strategy] = res.loss_snapshots
    return {"dataset": data.name, "histories": histories, "snapshots": snapshots, "targets": Ytr}
