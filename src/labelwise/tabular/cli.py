"""``labelwise select``: the MULAN batch-selection benchmark and its figures from the command line.

::

    labelwise select run --datasets scene,yeast --strategies random,adaptive --folds 5 --epochs 40 -o runs/sel
    labelwise select run --table1 --jobs 2 -o runs/table2          # the 13 datasets of Table 1
    labelwise select plot --dataset scene --epochs 40 --snapshots 10,30 -o runs/fig3_scene

``run`` writes the tables of :func:`labelwise.tabular.save_results` (``summary.md``, ``summary.csv``,
``wilcoxon.csv``, ``folds.csv``, ``candidates.csv``, ``histories.json``, ``results.json``) and prints the
Markdown tables. ``plot`` writes ``convergence.png`` (Fig. 3), ``validation.png`` (Fig. 4),
``loss_density_<strategy>.png`` (Fig. 1, with ``--snapshots``) and ``histories.json``. Both lock their output
directory while they run and refuse a non-empty one unless ``--overwrite`` is given (then a previous output of
the same command there is replaced).

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="labelwise"); sub = parser.add_subparsers(dest="command")
>>> _ = add_parser(sub)
>>> args = parser.parse_args(["select", "run", "--datasets", "scene", "--epochs", "3"])
>>> protocol_from_args(args).epochs, dataset_names(args)
(3, ['scene'])
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from labelwise.engine.run_dir import OutputLayout

__all__ = ["add_parser", "main", "add_protocol_arguments", "protocol_from_args", "dataset_names"]


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_protocol_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``labelwise select run``/``plot`` and ``benchmarks/batch_selection.py``."""
    p.add_argument("--models", default="mlp", help="comma list of tabular models (default: mlp)")
    p.add_argument("--model-params", default=None,
                   help='JSON of constructor options per model, e.g. \'{"mlp": {"hidden": [256], "dropout": 0.2}}\'')
    p.add_argument("--strategies", default="random,hard,adaptive,chain", help="comma list of samplers")
    p.add_argument("--pressures", default="2,8,16,64", help="candidate selection pressures s_e (chosen on validation)")
    p.add_argument("--pressure-selection", choices=("fold", "first_fold"), default="fold",
                   help="fold: every fold picks its s_e on its validation part; first_fold: fold 0 picks, the "
                        "other folds reuse its choice")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--run-folds", type=int, default=None, help="run only the first K folds")
    p.add_argument("--validation", choices=("test_half", "train_split"), default="test_half",
                   help="test_half: half of the held-out fold validates (published protocol); "
                        "train_split: validation carved from the training folds")
    p.add_argument("--val-fraction", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--patience", type=int, default=None, help="early stopping on validation macro-AUC")
    p.add_argument("--warmup", type=int, default=3, help="warm-up epochs (gamma)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--scaling", choices=("minmax", "standard", "none"), default="minmax")
    p.add_argument("--min-positives", type=int, default=21,
                   help="drop labels with fewer positives (default 21: MLAdaBatch drops labels with <= 20)")
    p.add_argument("--full-features", action="store_true",
                   help="no document-frequency selection (rcv1/yahoo on all their sparse features)")
    p.add_argument("--k", type=int, default=5, help="kNN size of the imbalance weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--root", default=None, help="MULAN collection directory (default: the shared collection)")


def protocol_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~labelwise.tabular.MulanProtocol` of parsed :func:`add_protocol_arguments` options."""
    from .pipeline import MulanProtocol

    model_params = json.loads(args.model_params) if args.model_params else {}
    if not isinstance(model_params, dict):
        raise ValueError(f"--model-params must be a JSON object keyed by model name, got {args.model_params!r}")
    for opts in model_params.values():
        if isinstance(opts, dict) and isinstance(opts.get("hidden"), list):
            opts["hidden"] = tuple(opts["hidden"])
    return MulanProtocol(
        strategies=_csv(args.strategies), models=_csv(args.models), model_params=model_params,
        n_folds=args.folds, run_folds=args.run_folds, validation=args.validation, val_fraction=args.val_fraction,
        min_positives=args.min_positives, scaling=args.scaling,
        feature_selection={} if args.full_features else None,
        selection_pressures=[float(v) for v in _csv(args.pressures)], warmup_epochs=args.warmup, k=args.k,
        pressure_selection=args.pressure_selection,
        epochs=args.epochs, patience=args.patience, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, seed=args.seed, device=args.device,
    )


def dataset_names(args: argparse.Namespace) -> list[str]:
    """``--datasets`` as a list, or the 13 Table 1 datasets with ``--table1``."""
    from .pipeline import TABLE1_DATASETS

    if getattr(args, "table1", False):
        return list(TABLE1_DATASETS)
    names = _csv(args.datasets or "")
    if not names:
        raise ValueError("give --datasets a,b,... or --table1")
    return names


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``select`` sub-command (``run`` and ``plot``) to an argparse ``subparsers`` object."""
    s = subparsers.add_parser(
        "select", help="multi-label batch selection on MULAN datasets (cross-validation benchmark, figures)",
        description="Random / hard / adaptive / chain batch selection (Zhou et al.) on MULAN datasets.",
    )
    ssub = s.add_subparsers(dest="select_command", required=True)
    r = ssub.add_parser("run", help="cross-validated benchmark: tables per dataset x strategy and Wilcoxon tests")
    r.add_argument("--datasets", default=None, help="comma list of MULAN names or paths")
    r.add_argument("--table1", action="store_true", help="the 13 datasets of Table 1 present in the collection")
    add_protocol_arguments(r)
    r.add_argument("--jobs", type=int, default=1, help="worker processes (one torch thread each)")
    r.add_argument("--output", "-o", default=None, help="output directory (default runs/select-<time>)")
    r.add_argument("--overwrite", action="store_true",
                   help="allow a non-empty --output: replace the benchmark there (or write into another directory)")
    r.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    r.set_defaults(func=main)
    p = ssub.add_parser("plot", help="convergence (Fig. 3), validation (Fig. 4) and loss-density (Fig. 1) figures")
    p.add_argument("--dataset", required=True, help="MULAN name or path")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--pressure", type=float, default=2.0, help="s_e of the loss-based strategies")
    p.add_argument("--snapshots", default="", help="comma list of epochs for the loss-density figure, e.g. 30,70")
    add_protocol_arguments(p)
    p.set_defaults(strategies="random,hard,adaptive")
    p.add_argument("--output", "-o", default=None, help="output directory (default runs/select-plot-<time>)")
    p.add_argument("--overwrite", action="store_true",
                   help="allow a non-empty --output: replace the figures there (or write into another directory)")
    p.set_defaults(func=main)
    return s


#: What ``labelwise select run`` writes (:func:`labelwise.tabular.save_results`); ``--overwrite`` replaces it.
SELECT_RUN_LAYOUT = OutputLayout("batch-selection benchmark", marker="results.json", files=(
    "results.json", "candidates.csv", "folds.csv", "summary.csv", "wilcoxon.csv", "summary.md", "histories.json"))
#: What ``labelwise select plot`` writes; ``--overwrite`` replaces it.
SELECT_PLOT_LAYOUT = OutputLayout("batch-selection figure set", files=(
    "convergence.png", "validation.png", "loss_density_*.png", "histories.json"))


def _run(args: argparse.Namespace) -> int:
    from labelwise.engine.run_dir import claim_output_dir

    from .pipeline import format_summary_markdown, format_wilcoxon_markdown, run_benchmark

    protocol = protocol_from_args(args)
    names = dataset_names(args)
    out = Path(args.output or f"runs/select-{time.strftime('%Y%m%d-%H%M%S')}")
    with claim_output_dir(out, overwrite=args.overwrite, layout=SELECT_RUN_LAYOUT, log=print):
        result = run_benchmark(names, protocol=protocol, root=args.root, output_dir=out,
                               log=None if args.quiet else print, jobs=args.jobs)
    print(format_summary_markdown(result.summary()))
    wil = result.wilcoxon()
    if wil:
        print()
        print(format_wilcoxon_markdown(wil))
    print(f"\n{len(result.records)} runs in {result.elapsed:.0f}s; tables in {out}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from labelwise.engine.run_dir import claim_output_dir

    protocol = protocol_from_args(args)
    out = Path(args.output or f"runs/select-plot-{time.strftime('%Y%m%d-%H%M%S')}")
    with claim_output_dir(out, overwrite=args.overwrite, layout=SELECT_PLOT_LAYOUT, log=print):
        return _plot_into(args, protocol, out)


def _plot_into(args: argparse.Namespace, protocol: Any, out: Path) -> int:
    from .plots import convergence_study, plot_convergence, plot_loss_density, plot_validation

    snaps = [int(v) for v in _csv(args.snapshots)]
    study = convergence_study(args.dataset, strategies=protocol.strategies, protocol=protocol, fold=args.fold,
                              selection_pressure=args.pressure, snapshot_epochs=snaps, root=args.root)
    title = f"{study['dataset']} ({protocol.models[0]}, s_e={args.pressure:g})"
    plot_convergence(study["histories"], title=title).savefig(out / "convergence.png", dpi=120)
    plot_validation(study["histories"], title=title).savefig(out / "validation.png", dpi=120)
    for strategy, snap in study["snapshots"].items():
        if snap:
            plot_loss_density(snap, study["targets"], title=f"{study['dataset']}: {strategy}").savefig(
                out / f"loss_density_{strategy}.png", dpi=120)
    (out / "histories.json").write_text(json.dumps(study["histories"]))
    for strategy, rows in study["histories"].items():
        last = rows[-1]
        print(f"{strategy:>9}: final training loss {last['full_train_loss']:.4f}, best val macro-AUC "
              f"{max(r['val_macro_auc'] for r in rows):.4f}, {last['wall_time']:.1f}s")
    print(f"figures in {out}")
    return 0


def main(args: argparse.Namespace | None = None) -> int:
    """Run ``labelwise select run|plot`` with parsed arguments (or parse ``sys.argv`` when None)."""
    if args is None:
        parser = argparse.ArgumentParser(prog="labelwise")
        add_parser(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(sys.argv[1:])
    if args.select_command == "run":
        return _run(args)
    return _plot(args)
