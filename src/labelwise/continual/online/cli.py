"""``labelwise online``: run online multi-label continual learning methods on a sequence from a YAML config.

::

    labelwise online --config online/multidigits [--methods prs,prs+ssca] [--seeds 0,1,2]
                     [--output DIR] [--overwrite] [key=value ...]

The config has four sections (see the shipped ``online/*`` configs, ``labelwise configs list``)::

    sequence: {name: multidigits | cocoseq | nuswideseq, options: {...}}   # load_sequence(name, **options)
    online: {...}                                                          # OnlineConfig fields
    methods: [finetune, ewc, crs, prs, prs+ssca, gss, exstream, ocdm, multitask]  # "<method>" or "<method>+ssca"
    seeds: [0, 1, 2]

Dotted ``key=value`` overrides (values parsed as YAML), e.g. ``online.memory_size=500``
``sequence.options.n_train=2000``. Prints one line per task and run, then the Table 7-shaped summary; with an
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
import copy
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labelwise.engine.run_dir import OutputLayout

__all__ = ["ONLINE_LAYOUT", "add_parser", "main", "load_online_config", "parse_method", "run_from_config"]

_SECTIONS = ("sequence", "online", "methods", "seeds", "output_dir", "name")


def parse_method(text: str) -> tuple[str, str]:
    """``"prs+ssca"`` -> ``("prs", "ssca")``; ``"prs"`` -> ``("prs", "baseline")``."""
    from .runner import HEADS, METHODS

    name, _, head = str(text).strip().lower().partition("+")
    head = head.strip() or "baseline"
    name = name.strip()
    if name not in METHODS:
        raise ValueError(f"unknown online method {text!r}; methods: {sorted(METHODS)}, optionally '+ssca'")
    if head not in HEADS:
        raise ValueError(f"unknown head in {text!r}; heads: {HEADS}")
    return name, head


def _set_dotted(cfg: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = cfg
    for p in parts[:-1]:
        if not isinstance(node.get(p, {}), dict):
            raise ValueError(f"override {key!r}: {p!r} is not a section")
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def load_online_config(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a YAML online config (a file or a shipped name, e.g. ``online/multidigits``) and apply ``key=value`` overrides; unknown top-level keys raise ``ValueError``."""
    import yaml

    from labelwise.shipped_configs import resolve_config

    p = resolve_config(path)
    from labelwise.config import yaml_load

    try:
        cfg = yaml_load(p.read_text()) or {}
    except yaml.YAMLError as exc:  # a duplicate key (named with both lines) or invalid YAML
        raise ValueError(f"{p}: {' '.join(str(exc).split())}") from exc
    if not isinstance(cfg, dict):
        raise ValueError(f"{p}: the config must be a mapping")
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        k, v = item.split("=", 1)
        _set_dotted(cfg, k.strip(), yaml.safe_load(v))
    unknown = sorted(set(cfg) - set(_SECTIONS))
    if unknown:
        raise ValueError(f"{p}: unknown section(s) {unknown}; expected {list(_SECTIONS)}")
    seq = cfg.get("sequence")
    if not isinstance(seq, dict) or "name" not in seq:
        raise ValueError(
            f"{p}: 'sequence' must be a mapping with a 'name' (multidigits, cocoseq, nuswideseq)"
        )
    cfg.setdefault("online", {})
    cfg.setdefault("methods", ["finetune", "ewc", "crs", "prs", "prs+ssca", "multitask"])
    cfg.setdefault("seeds", [0])
    for m in cfg["methods"]:
        parse_method(m)
    from .runner import OnlineConfig

    OnlineConfig.from_dict(cfg["online"])  # validate early
    return cfg


#: What ``labelwise online`` writes into its output directory (``--overwrite`` replaces these in a previous one).
ONLINE_LAYOUT = OutputLayout("online run", files=("config.yaml", "table.md", "results.json"))


def run_from_config(
    cfg: dict[str, Any], *, output_dir: str | Path | None = None, log: Any = print, overwrite: bool = False
) -> dict[str, Any]:
    """Build the sequence, run every (method, seed) and return ``{"results", "summary", "table"}``.

    With ``output_dir``, the directory is claimed before anything is loaded
    (:func:`labelwise.engine.run_dir.claim_output_dir`): one in use by another run, or a non-empty one
    without ``overwrite``, is refused; the files are written at the end.
    """
    if output_dir is None:
        return _run(cfg, None, log)
    from labelwise.engine.run_dir import claim_output_dir

    say = (lambda m: log(f"[labelwise] {m}")) if log is not None else None
    with claim_output_dir(output_dir, overwrite=overwrite, layout=ONLINE_LAYOUT, log=say) as out:
        return _run(cfg, out, log)


def _run(cfg: dict[str, Any], output_dir: Path | None, log: Any) -> dict[str, Any]:
    import yaml

    from .runner import OnlineConfig, format_table, run_online, summarize
    from .sequences import load_sequence

    t0 = time.perf_counter()
    seq = load_sequence(cfg["sequence"]["name"], **(cfg["sequence"].get("options") or {}))
    if log is not None:
        log(repr(seq))
    online = OnlineConfig.from_dict(cfg["online"])
    results = []
    for seed in cfg["seeds"]:
        for m in cfg["methods"]:
            method, head = parse_method(m)
            results.append(run_online(seq, method, head=head, config=online, seed=int(seed), log=log))
    summary = summarize(results)
    table = format_table(summary, title=f"{seq.name}: final metrics (percent), {len(cfg['seeds'])} seed(s)")
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
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
        "--methods", "-m", default=None, help="comma-separated, e.g. prs,prs+ssca (default: config)"
    )
    c.add_argument("--seeds", default=None, help="comma-separated seeds (default: config)")
    c.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. online.memory_size=500"
    )
    c.add_argument(
        "--output", "-o", default=None, help="output directory (default: output_dir of the config, else none)"
    )
    c.add_argument("--overwrite", action="store_true",
                   help="allow a non-empty output directory: replace the online run there (or write into another)")
    c.set_defaults(func=main)
    return c


def main(args: argparse.Namespace) -> int:
    """Entry of ``labelwise online`` (returns the exit status)."""
    cfg = load_online_config(args.config, args.overrides)
    if args.methods:
        cfg["methods"] = [m for m in args.methods.split(",") if m.strip()]
        for m in cfg["methods"]:
            parse_method(m)
    if args.seeds:
        cfg["seeds"] = [int(s) for s in args.seeds.split(",")]
    out = run_from_config(cfg, output_dir=args.output or cfg.get("output_dir"), overwrite=args.overwrite)
    print(out["table"])
    return 0


def _standalone(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="labelwise")
    sub = p.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = p.parse_args(["online", *(sys.argv[1:] if argv is None else argv)])
    try:
        return main(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"labelwise: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_standalone())
