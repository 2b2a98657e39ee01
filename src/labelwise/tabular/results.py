"""The results of a MULAN benchmark run: the :class:`BenchmarkResult` records, their Markdown tables and the
files :func:`save_results` writes (CSV, Markdown, JSON).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .protocol import MulanProtocol
from .statistics import HIGHER_IS_BETTER, METRICS, summary_table, wilcoxon_table

__all__ = ["BenchmarkResult", "format_summary_markdown", "format_wilcoxon_markdown", "save_results"]


@dataclass
class BenchmarkResult:
    """Records of every candidate run, per-epoch histories, the protocol and dataset information."""

    records: list[dict[str, Any]]
    histories: dict[str, list[dict[str, float]]]
    protocol: MulanProtocol
    datasets: dict[str, dict[str, Any]]
    elapsed: float = 0.0

    @property
    def selected(self) -> list[dict[str, Any]]:
        """The records of the selected s_e (one per dataset x model x strategy x fold)."""
        return [r for r in self.records if r["selected"]]

    def summary(self, metrics: Sequence[str] = METRICS) -> list[dict[str, Any]]:
        """:func:`summary_table` of the selected records."""
        return summary_table(self.selected, metrics)

    def wilcoxon(self, metrics: Sequence[str] = METRICS, *, baseline: str = "random", **kwargs: Any) -> list[dict[str, Any]]:
        """:func:`wilcoxon_table` of the selected records."""
        return wilcoxon_table(self.selected, metrics, baseline=baseline, **kwargs)


_LABELS = {"macro_f1": "Macro-F ↑", "micro_f1": "Micro-F ↑", "macro_auc": "Macro-AUC ↑",
           "ranking_loss": "Ranking Loss ↓", "hamming_loss": "Hamming Loss ↓", "one_error": "One Error ↓"}


def format_summary_markdown(summary: Sequence[dict[str, Any]], metrics: Sequence[str] = METRICS,
                            *, digits: int = 4) -> str:
    """A Markdown table per model: rows dataset x strategy, columns ``mean ± std`` of each measure, the best
    strategy of each dataset and measure in bold.

    Examples
    --------
    >>> rows = [{"dataset": "d", "model": "m", "strategy": s, "folds": 2, "macro_auc_mean": v, "macro_auc_std": 0.0}
    ...         for s, v in (("random", 0.7), ("adaptive", 0.8))]
    >>> print(format_summary_markdown(rows, ["macro_auc"]).splitlines()[-1])
    | d | adaptive | **0.8000 ± 0.0000** |
    """
    lines = []
    for model in dict.fromkeys(r["model"] for r in summary):
        rows = [r for r in summary if r["model"] == model]
        lines.append(f"**{model}**\n")
        lines.append("| dataset | strategy | " + " | ".join(_LABELS.get(m, m) for m in metrics) + " |")
        lines.append("|---|---|" + "---|" * len(metrics))
        best: dict[tuple[str, str], float] = {}
        for r in rows:
            for m in metrics:
                v = HIGHER_IS_BETTER.get(m, 1) * round(r[f"{m}_mean"], digits)
                best[(r["dataset"], m)] = max(best.get((r["dataset"], m), -math.inf), v)
        for r in rows:
            cells = []
            for m in metrics:
                txt = f"{r[f'{m}_mean']:.{digits}f} ± {r[f'{m}_std']:.{digits}f}"
                if HIGHER_IS_BETTER.get(m, 1) * round(r[f"{m}_mean"], digits) == best[(r["dataset"], m)]:
                    txt = f"**{txt}**"
                cells.append(txt)
            lines.append(f"| {r['dataset']} | {r['strategy']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def format_wilcoxon_markdown(table: Sequence[dict[str, Any]], metrics: Sequence[str] = METRICS) -> str:
    """Table 3 layout: rows measures, columns ``model: strategy vs baseline``, cells ``verdict (p)``.

    Examples
    --------
    >>> t = [{"model": "mlp", "strategy": "adaptive", "baseline": "random", "metric": "macro_auc",
    ...       "verdict": "win", "p_value": 0.01, "better": 9, "worse": 4}]
    >>> print(format_wilcoxon_markdown(t, ["macro_auc"]).splitlines()[-1])
    | Macro-AUC ↑ | **win** (0.0100; 9/4) |
    """
    cols = list(dict.fromkeys((r["model"], r["strategy"], r["baseline"]) for r in table))
    idx = {(r["model"], r["strategy"], r["metric"]): r for r in table}
    lines = ["| measure | " + " | ".join(f"{m}: {s} vs {b}" for m, s, b in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for metric in metrics:
        cells = []
        for model, strategy, _ in cols:
            r = idx.get((model, strategy, metric))
            if r is None:
                cells.append("")
                continue
            v = f"**{r['verdict']}**" if r["verdict"] == "win" else r["verdict"]
            p = "nan" if math.isnan(r["p_value"]) else f"{r['p_value']:.4f}"
            cells.append(f"{v} ({p}; {r['better']}/{r['worse']})")
        lines.append(f"| {_LABELS.get(metric, metric)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in r.items()})
    os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def save_results(result: BenchmarkResult, output_dir: str | os.PathLike, *,
                 metrics: Sequence[str] = METRICS) -> dict[str, Path]:
    """Write ``candidates.csv`` (every s_e), ``folds.csv`` (selected), ``summary.csv``, ``wilcoxon.csv``,
    ``summary.md`` (both tables in Markdown), ``histories.json`` and ``results.json`` (protocol, dataset
    information, records, summary, Wilcoxon). Returns the paths by name.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary(metrics)
    wil = result.wilcoxon(metrics)
    paths = {name: out / name for name in ("candidates.csv", "folds.csv", "summary.csv", "wilcoxon.csv",
                                           "summary.md", "histories.json", "results.json")}
    _write_csv(paths["candidates.csv"], result.records)
    _write_csv(paths["folds.csv"], result.selected)
    _write_csv(paths["summary.csv"], summary)
    if wil:
        _write_csv(paths["wilcoxon.csv"], wil)
    md = ["# Batch selection results", "", format_summary_markdown(summary, metrics), ""]
    if wil:
        md += ["## Wilcoxon signed-rank test across datasets (p; datasets better/worse)", "",
               format_wilcoxon_markdown(wil, metrics), ""]
    paths["summary.md"].write_text("\n".join(md))
    paths["histories.json"].write_text(json.dumps(result.histories, default=_json_default))
    payload = {"protocol": result.protocol.to_dict(), "datasets": result.datasets, "elapsed": result.elapsed,
               "records": result.records, "summary": summary, "wilcoxon": wil}
    paths["results.json"].write_text(json.dumps(payload, indent=1, default=_json_default))
    return paths
