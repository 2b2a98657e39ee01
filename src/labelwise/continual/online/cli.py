"""``labelwise online``: run online multi-label continual learning methods on a sequence from a YAML config.

::

    labelwise online --config online/multidigits [--methods prs,prs+ssca] [--seeds 0,1,2]
                     [--output DIR] [--overwrite] [key=value ...]

The config is the ``online`` kind of :func:`labelwise.config.load_config`
(:class:`labelwise.continual.online.config.OnlineRunConfig`; see the shipped ``online/*`` configs,
``labelwise configs list``)::

    sequence: {name: multidigits | cocoseq | nuswideseq, options: {...}}   # load_sequence(name, **options)
    online: {...}                                                          # OnlineConfig fields
    methods: [finetune, ewc, crs, prs, prs+ssca, gss, exstream, ocdm, multitask]  # "<method>" or "<method>+ssca"
    seeds: [0, 1, 2]

Dotted ``key=value`` overrides (values parsed as YAML), e.g. ``online.memory_size=500``
``sequence.options.n_train=2000``; ``--methods a,b`` and ``--seeds 0,1`` are shorthands for ``methods=[a, b]``
and ``seeds=[0, 1]``. Prints one line per task and run, then the Table 7-shaped summary; with an
output directory writes ``config.yaml``, ``results.json`` and ``table.md``. The output directory is locked for
the whole run, and a non-empty one is refused unless ``--overwrite`` is given.

Wire it into ``labelwise.cli.build_parser`` with ``add_parser(sub)`` (the function sets ``func``); it also runs
as ``python -m labelwise.continual.online.cli ...``.

Examples
--------
>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> _ = add_parser(sub)
>>> a = p.parse_args(["online", "-c", "c.yaml", "--methods", "prs,prs+ssca", "online.memory_size=500"])
>>> a.methods, a.overrides
('prs,prs+ssca', ['online.memory_size=500'])
>>> parse_method("prs+ssca"), parse_method("crs")
(('prs', 'ssca'), ('crs', 'baseline'))
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labelwise.config import load_config
from labelwise.engine.run_dir import OutputLayout

from .config import OnlineRunConfig, parse_method

__all__ = ["ONLINE_LAYOUT", "add_parser", "main", "load_online_config", "parse_method", "run_from_config"]


def load_online_config(path: str | Path | Mapping[str, Any], overrides: Sequence[Any] = ()) -> OnlineRunConfig:
    """Load an online configuration: :func:`labelwise.config.load_config` with ``kind="online"``.

    ``path`` is a file, a shipped name (e.g. ``online/multidigits``) or a mapping; ``overrides`` are dotted
    ``key=value`` strings (or ``(key, value)`` pairs). Errors are :class:`labelwise.config.ConfigError`
    naming the file and the key.
    """
    return load_config(path, overrides, kind="online")


#: What ``labelwise online`` writes into its output directory (``--overwrite`` replaces these in a previous one).
ONLINE_LAYOUT = OutputLayout("online run", files=("config.yaml", "table.md", "results.json"))


def run_from_config(
    cfg: OnlineRunConfig | Mapping[str, Any], *, output_dir: str | Path | None = None, log: Any = print, overwrite: bool = False
) -> dict[str, Any]:
    """Build the sequence, run every (method, seed) and return ``{"results", "summary", "table"}``.

    ``cfg`` is an :class:`~labelwise.continual.online.config.OnlineRunConfig` (a mapping is validated into one).

    With ``output_dir``, the directory is claimed before anything is loaded
    (:func:`labelwise.engine.run_dir.claim_output_dir`): one in use by another run, or a non-empty one
    without ``overwrite``, is refused; the files are written at the end.
    """
    if not isinstance(cfg, OnlineRunConfig):
        cfg = load_online_config(cfg)
    if output_dir is None:
        return _run(cfg, None, log)
    from labelwise.engine.run_dir import claim_output_dir

    say = (lambda m: log(f"[labelwise] {m}")) if log is not None else None
    with claim_output_dir(output_dir, overwrite=overwrite, layout=ONLINE_LAYOUT, log=say) as out:
        return _run(cfg, out, log)


def _run(cfg: OnlineRunConfig, output_dir: Path | None, log: Any) -> dict[str, Any]:
    import yaml

    from .runner import format_table, run_online, summarize
    from .sequences import load_sequence

    t0 = time.perf_counter()
    seq = load_sequence(cfg.sequence.name, **cfg.sequence.options)
    if log is not None:
        log(repr(seq))
    results = []
    for seed in cfg.seeds:
        for m in cfg.methods:
            method, head = parse_method(m)
            results.append(run_online(seq, method, head=head, config=cfg.online, seed=int(seed), log=log))
    summary = summarize(results)
    table = format_table(summary, title=f"{seq.name}: final metrics (percent), {len(cfg.seeds)} seed(s)")
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        (out / "table.md").write_text(table + "\n")
        (out / "results.json").write_text(
            json.dumps(
                {
                    "sequence": seq.summary(),
                    "seconds": round(time.perf_counter() - t0, 1),
                    "runs": [r.to_dict() for r in results],
                },
                indent=1,
            )
        )
    return {"results": results, "summary": summary, "table": table}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``online`` sub-command to an argparse ``subparsers`` object."""
    c = subparsers.add_parser(
        "online",
        help="online multi-label continual learning (PRS protocol)",
        description="Run Finetune / EWC / CRS / PRS / Multitask, with the baseline or the SSCA head, on COCOseq, "
        "NUS-WIDEseq or the MultiDigits sequence under the online protocol (one pass, stream batch 10, "
        "replay from a fixed memory); prints the Table 7-shaped summary.",
    )
    c.add_argument("--config", "-c", required=True, help="YAML online configuration: a file or a shipped name, e.g. online/multidigits")
    c.add_argument(
        "--methods", "-m", default=None, help="shorthand for methods=[...]: comma-separated, e.g. prs,prs+ssca"
    )
    c.add_argument("--seeds", default=None, help="shorthand for seeds=[...]: comma-separated seeds, e.g. 0,1,2")
    c.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. online.memory_size=500"
    )
    c.add_argument(
        "--output", "-o", default=None, help="shorthand for output_dir (default: output_dir of the config, else none)"
    )
    c.add_argument("--overwrite", action="store_true",
                   help="allow a non-empty output directory: replace the online run there (or write into another)")
    c.set_defaults(func=main)
    return c


def main(args: argparse.Namespace) -> int:
    """Entry of ``labelwise online`` (returns the exit status)."""
    cfg = load_online_config(args.config, [*args.overrides, *shorthand_overrides(args)])
    out = run_from_config(cfg, output_dir=cfg.output_dir, overwrite=args.overwrite)
    print(out["table"])
    return 0


def shorthand_overrides(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """The ``(key, value)`` overrides that ``--methods``, ``--seeds`` and ``--output`` stand for.

    Examples
    --------
    >>> shorthand_overrides(argparse.Namespace(methods="prs, crs+ssca", seeds="0,1", output=None))
    [('methods', ['prs', 'crs+ssca']), ('seeds', ['0', '1'])]
    """
    out: list[tuple[str, Any]] = []
    if args.methods:
        out.append(("methods", [m.strip() for m in args.methods.split(",") if m.strip()]))
    if args.seeds:
        out.append(("seeds", [s.strip() for s in args.seeds.split(",") if s.strip()]))
    if args.output:
        out.append(("output_dir", args.output))
    return out


def _standalone(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="labelwise")
    sub = p.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = p.parse_args(["online", *(sys.argv[1:] if argv is None else argv)])
    try:
        return main(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:  # ConfigError is a ValueError
        print(f"labelwise: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_standalone())
