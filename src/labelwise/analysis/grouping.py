"""Label grouping from label co-occurrence (ML-VPT section 3.3, after BoostMLC/PSD).

The training labels give a co-occurrence matrix ``S`` and two affinities between labels:

* ``M+ = (S^(1/tau) + (S^(1/tau))^T) / 2`` (element-wise ``tau``-th root): the **co-occurrence** graph;
* ``M- = 1 - M+``: the **dis-occurrence** graph.

Spectral clustering of ``M+`` gives ``n_groups`` *correlative* (CO) groups of labels that occur together;
spectral clustering of ``M-`` gives ``n_groups`` *discriminative* (DC) groups of labels that rarely occur
together. Groups may have different sizes (a label that co-occurs with everything, such as COCO's "person",
ends up alone in a DC group).

Choices made here (the paper leaves them open):

``S`` (``normalization``)
    ``"conditional"`` (default): ``S[i, j] = p(j | i) = n_ij / n_i``, the row-conditional probability
    matrix, which is asymmetric, hence the symmetrisation in ``M+``. ``"jaccard"``:
    ``n_ij / (n_i + n_j - n_ij)`` (already symmetric). Both lie in ``[0, 1]`` with a unit diagonal, so
    ``tau > 1`` raises weak co-occurrences (``0.01 -> 0.1`` for ``tau = 2``) and ``tau < 1`` suppresses them.
    With ``tau = 1`` and conditional ``S``, ``M+[i, j] = (p(i | j) + p(j | i)) / 2``
    (:func:`labelwise.data.stats.symmetric_cooccurrence`). The paper does not report ``tau``; the default is 1.
``M-``
    The paper writes ``M- = I - M+``. With the identity matrix every off-diagonal affinity would be
    ``-M+[i, j] <= 0`` and spectral clustering undefined, so ``I`` is read as the all-ones matrix:
    ``M- = 1 - M+`` (diagonal set to 0, as for ``M+`` the diagonal carries no information).
clustering
    :class:`sklearn.cluster.SpectralClustering` with ``affinity="precomputed"`` and ``random_state=seed``
    (k-means label assignment, 10 initialisations). Groups are numbered by their smallest label, so equal
    partitions give equal :class:`LabelGroups` whatever the cluster ids k-means returns.

Files
-----
:meth:`LabelGroups.save` writes ``{"format": "labelwise.label_groups", "version": 1, "num_classes": C,
"class_names": [...] | null, "co": [[labels of CO group 0], ...], "dc": [...], "meta": {...}}``.
:meth:`LabelGroups.load` reads that and also the published ML-VPT layout (``coco_coocurrence5_0.json`` /
``coco_cluster5_0.json``): one file per grouping, a JSON list with one object per group mapping the class
index (a string) to its position inside the group, e.g. ``[{"0": 0, "2": 1}, {"1": 0}]``. Pass the
co-occurrence file as ``path`` and the cluster file as ``dc=``.

Examples
--------
>>> import numpy as np
>>> from labelwise.analysis.grouping import group_labels
>>> y = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [1, 0, 1, 0]])
>>> groups = group_labels(y, n_groups=2, seed=0)
>>> groups.co
[[0, 1], [2, 3]]
>>> groups.co_assignment.tolist()
[0, 0, 1, 1]
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..data.base import check_targets
from ..data.label_groups import FORMAT_NAME, FORMAT_VERSION, LabelGroups  # noqa: F401  (re-exported)

__all__ = [
    "LabelGroups",
    "label_affinities",
    "spectral_groups",
    "group_labels",
    "plot_label_groups",
    "frequent_pairs",
    "cooccurrence_false_positive_rate",
]

def _as_binary(targets: Any) -> np.ndarray:
    return check_targets(targets, source="targets").astype(bool)


# ----------------------------------------------------------------------------------------------------------
# affinities and clustering
# ----------------------------------------------------------------------------------------------------------
def label_affinities(
    targets: Any,
    *,
    tau: float = 1.0,
    normalization: Literal["conditional", "jaccard"] = "conditional",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Co-occurrence matrix ``S`` and the affinities ``M+`` and ``M-`` of Eq. (5).

    Parameters
    ----------
    targets : array-like [N, C] of 0/1 (or a dataset with ``targets``)
        Training labels.
    tau : float, default 1.0
        ``M+ = (S^(1/tau) + (S^(1/tau))^T) / 2``; must be positive.
    normalization : {"conditional", "jaccard"}
        ``S[i, j] = p(j | i)`` or the Jaccard index ``n_ij / (n_i + n_j - n_ij)``.

    Returns
    -------
    S, M_plus, M_minus : ndarray, float64 [C, C]
        ``M+`` and ``M- = 1 - M+`` are symmetric, in ``[0, 1]``, with a zero diagonal. A label with no
        positive sample has ``S`` row/column 0 (and a warning).

    Examples
    --------
    >>> S, mp, mm = label_affinities([[1, 1], [1, 0], [1, 0], [0, 1]])
    >>> S.round(3).tolist()  # p(1|0) = 1/3, p(0|1) = 1/2
    [[1.0, 0.333], [0.5, 1.0]]
    >>> round(float(mp[0, 1]), 6), round(float(mm[0, 1]), 6)  # (1/3 + 1/2) / 2 and its complement
    (0.416667, 0.583333)
    """
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    y = _as_binary(targets).astype(np.float64)
    n = y.T @ y
    counts = np.diag(n).copy()
    if (counts == 0).any():
        warnings.warn(f"labels {np.flatnonzero(counts == 0).tolist()} have no positive sample; their affinities "
                      "are 0 (they are grouped arbitrarily)", UserWarning, stacklevel=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        if normalization == "conditional":
            s = n / counts[:, None]
        elif normalization == "jaccard":
            s = n / (counts[:, None] + counts[None, :] - n)
        else:
            raise ValueError(f"normalization must be 'conditional' or 'jaccard', got {normalization!r}")
    s = np.nan_to_num(s, nan=0.0, posinf=0.0)
    root = s ** (1.0 / tau)
    m_plus = (root + root.T) / 2.0
    np.fill_diagonal(m_plus, 0.0)
    m_minus = 1.0 - m_plus
    np.fill_diagonal(m_minus, 0.0)
    return s, m_plus, m_minus


def _canonical(labels: np.ndarray, n_groups: int) -> list[list[int]]:
    """Groups numbered by their smallest member (empty clusters last)."""
    groups = [np.flatnonzero(labels == k).tolist() for k in range(n_groups)]
    groups.sort(key=lambda g: (len(g) == 0, g[0] if g else 0))
    return groups


def spectral_groups(affinity: Any, n_groups: int, *, seed: int = 0, n_init: int = 10) -> list[list[int]]:
    """Partition the nodes of a symmetric non-negative affinity matrix into ``n_groups`` by spectral clustering.

    Parameters
    ----------
    affinity : array-like [C, C]
        Symmetric, non-negative (e.g. ``M+`` or ``M-`` of :func:`label_affinities`).
    n_groups : int
        Number of groups, ``1 <= n_groups <= C``.
    seed : int
        ``random_state`` of :class:`sklearn.cluster.SpectralClustering` (eigensolver start and k-means).
    n_init : int
        k-means restarts.

    Returns
    -------
    list of list of int
        The groups, numbered by their smallest member.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.kron(np.eye(2), np.ones((2, 2))) + 0.01
    >>> spectral_groups(a, 2)
    [[0, 1], [2, 3]]
    """
    from sklearn.cluster import SpectralClustering

    a = np.asarray(affinity, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"affinity must be a square matrix, got shape {a.shape}")
    c = a.shape[0]
    if isinstance(n_groups, bool) or not isinstance(n_groups, int | np.integer) or not 1 <= n_groups <= c:
        raise ValueError(f"n_groups must be an int in [1, {c}] (the number of labels), got {n_groups!r}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise ValueError("affinity must be finite and non-negative")
    if not np.allclose(a, a.T):
        raise ValueError("affinity must be symmetric")
    if n_groups == 1:
        return [list(range(c))]
    if n_groups == c:
        return [[i] for i in range(c)]
    a = a.copy()
    np.fill_diagonal(a, 0.0)
    if not (a > 0).any():
        # no edge at all: spectral clustering is undefined; split in contiguous chunks
        return [chunk.tolist() for chunk in np.array_split(np.arange(c), n_groups)]
    model = SpectralClustering(
        n_clusters=int(n_groups), affinity="precomputed", random_state=seed, n_init=n_init, assign_labels="kmeans"
    )
    with warnings.catch_warnings():
        # disconnected graphs (labels that never co-occur) are the normal case here
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        labels = model.fit_predict(a)
    return _canonical(np.asarray(labels), int(n_groups))


def group_labels(
    targets: Any,
    n_groups: int = 5,
    *,
    tau: float = 1.0,
    normalization: Literal["conditional", "jaccard"] = "conditional",
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> LabelGroups:
    """Group the labels of ``targets`` into ``n_groups`` CO groups (on ``M+``) and ``n_groups`` DC groups (on ``M-``).

    Parameters
    ----------
    targets : array-like [N, C] of 0/1, or a dataset with ``targets``
        Training labels (never the test labels).
    n_groups : int, default 5
        ``N_c``.
    tau, normalization
        See :func:`label_affinities`.
    seed : int
        Seed of the spectral clustering.
    class_names : sequence of str, optional
        Stored with the groups (default: the dataset's ``class_names`` when a dataset is given).

    Returns
    -------
    LabelGroups

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> blocks = rng.integers(0, 3, size=300)                   # each sample draws labels from one block
    >>> y = (rng.random((300, 9)) < 0.5) & (np.arange(9)[None] // 3 == blocks[:, None])
    >>> g = group_labels(y.astype(int), n_groups=3)
    >>> g.co
    [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    >>> g.dc  # labels of one block rarely co-occur with the others: DC groups are unbalanced, as published
    [[0, 1, 4, 5, 6, 7, 8], [2], [3]]
    """
    if class_names is None and hasattr(targets, "class_names"):
        class_names = list(targets.class_names)
    _, m_plus, m_minus = label_affinities(targets, tau=tau, normalization=normalization)
    co = spectral_groups(m_plus, n_groups, seed=seed)
    dc = spectral_groups(m_minus, n_groups, seed=seed)
    meta = {"method": "spectral", "tau": tau, "normalization": normalization, "seed": seed,
            "num_samples": int(_as_binary(targets).shape[0])}
    return LabelGroups(co=co, dc=dc, num_classes=m_plus.shape[0],
                       class_names=list(class_names) if class_names is not None else None, meta=meta)


# ----------------------------------------------------------------------------------------------------------
# plot
# ----------------------------------------------------------------------------------------------------------
def plot_label_groups(
    groups: LabelGroups,
    targets: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    tau: float | None = None,
    normalization: Literal["conditional", "jaccard"] | None = None,
    max_labels_shown: int = 40,
):
    """Plot ``M+`` reordered by the CO groups and by the DC groups, with the group blocks outlined.

    Parameters
    ----------
    groups : LabelGroups
    targets : array-like [N, C] or dataset
        The labels the affinity is computed from.
    path : path, optional
        Save the figure there (PNG, 120 dpi).
    tau, normalization : optional
        Default: the values stored in ``groups.meta`` (else 1.0 / "conditional").
    max_labels_shown : int
        Tick labels are drawn only up to this many classes.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]])
    >>> g = group_labels(y, n_groups=2)
    >>> fig = plot_label_groups(g, y)
    >>> len(fig.axes)
    3
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    tau = tau if tau is not None else float(groups.meta.get("tau", 1.0))
    normalization = normalization or groups.meta.get("normalization", "conditional")
    _, m_plus, _ = label_affinities(targets, tau=tau, normalization=normalization)
    if m_plus.shape[0] != groups.num_classes:
        raise ValueError(f"targets have {m_plus.shape[0]} labels, the groups {groups.num_classes}")
    names = groups.class_names or [str(i) for i in range(groups.num_classes)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2), constrained_layout=True)
    image = None
    for ax, which in zip(axes, ("co", "dc"), strict=True):
        parts = getattr(groups, which)
        order = [c for g in parts for c in g]
        image = ax.imshow(m_plus[np.ix_(order, order)], cmap="viridis", vmin=0.0, vmax=max(m_plus.max(), 1e-12))
        start = 0
        for g in parts:
            if g:
                ax.add_patch(Rectangle((start - 0.5, start - 0.5), len(g), len(g), fill=False, ec="red", lw=1.5))
            start += len(g)
        title = "correlative (CO) groups" if which == "co" else "discriminative (DC) groups"
        ax.set_title(f"{title}: sizes {[len(g) for g in parts]}", fontsize=9)
        if len(order) <= max_labels_shown:
            ax.set_xticks(range(len(order)), [names[c] for c in order], rotation=90, fontsize=7)
            ax.set_yticks(range(len(order)), [names[c] for c in order], fontsize=7)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(image, ax=axes, shrink=0.8, label=f"M+ (tau={tau:g}, {normalization})")
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


# ----------------------------------------------------------------------------------------------------------
# co-occurrence over-inference (ML-VPT Fig. 7, measured)
# ----------------------------------------------------------------------------------------------------------
def frequent_pairs(
    targets: Any, *, top_k: int = 10, min_count: int = 5, min_probability: float = 0.0
) -> list[tuple[int, int, float]]:
    """The ordered label pairs ``(i, j)`` with the highest ``p(j | i)`` in ``targets``.

    Parameters
    ----------
    targets : array-like [N, C] or dataset
        Training labels.
    top_k : int
        Number of pairs returned (fewer when fewer qualify).
    min_count : int
        Only labels ``i`` with at least this many positives (a stable ``p(j | i)``).
    min_probability : float
        Only pairs with ``p(j | i) >= min_probability``.

    Returns
    -------
    list of (i, j, p(j | i)), sorted by decreasing probability (ties by ``i``, ``j``).

    Examples
    --------
    >>> frequent_pairs([[1, 1, 0], [1, 1, 0], [1, 0, 1], [0, 0, 1]], top_k=2, min_count=1)
    [(1, 0, 1.0), (0, 1, 0.6666666666666666)]
    """
    y = _as_binary(targets).astype(np.float64)
    n = y.T @ y
    counts = np.diag(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = n / counts[:, None]
    p = np.nan_to_num(p)
    np.fill_diagonal(p, -1.0)
    p[counts < max(min_count, 1)] = -1.0
    ii, jj = np.nonzero((p >= min_probability) & (p > 0))
    order = np.lexsort((jj, ii, -p[ii, jj]))[:top_k]
    return [(int(ii[k]), int(jj[k]), float(p[ii[k], jj[k]])) for k in order]


def cooccurrence_false_positive_rate(
    scores: Any,
    targets: Any,
    pairs: Sequence[tuple[int, int] | tuple[int, int, float]],
    *,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Over-inference from co-occurrence: for each pair ``(i, j)``, the false positive rate of ``j`` on the
    samples that hold ``i`` but not ``j``.

    Parameters
    ----------
    scores : array-like [N, C]
        Predicted probabilities on the evaluation set.
    targets : array-like [N, C]
        Its labels.
    pairs : sequence of (i, j) or (i, j, p)
        Typically :func:`frequent_pairs` of the *training* labels.
    threshold : float
        ``j`` is predicted when ``score >= threshold``.

    Returns
    -------
    dict
        ``"per_pair"``: a list of ``{"i", "j", "n", "fpr"}`` (``n`` samples with ``i`` and without ``j``;
        pairs with ``n == 0`` have ``fpr`` NaN); ``"mean_fpr"``: the mean over pairs with ``n > 0``
        (NaN when none); ``"pooled_fpr"``: false positives over all those samples pooled; ``"baseline_fpr"``:
        the false positive rate of the same labels ``j`` on samples that hold neither ``i`` nor ``j``
        (pooled), for comparison.

    Examples
    --------
    >>> s = [[0.9, 0.7], [0.8, 0.1], [0.1, 0.6], [0.2, 0.2]]
    >>> t = [[1, 0], [1, 0], [0, 1], [0, 0]]
    >>> r = cooccurrence_false_positive_rate(s, t, [(0, 1)])
    >>> r["per_pair"][0]["fpr"], r["baseline_fpr"]
    (0.5, 0.0)
    """
    s = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, dtype=np.float64)
    y = _as_binary(targets)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and targets {y.shape} differ in shape")
    pred = s >= threshold
    per_pair, fp_total, n_total, fp_base, n_base = [], 0, 0, 0, 0
    for pair in pairs:
        i, j = int(pair[0]), int(pair[1])
        if not (0 <= i < y.shape[1] and 0 <= j < y.shape[1]) or i == j:
            raise ValueError(f"pair {pair!r}: labels must be distinct indices in [0, {y.shape[1]})")
        rows = y[:, i] & ~y[:, j]
        base = ~y[:, i] & ~y[:, j]
        n, fp = int(rows.sum()), int((pred[:, j] & rows).sum())
        per_pair.append({"i": i, "j": j, "n": n, "fpr": fp / n if n else float("nan")})
        fp_total, n_total = fp_total + fp, n_total + n
        fp_base, n_base = fp_base + int((pred[:, j] & base).sum()), n_base + int(base.sum())
    rates = [r["fpr"] for r in per_pair if r["n"] > 0]
    return {
        "per_pair": per_pair,
        "mean_fpr": float(np.mean(rates)) if rates else float("nan"),
        "pooled_fpr": fp_total / n_total if n_total else float("nan"),
        "baseline_fpr": fp_base / n_base if n_base else float("nan"),
    }
