"""``labelwise select``: the MULAN batch-selection benchmark and its figures from the command line.

::

    labelwise select run --datasets scene,yeast --strategies random,adaptive --folds 5 --epochs 40 -o runs/sel
    labelwise select run --table1 --jobs 2 -o runs/table2          # the 13 datasets of Table 1
    labelwise select plot --dataset scene --epochs 40 --snapshots 10,30 -o runs/fig3_scene
    labelwise select run --config select/table1 protocol.epochs=40 --jobs 2 -o runs/table2

Both read a ``select`` configuration (:mod:`labelwise.tabular.config`) through
:func:`labelwise.config.load_config`: ``--config`` (optional), its dotted ``key=value`` overrides, then the
flags, each a shorthand for one config key (:data:`SHORTHANDS`: ``--epochs`` is ``protocol.epochs``,
``--datasets a,b`` is ``datasets=[a, b]``, ``-o`` is ``output_dir``); ``--quiet`` and ``--overwrite`` are
not configuration.

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

__all__ = ["SHORTHANDS", "add_parser", "main", "add_protocol_arguments", "shorthand_overrides", "load_select_config",
           "protocol_from_args", "dataset_names"]


def _csv(value: str) -> list[str]:
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _json_object(value: str) -> dict[str, Any]:
    from labelwise.config import ConfigError

    try:
        out = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError([("protocol.model_params", f"--model-params is not JSON ({exc})")]) from None
    if not isinstance(out, dict):
        raise ConfigError([("protocol.model_params",
                            f"--model-params must be a JSON object keyed by model name, got {value!r}")])
    return out


#: ``labelwise select`` flags: (flags, dest, config key, converter of the flag's text, argparse options).
#: ``select plot`` maps ``--strategies`` to ``plot.strategies`` instead.
SHORTHANDS: list[tuple[tuple[str, ...], str, str, Any, dict[str, Any]]] = [
    (("--models",), "models", "protocol.models", _csv, {"help": "comma list of tabular models", "default": "mlp"}),
    (("--model-params",), "model_params", "protocol.model_params", _json_object,
     {"help": 'JSON of constructor options per model, e.g. \'{"mlp": {"hidden": [256], "dropout": 0.2}}\''}),
    (("--strategies",), "strategies", "protocol.strategies", _csv,
     {"help": "comma list of samplers", "default": "random,hard,adaptive,chain"}),
    (("--pressures",), "pressures", "protocol.selection_pressures", lambda v: [float(x) for x in _csv(v)],
     {"help": "candidate selection pressures s_e (chosen on validation)", "default": "2,8,16,64"}),
    (("--pressure-selection",), "pressure_selection", "protocol.pressure_selection", str,
     {"choices": ("fold", "first_fold"), "default": "fold",
      "help": "fold: every fold picks its s_e on its validation part; first_fold: fold 0 picks, the other folds "
              "reuse its choice"}),
    (("--folds",), "folds", "protocol.n_folds", int, {"type": int, "default": 5, "help": "cross-validation folds"}),
    (("--run-folds",), "run_folds", "protocol.run_folds", int, {"type": int, "help": "run only the first K folds"}),
    (("--validation",), "validation", "protocol.validation", str,
     {"choices": ("test_half", "train_split"), "default": "test_half",
      "help": "test_half: half of the held-out fold validates (published protocol); train_split: validation "
              "carved from the training folds"}),
    (("--val-fraction",), "val_fraction", "protocol.val_fraction", float, {"type": float, "default": 0.5}),
    (("--epochs",), "epochs", "protocol.epochs", int, {"type": int, "default": 50}),
    (("--patience",), "patience", "protocol.patience", int,
     {"type": int, "help": "early stopping on validation macro-AUC"}),
    (("--warmup",), "warmup", "protocol.warmup_epochs", int,
     {"type": int, "default": 3, "help": "warm-up epochs (gamma)"}),
    (("--batch-size",), "batch_size", "protocol.batch_size", int, {"type": int, "default": 128}),
    (("--lr",), "lr", "protocol.lr", float, {"type": float, "default": 1e-3}),
    (("--weight-decay",), "weight_decay", "protocol.weight_decay", float, {"type": float, "default": 1e-4}),
    (("--scaling",), "scaling", "protocol.scaling", str,
     {"choices": ("minmax", "standard", "none"), "default": "minmax"}),
    (("--min-positives",), "min_positives", "protocol.min_positives", int,
     {"type": int, "default": 21, "help": "drop labels with fewer positives (21: MLAdaBatch drops labels with <= 20)"}),
    (("--full-features",), "full_features", "protocol.feature_selection", lambda v: {},
     {"action": "store_true", "help": "no document-frequency selection (rcv1/yahoo on all their sparse features)"}),
    (("--k",), "k", "protocol.k", int, {"type": int, "default": 5, "help": "kNN size of the imbalance weights"}),
    (("--seed",), "seed", "protocol.seed", int, {"type": int, "default": 0}),
    (("--device",), "device", "protocol.device", str, {"default": "cpu"}),
    (("--root",), "root", "root", str,
     {"help": "MULAN collection directory (default: the shared collection)"}),
]


def add_protocol_arguments(p: argparse.ArgumentParser, *, shorthands: bool = False, command: str = "run") -> None:
    """Options shared by ``labelwise select run``/``plot`` and ``benchmarks/batch_selection.py`` (:data:`SHORTHANDS`).

    With ``shorthands`` (``labelwise select``) a flag has no default: it is a shorthand for its config key,
    set only when given (:func:`shorthand_overrides`); otherwise (the benchmark script) flags carry the
    protocol's defaults. ``command="plot"`` documents ``--strategies`` as ``plot.strategies``.
    """
    for flags, dest, key, _, options in SHORTHANDS:
        options = dict(options)
        if dest == "strategies" and command == "plot":
            key, options["default"] = "plot.strategies", "random,hard,adaptive"
        default = options.pop("default", None)
        text = options.pop("help", "")
        if shorthands:
            shown = f" (default {default})" if default is not None else ""
            options["help"] = f"shorthand for {key}{shown}" + (f": {text}" if text else "")
            if options.get("action") != "store_true":
                options["default"] = None
        else:
            options["help"] = text or None
            if options.get("action") != "store_true":
                options["default"] = default
        p.add_argument(*flags, dest=dest, **options)


def shorthand_overrides(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """The ``(config key, value)`` overrides the given ``labelwise select`` flags stand for.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="labelwise"); sub = parser.add_subparsers(dest="command")
    >>> _ = add_parser(sub)
    >>> shorthand_overrides(parser.parse_args(["select", "run", "--epochs", "3", "--full-features", "-o", "out"]))
    [('protocol.epochs', 3), ('protocol.feature_selection', {}), ('output_dir', 'out')]
    """
    command = getattr(args, "select_command", "run")
    out: list[tuple[str, Any]] = []
    for _, dest, key, convert, options in SHORTHANDS:
        value = getattr(args, dest, None)
        if value is None or (options.get("action") == "store_true" and not value):
            continue
        if dest == "strategies" and command == "plot":
            key = "plot.strategies"
        out.append((key, convert(value)))
    for dest, key in _COMMAND_SHORTHANDS:
        value = getattr(args, dest, None)
        if value is None or value is False:
            continue
        if dest == "datasets":
            value = _csv(value)
        elif dest == "snapshots":
            value = [int(v) for v in _csv(value)]
        out.append((key, value))
    return out


#: Flags of ``select run``/``plot`` themselves: dest -> config key.
_COMMAND_SHORTHANDS = [("datasets", "datasets"), ("table1", "table1"), ("jobs", "jobs"), ("dataset", "plot.dataset"),
                       ("fold", "plot.fold"), ("pressure", "plot.pressure"), ("snapshots", "plot.snapshots"),
                       ("output", "output_dir")]


def load_select_config(args: argparse.Namespace) -> Any:
    """The :class:`~labelwise.tabular.config.SelectConfig` of parsed ``labelwise select`` arguments.

    ``--config`` (a file or a shipped name, optional), then its ``key=value`` overrides, then the flags
    (:func:`shorthand_overrides`), through :func:`labelwise.config.load_config` (``kind="select"``).
    """
    from labelwise.config import load_config

    source = getattr(args, "config", None) or {}
    overrides = [*(getattr(args, "overrides", None) or []), *shorthand_overrides(args)]
    return load_config(source, overrides, kind="select")


def protocol_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~labelwise.tabular.MulanProtocol` of parsed ``labelwise select`` (or benchmark) options."""
    return load_select_config(args).protocol_for(getattr(args, "select_command", "run"))


def dataset_names(args: argparse.Namespace) -> list[str]:
    """``datasets`` (``--datasets``) as a list, or the 13 Table 1 datasets with ``table1`` (``--table1``)."""
    return load_select_config(args).dataset_names()


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``select`` sub-command (``run`` and ``plot``) to an argparse ``subparsers`` object."""
    s = subparsers.add_parser(
        "select", help="multi-label batch selection on MULAN datasets (cross-validation benchmark, figures)",
        description="Random / hard / adaptive / chain batch selection (Zhou et al.) on MULAN datasets.",
    )
    ssub = s.add_subparsers(dest="select_command", required=True)
    r = ssub.add_parser("run", help="cross-validated benchmark: tables per dataset x strategy and Wilcoxon tests",
                        description="Every flag below is a shorthand for a config key (labelwise.tabular.config); "
                                    "flags are applied after --config and its key=value overrides.")
    _add_config_arguments(r)
    r.add_argument("--datasets", default=None, help="shorthand for datasets: comma list of MULAN names or paths")
    r.add_argument("--table1", action="store_true",
                   help="shorthand for table1=true: the 13 datasets of Table 1 present in the collection")
    add_protocol_arguments(r, shorthands=True)
    r.add_argument("--jobs", type=int, default=None, help="shorthand for jobs (default 1): worker processes "
                   "(one torch thread each)")
    r.add_argument("--output", "-o", default=None, help="shorthand for output_dir (default runs/select-<time>)")
    r.add_argument("--overwrite", action="store_true",
                   help="allow a non-empty --output: replace the benchmark there (or write into another directory)")
    r.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    r.set_defaults(func=main)
    p = ssub.add_parser("plot", help="convergence (Fig. 3), validation (Fig. 4) and loss-density (Fig. 1) figures",
                        description="Every flag below is a shorthand for a config key (labelwise.tabular.config); "
                                    "flags are applied after --config and its key=value overrides.")
    _add_config_arguments(p)
    p.add_argument("--dataset", default=None, help="shorthand for plot.dataset (required): MULAN name or path")
    p.add_argument("--fold", type=int, default=None, help="shorthand for plot.fold (default 0)")
    p.add_argument("--pressure", type=float, default=None,
                   help="shorthand for plot.pressure (default 2.0): s_e of the loss-based strategies")
    p.add_argument("--snapshots", default=None,
                   help="shorthand for plot.snapshots: comma list of epochs for the loss-density figure, e.g. 30,70")
    add_protocol_arguments(p, shorthands=True, command="plot")
    p.add_argument("--output", "-o", default=None, help="shorthand for output_dir (default runs/select-plot-<time>)")
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


def _add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=None,
                   help="YAML select configuration (a file or a shipped name, e.g. select/table1); optional")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="dotted overrides of config keys, e.g. protocol.epochs=3 datasets=[scene]")


def _run(args: argparse.Namespace) -> int:
    from labelwise.engine.run_dir import claim_output_dir

    from .pipeline import format_summary_markdown, format_wilcoxon_markdown, run_benchmark

    cfg = load_select_config(args)
    protocol = cfg.protocol_for("run")
    names = cfg.dataset_names()
    out = Path(cfg.output_dir or f"runs/select-{time.strftime('%Y%m%d-%H%M%S')}")
    with claim_output_dir(out, overwrite=args.overwrite, layout=SELECT_RUN_LAYOUT, log=print):
        result = run_benchmark(names, protocol=protocol, root=cfg.root, output_dir=out,
                               log=None if args.quiet else print, jobs=cfg.jobs)
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
    from labelwise.config import ConfigError
    from labelwise.engine.run_dir import claim_output_dir

    cfg = load_select_config(args)
    if cfg.plot.dataset is None:
        raise ConfigError([("plot.dataset", "select plot needs a dataset: --dataset NAME or plot.dataset=NAME")],
                          source=getattr(args, "config", None))
    protocol = cfg.protocol_for("plot")
    out = Path(cfg.output_dir or f"runs/select-plot-{time.strftime('%Y%m%d-%H%M%S')}")
    with claim_output_dir(out, overwrite=args.overwrite, layout=SELECT_PLOT_LAYOUT, log=print):
        return _plot_into(cfg, protocol, out)


def _plot_into(cfg: Any, protocol: Any, out: Path) -> int:
    from .plots import convergence_study, plot_convergence, plot_loss_density, plot_validation

    plot = cfg.plot
    study = convergence_study(plot.dataset, strategies=protocol.strategies, protocol=protocol, fold=plot.fold,
                              selection_pressure=plot.pressure, snapshot_epochs=list(plot.snapshots), root=cfg.root)
    title = f"{study['dataset']} ({protocol.models[0]}, s_e={plot.pressure:g})"
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
