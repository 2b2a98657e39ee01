"""DLFL on MultiDigits: the OFML baseline against SSCA with S = 1 and S = 3 (same backbone, recipe and epochs).

For each dataset (MultiDigits-20 and -80, the embedded benchmark, no download) and each seed, three models are
trained with the project's Trainer on the same data, transforms, optimiser, schedule and number of epochs:

* ``OFML``     ``ofml_cosine``: backbone + global average pooling + cosine classifier (gamma = 30, no bias);
* ``SSCA S=1`` ``ssca`` with one module, the same normalised classifier per module;
* ``SSCA S=3`` ``ssca`` with three cascaded modules.

The final model of each run is evaluated on the test split: mAP, CF1, OF1 (threshold 0.5, %) and the angle
statistics of the paper's section 3 / Fig. 8 (median over all positive and over all negative (image, label)
entries of the angle between the feature scored for a label and its class weight; for SSCA the arc-cosine of
the modules' mean cosine, the angle that decides the prediction). Each cell is mean +- std over the seeds
(seed = model initialisation and batch order; the data are fixed).

Regimes (``--regime``):

* ``pretrained`` (default, issue 15): fine-tuned from the shipped ``md-resnet10t`` weights (pretrained on
  MultiDigits-40, another label space; docs/pretrained.md) at 128x128 with small digits and output stride 16
  (an 8x8 feature map), trained to a validation plateau (early stopping on val mAP, best epoch restored),
  5 seeds; writes docs/results/dlfl.json (raw per-seed rows);
* ``scratch``: the earlier profile, a from-scratch ResNet-10t at 64x64 (4x4 map), 4 epochs, 3 seeds.

The paper's networks are ImageNet-pretrained ResNet-101 / Swin-B at 448, which cannot be downloaded here.

Usage::

    python benchmarks/dlfl.py --quick                   # < 1 minute: tiny data, same table shape
    python benchmarks/dlfl.py                           # the full pretrained run (docs/pretrained.md)
    python benchmarks/dlfl.py --device cuda --workers 8 # on a GPU
    python benchmarks/dlfl.py --regime scratch --datasets multidigits20 --seeds 0 1 2 --epochs 6
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import labelwise.models.heads.ssca  # noqa: F401  (registers "ssca" until labelwise.models.heads imports it)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import regime  # noqa: E402  (benchmarks/regime.py)

from labelwise.analysis.angles import (  # noqa: E402
    angle_statistics,
    compute_angles,
    optimal_angle,
    plot_angle_distributions,
)
from labelwise.config import load_config  # noqa: E402
from labelwise.engine import Trainer, seed_everything  # noqa: E402
from labelwise.run import build_datasets, build_loss, build_model  # noqa: E402

#: Method names of the raw-results file (RESULTS_SCHEMA.md).
METHOD_KEYS = {"OFML": "ofml", "SSCA S=1": "ssca_s1", "SSCA S=3": "ssca_s3"}
MODELS = {
    "OFML": {"name": "ofml_cosine"},
    "SSCA S=1": {"name": "ssca", "num_modules": 1},
    "SSCA S=3": {"name": "ssca", "num_modules": 3},
}
METRICS = ("mAP", "CF1", "OF1")
ANGLES = ("median_positive", "median_negative")


def profile(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes of the run (``--quick`` shrinks everything but keeps the table shape)."""
    if args.regime == "pretrained":
        p = {
            "n_train": 4000, "n_val": 500, "n_test": 2000, "data_options": dict(regime.PRETRAINED_DATA),
            "image_size": 128, "backbone": "resnet10t", "weights": "md-resnet10t",
            "backbone_kwargs": {"channels": [32, 64, 128, 256], "output_stride": 16}, "embed_dim": 256,
            "max_epochs": regime.MAX_EPOCHS, "patience": regime.PATIENCE, "batch_size": 64, "lr": 1e-3,
            "seeds": list(regime.SEEDS),
        }
        if args.quick:
            p.update(n_train=96, n_val=32, n_test=64, image_size=32, embed_dim=32, max_epochs=1, patience=1,
                     batch_size=32, seeds=[0, 1], data_options={"image_size": 32},
                     weights=regime.shipped_or_none("md-resnet10t"))
        else:
            regime.require_shipped(p["weights"])
        return regime.apply_common(p, args)
    p = {
        "n_train": 2000, "n_val": 300, "n_test": 1000, "image_size": 64, "backbone": "resnet10t",
        "backbone_kwargs": {"output_stride": 16}, "embed_dim": 256, "epochs": 4, "batch_size": 64, "lr": 2e-3,
        "seeds": [0, 1, 2],
    }
    if args.quick:
        p.update(n_train=96, n_val=32, n_test=64, image_size=32, backbone_kwargs={}, embed_dim=32, epochs=1,
                 batch_size=32, seeds=[0, 1, 2])
    for key in ("n_train", "n_val", "n_test", "epochs", "seeds"):
        value = getattr(args, key)
        if value is not None:
            p[key] = value
    p["device"], p["workers"] = args.device, args.workers
    return p


def run_config(dataset: str, model: dict[str, Any], seed: int, p: dict[str, Any]) -> Any:
    """The validated run configuration of one training (the same recipe for every model)."""
    options = {"backbone": p["backbone"], "pretrained": False, "backbone_kwargs": p["backbone_kwargs"], "scale": 30.0}
    if p.get("weights"):
        options["weights"] = p["weights"]
    if model["name"] == "ssca":
        options.update(num_modules=model["num_modules"], embed_dim=p["embed_dim"])
    trainer = {
        "accelerator": "cpu", "max_epochs": p.get("epochs", 1), "batch_size": p["batch_size"], "optimizer": "adamw",
        "lr": p["lr"], "weight_decay": 1e-4, "schedule": "onecycle", "seed": seed, "progress": False,
        "save_checkpoints": False, "tensorboard": False, "report": False,
    }
    if "max_epochs" in p:  # the pretrained regime: to a validation plateau
        trainer.update(regime.trainer_options(p))
    return load_config(
        {
            "name": f"dlfl-{dataset}",
            "data": {
                "name": dataset,
                "options": {"n_train": p["n_train"], "n_val": p["n_val"], "n_test": p["n_test"],
                            **p.get("data_options", {})},
                "image_size": p["image_size"],
                "train_transform": "digits",
                "eval_transform": "default",
                "normalize": "imagenet",
            },
            "model": {"name": model["name"], **options},
            "loss": {"name": "bce"},
            "trainer": trainer,
        }
    )


def train_one(cfg: Any, data: Any, p: dict[str, Any]) -> tuple[dict[str, float], Any, torch.nn.Module]:
    """Train, then evaluate the final model on the test split: (metrics and angle summary, angles, model)."""
    seed_everything(cfg.trainer.seed, deterministic=cfg.trainer.deterministic)  # model initialisation
    model = regime.build_run_model(cfg, len(data.class_names), p) if "max_epochs" in p else build_model(
        cfg, len(data.class_names))
    if cfg.trainer.early_stopping_patience is not None:  # pretrained regime: best epoch restored
        trainer = regime.fit_to_plateau(cfg.trainer, model, build_loss(cfg), data.train, data.val)
    else:
        trainer = Trainer(cfg.trainer)
        trainer.fit(model, build_loss(cfg), data.train, data.val)
    metrics = trainer.evaluate(model, data.test)
    angles = compute_angles(model, data.test, batch_size=256)
    summary = angle_statistics(angles.angles, angles.targets, angles.class_names, known=angles.known)["summary"]
    row = {k: 100.0 * float(metrics[k]) for k in METRICS}
    row.update({k: float(summary[k]) for k in ANGLES})
    row["best_epoch"] = trainer.best_epoch
    return row, angles, model


def mean_std(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def format_table(dataset: str, results: dict[str, list[dict[str, float]]], num_labels: int, seconds: dict[str, float]) -> str:
    head = ["model", "mAP", "CF1", "OF1", "median pos angle", "median neg angle", "s/run"]
    lines = [
        f"### {dataset} (M = {num_labels}; OFML optimum arccos(1/sqrt(M)) = {optimal_angle(num_labels):.2f}°; "
        f"{len(next(iter(results.values())))} seeds, mean ± std)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for label, rows in results.items():
        cells = [label]
        for key in METRICS:
            m, s = mean_std([r[key] for r in rows])
            cells.append(f"{m:.2f} ± {s:.2f}")
        for key in ANGLES:
            m, s = mean_std([r[key] for r in rows])
            cells.append(f"{m:.1f}° ± {s:.1f}")
        cells.append(f"{seconds[label]:.0f}" if label in seconds else "stored")  # resumed: not timed here
        lines.append("| " + " | ".join(cells) + " |")
    base = results.get("OFML")
    if base:
        b, _ = mean_std([r["mAP"] for r in base])
        deltas = []
        for label, rows in results.items():
            if label != "OFML":
                m, _ = mean_std([r["mAP"] for r in rows])
                deltas.append(f"{label} {m - b:+.2f}")
        lines += ["", "mAP relative to OFML: " + ", ".join(deltas)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    regime.add_regime_args(parser, "dlfl", backbone_mode=True)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=None, help="scratch regime: epochs (default 4)")
    parser.add_argument("--json", default=None, help="also write the table data (means, angles) to this JSON file")
    parser.add_argument("--plot-dir", default=None,
                        help="write the Fig. 8 angle plot of seed 0 (OFML vs SSCA S=1) per dataset here "
                             "(default: a temporary directory; docs use docs/img)")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    p = profile(args)
    plot_dir = Path(args.plot_dir) if args.plot_dir else Path(tempfile.mkdtemp(prefix="dlfl-bench-"))
    print(regime.header("dlfl", p, args), flush=True)
    raw_rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    everything: dict[str, Any] = {"profile": p, "results": {}}
    tables = []
    datas = {}
    for dataset in args.datasets:
        cfg0 = run_config(dataset, MODELS["OFML"], 0, p)
        datas[dataset] = regime.frozen_splits(cfg0, build_datasets(cfg0), p)
    results: dict[str, dict[str, list[dict[str, float]]]] = {d: {m: [] for m in args.models} for d in datas}
    run_seconds: dict[str, dict[str, list[float]]] = {d: {m: [] for m in args.models} for d in datas}
    plotted: dict[str, dict[str, Any]] = {d: {} for d in datas}
    budget = regime.Budget(args.time_budget)
    store = regime.cell_store("dlfl", args, p) if args.regime == "pretrained" else None
    # seed-major order: a run cut short by --time-budget still holds complete seed pairs for every claim
    for seed in p["seeds"]:
        for dataset, data in datas.items():
            for label in args.models:
                cell = (dataset, METHOD_KEYS[label], seed)
                stored = store.get(cell) if store is not None else None
                if stored is not None and not (seed == p["seeds"][0] and label in ("OFML", "SSCA S=1")):
                    results[dataset][label].append({k: v for k, v in stored[0].items()
                                                    if k not in ("dataset", "method", "seed")})
                    raw_rows += stored
                    continue  # (the angle plot's runs, seed 0 of OFML and SSCA S=1, are always retrained)
                if budget.exhausted():
                    break
                # (a stored angle-plot run is retrained in this process: no claim, which would see it stored)
                if store is not None and stored is None and not store.claim(cell):
                    print(f"{dataset} {label} seed {seed}: running in another process", flush=True)
                    continue
                t0 = time.perf_counter()
                row, angles, _ = train_one(run_config(dataset, MODELS[label], seed, p), data, p)
                run_seconds[dataset][label].append(time.perf_counter() - t0)
                results[dataset][label].append(row)
                raw_rows.append({"dataset": dataset, "method": METHOD_KEYS[label], "seed": seed, **row})
                if store is not None:
                    store.put(cell, [raw_rows[-1]])
                if seed == p["seeds"][0] and label in ("OFML", "SSCA S=1"):
                    plotted[dataset][label] = angles
                print(f"{dataset} {label} seed {seed}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
                regime.write_results("dlfl", store.rows() if store is not None else raw_rows, args, p,
                                     time.perf_counter() - t_all, complete=False, store=store)
    budget.report()
    for dataset, data in datas.items():
        res = {m: r for m, r in results[dataset].items() if r}
        if not res:
            continue
        if plotted[dataset]:
            png = plot_angle_distributions(plotted[dataset], plot_dir / f"dlfl_angles_{dataset}.png", max_classes=20,
                                           title=f"{dataset}: angles of the test images (seed {p['seeds'][0]})")
            print(f"wrote {png}", flush=True)
        seconds = {m: sum(v) / len(v) for m, v in run_seconds[dataset].items() if v}
        tables.append(format_table(dataset, res, len(data.class_names), seconds))
        everything["results"][dataset] = res
    total = time.perf_counter() - t_all
    print()
    print("\n\n".join(tables))
    print(f"\ntotal {total / 60:.1f} min ({' '.join(sys.argv[1:]) or 'full run'})")
    if args.json:
        Path(args.json).write_text(json.dumps({**everything, "seconds": total}, indent=2) + "\n")
    complete = not budget.skipped
    if store is not None:  # every run of the profile, also those of other commands or processes
        raw_rows = store.rows()
        complete = complete and store.covers((d, key, seed) for d in regime.full_datasets(args)
                                             for key in METHOD_KEYS.values() for seed in p["seeds"])
    out = regime.write_results("dlfl", raw_rows, args, p, total, complete=complete, store=store)
    print(f"raw results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
