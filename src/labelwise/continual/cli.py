"""``labelwise continual``: run a class-incremental scenario with a strategy from a YAML config.

::

    labelwise continual --config continual/voc_b4c2 --strategy rebll [key=value ...] [--output DIR] [--overwrite]

Writes the run directory (``config.yaml``, ``tasks.csv``, ``ap_per_class.csv``, ``forgetting.csv``,
``summary.json``, ``map_curve.png`` and one ``task_<t>/`` trainer directory per task) and prints one line per
task and the Last / Avg summary. The run directory is locked for the whole scenario, and a non-empty one is
refused unless ``--overwrite`` is given (then a previous continual run there is replaced).

Wire it into ``labelwise.cli.build_parser`` with ``add_parser(sub)`` (the function sets ``func``); it can
also be run as ``python -m labelwise.continual.cli ...``.

Examples
--------
>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> _ = add_parser(sub)
>>> args = p.parse_args(["continual", "--config", "c.yaml", "--strategy", "er", "trainer.max_epochs=1"])
>>> args.strategy, args.overrides
('er', ['trainer.max_epochs=1'])
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labelwise.engine.run_dir import OutputLayout

__all__ = ["CONTINUAL_LAYOUT", "add_parser", "main", "run_from_config"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``continual`` sub-command to an argparse ``subparsers`` object."""
    c = subparsers.add_parser(
        "continual", help="run a multi-label class-incremental scenario",
        description="Run a {Bx-Cy} multi-label class-incremental scenario with a strategy (joint, finetune, lwf, "
                    "kd, er, derpp, podnet, ewc, akd, rebll, krt, csc, agcn, l2p); evaluates after every task on the seen classes.",
    )
    c.add_argument("--config", "-c", required=True, help="YAML continual configuration: a file or a shipped name, e.g. continual/voc_b4c2")
    c.add_argument("--strategy", "-s", default=None, help="strategy name (default: strategy.name of the config)")
    c.add_argument("overrides", nargs="*", metavar="key=value",
                   help="dotted overrides, e.g. continual.scenario=B5-C3 strategy.options.alpha=1.0 trainer.max_epochs=2")
    c.add_argument("--output", "-o", default=None, help="run directory (default: output_dir, else runs/<name>-<strategy>-<time>)")
    c.add_argument("--overwrite", action="store_true",
                   help="allow a non-empty --output: replace the continual run there (or write into another directory)")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    c.set_defaults(func=main)
    return c


#: What ``labelwise continual`` writes into its run directory (``--overwrite`` replaces these in a previous run).
CONTINUAL_LAYOUT = OutputLayout("continual run", files=("config.yaml", "tasks.csv", "ap_per_class.csv", "forgetting.csv",
                                                        "summary.json", "map_curve.png", "task_*"))


def run_from_config(cfg: Any, *, output_dir: str | Path | None = None, progress: bool = True, log: Any = print,
                    overwrite: bool = False) -> Any:
    """Build data, scenario, model and strategy from a :class:`ContinualConfig` and run it.

    The run directory is claimed first (:func:`labelwise.engine.run_dir.claim_output_dir`): a directory in use
    by another run, or a non-empty one without ``overwrite``, is refused before anything is loaded.
    """
    import yaml

    from labelwise.engine import seed_everything
    from labelwise.engine.run_dir import claim_output_dir
    from labelwise.run import build_datasets, build_model

    from .runner import run_continual
    from .scenarios import ClassIncrementalScenario
    from .strategies import create_strategy

    run = cfg.run
    cont = cfg.continual
    if output_dir is None:
        if run.output_dir:
            output_dir = run.output_dir
        else:
            stem = run.name or f"{run.data.name}-{cont.scenario}"
            output_dir = Path("runs") / f"{stem}-{cfg.strategy.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(output_dir)
    # one writer per run directory for the whole scenario (the trainer locks each task_<t>/ as well)
    with claim_output_dir(out, overwrite=overwrite, layout=CONTINUAL_LAYOUT,
                          log=(lambda m: log(f"[labelwise] {m}")) if log is not None else None):
        seed_everything(run.trainer.seed, deterministic=run.trainer.deterministic)  # before data, scenario, model
        data = build_datasets(run, splits=("train", "test"))
        if data.test is None:
            raise ValueError("a continual run needs a test split (data.test_split)")
        scenario = ClassIncrementalScenario.from_string(data.train, data.test, cont.scenario,
                                                        class_order=cont.class_order, seed=cont.class_order_seed)
        model = build_model(run, scenario.num_classes)
        strategy = create_strategy(cfg.strategy.name, **cfg.strategy.options)
        resolved = cfg.to_dict()
        (out / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
        options = run.trainer.model_dump()
        options["progress"] = bool(options.get("progress", True) and progress)
        if log is not None:
            log(f"{scenario!r}: {', '.join('/'.join(scenario.task_class_names(t)) for t in range(scenario.num_tasks))}")
        return run_continual(scenario, strategy, model, trainer_options=options, base_lr=cont.base_lr,
                             output_dir=out, threshold=cont.threshold, ap_method=cont.ap_method, run_config=resolved,
                             plot=cont.plot, log=log)


def main(args: argparse.Namespace) -> int:
    """Entry of ``labelwise continual`` (returns the exit status)."""
    from .config import load_continual_config

    cfg = load_continual_config(args.config, args.overrides, strategy=args.strategy)
    res = run_from_config(cfg, output_dir=args.output, progress=not args.no_progress, overwrite=args.overwrite)
    last = res.summary["last"]
    print(f"{res.scenario} {res.strategy}: Last mAP {100 * last['mAP']:.1f} CF1 {100 * last['CF1']:.1f} "
          f"OF1 {100 * last['OF1']:.1f} FPR {100 * last['FPR']:.1f} | Avg mAP {100 * res.summary['avg_mAP']:.1f}")
    return 0


def _standalone(argv: Sequence[str] | None = None) -> int:
    from labelwise.config import ConfigError

    p = argparse.ArgumentParser(prog="labelwise")
    sub = p.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = p.parse_args(["continual", *(sys.argv[1:] if argv is None else argv)])
    try:
        return main(args)
    except (ConfigError, FileNotFoundError, ValueError, KeyError) as exc:
        print(f"labelwise: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_standalone())
