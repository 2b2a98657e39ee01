"""The ``labelwise`` command line.

::

    labelwise train --config quickstart [dotted.key=value ...] [--output DIR] [--resume PATH] [--overwrite]
    labelwise evaluate --checkpoint RUN_OR_CKPT [--split test] [data.key=value ...] [--json FILE]
    labelwise predict --checkpoint RUN_OR_CKPT INPUT... [--output preds.csv|preds.json]
                      [--threshold T | --per-class-thresholds] [--batch-size N]
    labelwise export --checkpoint RUN_OR_CKPT --format onnx|torchscript --output FILE [--check]
    labelwise report RUN [--output PATH]                                  (rebuild RUN/report/index.html)
    labelwise datasets list
    labelwise datasets stats NAME [--root R] [--split S] [--option key=value ...]
    labelwise models list
    labelwise continual --config continual/voc_b4c2 --strategy rebll [key=value ...]
    labelwise online --config online/multidigits [--methods prs,prs+ssca] [key=value ...]
    labelwise pretrain --config pretrain/md_resnet10t [--ship] [--quick] [--device cuda]
    labelwise select run --table1 [--strategies random,adaptive ...]     (MULAN batch-selection benchmark)
    labelwise analyze angles --checkpoint RUN --output DIR               (label-feature angles, DLFL Fig. 8)
    labelwise analyze groups ...                                          (co-occurrence label groups, ML-VPT)

``--config`` takes a YAML file or the name of a config shipped in the package (``quickstart``,
``dlfl/multidigits20_ofml``, ...; ``labelwise configs list``); an existing path wins over a name.

Errors a user can fix (a missing file, an invalid configuration key or value, an unknown name, a refused
pickle, a full disk, no internet for ``pretrained: true``) are printed as one line ``labelwise: error: ...``
with exit status 2, without a traceback (pass ``--debug`` anywhere on the command line, or set
``LABELWISE_DEBUG=1``, to see it). A failed export check exits with status 1. Any other exception is a bug:
its traceback is printed, then ``labelwise: internal error: ...``, exit status 1. :mod:`labelwise.errors`
lists which exception types are which.

Examples
--------
>>> import contextlib, io
>>> from labelwise.cli import main
>>> out = io.StringIO()
>>> with contextlib.redirect_stdout(out):
...     status = main(["models", "list"])
>>> status, "ofml" in out.getvalue().split(), "mlp" in out.getvalue().split()
(0, True, True)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import UserError

__all__ = ["main", "build_parser"]

class CLIError(UserError):
    """A user-facing error of the command line itself: printed as one line, exit status 2."""


def _print(*args: Any) -> None:
    print(*args, flush=True)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _StderrHandler(logging.Handler):
    """Writes ``[labelwise] message`` lines to the current ``sys.stderr`` (the library logs; the CLI shows)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 - logging must never fail a command
            self.handleError(record)


def _configure_logging(verbosity: int) -> tuple[logging.Logger, logging.Handler, int]:
    """Show the ``labelwise`` loggers on stderr: INFO by default, DEBUG with ``-v``, WARNING with ``-q``.

    Only rank 0 of a distributed run shows INFO messages. Returns what :func:`_restore_logging` undoes (so
    that calling :func:`main` in-process, as the tests do, leaves logging as it was).
    """
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    if int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) != 0:  # torch is not imported yet
        level = max(level, logging.WARNING)
    handler = _StderrHandler(level)
    handler.setFormatter(logging.Formatter("[labelwise] %(message)s"))
    logger = logging.getLogger("labelwise")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger, handler, previous


def _restore_logging(state: tuple[logging.Logger, logging.Handler, int]) -> None:
    logger, handler, previous = state
    logger.removeHandler(handler)
    logger.setLevel(previous)


def _is_rank_zero() -> bool:
    """False in the non-zero ranks of a distributed run (they train but do not print)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0


# -- train -------------------------------------------------------------------------------------------
def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .run import format_metrics, train_from_config

    cfg = load_config(args.config, args.overrides, kind="run")
    if args.no_progress:
        cfg = cfg.model_copy(update={"trainer": cfg.trainer.model_copy(update={"progress": False})})
    summary = train_from_config(cfg, output_dir=args.output, resume=args.resume, evaluate_test=not args.no_test,
                                overwrite=args.overwrite, log=lambda m: _err(f"[labelwise] {m}") if _is_rank_zero() else None)
    if not _is_rank_zero():
        return 0
    monitor = summary.get("monitor", cfg.trainer.monitor)
    best = summary.get("best_metric")
    if best is not None:
        _print(f"best validation {monitor}: {best:.4f} (epoch {summary.get('best_epoch')})")
    if summary.get("test_metrics"):
        _print(format_metrics(summary["test_metrics"], title=f"test metrics ({cfg.data.test_split}, best checkpoint)"))
    elif summary.get("val_metrics"):
        _print(format_metrics(summary["val_metrics"], title="validation metrics (best checkpoint)"))
    _print(f"run directory: {summary['output_dir']}  ({summary['seconds']:.0f} s)")
    return 0


# -- evaluate ----------------------------------------------------------------------------------------
def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .run import evaluate_checkpoint, format_metrics

    metrics = evaluate_checkpoint(args.checkpoint, split=args.split, overrides=args.overrides, which=args.which,
                                  progress=False if args.no_progress else None)
    _print(format_metrics(metrics, title=f"{metrics['checkpoint']} on split {args.split!r}"))
    if args.json:
        from .run.formatting import _jsonable

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(_jsonable(metrics), indent=2) + "\n", encoding="utf-8")
        _print(f"metrics written to {args.json}")
    return 0


# -- predict -----------------------------------------------------------------------------------------
def _cmd_predict(args: argparse.Namespace) -> int:
    from .inference import Predictor, collect_inputs, write_predictions

    output = Path(args.output)
    if output.suffix.lower() not in (".csv", ".json"):
        raise CLIError(f"--output {output}: use a .csv or .json file name")
    paths = collect_inputs(args.inputs, path_column=args.path_column)
    predictor = Predictor.from_checkpoint(args.checkpoint, which=args.which, device=args.device,
                                          batch_size=args.batch_size, num_workers=args.num_workers)
    if predictor.transform is None:
        raise CLIError(f"{predictor.source}: a model for feature vectors (no data.image_size); 'labelwise predict' "
                       "reads images (use labelwise.inference.Predictor.scores_from_tensor for features)")
    result = predictor.predict(paths, threshold=args.threshold, per_class_thresholds=args.per_class_thresholds,
                               on_error="skip" if args.skip_unreadable else "raise",
                               progress=False if args.no_progress else None)
    write_predictions(output, result)
    how = "per-class thresholds" if args.per_class_thresholds else f"threshold {result.thresholds[0]:g}"
    extra = f", {len(result.skipped)} unreadable skipped" if result.skipped else ""
    _print(f"{len(result.paths)} image(s) predicted with {how}{extra} -> {output}")
    return 0


# -- export ------------------------------------------------------------------------------------------
def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint

    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(s) for s in args.input_shape.split(","))
        except ValueError:
            raise CLIError(f"--input-shape {args.input_shape!r}: give comma-separated sizes, e.g. 3,224,224") from None
    result = export_checkpoint(args.checkpoint, args.output, format=args.format, which=args.which, input_shape=shape,
                               check=args.check, atol=args.atol, opset=args.opset)
    checked = (f"; checked against PyTorch: max abs diff {result.max_abs_diff:.2e} < {args.atol:g}"
               if result.max_abs_diff is not None else "")
    _print(f"exported {args.format} model (input [B, {', '.join(map(str, result.input_shape))}] -> logits; "
           f"apply sigmoid for probabilities) to {result.path}{checked}")
    return 0


# -- report ------------------------------------------------------------------------------------------
def _cmd_report(args: argparse.Namespace) -> int:
    from .analysis.html_report import write_html_report
    from .run import load_run_split

    page = write_html_report(args.run, split=args.split, output=args.output, max_gallery=args.max_gallery,
                             dataset_loader=load_run_split)
    _print(f"report written to {page} ({page.stat().st_size / 1024:.0f} KiB); open it in a browser")
    return 0


# -- datasets / models -------------------------------------------------------------------------------
def _parse_options(items: Sequence[str]) -> dict[str, Any]:
    from .config import yaml_load

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--option {item!r} is not of the form key=value")
        out[key.strip()] = yaml_load(raw) if raw.strip() else None
    return out


def _cmd_datasets_list(args: argparse.Namespace) -> int:
    from .data import list_datasets

    for name in list_datasets():
        _print(name)
    return 0


def _fmt_num(v: Any) -> str:
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.4g}"
    return str(v)


def _cmd_datasets_stats(args: argparse.Namespace) -> int:
    import numpy as np

    from .data import load_dataset
    from .data.stats import label_statistics

    options = _parse_options(args.option or [])
    try:
        ds = load_dataset(args.name, root=args.root, split=args.split, **options)
    except TypeError as exc:
        raise CLIError(f"dataset {args.name!r}: {exc}") from None
    stats = label_statistics(ds.targets)
    _print(f"dataset {args.name} (split {args.split}): {len(ds)} samples, {ds.num_classes} labels")
    scalars = {k: v for k, v in stats.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    w = max(len(k) for k in scalars) if scalars else 0
    for k, v in scalars.items():
        _print(f"  {k:<{w}}  {_fmt_num(v)}")
    counts = np.asarray(ds.targets, dtype=np.int64).sum(axis=0)
    irlbl = stats.get("irlbl")
    _print("  per label: name, positives, IRLbl")
    order = np.argsort(-counts, kind="stable")
    shown = order if args.all_labels or len(order) <= 30 else order[:30]
    nw = max(len(ds.class_names[i]) for i in shown)
    for i in shown:
        ir = _fmt_num(float(irlbl[i])) if irlbl is not None else "-"
        _print(f"    {ds.class_names[i]:<{nw}}  {int(counts[i]):>7}  {ir}")
    if len(shown) < len(order):
        _print(f"    ... {len(order) - len(shown)} more labels (--all-labels to list them)")
    return 0


def _cmd_configs_list(args: argparse.Namespace) -> int:
    from .shipped_configs import config_dir, config_names, config_summary

    names = config_names()
    w = max(len(n) for n in names)
    for name in names:
        _print(f"{name:<{w}}  {config_summary(name)}" if args.long else name)
    if args.long:
        _print(f"({len(names)} configs in {config_dir()}; see README.md there)")
    return 0


def _cmd_configs_show(args: argparse.Namespace) -> int:
    from .shipped_configs import config_path

    sys.stdout.write(config_path(args.name).read_text(encoding="utf-8"))
    sys.stdout.flush()
    return 0


def _cmd_configs_copy(args: argparse.Namespace) -> int:
    from .shipped_configs import copy_config

    target = copy_config(args.name, args.dest, force=args.force)
    _print(f"copied {args.name} to {target}; train with: labelwise train --config {target}")
    return 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    from .models import list_models

    for name in list_models():
        _print(name)
    return 0


# -- parser ------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line ``labelwise: error: <command>: <problem> (see ... --help)``."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        cmd = self.prog.removeprefix("labelwise").strip()
        self.exit(2, f"labelwise: error: {cmd + ': ' if cmd else ''}{message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``labelwise`` command (subcommands train/evaluate/predict/export/...)."""
    p = _Parser(
        prog="labelwise",
        description="Multi-label learning: train, evaluate, predict and export models; inspect datasets.",
        epilog="Run 'labelwise <command> --help' for the options of a command.",
    )
    p.add_argument("--version", action="version", version=f"labelwise {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="print the traceback of every error (also accepted after the command; or LABELWISE_DEBUG=1)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="show debug messages of the library (progress messages are shown by default)")
    p.add_argument("-q", "--quiet", action="count", default=0,
                   help="show only warnings and errors of the library (not its progress messages)")
    sub = p.add_subparsers(dest="command", metavar="command", required=True)

    t = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train from a YAML config, evaluate the best checkpoint on the test split and "
                                   "print a metrics table. Overrides are dotted key=value pairs, e.g. "
                                   "trainer.max_epochs=3 data.options.n_train=500 model.backbone=resnet10t.")
    t.add_argument("--config", "-c", required=True, help="YAML run configuration: a file or a shipped config name, e.g. quickstart "
                   "(see 'labelwise configs list')")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides of config keys (YAML values)")
    t.add_argument("--output", "-o", default=None, help="run directory (default: output_dir, else runs/<name>-<time>)")
    t.add_argument("--resume", default=None, metavar="PATH", help="continue from a 'last' checkpoint or run directory")
    t.add_argument("--overwrite", action="store_true",
                   help="allow a non-empty --output: replace the run there (or write into a directory that is not a run)")
    t.add_argument("--no-test", action="store_true", help="skip the test-split evaluation after training")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset split",
                       description="Rebuild a checkpoint's model and data and print its metrics on a split. "
                                   "data.* / trainer.* overrides change the data (e.g. data.root=...) or the evaluator.")
    e.add_argument("--checkpoint", required=True, help="checkpoint file, checkpoints/ directory or run directory")
    e.add_argument("--split", default="test", help="split to evaluate (default: test)")
    e.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint of a directory (default: best)")
    e.add_argument("overrides", nargs="*", metavar="key=value", help="data.* or trainer.* overrides")
    e.add_argument("--json", default=None, metavar="FILE", help="also write the metrics as JSON")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_evaluate)

    pr = sub.add_parser("predict", help="predict labels of images",
                        description="Predict label names and per-class scores of image files, folders (searched "
                                    "recursively) or CSV lists with a path column.")
    pr.add_argument("--checkpoint", required=True, help="checkpoint file, checkpoints/ directory or run directory")
    pr.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or CSV files")
    pr.add_argument("--output", "-o", default="predictions.csv", help="output .csv or .json (default: predictions.csv)")
    th = pr.add_mutually_exclusive_group()
    th.add_argument("--threshold", type=float, default=None, help="global decision threshold (default: the run's)")
    th.add_argument("--per-class-thresholds", action="store_true",
                    help="use the per-class thresholds tuned on validation (trainer.tune_thresholds=true)")
    pr.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: 32)")
    pr.add_argument("--num-workers", type=int, default=0, help="image decoding worker processes (default: 0)")
    pr.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    pr.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint of a directory")
    pr.add_argument("--path-column", default=None, help="CSV column holding the image paths (default: path/image/...)")
    pr.add_argument("--skip-unreadable", action="store_true", help="skip images that cannot be decoded")
    pr.add_argument("--no-progress", action="store_true", help="no progress bar")
    pr.set_defaults(func=_cmd_predict)

    x = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript",
                       description="Export the model of a checkpoint. The exported model maps a preprocessed batch "
                                   "[B, 3, H, W] to logits [B, C] (apply a sigmoid for probabilities); class names and "
                                   "thresholds are stored as metadata.")
    x.add_argument("--checkpoint", required=True, help="checkpoint file, checkpoints/ directory or run directory")
    x.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    x.add_argument("--output", "-o", required=True, help="file to write (.onnx / .pt)")
    x.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                   help="compare the exported model with PyTorch on a random batch (default: on)")
    x.add_argument("--atol", type=float, default=1e-4, help="largest accepted abs difference (default: 1e-4)")
    x.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    x.add_argument("--input-shape", default=None, help="input shape without batch, e.g. 3,224,224 (default: from the run)")
    x.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint of a directory")
    x.set_defaults(func=_cmd_export)

    rp = sub.add_parser("report", help="rebuild the HTML report page of a run",
                        description="Rebuild RUN/report/index.html, the self-contained report page (metrics, "
                                    "per-class AP and thresholds, curves, co-occurrence, error gallery), from the "
                                    "run directory alone; the gallery's images are re-loaded from its config.yaml.")
    rp.add_argument("run", metavar="RUN", help="run directory")
    rp.add_argument("--output", "-o", default=None, metavar="PATH", help="page to write (default: RUN/report/index.html)")
    rp.add_argument("--split", choices=("test", "val"), default=None,
                    help="predictions shown (default: test when stored, else val)")
    rp.add_argument("--max-gallery", type=int, default=24, metavar="N", help="most error thumbnails (default: 24)")
    rp.set_defaults(func=_cmd_report)

    d = sub.add_parser("datasets", help="list datasets, show label statistics")
    dsub = d.add_subparsers(dest="datasets_command", metavar="action", required=True)
    dl = dsub.add_parser("list", help="names accepted by data.name")
    dl.set_defaults(func=_cmd_datasets_list)
    ds = dsub.add_parser("stats", help="label statistics of a dataset split")
    ds.add_argument("name", help="dataset name (see 'labelwise datasets list')")
    ds.add_argument("--root", default=None, help="dataset directory or file")
    ds.add_argument("--split", default="train", help="split (default: train)")
    ds.add_argument("--option", action="append", metavar="key=value", help="dataset option (repeatable)")
    ds.add_argument("--all-labels", action="store_true", help="list every label (default: the 30 most frequent)")
    ds.set_defaults(func=_cmd_datasets_stats)

    cf = sub.add_parser("configs", help="list, show or copy the run configs shipped with labelwise",
                        description="The configs shipped in the package, named by their path without .yaml "
                                    "(quickstart, dlfl/multidigits20_ofml, ...): give the name to --config, or copy "
                                    "one to edit it.")
    cfsub = cf.add_subparsers(dest="configs_command", metavar="action", required=True)
    cfl = cfsub.add_parser("list", help="names accepted by --config")
    cfl.add_argument("--long", "-l", action="store_true", help="also print each config's one-line description")
    cfl.set_defaults(func=_cmd_configs_list)
    cfs = cfsub.add_parser("show", help="print a shipped config")
    cfs.add_argument("name", help="config name (see 'labelwise configs list')")
    cfs.set_defaults(func=_cmd_configs_show)
    cfc = cfsub.add_parser("copy", help="copy a shipped config to a file or directory to edit it")
    cfc.add_argument("name", help="config name (see 'labelwise configs list')")
    cfc.add_argument("dest", help="target file, or an existing directory (keeps the file name)")
    cfc.add_argument("--force", action="store_true", help="overwrite an existing target file")
    cfc.set_defaults(func=_cmd_configs_copy)

    from .continual.cli import add_parser as add_continual_parser
    from .continual.online.cli import add_parser as add_online_parser
    from .pretrain import add_parser as add_pretrain_parser
    from .tabular.cli import add_parser as add_select_parser

    add_continual_parser(sub)  # labelwise continual --config ... --strategy ... (labelwise.continual.cli)
    add_online_parser(sub)  # labelwise online --config ... (labelwise.continual.online.cli)
    add_pretrain_parser(sub)  # labelwise pretrain --config ... (labelwise.pretrain)
    add_select_parser(sub)  # labelwise select run|plot ... (labelwise.tabular.cli)

    a = sub.add_parser(
        "analyze", help="analysis tools: label-feature angles (DLFL), label grouping (ML-VPT)",
        description="Forward to an analysis tool; 'labelwise analyze TOOL --help' lists the tool's options.",
    )
    a.add_argument("tool", choices=ANALYSIS_TOOL_NAMES, help="angles: labelwise.analysis.angles; "
                   "groups: labelwise.analysis.grouping (command lines in labelwise.analyze)")
    a.add_argument("tool_args", nargs=argparse.REMAINDER, help="arguments of the tool")
    a.set_defaults(func=_cmd_analyze)

    m = sub.add_parser("models", help="list models")
    msub = m.add_subparsers(dest="models_command", metavar="action", required=True)
    ml = msub.add_parser("list", help="names accepted by model.name")
    ml.set_defaults(func=_cmd_models_list)
    return p


#: ``labelwise analyze TOOL``: the tools of :data:`labelwise.analyze.ANALYSIS_TOOLS` (imported when run).
ANALYSIS_TOOL_NAMES = ["angles", "groups"]


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .analyze import ANALYSIS_TOOLS

    return int(ANALYSIS_TOOLS[args.tool](list(args.tool_args)) or 0)


def _split_debug(argv: Sequence[str]) -> tuple[list[str], bool]:
    """Remove ``--debug`` (accepted anywhere before a ``--``) from ``argv``; return the rest and the flag."""
    out, debug, passthrough = [], False, False
    for item in argv:
        if item == "--":
            passthrough = True
        if item == "--debug" and not passthrough:
            debug = True
            continue
        out.append(item)
    return out, debug


def report_error(exc: BaseException, *, debug: bool = False) -> int:
    """Print ``exc`` the way the command line reports it and return the exit status.

    A user or environment error (see :mod:`labelwise.errors`) is one line ``labelwise: error: ...`` (status
    2), a failed export check one line ``labelwise: export check failed: ...`` (status 1), and anything else
    an internal error: the traceback, then ``labelwise: internal error: ...`` (status 1). ``debug`` prints
    the traceback for every kind.

    Examples
    --------
    >>> import contextlib, io
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     status = report_error(FileNotFoundError("config file not found: c.yaml"))
    >>> status, err.getvalue()
    (2, 'labelwise: error: config file not found: c.yaml\\n')
    """
    import traceback

    from .errors import EXIT_INTERNAL, EXIT_USER, classify, one_line

    kind = classify(exc)
    if debug or kind == "internal":
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()
    if kind == "user":
        _err(f"labelwise: error: {one_line(exc)}")
        return EXIT_USER
    if kind == "check":
        _err(f"labelwise: export check failed: {one_line(exc)}")
        return EXIT_INTERNAL
    _err(f"labelwise: internal error: {type(exc).__name__}: {one_line(exc)} (this is a bug; please report it "
         "with the traceback above)")
    return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``labelwise`` command; returns the exit status (0 on success, 2 on a user error).

    Every error that reaches this function is reported by :func:`report_error`: one line for a user or
    environment error (the traceback too with ``--debug`` or ``LABELWISE_DEBUG=1``), the traceback and a
    last line for an internal error (a bug).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Examples
    --------
    >>> main(["train", "--config", "/nonexistent.yaml"])
    2
    """
    argv, debug = _split_debug(sys.argv[1:] if argv is None else list(argv))
    debug = debug or os.environ.get("LABELWISE_DEBUG", "") not in ("", "0")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging_state = _configure_logging(args.verbose - args.quiet)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _err("labelwise: interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place where errors become messages (labelwise.errors)
        return report_error(exc, debug=debug)
    finally:
        _restore_logging(logging_state)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
