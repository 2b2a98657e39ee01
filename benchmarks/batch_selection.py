"""Random vs adaptive (and hard / chain) batch selection on the MULAN datasets of Table 1 (Zhou et al.).

Protocol (``labelwise.tabular.protocol``): 5-fold iterative stratification, each held-out fold split 50/50
into validation and test; labels with <= 20 positives dropped; MinMax scaling; rcv1 subsets and yahoo
reduced by document frequency (on the training rows) to the paper's 944 / 2,314 / 2,192 features; Adam,
batch 128, weight decay 1e-4, warm-up 3 epochs shared by all strategies; the test score at the best
validation macro-AUC epoch, s_e chosen on validation; the six measures on the test half; mean ± std over
folds, and the Wilcoxon signed-rank test across datasets against random (Table 3).

Every setting comes from a **profile** (``--profile``, default ``paper``; the table below) and any explicit
option overrides it. The header of every run prints every value in force.

  setting              paper / published        short (the earlier docs/results.md tables)
  epochs               100 (published: 101)     40
  early stopping       none                     patience 6 (never before warm-up ends)
  learning rate        1e-4                     1e-3
  batch / weight decay 128 / 1e-4               128 / 1e-4
  warm-up (gamma)      3                        3
  folds                5                        5
  s_e                  2,8,16,64 (all chosen    2,8,16,64 chosen on fold 0
                       on validation per fold;  and reused by folds 1-4
                       the sweep runs 2 first)
  strategies           random,adaptive          random,adaptive (mlp: + hard, chain)
  CLIF width           768                      128
  other models         published defaults       published defaults

``published`` is ``paper`` plus the published code's departures from the paper (np.round thresholding,
unshuffled random baseline without weight decay, learning-rate warm-up for adaptive only, no imbalance
weights, last epoch tested, MinMax fit on all rows, 101 epochs, 5% / 1% feature selection for yahoo /
tmc2007, CLIF identity graph): see docs/batch_selection.md.

Modes::

    # one-shot: run and print the tables (as before)
    python benchmarks/batch_selection.py --profile short --models dela --datasets scene,yeast
    # resumable sweep: each finished (dataset, model, strategy, fold, s_e) cell is appended to the store;
    # a rerun skips the finished cells
    nice -n 15 python benchmarks/batch_selection.py --store runs/batch_selection/paper.jsonl --jobs 2
    python benchmarks/batch_selection.py --store runs/batch_selection/paper.jsonl --progress
    # raw per-fold results (docs/results/batch_selection.json) from the store
    python benchmarks/batch_selection.py --store runs/batch_selection/paper.jsonl --export docs/results/batch_selection.json
    python benchmarks/batch_selection_tables.py   # the docs/results.md tables from that JSON

The sweep's default datasets are Table 1's, cheapest first (``SWEEP_ORDER``); models c2ae,mpvae,paca,clif,dela.
mediamill (Table 1) is not in the shared collection; Table 1's LLOG-F is ``langlog``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from labelwise.tabular import (
    TABLE1_DATASETS,
    format_summary_markdown,
    format_wilcoxon_markdown,
    run_benchmark,
    wilcoxon_table,
)
from labelwise.tabular.cli import add_protocol_arguments
from labelwise.tabular.profiles import PROFILE_MODEL_PARAMS, PROFILES, profile_protocol
from labelwise.tabular.sweep import (
    ResultStore,
    SweepSpec,
    format_progress,
    results_rows,
    run_sweep,
    selected_cells,
    sweep_progress,
)

QUICK_DATASETS = "scene,yeast,emotions"
QUICK_DATASETS_DEEP = "emotions"
DEEP_MODELS = "c2ae,mpvae,paca,clif,dela"

#: Table 1's datasets in the sweep's order: cheapest first (training samples x features used, then labels),
#: measured with the paper profile (docs/results.md gives the cell times).
SWEEP_ORDER = ("yeast", "scene", "cal500", "enron", "langlog", "corel5k", "rcv1subset1", "rcv1subset2",
               "rcv1subset3", "yahoo-Arts1", "bibtex", "yahoo-Business1", "tmc2007")

#: Kept for callers of the earlier script: the ``short`` profile's model options.
MODEL_GRID: dict[str, dict] = {m: dict(PROFILE_MODEL_PARAMS["short"].get(m, {}))
                               for m in ("mlp", "c2ae", "mpvae", "paca", "clif", "dela")}

# argparse dest -> MulanProtocol field, for the options a profile sets
_PROFILE_OPTIONS = {
    "epochs": "epochs", "patience": "patience", "lr": "lr", "batch_size": "batch_size",
    "weight_decay": "weight_decay", "warmup": "warmup_epochs", "folds": "n_folds", "run_folds": "run_folds",
    "pressures": "selection_pressures", "pressure_selection": "pressure_selection", "strategies": "strategies",
}


def _profile_help(ap: argparse.ArgumentParser) -> None:
    """Put every profile's value of each profile-controlled option into its --help line."""
    for action in ap._actions:
        if action.dest in _PROFILE_OPTIONS:
            field = _PROFILE_OPTIONS[action.dest]
            vals = "; ".join(f"{name}: {_fmt(PROFILES[name].get(field))}" for name in PROFILES)
            text = (action.help or "").replace(" (default 5)", "")
            action.help = f"{text} (default from --profile: {vals})".strip()
            action.default = None
        elif action.dest == "models":
            action.help = f"comma list of tabular models (default: mlp; with --store: {DEEP_MODELS})"
        elif action.help and "default" not in action.help and action.default not in (None, argparse.SUPPRESS) \
                and action.option_strings and not isinstance(action.default, bool):
            action.help = f"{action.help} (default: {action.default})"
        elif not action.help and action.option_strings and action.default not in (None, argparse.SUPPRESS):
            action.help = f"(default: {action.default})"
        elif action.dest in ("root", "device") or action.dest == "seed":
            pass


def _fmt(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, (tuple, list)):
        return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_protocol(args: argparse.Namespace, models: list[str]):
    """The profile's protocol with every explicitly given option applied."""
    over: dict = {}
    for dest, field in _PROFILE_OPTIONS.items():
        v = getattr(args, dest)
        if v is None:
            continue
        if dest == "pressures":
            v = tuple(float(x) for x in v.split(",") if x.strip())
        elif dest == "strategies":
            v = tuple(x.strip() for x in v.split(",") if x.strip())
        elif dest == "patience" and v <= 0:
            v = None  # --patience 0: no early stopping
        over[field] = v
    if "strategies" not in over and not any(m != "mlp" for m in models):
        over["strategies"] = ("random", "hard", "adaptive", "chain")
    over.update(val_fraction=args.val_fraction, validation=args.validation, min_positives=args.min_positives,
                scaling=args.scaling, k=args.k, seed=args.seed, device=args.device)
    if args.full_features:
        over["feature_selection"] = {}
    if args.threshold_rule is not None:
        over["threshold_rule"] = args.threshold_rule
    user = json.loads(args.model_params) if args.model_params else {}
    if not isinstance(user, dict):
        raise SystemExit(f"--model-params must be a JSON object keyed by model name, got {args.model_params!r}")
    for opts in user.values():
        if isinstance(opts, dict) and isinstance(opts.get("hidden"), list):
            opts["hidden"] = tuple(opts["hidden"])
    return profile_protocol(args.profile, models=models, overrides=over, model_overrides=user)


def header(args: argparse.Namespace, protocol, names: list[str]) -> list[str]:
    """Every setting in force, one ``#`` line each."""
    p = protocol
    return [
        f"# {' '.join(['python', *sys.argv])}",
        f"# profile {args.profile}; torch {torch.__version__}, python {platform.python_version()}, "
        f"{args.jobs} process(es) x 1 thread",
        f"# datasets {','.join(names)}",
        f"# models {','.join(p.models)}; strategies {','.join(p.strategies)}",
        f"# epochs {p.epochs}, early stopping patience {_fmt(p.patience)}, lr {p.lr:g}, batch {p.batch_size}, "
        f"weight decay {p.weight_decay:g} (per strategy: {p.weight_decay_by_strategy or 'same'}), "
        f"betas {p.betas}, lr warm-up epochs {p.lr_warmup_epochs} (per strategy: "
        f"{p.lr_warmup_epochs_by_strategy or 'same'})",
        f"# warm-up (gamma) {p.warmup_epochs}, kNN k {p.k}, s_e {_fmt(p.selection_pressures)} "
        f"(selection: {p.pressure_selection}, on validation {p.monitor})",
        f"# folds {p.run_folds or p.n_folds}/{p.n_folds}, validation {p.validation} ({p.val_fraction:g}), "
        f"min positives {p.min_positives}, scaling {p.scaling} fit on {p.scaling_fit} rows, "
        f"feature selection {p.feature_selection}",
        f"# threshold {p.threshold:g} ({'score >= t' if p.threshold_rule == 'ge' else 'score > t (np.round)'}), "
        f"weights tested: {p.keep} epoch, seed {p.seed}, device {p.device}",
        f"# sampler options {p.sampler_params or 'defaults'}",
        f"# model options {json.dumps(p.model_params, default=list)}",
    ]


def export_json(store: ResultStore, protocol, path: Path, command: str, datasets: list[str]) -> int:
    """Write the selected per-fold rows of the store (RESULTS_SCHEMA.md) to ``path``; returns the row count."""
    spec = SweepSpec(datasets, protocol=protocol)
    fps = spec.fingerprints()
    recs = [r for r in store.records() if fps.get(r.get("model")) == r.get("fingerprint")
            and r["dataset"] in datasets]
    sel = selected_cells(recs, monitor=protocol.monitor, pressures=protocol.selection_pressures)
    rows = results_rows(sel)
    prog = sweep_progress(spec, store)
    payload = {
        "benchmark": "batch_selection", "command": command, "commit": _git_commit(), "regime": "paper",
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, one thread per worker",
        "profile": protocol.to_dict(), "store": str(store.path), "datasets": list(datasets),
        "cells_done": prog["done"], "cells_total": prog["total"],
        "cell_seconds": {f"{r['dataset']}/{r['model']}/{r['strategy']}": r.get("cell_time") for r in recs},
        "rows": rows,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=list) + "\n")
    os.replace(tmp, path)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="paper",
                    help="settings to start from (default paper; see the table above)")
    ap.add_argument("--datasets", default=None,
                    help="comma list (default: Table 1's 13; with --store in SWEEP_ORDER, cheapest first: "
                         + ",".join(SWEEP_ORDER) + ")")
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_DATASETS} (deep models: {QUICK_DATASETS_DEEP}), 2 of 5 folds, 5 epochs, "
                         "s_e in {2, 64}, no early stopping (under a minute)")
    add_protocol_arguments(ap)
    _profile_help(ap)
    ap.add_argument("--threshold-rule", choices=("ge", "gt"), default=None,
                    help="ge: predict score >= 0.5; gt: score > 0.5 (np.round, the published code) "
                         "(default from --profile: paper ge; published gt; short ge)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes, one torch thread each (default 2)")
    ap.add_argument("--output", "-o", default=None, help="one-shot mode: directory for the CSV/JSON/Markdown tables")
    ap.add_argument("--store", default=None, help="sweep mode: the JSON-lines results store (created if absent)")
    ap.add_argument("--progress", action="store_true", help="with --store: print cells done / total and the "
                    "estimated time left, then exit")
    ap.add_argument("--export", default=None, help="with --store: write the selected per-fold rows as "
                    "RESULTS_SCHEMA JSON to this path (e.g. docs/results/batch_selection.json), then exit")
    ap.add_argument("--max-cells", type=int, default=None, help="sweep mode: stop after this many cells (default: all)")
    ap.add_argument("--hours", type=float, default=None, help="sweep mode: start no cell after this many hours "
                    "(default: no limit)")
    ap.add_argument("--quiet", action="store_true")
    ap.set_defaults(models=None)
    args = ap.parse_args(argv)
    if args.models is None:
        args.models = DEEP_MODELS if args.store else "mlp"
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    deep = any(m != "mlp" for m in models)
    if args.datasets is None:
        args.datasets = ",".join(SWEEP_ORDER if args.store else TABLE1_DATASETS)
        if args.quick:
            args.datasets = QUICK_DATASETS_DEEP if deep else QUICK_DATASETS
    if args.quick:
        args.run_folds, args.epochs, args.patience, args.pressures = 2, 5, 0, "2,64"
        args.pressure_selection, args.jobs = "fold", 1
    torch.set_num_threads(1)
    protocol = build_protocol(args, models)
    names = [d for d in args.datasets.split(",") if d]
    command = " ".join(["python", *sys.argv])

    if args.store:
        store = ResultStore(args.store)
        spec = SweepSpec(names, protocol=protocol, root=args.root)
        if args.export:
            n = export_json(store, protocol, Path(args.export), command, names)
            print(f"{n} per-fold rows written to {args.export}")
            return 0
        if args.progress:
            print(format_progress(sweep_progress(spec, store, jobs=args.jobs)))
            return 0
        for line in header(args, protocol, names):
            print(line)
        print(format_progress(sweep_progress(spec, store, jobs=args.jobs)), flush=True)
        deadline = None if args.hours is None else time.time() + 3600 * args.hours
        ran = run_sweep(spec, store, jobs=args.jobs, max_cells=args.max_cells, deadline=deadline,
                        log=None if args.quiet else (lambda m: print(m, flush=True)))
        print(f"# {ran} cells run")
        print(format_progress(sweep_progress(spec, store, jobs=args.jobs)))
        return 0

    for line in header(args, protocol, names):
        print(line)
    t0 = time.perf_counter()
    result = run_benchmark(
        names,
        protocol=protocol,
        root=args.root,
        output_dir=args.output,
        log=None if args.quiet else print,
        jobs=args.jobs,
    )
    print()
    print("| dataset | samples | features (used) | labels kept (dropped) | card |")
    print("|---|---|---|---|---|")
    for name, info in result.datasets.items():
        print(
            f"| {name} | {info['n_samples']} | {info['n_features']} ({info['n_features_used']}) | "
            f"{info['n_labels']} ({info['dropped_labels']}) | {info['cardinality']:.2f} |"
        )
    print()
    print(format_summary_markdown(result.summary()))
    print()
    print("Wilcoxon signed-rank test across datasets vs random (two-sided; p; datasets better/worse):")
    print()
    print(format_wilcoxon_markdown(result.wilcoxon()))
    if len(result.datasets) < 6:
        print()
        print(
            f"({len(result.datasets)} datasets: the across-dataset test cannot reach p < 0.05 with fewer than 6.)"
        )
    per_fold = [{**r, "dataset": f"{r['dataset']}/fold{r['fold']}"} for r in result.selected]
    print()
    print(
        "Supplementary: Wilcoxon signed-rank test over (dataset, fold) pairs vs random (two-sided; p; pairs "
        "better/worse):"
    )
    print()
    print(format_wilcoxon_markdown(wilcoxon_table(per_fold)))
    chosen: dict[str, dict[float, int]] = {}
    for r in result.selected:
        if r["selection_pressure"] is not None:
            d = chosen.setdefault(r["strategy"], {})
            d[r["selection_pressure"]] = d.get(r["selection_pressure"], 0) + 1
    print()
    print("s_e chosen on validation (folds):", {k: dict(sorted(v.items())) for k, v in chosen.items()})
    print(f"# {len(result.records)} training runs, {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
