"""Batch selection on images: random vs hard vs adaptive vs chain on MultiDigits-20 (same seeds, same recipe).

The batch-selection paper (Zhou, Liu, Wang & Tsoumakas) claims that its adaptive loss-rank batch selection
is model-agnostic and beats random batches; its experiments are tabular (benchmarks/batch_selection.py).
This benchmark asks the same question of an image run configured exactly as ``labelwise train --config
quickstart sampler.name=<strategy>`` would be: the OFML baseline (a from-scratch timm backbone,
average pooling, linear classifier, BCE, AdamW + OneCycle) on the embedded MultiDigits-20 benchmark, with
the ``sampler:`` section as the only difference between the four methods:

* ``random``   the trainer's seeded permutation per epoch (the default);
* ``hard``     rank-based selection on the per-sample BCE (Eq. 3), no imbalance weights;
* ``adaptive`` Eq. 4-7: quantized loss ranks times the kNN imbalance weights;
* ``chain``    the adaptive probabilities drawn as label chains (section 3.5).

Every strategy shares the random warm-up epochs (identical to the random run's first epochs for the same
seed), then selects with the sampler's defaults (``selection_pressure`` 2) except ``features: model``: the
imbalance weights' kNN runs on the backbone's pooled features collected in the last warm-up epoch (raw
pixels of digits at random positions are not a meaningful neighbourhood). The final model of each run is
evaluated on the test split: mAP, CF1 and OF1 (threshold 0.5) in percent. A seed sets the model
initialisation, the augmentation and the batches; the data are the same for every run.

Raw per-seed numbers go to ``docs/results/sampler_selection.json`` (schema: RESULTS_SCHEMA.md; ``--quick``
writes to ``runs/sampler_selection_quick.json`` instead). The table gives mean ± std over the seeds and the
paired difference adaptive - random (mean, 95% Student-t interval over the seeds) with a verdict on the
claim: ``confirmed`` (the interval of the mAP difference lies above 0), ``refuted`` (below 0) or
``unresolved`` (it contains 0).

Usage::

    python benchmarks/sampler_selection.py --quick          # < 1 minute: tiny data, 2 epochs, same table shape
    python benchmarks/sampler_selection.py                  # the recorded run (docs/results.md)
    python benchmarks/sampler_selection.py --seeds 0 1 2 3 4 --epochs 8 --n-train 2000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from labelwise.config import load_config
from labelwise.engine import Trainer, seed_everything
from labelwise.run import build_datasets, build_loss, build_model, build_sampler

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("random", "hard", "adaptive", "chain")
METRICS = ("mAP", "CF1", "OF1")
#: The budget of the recorded run (every value can be changed on the command line).
FULL = {"n_train": 1000, "n_val": 200, "n_test": 600, "image_size": 32, "backbone": "resnet10t", "epochs": 6,
        "warmup_epochs": 2, "batch_size": 32, "lr": 2e-3, "seeds": [0, 1, 2]}
#: ``--quick``: the same table shape in under a minute.
QUICK = {**FULL, "n_train": 96, "n_val": 32, "n_test": 96, "epochs": 2, "warmup_epochs": 1, "backbone": "test_resnet"}
#: Two-sided 97.5% quantiles of Student's t (degrees of freedom 1..10); a normal quantile beyond.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def profile(args: argparse.Namespace) -> dict[str, Any]:
    """The budget of this run: :data:`FULL` (or :data:`QUICK`) with the command-line values on top."""
    p = dict(QUICK if args.quick else FULL)
    for key in ("n_train", "n_val", "n_test", "image_size", "backbone", "epochs", "warmup_epochs", "batch_size",
                "lr", "seeds"):
        value = getattr(args, key)
        if value is not None:
            p[key] = value
    if p["warmup_epochs"] >= p["epochs"]:
        raise SystemExit(f"--warmup-epochs {p['warmup_epochs']} leaves no selection epoch in {p['epochs']} epochs")
    return p


def run_config(method: str, seed: int, p: dict[str, Any]) -> Any:
    """The validated run configuration: the quickstart recipe at this budget, ``sampler.name = method``."""
    sampler: dict[str, Any] = {"name": method}
    if method != "random":
        sampler["warmup_epochs"] = p["warmup_epochs"]
    if method in ("adaptive", "chain"):
        sampler["features"] = "model"
    return load_config(ROOT / "src" / "labelwise" / "configs" / "quickstart.yaml", [
        f"data.options.n_train={p['n_train']}", f"data.options.n_val={p['n_val']}",
        f"data.options.n_test={p['n_test']}", f"data.options.image_size={p['image_size']}",
        f"data.image_size={p['image_size']}", f"model.backbone={p['backbone']}",
        f"trainer.max_epochs={p['epochs']}", f"trainer.batch_size={p['batch_size']}", f"trainer.lr={p['lr']}",
        f"trainer.seed={seed}", "trainer.tune_thresholds=false", "trainer.progress=false",
        "trainer.save_checkpoints=false", "trainer.tensorboard=false", "trainer.report=false",
        (f"sampler={json.dumps(sampler)}"),
    ])


def train_one(cfg: Any, data: Any) -> dict[str, float]:
    """Train with the configured sampler; the final model's test mAP, CF1 and OF1 in percent."""
    seed_everything(cfg.trainer.seed, deterministic=cfg.trainer.deterministic)  # model initialisation
    model = build_model(cfg, len(data.class_names))
    trainer = Trainer(cfg.trainer)
    trainer.fit(model, build_loss(cfg, data.train), data.train, data.val, batch_sampler=build_sampler(cfg, data.train))
    metrics = trainer.evaluate(model, data.test)
    return {k: 100.0 * float(metrics[k]) for k in METRICS}


def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Mean of ``a - b`` over seeds and its 95% Student-t interval (nan bounds for a single seed)."""
    d = [x - y for x, y in zip(a, b)]
    m = statistics.fmean(d)
    if len(d) < 2:
        return m, math.nan, math.nan
    half = T975.get(len(d) - 1, 1.96) * statistics.stdev(d) / math.sqrt(len(d))
    return m, m - half, m + half


def verdict(lo: float, hi: float) -> str:
    """``confirmed`` (interval above 0), ``refuted`` (below 0), else ``unresolved``."""
    if lo > 0:
        return "confirmed"
    if hi < 0:
        return "refuted"
    return "unresolved"


def format_table(rows: list[dict[str, Any]], seeds: list[int], seconds: dict[str, float]) -> str:
    by = {m: [r for r in rows if r["method"] == m] for m in METHODS if any(r["method"] == m for r in rows)}
    head = ["sampler", *METRICS, "s/run"]
    lines = [f"MultiDigits-20, seeds {seeds}, test split, final model; % mean ± std over seeds", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for method, rs in by.items():
        cells = [method] + [f"{mean_std([r[k] for r in rs])[0]:.2f} ± {mean_std([r[k] for r in rs])[1]:.2f}"
                            for k in METRICS]
        lines.append("| " + " | ".join(cells + [f"{seconds[method]:.0f}"]) + " |")
    if "random" in by and "adaptive" in by:
        ref = {r["seed"]: r for r in by["random"]}
        pairs = [(r, ref[r["seed"]]) for r in by["adaptive"] if r["seed"] in ref]
        lines += ["", "paired difference adaptive - random (mean [95% t-interval] over seeds):"]
        for k in METRICS:
            m, lo, hi = paired([a[k] for a, _ in pairs], [b[k] for _, b in pairs])
            lines.append(f"  {k}: {m:+.2f} [{lo:+.2f}, {hi:+.2f}] -> {verdict(lo, hi)}")
        m, lo, hi = paired([a["mAP"] for a, _ in pairs], [b["mAP"] for _, b in pairs])
        lines.append(f"claim 'adaptive beats random' (mAP): {verdict(lo, hi)}")
    return "\n".join(lines)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny budget, under a minute: {', '.join(f'{k}={v}' for k, v in QUICK.items() if FULL[k] != v)}")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                        help=f"samplers to compare (default: {' '.join(METHODS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help=f"seeds (default: {FULL['seeds']})")
    parser.add_argument("--epochs", type=int, default=None, help=f"training epochs (default: {FULL['epochs']})")
    parser.add_argument("--warmup-epochs", dest="warmup_epochs", type=int, default=None,
                        help=f"random warm-up epochs of hard/adaptive/chain (default: {FULL['warmup_epochs']})")
    parser.add_argument("--n-train", dest="n_train", type=int, default=None,
                        help=f"training images (default: {FULL['n_train']})")
    parser.add_argument("--n-val", dest="n_val", type=int, default=None,
                        help=f"validation images (default: {FULL['n_val']})")
    parser.add_argument("--n-test", dest="n_test", type=int, default=None,
                        help=f"test images (default: {FULL['n_test']})")
    parser.add_argument("--image-size", dest="image_size", type=int, default=None,
                        help=f"image side in pixels (default: {FULL['image_size']})")
    parser.add_argument("--backbone", default=None, help=f"timm backbone, random init (default: {FULL['backbone']})")
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=None,
                        help=f"batch size (default: {FULL['batch_size']})")
    parser.add_argument("--lr", type=float, default=None, help=f"AdamW max lr of OneCycle (default: {FULL['lr']})")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    parser.add_argument("--json", default=None,
                        help="raw results file (default: docs/results/sampler_selection.json; with --quick "
                             "runs/sampler_selection_quick.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    p = profile(args)
    out = Path(args.json) if args.json else ROOT / ("runs/sampler_selection_quick.json" if args.quick
                                                    else "docs/results/sampler_selection.json")
    print(f"sampler selection benchmark ({'quick' if args.quick else 'full'}): methods {args.methods}; budget {p}; "
          f"{args.threads} thread(s)", flush=True)
    t_all = time.perf_counter()
    commit = _commit()  # the code that runs (read before the runs: the checkout may move meanwhile)
    data = build_datasets(run_config("random", p["seeds"][0], p))
    rows: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    for method in args.methods:
        t0 = time.perf_counter()
        for seed in p["seeds"]:
            row = train_one(run_config(method, seed, p), data)
            rows.append({"dataset": "multidigits20", "method": method, "seed": seed, **row})
            print(f"{method} seed {seed}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
        seconds[method] = (time.perf_counter() - t0) / len(p["seeds"])
    command = "python benchmarks/sampler_selection.py " + " ".join(sys.argv[1:] if argv is None else argv)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), torch {torch.__version__}, " \
              f"{args.threads} thread(s)"
    record = {"benchmark": "sampler_selection", "command": command.strip(), "commit": commit,
              "regime": "scratch", "machine": machine, "budget": p, "rows": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print()
    print(format_table(rows, p["seeds"], seconds))
    print(f"\nwrote {out} ({time.perf_counter() - t_all:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
