"""Ablations of the two-stage Transformer head on MultiDigits (the paper's Tables IV, V and VI).

Three tables, each a one-factor change from the paper's configuration (iRPE encoder, no decoder
self-attention, APL loss with gamma+ = 0, gamma- = 2):

* Table IV  encoder: none / standard / with 2-D relative position encoding (iRPE)
* Table V   decoder self-attention among label queries: on / second layer only / off
* Table VI  loss: BCE / focal / ASL / APL (ASL and APL with gamma+ = 0, gamma- = 2, as in the paper)

Every setting is trained with several seeds (model initialisation and batch order; the data are fixed) and
reported as mean +- std of test mAP (%). The paper's deltas are 0.1-0.5 mAP; a delta is called *resolved* only
when it exceeds the seed-to-seed spread, here ``|delta| > 2 * sqrt(std_a^2 / n + std_b^2 / n)`` (two
standard errors of the difference of the means) with the paper's setting as the reference row.

The backbone is trained from scratch (no pretrained weights on the development machines), so the recipe is
scaled for a CPU: a ResNet-10t at 64x64 with output stride 16 (4x4 feature map), two epochs, AdamW with one-cycle at a learning rate suited to
random initialisation (the paper's 5e-5 is for a pretrained backbone). The settings that coincide across
tables (the paper's configuration) are trained once and shared.

Regimes (``--regime``): ``pretrained`` (default, issue 15) fine-tunes from the shipped ``md-resnet10t``
weights at 128x128 with small digits and output stride 16 (8x8 feature map, relative positions -7..7), to a
validation plateau (early stopping on val mAP, best epoch restored), 5 seeds, at the paper's learning-rate
scale for a pretrained backbone (backbone 1e-4, head 1e-3), and writes docs/results/two_stage.json; ``scratch``
is the earlier from-scratch profile described above.

Usage::

    python benchmarks/two_stage.py --quick              # < 1 minute: tiny data, same table shape
    python benchmarks/two_stage.py                      # the full run (see docs/two_stage.md for timing)
    python benchmarks/two_stage.py --datasets multidigits20 --seeds 0 1 2 3 4 --epochs 6
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import regime  # noqa: E402  (benchmarks/regime.py)

from labelwise.config import load_config  # noqa: E402
from labelwise.engine import Trainer, seed_everything  # noqa: E402
from labelwise.run import build_datasets, build_loss, build_model  # noqa: E402

try:  # the head registers itself on import (until labelwise.models.heads imports it)
    import labelwise.models.heads.two_stage  # noqa: F401
except ImportError:  # pragma: no cover
    pass

PAPER = {"encoder": "rpe", "decoder_self_attention": "off", "loss": "apl"}
LOSSES = {
    "bce": ("Binary cross-entropy", {"name": "bce"}),
    "focal": ("Focal loss", {"name": "focal", "gamma": 2.0}),
    "asl": ("Asymmetric loss", {"name": "asl", "gamma_pos": 0.0, "gamma_neg": 2.0}),
    "apl": ("Asymmetric polynomial loss", {"name": "apl", "gamma_pos": 0.0, "gamma_neg": 2.0}),
}
TABLES = [
    (
        "Table IV: encoder",
        "encoder",
        [("none", "w/o encoder"), ("standard", "w/ standard encoder"), ("rpe", "w/ iRPE encoder (paper)")],
    ),
    (
        "Table V: decoder self-attention",
        "decoder_self_attention",
        [
            ("on", "w/ self-attention"),
            ("second", "w/ self-attention* (2nd layer)"),
            ("off", "w/o self-attention (paper)"),
        ],
    ),
    (
        "Table VI: loss",
        "loss",
        [(k, LOSSES[k][0] + (" (paper)" if k == "apl" else "")) for k in ("bce", "focal", "asl", "apl")],
    ),
]


@dataclass(frozen=True)
class Setting:
    encoder: str
    decoder_self_attention: str
    loss: str

    def label(self) -> str:
        return f"enc={self.encoder} sa={self.decoder_self_attention} loss={self.loss}"


def settings() -> list[Setting]:
    """The distinct settings of the three tables (the paper's one appears once)."""
    out: list[Setting] = []
    for _, factor, rows in TABLES:
        for value, _ in rows:
            s = Setting(**{**PAPER, factor: value})
            if s not in out:
                out.append(s)
    return out


def method_names(s: Setting) -> list[str]:
    """The raw-results method names a setting stands for (the paper's configuration stands for three)."""
    names = []
    for _, factor, rows in TABLES:
        prefix = {"encoder": "enc", "decoder_self_attention": "sa", "loss": "loss"}[factor]
        for value, _ in rows:
            if Setting(**{**PAPER, factor: value}) == s:
                names.append(f"{prefix}_{'irpe' if value == 'rpe' else value}")
    return names


def profile(args: argparse.Namespace) -> dict[str, Any]:
    if args.regime == "pretrained":
        p = {
            "n_train": 4000, "n_val": 500, "n_test": 2000, "data_options": dict(regime.PRETRAINED_DATA),
            "image_size": 128, "backbone": "resnet10t", "weights": "md-resnet10t",
            "backbone_kwargs": {"channels": [32, 64, 128, 256], "output_stride": 16}, "stride": 16,
            "max_epochs": regime.MAX_EPOCHS, "patience": regime.PATIENCE, "batch_size": 64, "d_model": 128,
            "dim_feedforward": 256, "num_heads": 4, "lr": 1e-3, "backbone_lr": 1e-4, "seeds": list(regime.SEEDS),
        }
        if args.quick:
            p.update(n_train=96, n_val=32, n_test=64, image_size=32, data_options={"image_size": 32}, max_epochs=1,
                     patience=1, batch_size=16, d_model=32, dim_feedforward=64, seeds=[0, 1],
                     weights=regime.shipped_or_none("md-resnet10t"))
        else:
            regime.require_shipped(p["weights"])
        return regime.apply_common(p, args)
    if args.quick:
        return {
            "n_train": 128,
            "n_val": 32,
            "n_test": 96,
            "image_size": 64,  # 2x2 feature map: the smallest grid on which iRPE has distinct buckets
            "backbone": "test_resnet",
            "backbone_kwargs": {},
            "stride": 32,
            "epochs": 1,
            "batch_size": 16,  # 8 steps: one-cycle needs pct_start * steps >= 1
            "d_model": 32,
            "dim_feedforward": 64,
            "num_heads": 4,
        }
    return {
        "n_train": 1280,
        "n_val": 256,
        "n_test": 1000,
        "image_size": 64,
        # output stride 16: a 4x4 feature map, so relative positions span -3..3 (at stride 32 only -1..1)
        "backbone": "resnet10t",
        "backbone_kwargs": {"output_stride": 16},
        "stride": 16,
        "epochs": 2,
        "batch_size": 64,
        "d_model": 128,
        "dim_feedforward": 256,
        "num_heads": 4,
    }


def run_config(dataset: str, setting: Setting, seed: int, p: dict[str, Any], lr: float) -> Any:
    image = p["image_size"]
    stride = p["stride"]  # the positional table is made for the actual feature-map size
    trainer = {
        "accelerator": "cpu",
        "max_epochs": p.get("epochs", 1),
        "batch_size": p["batch_size"],
        "optimizer": "adamw",
        "lr": lr,
        "weight_decay": 5e-3,
        "betas": [0.9, 0.9999],
        "schedule": "onecycle",
        "pct_start": 0.2,
        "eval_every": p.get("epochs", 1),
        "save_checkpoints": False,
        "tensorboard": False,
        "report": False,
        "progress": False,
        "seed": seed,
    }
    if "max_epochs" in p:  # the pretrained regime: to a validation plateau
        trainer.update(regime.trainer_options(p), backbone_lr=p["backbone_lr"])
    model_extra = {"weights": p["weights"]} if p.get("weights") else {}
    return load_config(
        {
            "name": f"two-stage-{dataset}",
            "data": {
                "name": dataset,
                "options": {"n_train": p["n_train"], "n_val": p["n_val"], "n_test": p["n_test"],
                            **p.get("data_options", {})},
                "image_size": image,
                "train_transform": "digits",
                "eval_transform": "default",
            },
            "model": {
                "name": "two_stage_transformer",
                "backbone": p["backbone"],
                "backbone_kwargs": p["backbone_kwargs"],
                "d_model": p["d_model"],
                "num_heads": p["num_heads"],
                "dim_feedforward": p["dim_feedforward"],
                "pos_size": max(1, image // stride),
                "encoder": setting.encoder,
                "decoder_self_attention": setting.decoder_self_attention,
                **model_extra,
            },
            "loss": LOSSES[setting.loss][1],
            "trainer": trainer,
        }
    )


def train_one(cfg: Any, data: Any, p: dict[str, Any]) -> dict[str, float]:
    """Train one setting; the test mAP / CF1 / OF1 (%) of the final (scratch) or best-epoch (pretrained) model."""
    seed_everything(cfg.trainer.seed, deterministic=cfg.trainer.deterministic)  # model initialisation
    model = regime.build_run_model(cfg, len(data.class_names), p) if "max_epochs" in p else build_model(
        cfg, len(data.class_names))
    if cfg.trainer.early_stopping_patience is not None:
        trainer = regime.fit_to_plateau(cfg.trainer, model, build_loss(cfg), data.train, data.val)
    else:
        trainer = Trainer(cfg.trainer)
        trainer.fit(model, build_loss(cfg), data.train, data.val)
    metrics = trainer.evaluate(model, data.test)
    return {k: 100.0 * float(metrics[k]) for k in ("mAP", "CF1", "OF1")} | {"best_epoch": trainer.best_epoch}


def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def format_tables(dataset: str, results: dict[Setting, list[float]]) -> str:
    lines = [f"### {dataset}", ""]
    for title, factor, rows in TABLES:
        ref = Setting(**PAPER)
        ref_m, ref_s = mean_std(results[ref])
        n_ref = len(results[ref])
        lines += [
            f"{title}",
            "",
            "| setting | mAP (%) mean +- std | delta vs paper | resolved? |",
            "|---|---|---|---|",
        ]
        for value, name in rows:
            s = Setting(**{**PAPER, factor: value})
            if not results.get(s):
                lines.append(f"| {name} | not run (time budget) | - | - |")
                continue
            m, sd = mean_std(results[s])
            if s == ref:
                lines.append(f"| {name} | {m:.2f} +- {sd:.2f} | - | - |")
                continue
            delta = m - ref_m
            se = math.sqrt(sd**2 / len(results[s]) + ref_s**2 / n_ref)
            resolved = "yes" if abs(delta) > 2 * se else "no"
            lines.append(
                f"| {name} | {m:.2f} +- {sd:.2f} | {delta:+.2f} | {resolved} (2 SE = {2 * se:.2f}) |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    regime.add_regime_args(parser, "two_stage", backbone_mode=True)
    parser.add_argument("--epochs", type=int, default=None, help="scratch regime: epochs (default 2)")
    parser.add_argument("--lr", type=float, default=None,
                        help="head lr (AdamW; default 1e-3; scratch: one-cycle max lr)")
    parser.add_argument("--json", type=Path, default=None, help="also write the per-setting mAPs here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    p = profile(args)
    if args.regime == "scratch":
        p.setdefault("seeds", [0, 1, 2])
        if args.seeds is not None:
            p["seeds"] = list(args.seeds)
        p["device"], p["workers"] = args.device, args.workers
    if args.lr is not None:
        p["lr"] = args.lr
    p.setdefault("lr", 1e-3)
    if args.epochs is not None:
        p["epochs"] = args.epochs
    if len(p["seeds"]) < 2:
        parser.error("give at least 2 seeds (the spread is the point)")
    args.seeds = p["seeds"]
    args.lr = p["lr"]
    start = time.time()
    raw: dict[str, dict[str, list[float]]] = {}
    out = [regime.header("two_stage", p, args), ""]
    print(out[0], flush=True)
    raw_rows: list[dict[str, Any]] = []
    datas = {}
    for d in args.datasets:
        cfg0 = run_config(d, Setting(**PAPER), args.seeds[0], p, args.lr)
        datas[d] = regime.frozen_splits(cfg0, build_datasets(cfg0), p)
    results_all: dict[str, dict[Setting, list[float]]] = {d: {s: [] for s in settings()} for d in datas}
    budget = regime.Budget(args.time_budget)
    store = regime.cell_store("two_stage", args, p) if args.regime == "pretrained" else None
    # seed-major order: a run cut short by --time-budget still holds complete seed pairs for every claim
    for seed in args.seeds:
        for dataset, data in datas.items():
            for s in settings():
                cell = (dataset, s.label(), seed)
                stored = store.get(cell) if store is not None else None
                if stored is not None:
                    results_all[dataset][s].append(stored[0]["mAP"])
                    raw_rows += stored
                    continue
                if budget.exhausted():
                    break
                if store is not None and not store.claim(cell):
                    print(f"{dataset} {s.label()} seed={seed}: running in another process", file=sys.stderr, flush=True)
                    continue
                t0 = time.time()
                row = train_one(run_config(dataset, s, seed, p, args.lr), data, p)
                results_all[dataset][s].append(row["mAP"])
                rows = [{"dataset": dataset, "method": m, "seed": seed, **row} for m in method_names(s)]
                raw_rows += rows
                if store is not None:
                    store.put(cell, rows)
                print(
                    f"[{time.time() - start:6.0f}s] {dataset} {s.label()} seed={seed}: "
                    f"mAP {row['mAP']:.2f} ({time.time() - t0:.1f}s)",
                    file=sys.stderr,
                    flush=True,
                )
                regime.write_results("two_stage", store.rows() if store is not None else raw_rows, args, p,
                                     time.time() - start, complete=False, store=store)
    budget.report()
    for dataset, results in results_all.items():
        results = {s: v for s, v in results.items() if v}
        raw[dataset] = {s.label(): v for s, v in results.items()}
        if results.get(Setting(**PAPER)):
            out.append(format_tables(dataset, results))
    out.append(f"total time {time.time() - start:.0f}s")
    print("\n".join(out))
    if args.json is not None:
        args.json.write_text(
            json.dumps({"profile": p, "seeds": args.seeds, "lr": args.lr, "mAP": raw}, indent=2)
        )
    complete = not budget.skipped
    if store is not None:  # every run of the profile, also those of other commands (e.g. --datasets multidigits80)
        raw_rows = store.rows()
        complete = store.covers((d, s.label(), seed) for d in regime.full_datasets(args) for s in settings()
                                for seed in args.seeds)
    path = regime.write_results("two_stage", raw_rows, args, p, time.time() - start, complete=complete, store=store)
    print(f"raw results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
