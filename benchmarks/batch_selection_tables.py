"""The docs/results.md tables of the batch-selection sweep, generated from docs/results/batch_selection.json.

* grid status: folds done per dataset x model x strategy and the s_e tried;
* Table 2 side by side: labelwise's mean over the folds done against the paper's Table 2
  (``benchmarks/data/zhou2024_table2.json``, parsed from the paper) for every measure;
* Table 3: the Wilcoxon signed-rank test across the datasets whose 5 folds are done for both strategies,
  next to the paper's verdicts and p-values;
* the published code's numbers where they are known (measured by running CquptZA/MLAdaBatch, issue 17).

Usage::

    python benchmarks/batch_selection_tables.py                       # print the Markdown
    python benchmarks/batch_selection_tables.py --update docs/results.md   # replace the generated block

``--update`` rewrites only the text between ``<!-- batch_selection:begin -->`` and
``<!-- batch_selection:end -->`` in the given file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from labelwise.tabular.statistics import METRICS, wilcoxon_table

ROOT = Path(__file__).resolve().parent.parent
LABELS = {"macro_f1": "Macro-F ↑", "micro_f1": "Micro-F ↑", "macro_auc": "Macro-AUC ↑",
          "ranking_loss": "Ranking Loss ↓", "hamming_loss": "Hamming Loss ↓", "one_error": "One Error ↓"}
MODELS = ("c2ae", "mpvae", "paca", "clif", "dela")

#: Table 3 of the paper: (verdict, p) per measure and model.
PAPER_TABLE3 = {
    "macro_f1": {"c2ae": ("win", 0.0002), "mpvae": ("win", 0.0017), "paca": ("win", 0.0046),
                 "clif": ("win", 0.0215), "dela": ("win", 0.0171)},
    "micro_f1": {"c2ae": ("win", 0.0002), "mpvae": ("win", 0.0002), "paca": ("win", 0.0081),
                 "clif": ("tie", 0.0942), "dela": ("win", 0.0012)},
    "macro_auc": {"c2ae": ("win", 0.0012), "mpvae": ("win", 0.0005), "paca": ("win", 0.0002),
                  "clif": ("win", 0.0034), "dela": ("win", 0.0002)},
    "ranking_loss": {"c2ae": ("win", 0.0012), "mpvae": ("win", 0.0061), "paca": ("win", 0.0171),
                     "clif": ("win", 0.0171), "dela": ("win", 0.0046)},
    "hamming_loss": {"c2ae": ("win", 0.0022), "mpvae": ("win", 0.0012), "paca": ("win", 0.0022),
                     "clif": ("win", 0.0081), "dela": ("win", 0.0105)},
    "one_error": {"c2ae": ("win", 0.0022), "mpvae": ("win", 0.0134), "paca": ("win", 0.0171),
                  "clif": ("win", 0.0479), "dela": ("tie", 0.1465)},
}

#: The published code (CquptZA/MLAdaBatch) run on this machine, where known: (dataset, model, fold) ->
#: measures. Source: issue 17 (lr 1e-4, width 768, 100 epochs, its own fold 0 of yeast).
PUBLISHED_CODE = {("yeast", "clif", 0): {"macro_f1": 0.453}}


def load(path: Path) -> dict:
    data = json.loads(path.read_text())
    for key in ("benchmark", "rows"):
        if key not in data:
            raise SystemExit(f"{path}: missing key {key!r} (see ../shared/RESULTS_SCHEMA.md)")
    return data


def records(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        model, _, strategy = r["method"].partition(":")
        out.append({**r, "model": model, "strategy": strategy, "fold": int(r["seed"])})
    return out


def _mean(vals: list[float]) -> float:
    vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else float("nan")


def status_table(recs: list[dict], datasets: list[str]) -> str:
    by = defaultdict(list)
    for r in recs:
        by[(r["dataset"], r["model"], r["strategy"])].append(r)
    lines = ["| dataset | " + " | ".join(MODELS) + " |", "|---|" + "---|" * len(MODELS)]
    for ds in datasets:
        cells = []
        for m in MODELS:
            ra, ad = by.get((ds, m, "random"), []), by.get((ds, m, "adaptive"), [])
            tried = sorted({float(s) for r in ad for s in r.get("pressures_tried", [])})
            se = ",".join(f"{s:g}" for s in tried) if tried else "-"
            cells.append(f"{len(ra)}/{len(ad)} (s_e {se})" if ra or ad else "")
        lines.append(f"| {ds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def side_by_side(recs: list[dict], paper: dict, datasets: list[str]) -> str:
    by = defaultdict(list)
    for r in recs:
        by[(r["dataset"], r["model"], r["strategy"])].append(r)
    out = []
    for m in MODELS:
        rows = [ds for ds in datasets if by.get((ds, m, "random")) or by.get((ds, m, "adaptive"))]
        if not rows:
            continue
        out.append(f"**{m}** (labelwise mean over the folds done / paper Table 2)\n")
        out.append("| dataset | folds R/A | " + " | ".join(f"{LABELS[k]} random | {LABELS[k]} adaptive" for k in METRICS)
                   + " |")
        out.append("|---|---|" + "---|" * (2 * len(METRICS)))
        for ds in rows:
            ra, ad = by.get((ds, m, "random"), []), by.get((ds, m, "adaptive"), [])
            ref = paper.get(m, {}).get(ds, {})
            cells = []
            for k in METRICS:
                for strat, rs in (("random", ra), ("adaptive", ad)):
                    v = _mean([r[k] for r in rs])
                    p = ref.get(strat, {}).get(k)
                    lw = "-" if math.isnan(v) else f"{v:.4f}"
                    cells.append(f"{lw} / {p:.4f}" if p is not None else f"{lw} / -")
            out.append(f"| {ds} | {len(ra)}/{len(ad)} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out).rstrip()


def wilcoxon_section(recs: list[dict], datasets: list[str], n_folds: int = 5) -> tuple[str, list[str]]:
    by = defaultdict(set)
    for r in recs:
        by[(r["dataset"], r["model"], r["strategy"])].add(r["fold"])
    lines = ["| measure | " + " | ".join(f"{m}: labelwise (p; datasets better/worse) | {m}: paper" for m in MODELS)
             + " |", "|---|" + "---|" * (2 * len(MODELS))]
    used: dict[str, list[str]] = {}
    table = {}
    for m in MODELS:
        full = [ds for ds in datasets if len(by.get((ds, m, "random"), ())) == n_folds
                and len(by.get((ds, m, "adaptive"), ())) == n_folds]
        used[m] = full
        sub = [r for r in recs if r["model"] == m and r["dataset"] in full]
        for row in wilcoxon_table(sub) if sub else []:
            table[(m, row["metric"])] = row
    for k in METRICS:
        cells = []
        for m in MODELS:
            row = table.get((m, k))
            if row is None or row["n_datasets"] == 0:
                cells.append("-")
            else:
                p = "nan" if math.isnan(row["p_value"]) else f"{row['p_value']:.4f}"
                v = f"**{row['verdict']}**" if row["verdict"] == "win" else row["verdict"]
                cells.append(f"{v} ({p}; {row['better']}/{row['worse']} of {row['n_datasets']})")
            pv, pp = PAPER_TABLE3[k][m]
            cells.append(f"{pv} ({pp})")
        lines.append(f"| {LABELS[k]} | " + " | ".join(cells) + " |")
    notes = [f"{m}: {len(ds)} datasets ({', '.join(ds) or 'none'})" for m, ds in used.items()]
    return "\n".join(lines), notes


def published_section(recs: list[dict]) -> str:
    lines = ["| dataset | model | fold | measure | labelwise random | labelwise adaptive | published code |",
             "|---|---|---|---|---|---|---|"]
    for (ds, m, fold), vals in PUBLISHED_CODE.items():
        for k, v in vals.items():
            lw = {r["strategy"]: r[k] for r in recs if (r["dataset"], r["model"], r["fold"]) == (ds, m, fold)}
            fmt = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
            lines.append(f"| {ds} | {m} | {fold} | {LABELS[k]} | {fmt(lw.get('random'))} | "
                         f"{fmt(lw.get('adaptive'))} | {v:.4f} |")
    return "\n".join(lines)


def render(data: dict, paper: dict) -> str:
    recs = records(data["rows"])
    order = [d for d in data.get("datasets", [])] or list(dict.fromkeys(r["dataset"] for r in recs))
    datasets = [d for d in order if any(r["dataset"] == d for r in recs)]
    wil, notes = wilcoxon_section(recs, datasets)
    parts = [
        f"Generated by `python benchmarks/batch_selection_tables.py` from `docs/results/batch_selection.json` "
        f"(commit {data.get('commit', '?')[:10]}, {data.get('cells_done', '?')}/{data.get('cells_total', '?')} "
        f"cells of the paper grid done; command: `{data.get('command', '?')}`).",
        "",
        "Grid status (folds done random/adaptive, and the s_e tried for adaptive; the s_e used per fold is the "
        "best on validation among those):",
        "",
        status_table(recs, datasets),
        "",
        "The published code's numbers where known, same fold index (the published code's folds are its own "
        "skmultilearn split with seed 42, not ours):",
        "",
        published_section(recs),
        "",
        "Table 2, side by side (labelwise mean over the folds done / the paper's value; bibtex is the paper's "
        "'bittext', langlog its 'LLOG-F'):",
        "",
        side_by_side(recs, paper, datasets),
        "",
        "Table 3: Wilcoxon signed-rank test, adaptive vs random across the datasets with all 5 folds of both "
        "(two-sided, 0.05; labelwise p with datasets better/worse, next to the paper's verdict (p) over 13 datasets):",
        "",
        wil,
        "",
        "Datasets in the labelwise test: " + "; ".join(notes) + ". Fewer than 6 datasets cannot reach p < 0.05.",
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=str(ROOT / "docs/results/batch_selection.json"),
                    help="raw results (default: docs/results/batch_selection.json)")
    ap.add_argument("--paper", default=str(ROOT / "benchmarks/data/zhou2024_table2.json"),
                    help="the paper's Table 2 (default: benchmarks/data/zhou2024_table2.json)")
    ap.add_argument("--update", default=None, help="replace the generated block of this Markdown file")
    args = ap.parse_args(argv)
    data = load(Path(args.json))
    paper = json.loads(Path(args.paper).read_text())["table2"]
    text = render(data, paper)
    if args.update is None:
        print(text)
        return 0
    path = Path(args.update)
    doc = path.read_text()
    begin, end = "<!-- batch_selection:begin -->", "<!-- batch_selection:end -->"
    if begin not in doc or end not in doc:
        raise SystemExit(f"{path}: no {begin} ... {end} block to replace")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{text}\n{end}{tail}")
    print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
