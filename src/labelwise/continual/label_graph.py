"""AGCN's augmented correlation matrix (ACM): a label graph over all seen classes built across tasks.

After task ``t`` starts, the ACM over ``C^{1:t}`` has four blocks (Du et al., ICME 2022, and their public code):

* **new-new** (intra-task, hard labels): the conditional co-occurrence ``P(i | j) = n_ij / n_j`` of the current
  task's ground truth, binarised at ``threshold`` (0.4), re-weighted (``reweight`` (0.25) divided by the column
  sum), plus the identity, then normalised ``D^-1/2 A^T D^-1/2`` (``D`` = row sums of ``A``; ML-GCN's form);
* **old-new** (inter-task, soft x hard): ``P(old i | new j) = sum_{x: y_j(x)=1} s_i(x) / n_j`` with ``s_i(x)``
  the old model's soft label ("expert network") for old class ``i`` on the current task's image ``x``;
* **new-old**: by Bayes' rule ``P(new j | old i) = P(i | j) P(j) / P(i)`` with ``P(j) = n_j / N`` and
  ``P(i) = sum_x s_i(x) / N``, halved as in the public code;
* both inter-task blocks binarised at ``cross_threshold`` (0.3) and re-weighted like the intra block (no identity);
* **old-old**: the ACM of the previous task, kept as it was.

Rows and columns of classes not seen yet are zero.

Examples
--------
>>> import numpy as np
>>> y = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=float)   # task 0: classes 0, 1
>>> a0 = augmented_correlation_matrix(None, [], [0, 1], y, None, num_classes=4)
>>> np.round(a0[:2, :2], 3).tolist()                    # P(0|1) = P(1|0) = 0.5 >= 0.4: linked
[[0.8, 0.2], [0.2, 0.8]]
>>> float(a0[2:].sum() + a0[:, 2:].sum())
0.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["conditional_cooccurrence", "binarize_reweight", "normalize_adjacency", "augmented_correlation_matrix"]


def conditional_cooccurrence(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``P(i | j) = sum_x rows_i(x) cols_j(x) / sum_x cols_j(x)`` ``[R, K]`` (0 where column ``j`` never occurs).

    ``rows`` ``[N, R]`` may be soft (probabilities); ``cols`` ``[N, K]`` are hard labels. With the same hard matrix
    on both sides the diagonal is 1 (callers replace it).

    Examples
    --------
    >>> y = np.array([[1, 1], [1, 0]], dtype=float)
    >>> conditional_cooccurrence(y, y).tolist()
    [[1.0, 1.0], [0.5, 1.0]]
    """
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    if rows.ndim != 2 or cols.ndim != 2 or rows.shape[0] != cols.shape[0]:
        raise ValueError(f"expected [N, R] and [N, K] matrices, got {rows.shape} and {cols.shape}")
    counts = cols.sum(axis=0)
    joint = rows.T @ cols
    return np.divide(joint, counts[None, :], out=np.zeros_like(joint), where=counts[None, :] > 0)


def binarize_reweight(a: np.ndarray, threshold: float, reweight: float) -> np.ndarray:
    """AGCN/ML-GCN re-weighting: ``1[a >= threshold] * reweight / (column sum + 1e-6)``.

    Examples
    --------
    >>> binarize_reweight(np.array([[0.5, 0.1], [0.5, 0.9]]), 0.4, 0.25).round(3).tolist()
    [[0.125, 0.0], [0.125, 0.25]]
    """
    b = (np.asarray(a, dtype=np.float64) >= threshold).astype(np.float64)
    return b * reweight / (b.sum(axis=0, keepdims=True) + 1e-6)


def normalize_adjacency(a: np.ndarray) -> np.ndarray:
    """``D^-1/2 A^T D^-1/2`` with ``D`` the row sums of ``A`` (AGCN's ``gen_adj``; rows summing to 0 stay 0).

    Examples
    --------
    >>> normalize_adjacency(np.eye(2) * 4).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    a = np.asarray(a, dtype=np.float64)
    d = a.sum(axis=1)
    inv = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
    return inv[:, None] * a.T * inv[None, :]


def augmented_correlation_matrix(
    previous: np.ndarray | None,
    old_classes: Sequence[int] | np.ndarray,
    new_classes: Sequence[int] | np.ndarray,
    hard: np.ndarray,
    soft: np.ndarray | None,
    *,
    num_classes: int,
    threshold: float = 0.4,
    cross_threshold: float = 0.3,
    reweight: float = 0.25,
) -> np.ndarray:
    """The ACM ``[C, C]`` of a task (module documentation).

    Parameters
    ----------
    previous : ndarray [C, C] or None
        The ACM of the previous task (its old-old block is kept); None on the first task.
    old_classes, new_classes : sequence of int
        ``C^{1:t-1}`` and ``C^t`` (class indices).
    hard : ndarray [N, C]
        Ground-truth labels of the task's training images (only the ``new_classes`` columns are read).
    soft : ndarray [N, C] or None
        The old model's soft labels on the same images (only ``old_classes`` columns are read); needed when
        ``old_classes`` is not empty.
    num_classes : int
    threshold, cross_threshold, reweight : float
        AGCN's ``t`` (0.4), ``t2`` (0.3) and ``p`` (0.25).
    """
    old = np.asarray(old_classes, dtype=np.int64).reshape(-1)
    new = np.asarray(new_classes, dtype=np.int64).reshape(-1)
    hard = np.asarray(hard, dtype=np.float64)
    if hard.ndim != 2 or hard.shape[1] != num_classes:
        raise ValueError(f"hard labels must be [N, {num_classes}], got {hard.shape}")
    acm = np.zeros((num_classes, num_classes))
    if len(old):
        if previous is None or soft is None:
            raise ValueError("tasks after the first need the previous ACM and the old model's soft labels")
        previous = np.asarray(previous, dtype=np.float64)
        if previous.shape != (num_classes, num_classes):
            raise ValueError(f"previous ACM must be [{num_classes}, {num_classes}], got {previous.shape}")
        acm[np.ix_(old, old)] = previous[np.ix_(old, old)]
    y = hard[:, new]
    p_new = conditional_cooccurrence(y, y)
    np.fill_diagonal(p_new, 0.0)
    intra = binarize_reweight(p_new, threshold, reweight) + np.eye(len(new))
    acm[np.ix_(new, new)] = normalize_adjacency(intra)
    if len(old):
        s = np.asarray(soft, dtype=np.float64)[:, old]
        n = max(hard.shape[0], 1)
        sh = conditional_cooccurrence(s, y)                                # P(old i | new j)  [O, K]
        p_hard = y.sum(axis=0) / n                                         # P(j)
        p_soft = s.sum(axis=0) / n                                         # P(i)
        hs = np.divide(sh * p_hard[None, :], p_soft[:, None], out=np.zeros_like(sh),
                       where=p_soft[:, None] > 0).T / 2                    # P(new j | old i) / 2  [K, O]
        acm[np.ix_(old, new)] = binarize_reweight(sh, cross_threshold, reweight)
        acm[np.ix_(new, old)] = binarize_reweight(hs, cross_threshold, reweight)
    return acm
