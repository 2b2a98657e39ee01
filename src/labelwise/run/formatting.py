"""Formatting the results of a run: the plain-text metrics table (:func:`format_metrics`) and the
JSON-safe form of a metrics dict (``_jsonable``: tensors and arrays as lists, non-finite floats as null).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["format_metrics"]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor | np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# -- display -------------------------------------------------------------------------------------------
_TABLE_KEYS = ("mAP", "CF1", "OF1", "CP", "CR", "OP", "OR")


def format_metrics(metrics: dict[str, Any], *, title: str = "", keys: Sequence[str] | None = None) -> str:
    """A plain-text table of the headline metrics (mAP, CF1, OF1, CP, CR, OP, OR and their top-k variants).

    Examples
    --------
    >>> print(format_metrics({"mAP": 0.91234, "CF1": 0.8, "OF1": 0.85, "CF1_top3": 0.7, "per_class_AP": [1]}))
    metric    value
    --------  ------
    mAP       0.9123
    CF1       0.8000
    OF1       0.8500
    CF1_top3  0.7000
    """
    if keys is None:
        base = [k for k in _TABLE_KEYS if k in metrics]
        topk = [k for k in metrics if any(k.startswith(b) and k != b and "top" in k.lower() for b in _TABLE_KEYS)]
        others = [k for k in ("mA", "instance_F1", "hamming_loss", "macro_AUC", "micro_F1", "macro_F1") if k in metrics]
        keys = base + topk + others
        if not keys:  # unknown evaluator: every scalar
            keys = [k for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    rows = []
    for k in keys:
        v = metrics.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            rows.append((k, f"{v:.4f}" if isinstance(v, float) else str(v)))
    w = max([len("metric")] + [len(k) for k, _ in rows])
    vw = max([len("value")] + [len(v) for _, v in rows])
    lines = ([title] if title else []) + [f"{'metric':<{w}}  {'value':<{vw}}".rstrip(), f"{'-' * w}  {'-' * vw}"]
    lines += [f"{k:<{w}}  {v}" for k, v in rows]
    return "\n".join(lines)
