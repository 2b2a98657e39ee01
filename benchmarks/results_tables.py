"""Regenerate the pretrained-regime tables of docs/results.md from the raw results docs/results/*.json.

For every benchmark file present (dlfl, two_stage, mlvpt, mlcil, online_cl, and any other in the RESULTS_SCHEMA format), the
script writes a per-dataset table (mean +- std over seeds of each metric) and, for the benchmarks with paper
claims (``CLAIMS``), one row per claim and dataset: the paired difference of means (paired by seed), its 95%
t-interval and the verdict (confirmed / refuted / unresolved, with the interval width), see
:mod:`labelwise.analysis.claims`. The generated text replaces what lies between the markers
``<!-- results-tables:begin -->`` and ``<!-- results-tables:end -->`` in docs/results.md (appended as a new
section when the markers are missing); the rest of the file is untouched.

Usage::

    python benchmarks/results_tables.py                     # rewrite docs/results.md
    python benchmarks/results_tables.py --check             # exit 1 if docs/results.md is out of date
    python benchmarks/results_tables.py --results-dir runs/quick --stdout
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from labelwise.analysis.claims import Claim, evaluate_claim

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- results-tables:begin -->", "<!-- results-tables:end -->"
ORDER = ("dlfl", "two_stage", "mlvpt", "mlcil", "online_cl")
#: Raw-results files whose tables another script writes into their own section of docs/results.md (their rows
#: are not seeds of one configuration: worker counts, folds of a resumable sweep, ...).
OWN_SECTIONS = {"input_pipeline", "gpu_throughput", "batch_selection"}

#: The paper claims per benchmark (method names of RESULTS_SCHEMA.md).
CLAIMS: dict[str, list[Claim]] = {
    "dlfl": [
        Claim("ssca_s1", "ofml", "mAP", "SSCA S=1 > OFML (mAP)"),
        Claim("ssca_s1", "ofml", "CF1", "SSCA S=1 > OFML (CF1)"),
        Claim("ssca_s1", "ofml", "OF1", "SSCA S=1 > OFML (OF1)"),
        Claim("ssca_s3", "ssca_s1", "mAP", "SSCA S=3 > S=1 (mAP, Table 5)"),
    ],
    "two_stage": [
        Claim("enc_irpe", "enc_standard", "mAP", "Table IV: iRPE encoder > standard encoder"),
        Claim("enc_standard", "enc_none", "mAP", "Table IV: standard encoder > no encoder"),
        Claim("sa_off", "sa_on", "mAP", "Table V: decoder w/o self-attention > with"),
        Claim("sa_off", "sa_second", "mAP", "Table V: w/o self-attention > 2nd layer only"),
        Claim("loss_apl", "loss_asl", "mAP", "Table VI: APL > ASL"),
        Claim("loss_asl", "loss_focal", "mAP", "Table VI: ASL > focal"),
        Claim("loss_focal", "loss_bce", "mAP", "Table VI: focal > BCE"),
    ],
    "mlvpt": [
        Claim("mlvpt", "vpt_deep", "mAP", "ML-VPT > VPT-deep (Table 1)"),
        Claim("mlvpt", "gvpt", "mAP", "ML-VPT > GVPT"),
        Claim("gvpt", "vpt_deep", "mAP", "GVPT > VPT-deep"),
        Claim("mlvpt", "gatevpt", "mAP", "ML-VPT > GateVPT (Table 1 comparison)"),
        Claim("mlvpt", "e2vpt", "mAP", "ML-VPT > E2VPT (Table 1 comparison)"),
        Claim("vpt_deep", "linear_probe", "mAP", "VPT-deep > linear probe"),
        Claim("vpt_dc", "vpt_co", "mAP", "Fig. 4: DC grouping > CO grouping"),
        Claim("mlvpt", "linear_probe", "cooc_FPR", "Fig. 7: ML-VPT over-infers co-occurring labels less than "
              "the linear probe (lower FPR)", higher_is_better=False),
        Claim("mlvpt", "vpt_deep", "cooc_FPR", "Fig. 7: ML-VPT lower co-occurrence FPR than VPT-deep",
              higher_is_better=False),
    ],
    # RebLL (AAAI 2025): Tables 1-2 (main comparison), 4 (AKD ablation), 5 (OR ablation), 6 (decay factor), and
    # the FPR it reports against KD (Fig. 2 b) and for OR (Fig. 3); the ablations run on the first scenario only
    "mlcil": [
        Claim("rebll", "akd", "last_mAP", "Table 5: RebLL (AKD + OR) > AKD (last mAP)"),
        Claim("akd", "kd", "last_mAP", "Table 4: AKD (L_cls + L_akd) > KD (last mAP)"),
        Claim("kd", "finetune", "last_mAP", "Table 4: KD > Fine-Tuning (last mAP)"),
        Claim("akd_cls", "finetune", "last_mAP", "Table 4: AKD (L_cls) > Fine-Tuning (L_bce) (last mAP)"),
        Claim("rebll", "kd", "FPR", "Fig. 2b: RebLL's FPR below KD's", higher_is_better=False),
        Claim("akd_er_or", "akd_er", "last_mAP", "Table 5: + OR > + Replay (both L_bce; last mAP)"),
        Claim("akd_er_or", "akd_er", "FPR", "Fig. 3: OR lowers the FPR of replay", higher_is_better=False),
        Claim("rebll", "akd_er_or", "last_mAP", "Table 5: L_er > L_bce for the relabelled replay (last mAP)"),
        Claim("akd", "akd_fixed_decay", "last_mAP", "Table 6: adaptive decay > fixed alpha = 2.0 (last mAP)"),
        Claim("rebll", "krt", "last_mAP", "Tables 1-2: RebLL > KRT (last mAP)"),
        Claim("rebll", "csc", "last_mAP", "Tables 1-2: RebLL > CSC (last mAP)"),
        Claim("rebll", "agcn", "last_mAP", "Tables 1-2: RebLL > AGCN (last mAP)"),
        Claim("rebll", "l2p", "last_mAP", "Tables 1-2: RebLL > L2P (last mAP)"),
    ],
    # DLFL (section 4.3, Table 7): SSCA as a plug-in of the online methods; PRS (ECCV 2020): PRS's
    # partitioning keeps the minority classes better than CRS's reservoir
    "online_cl": [
        Claim("prs_ssca", "prs", "overall_mAP", "DLFL Table 7: PRS + SSCA > PRS (overall mAP)"),
        Claim("prs_ssca", "prs", "minority_mAP", "DLFL Table 7: PRS + SSCA > PRS (minority mAP)"),
        Claim("crs_ssca", "crs", "overall_mAP", "DLFL Table 7: CRS + SSCA > CRS (overall mAP)"),
        Claim("prs", "crs", "minority_mAP", "PRS: PRS > CRS (minority mAP)"),
        Claim("prs", "gss", "overall_mAP", "DLFL Table 7: PRS > GSS (overall mAP)"),
        Claim("prs", "exstream", "overall_mAP", "DLFL Table 7: PRS > ExStream (overall mAP)"),
        Claim("prs", "exstream", "minority_mAP", "DLFL Table 7: PRS > ExStream (minority mAP)"),
        Claim("prs_ssca", "exstream", "overall_mAP", "DLFL Table 7: PRS + SSCA > ExStream (overall mAP)"),
        Claim("ocdm", "prs", "overall_mAP", "OCDM paper: OCDM > PRS (overall mAP)"),
    ],
}
METRICS: dict[str, tuple[str, ...]] = {
    "dlfl": ("mAP", "CF1", "OF1", "median_positive", "median_negative"),
    "two_stage": ("mAP", "CF1", "OF1"),
    "mlvpt": ("mAP", "CF1", "OF1", "cooc_FPR", "base_FPR"),
    "mlcil": ("last_mAP", "avg_mAP", "last_CF1", "last_OF1", "FPR", "forgetting"),
    "online_cl": ("overall_mAP", "overall_CF1", "overall_OF1", "majority_mAP", "moderate_mAP", "minority_mAP"),
}


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _mean_std(xs: list[float]) -> str:
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return "n/a"
    return f"{statistics.fmean(xs):.2f} ± {statistics.stdev(xs):.2f}" if len(xs) > 1 else f"{xs[0]:.2f}"


def _epoch_cap(doc: dict[str, Any]) -> tuple[int, int] | None:
    """``(max_epochs, patience)`` of a profile trained to a validation plateau, else None."""
    prof = doc.get("profile") if isinstance(doc.get("profile"), dict) else {}
    if isinstance(prof.get("max_epochs"), int) and isinstance(prof.get("patience"), int):
        return prof["max_epochs"], prof["patience"]
    return None


def _stopped_by_cap(row: dict[str, Any], cap: tuple[int, int]) -> bool:
    """Whether the run's best epoch is later than ``max_epochs - patience``: the cap, not a plateau, ended it."""
    return isinstance(row.get("best_epoch"), int | float) and row["best_epoch"] > cap[0] - cap[1]


def _plateau_cells(rows: list[dict[str, Any]], cap: tuple[int, int]) -> list[str]:
    """Best epoch (median, range) and how many runs ended at the epoch cap rather than on a plateau."""
    epochs = [int(r["best_epoch"]) for r in rows if isinstance(r.get("best_epoch"), int | float)]
    if not epochs:
        return ["n/a", "n/a"]
    capped = sum(_stopped_by_cap(r, cap) for r in rows)
    median = statistics.median(epochs)
    return [f"{median:g} ({min(epochs)}-{max(epochs)})", f"{capped}/{len(epochs)}"]


def benchmark_section(doc: dict[str, Any]) -> str:
    """The markdown of one raw-results file: header, per-dataset tables, claims with verdicts."""
    name = doc["benchmark"]
    rows = doc["rows"]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    metrics = METRICS.get(name) or tuple(k for k in rows[0] if k not in ("dataset", "method", "seed")
                                         and isinstance(rows[0][k], int | float))
    lines = [f"### {name}", "",
             f"`{doc.get('command', '?')}` (commit `{str(doc.get('commit', '?'))[:12]}`, regime "
             f"`{doc.get('regime', '?')}`{', quick' if doc.get('quick') else ''}; {doc.get('machine', '?')}; "
             f"{_fmt(float(doc.get('seconds', math.nan)) / 60, 1)} min)", ""]
    commands = doc.get("commands") or {}
    if commands and list(commands) != [doc.get("command")]:  # the stored runs came from several commands
        lines += ["Runs stored under this profile, by the command that ran them: " + "; ".join(
            f"`{c}` ({n})" for c, n in commands.items()) + ".", ""]
    if doc.get("complete") is False:
        seeds = sorted({r["seed"] for r in rows})
        lines += [f"**Incomplete**: a run in progress (resumable: the same command adds the missing runs); seeds so "
                  f"far {seeds}, {len(rows)} rows. Verdicts with fewer than 2 seeds are unresolved by construction.",
                  ""]
    if isinstance(doc.get("profile"), dict):  # every default that shaped the numbers
        lines += ["Profile: " + ", ".join(f"`{k}={v}`" for k, v in doc["profile"].items()), ""]
    cap = _epoch_cap(doc)
    for ds in datasets:
        sub = [r for r in rows if r["dataset"] == ds]
        methods = list(dict.fromkeys(r["method"] for r in sub))
        present = [m for m in metrics if any(m in r for r in sub)]
        plateau = cap is not None and any("best_epoch" in r for r in sub)
        lines += [f"**{ds}** (mean ± std over seeds)", "",
                  "| method | seeds | " + " | ".join(present) + (" | best epoch | stopped by the cap |" if plateau else " |"),
                  "|---|---:|" + "---:|" * len(present) + ("---:|---:|" if plateau else "")]
        for m in methods:
            rs = [r for r in sub if r["method"] == m]
            cells = [_mean_std([float(r.get(k, math.nan)) for r in rs]) for k in present]
            if plateau:
                cells += _plateau_cells(rs, cap)
            lines.append(f"| {m} | {len(rs)} | " + " | ".join(cells) + " |")
        lines.append("")
    if cap is not None and any("best_epoch" in r for r in rows):
        lines += [f"Best epoch: median (min-max) over the seeds. Stopped by the cap: runs whose best epoch is "
                  f"later than max_epochs - patience = {cap[0]} - {cap[1]}, i.e. training ended at the epoch cap "
                  f"before early stopping could confirm a plateau (their numbers may still be rising).", ""]
    claim_lines, capped_claims = [], False
    for ds in datasets:
        for c in CLAIMS.get(name, []):
            e = evaluate_claim(rows, c, ds)
            if e["n"] > 0:
                capped = [m for m in (c.better, c.worse) if cap is not None and any(
                    r["dataset"] == ds and r["method"] == m and _stopped_by_cap(r, cap) for r in rows)]
                capped_claims = capped_claims or bool(capped)
                note = f" (cap: {', '.join(capped)})" if capped else ""
                claim_lines.append(
                    f"| {c.text} | {ds} | {e['n']} | {_fmt(e['mean_better'])} | {_fmt(e['mean_worse'])} | "
                    f"{e['diff']:+.2f} | [{_fmt(e['low'])}, {_fmt(e['high'])}] | {_fmt(e['width'])} | "
                    f"**{e['verdict']}**{note} |")
    if claim_lines:
        lines += ["Paper claims (difference of means, paired by seed, 95% t-interval):", "",
                  "| claim | dataset | n | better | worse | difference | 95% interval | width | verdict |",
                  "|---|---|---:|---:|---:|---:|---|---:|---|", *claim_lines, ""]
        if capped_claims:
            lines += ["(cap: m): some runs of method m were stopped by the epoch cap, not by a plateau; the verdict "
                      "holds for this budget and may change with more epochs.", ""]
    return "\n".join(lines)


def generate(results_dir: Path) -> str:
    """All sections, in a fixed benchmark order, from the ``*.json`` files of ``results_dir``."""
    files = sorted((p for p in results_dir.glob("*.json") if p.stem not in OWN_SECTIONS), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else 99, p.stem))
    parts = [BEGIN, "<!-- generated by benchmarks/results_tables.py from docs/results/*.json; do not edit -->", ""]
    if not files:
        try:
            shown = results_dir.resolve().relative_to(ROOT)
        except ValueError:
            shown = results_dir
        parts.append(f"(no raw results in `{shown}` yet: run the benchmarks, docs/pretrained.md)")
    for path in files:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or "rows" not in doc or not doc["rows"]:
            raise ValueError(f"{path}: not a raw-results file (RESULTS_SCHEMA.md: needs non-empty 'rows')")
        parts.append(benchmark_section(doc))
    parts.append(END)
    return "\n".join(parts)


def splice(text: str, block: str) -> str:
    """Replace the marked block of ``text`` (or append a section holding it)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + block + tail
    section = ("\n## Pretrained-start regime (issue 15): raw results and paper claims\n\n"
               "Generated from `docs/results/*.json` by `python benchmarks/results_tables.py`; regime, budget and "
               "recipes in docs/pretrained.md.\n\n")
    return text.rstrip("\n") + "\n" + section + block + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--results-dir", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--stdout", action="store_true", help="print the tables instead of writing the document")
    parser.add_argument("--check", action="store_true", help="exit 1 when the document is out of date")
    args = parser.parse_args(argv)
    block = generate(args.results_dir)
    if args.stdout:
        print(block)
        return 0
    old = args.doc.read_text(encoding="utf-8")
    new = splice(old, block)
    if args.check:
        if new != old:
            print(f"{args.doc} is out of date: run python benchmarks/results_tables.py", file=sys.stderr)
            return 1
        return 0
    args.doc.write_text(new, encoding="utf-8")
    print(f"wrote the tables of {args.results_dir} into {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
