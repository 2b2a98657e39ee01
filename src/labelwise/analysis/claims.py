"""Paper claims checked on per-seed results: paired difference of means, 95% t-interval, verdict.

A claim says that method ``a`` beats method ``b`` on a metric (higher is better, or lower for error rates
such as a false positive rate). On rows paired by seed (the same seed trains both methods on the same data),
the difference ``d_s = a_s - b_s`` gives the mean difference and its t-interval
``mean(d) +- t_{1-alpha/2, n-1} * sd(d) / sqrt(n)``. The verdict:

* **confirmed**: the interval excludes 0 on the claimed side;
* **refuted**: the interval excludes 0 on the opposite side;
* **unresolved**: the interval contains 0 (its width says how far the measurement is from a verdict).

Examples
--------
>>> from labelwise.analysis.claims import paired_interval, verdict
>>> iv = paired_interval([81.0, 82.0, 80.5, 81.5, 82.5], [80.0, 80.5, 80.0, 80.5, 81.0])
>>> round(iv.mean, 2), iv.n
(1.1, 5)
>>> verdict(iv, higher_is_better=True)
'confirmed'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Interval", "Claim", "paired_interval", "verdict", "evaluate_claim"]


@dataclass(frozen=True)
class Interval:
    """Mean paired difference ``a - b`` with its two-sided confidence interval.

    Attributes
    ----------
    mean, low, high : float
        The mean difference and the interval bounds (NaN with fewer than 2 pairs).
    n : int
        Number of seed pairs.
    confidence : float
    """

    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low


def paired_interval(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95) -> Interval:
    """The t-interval of the mean of the paired differences ``a[i] - b[i]``.

    Parameters
    ----------
    a, b : sequence of float
        Per-seed values of the two methods, in the same seed order (NaN pairs are dropped).
    confidence : float
        Two-sided level (default 0.95).

    Examples
    --------
    >>> iv = paired_interval([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    >>> round(iv.low, 3), round(iv.high, 3)
    (-0.484, 4.484)
    >>> paired_interval([1.0], [0.0]).n
    1
    """
    from scipy.stats import t as student_t

    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    d = [float(x) - float(y) for x, y in zip(a, b, strict=True) if not (math.isnan(float(x)) or math.isnan(float(y)))]
    n = len(d)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    mean = sum(d) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, confidence)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, confidence)


def verdict(interval: Interval, *, higher_is_better: bool = True) -> str:
    """``confirmed`` / ``refuted`` / ``unresolved`` for the claim "a is better than b".

    Examples
    --------
    >>> verdict(Interval(-2.0, -3.0, -1.0, 5), higher_is_better=True)
    'refuted'
    >>> verdict(Interval(-2.0, -3.0, -1.0, 5), higher_is_better=False)
    'confirmed'
    >>> verdict(Interval(0.5, -1.0, 2.0, 5))
    'unresolved'
    """
    if interval.n < 2 or math.isnan(interval.low):
        return "unresolved"
    sign = 1.0 if higher_is_better else -1.0
    lo, hi = sorted((sign * interval.low, sign * interval.high))
    if lo > 0:
        return "confirmed"
    if hi < 0:
        return "refuted"
    return "unresolved"


@dataclass(frozen=True)
class Claim:
    """A paper claim: ``better`` beats ``worse`` on ``metric`` (``higher_is_better`` tells the direction).

    Examples
    --------
    >>> Claim("ssca_s1", "ofml", "mAP", "SSCA S=1 > OFML").metric
    'mAP'
    """

    better: str
    worse: str
    metric: str
    text: str
    higher_is_better: bool = True


def evaluate_claim(rows: Iterable[Mapping[str, Any]], claim: Claim, dataset: str, *,
                   confidence: float = 0.95) -> dict[str, Any]:
    """Evaluate a claim on raw-results rows of one dataset, pairing the two methods by seed.

    Returns
    -------
    dict
        ``claim``, ``dataset``, ``n``, ``mean_better``, ``mean_worse``, ``diff``, ``low``, ``high``, ``width``,
        ``verdict``, ``seeds`` (the paired seeds).

    Examples
    --------
    >>> rows = [{"dataset": "d", "method": m, "seed": s, "mAP": v}
    ...         for m, vals in {"a": [3, 4, 5], "b": [1, 2, 2]}.items() for s, v in enumerate(vals)]
    >>> out = evaluate_claim(rows, Claim("a", "b", "mAP", "a > b"), "d")
    >>> round(out["diff"], 3), out["verdict"], out["n"]
    (2.333, 'confirmed', 3)
    """
    by: dict[str, dict[Any, float]] = {claim.better: {}, claim.worse: {}}
    for r in rows:
        if r.get("dataset") == dataset and r.get("method") in by and claim.metric in r:
            by[r["method"]][r["seed"]] = float(r[claim.metric])
    seeds = sorted(set(by[claim.better]) & set(by[claim.worse]))
    a = [by[claim.better][s] for s in seeds]
    b = [by[claim.worse][s] for s in seeds]
    iv = paired_interval(a, b, confidence=confidence) if seeds else Interval(math.nan, math.nan, math.nan, 0)
    return {
        "claim": claim.text, "dataset": dataset, "metric": claim.metric, "n": iv.n,
        "mean_better": sum(a) / len(a) if a else math.nan, "mean_worse": sum(b) / len(b) if b else math.nan,
        "diff": iv.mean, "low": iv.low, "high": iv.high, "width": iv.width,
        "verdict": verdict(iv, higher_is_better=claim.higher_is_better), "seeds": seeds,
    }
