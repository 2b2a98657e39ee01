"""Statistics of the MULAN benchmark across folds and datasets: fold means and standard deviations
(:func:`summary_table`) and the Wilcoxon signed-rank test of each strategy against a baseline (Table 3,
:func:`wilcoxon_table`), with lower-is-better measures negated so that a positive difference always means
"better".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .training import LOWER_IS_BETTER

__all__ = ["METRICS", "HIGHER_IS_BETTER", "summary_table", "wilcoxon_table"]

#: The six measures of section 4.1, in the paper's column order.
METRICS = ("macro_f1", "micro_f1", "macro_auc", "ranking_loss", "hamming_loss", "one_error")
#: Direction of each measure (+1: higher is better, -1: lower is better).
HIGHER_IS_BETTER = {m: (-1 if m in LOWER_IS_BETTER else 1) for m in (*METRICS, "coverage", "subset_accuracy")}


def summary_table(records: Sequence[dict[str, Any]], metrics: Sequence[str] = METRICS) -> list[dict[str, Any]]:
    """Mean and standard deviation (``ddof=0``) over folds per (dataset, model, strategy).

    Returns rows with ``dataset``, ``model``, ``strategy``, ``folds``, ``<metric>_mean``, ``<metric>_std``
    and ``selection_pressures`` (the s_e chosen in each fold), in first-seen order.

    Examples
    --------
    >>> rows = summary_table([{"dataset": "d", "model": "m", "strategy": "random", "fold": f,
    ...                        "macro_auc": v, "selection_pressure": None} for f, v in enumerate([0.6, 0.8])],
    ...                      ["macro_auc"])
    >>> round(rows[0]["macro_auc_mean"], 3), round(rows[0]["macro_auc_std"], 3)
    (0.7, 0.1)
    """
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["dataset"], r["model"], r["strategy"]), []).append(r)
    rows = []
    for (ds, model, strategy), rs in groups.items():
        row: dict[str, Any] = {"dataset": ds, "model": model, "strategy": strategy, "folds": len(rs)}
        for m in metrics:
            v = np.array([float(r[m]) for r in rs], dtype=np.float64)
            row[f"{m}_mean"] = float(np.mean(v))
            row[f"{m}_std"] = float(np.std(v))
        row["selection_pressures"] = [r.get("selection_pressure") for r in rs]
        rows.append(row)
    return rows


def _signed_rank_sums(d: np.ndarray) -> tuple[float, float]:
    from scipy.stats import rankdata

    nz = d[d != 0]
    if nz.size == 0:
        return 0.0, 0.0
    ranks = rankdata(np.abs(nz))
    return float(ranks[nz > 0].sum()), float(ranks[nz < 0].sum())


def wilcoxon_table(records: Sequence[dict[str, Any]], metrics: Sequence[str] = METRICS, *, baseline: str = "random",
                   alpha: float = 0.05, alternative: str = "two-sided") -> list[dict[str, Any]]:
    """Wilcoxon signed-rank test across datasets of each strategy against ``baseline`` (Table 3).

    For every (model, strategy != baseline, metric) the paired samples are the fold-mean values of the
    datasets on which both were run. Differences are taken so that positive means "strategy better"
    (lower-is-better measures are negated), and ``scipy.stats.wilcoxon`` is applied to them
    (``zero_method="wilcox"``: datasets with equal means are discarded).

    Parameters
    ----------
    records : sequence of dict
        Selected fold records (:attr:`BenchmarkResult.selected`).
    metrics : sequence of str
        Measures to test.
    baseline : str
        The reference strategy.
    alpha : float
        Significance level of the verdict.
    alternative : {"two-sided", "greater"}
        ``"greater"`` tests "strategy better than baseline" one-sided.

    Returns
    -------
    list of dict
        ``model``, ``strategy``, ``metric``, ``n_datasets``, ``better`` / ``worse`` / ``equal`` (dataset
        counts), ``r_plus`` / ``r_minus`` (rank sums of better / worse), ``statistic``, ``p_value`` (nan
        with fewer than 2 non-zero differences; 1.0 when all differences are zero) and ``verdict``:
        ``"win"`` (p < alpha and R+ > R-), ``"loss"`` (p < alpha and R+ < R-) or ``"tie"``.

    Examples
    --------
    >>> recs = [{"dataset": f"d{i}", "model": "m", "strategy": s, "fold": 0, "ranking_loss": v}
    ...         for i in range(6) for s, v in (("random", 0.3 + i / 100), ("adaptive", 0.2 + i / 100))]
    >>> row = wilcoxon_table(recs, ["ranking_loss"])[0]
    >>> row["verdict"], row["better"], round(row["p_value"], 4)
    ('win', 6, 0.0312)
    """
    from scipy.stats import wilcoxon

    if alternative not in ("two-sided", "greater"):
        raise ValueError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}")
    summary = summary_table(records, metrics)
    by = {(r["model"], r["strategy"], r["dataset"]): r for r in summary}
    models = list(dict.fromkeys(r["model"] for r in summary))
    strategies = [s for s in dict.fromkeys(r["strategy"] for r in summary) if s != baseline]
    out = []
    for model in models:
        for strategy in strategies:
            dsets = [r["dataset"] for r in summary if r["model"] == model and r["strategy"] == strategy
                     and (model, baseline, r["dataset"]) in by]
            for m in metrics:
                sign = HIGHER_IS_BETTER.get(m, 1)
                a = np.array([by[(model, strategy, d)][f"{m}_mean"] for d in dsets], dtype=np.float64)
                b = np.array([by[(model, baseline, d)][f"{m}_mean"] for d in dsets], dtype=np.float64)
                diff = sign * (a - b)
                r_plus, r_minus = _signed_rank_sums(diff)
                nz = int(np.count_nonzero(diff))
                if len(dsets) and nz == 0:
                    stat, p = 0.0, 1.0
                elif nz < 2:
                    stat, p = float("nan"), float("nan")
                else:
                    res = wilcoxon(diff, zero_method="wilcox", alternative=alternative)
                    stat, p = float(res.statistic), float(res.pvalue)
                if not math.isnan(p) and p < alpha:
                    verdict = "win" if r_plus > r_minus else ("loss" if r_plus < r_minus else "tie")
                else:
                    verdict = "tie"
                out.append({
                    "model": model, "strategy": strategy, "baseline": baseline, "metric": m,
                    "n_datasets": len(dsets), "better": int((diff > 0).sum()), "worse": int((diff < 0).sum()),
                    "equal": int((diff == 0).sum()), "r_plus": r_plus, "r_minus": r_minus, "statistic": stat,
                    "p_value": p, "alternative": alternative, "verdict": verdict,
                })
    return out
