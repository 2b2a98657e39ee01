"""ML-VPT on MultiDigits from a frozen ViT pretrained offline: Table 1/4 shape, Fig. 4 grouping ablation, Fig. 7 measure.

Workflow (all offline, all through labelwise):

1. pretrain a small ViT (timm ``vit_tiny_patch16_224`` at 64x64, 8-pixel patches, width 96, depth 6) on
   ``multidigits80`` with ``linear_probe_vit train_backbone=True`` (full training, class-token classifier);
   the run directory is cached under ``--cache-dir`` and reused when its settings match;
2. group the ``multidigits20`` training labels (5 CO + 5 DC groups, :func:`labelwise.analysis.grouping.group_labels`);
3. on ``multidigits20`` built with other contexts (``--target-options``, default ``{"seed": 1}``), load the
   pretrained ViT frozen (``weights=<pretrain>/checkpoints/best.safetensors``) and prompt-tune, for each seed:
   linear probe, VPT-deep (30 prompts per block), GateVPT (30 gated shallow prompts, the same token budget),
   E2VPT (10 visual + 5 key-value prompts per block, its defaults, trained without the pruning stage), GVPT and
   ML-VPT (5 groups x 3 tokens x 2 = 30 prompts), and the Fig. 4 ablation at the same budget: VPT-CO (CO
   groups only, 5 x 6 tokens), VPT-DC (DC only, 5 x 6); GVPT is the "both" bar;
4. report mAP / CF1 / OF1 (test split, threshold 0.5), learnable/total parameters and FLOPs, and the
   co-occurrence over-inference: for the 10 most frequent ordered training pairs (i, j) (largest p(j | i)),
   the false positive rate of j on test images holding i but not j (mean over pairs), next to the false
   positive rate of the same j on images holding neither.

Recipe: ASL (gamma- 2, gamma+ 0, clip 0), AdamW (weight decay 1e-2), one-cycle, batch 64. Departures from
section 5.1 for a CPU budget: ``--epochs`` (default 5, 1,600 training images) instead of 40, no EMA (0.9997 needs thousands of
steps), max lr ``--lr`` (default 5e-3: prompts trained from scratch in a few hundred steps), no
RandAugment/Cutout (64x64 synthetic digits; set ``--augment`` to use the library's preset when available).

Regimes (``--regime``): ``pretrained`` (default, issue 15) uses the shipped ``md-vit-tiny`` ViT (pretrained
on MultiDigits-40, another label space; docs/pretrained.md), frozen, on MultiDigits-20 and -80 at 128x128
with small digits (an 8x8 patch grid), trains every method to a validation plateau (early stopping on val
mAP, best epoch restored), 5 seeds, and writes docs/results/mlvpt.json; ``scratch`` is the workflow above
(steps 1-4, its own from-scratch pretraining). In the pretrained regime the frozen CNN stem of the hybrid
``md-vit-tiny`` runs once per split and every method trains on its 8x8 feature maps
(:func:`labelwise.models.feature_cache.split_hybrid_stem`: the same function of the image as running the stem
each step, so the only change is no training augmentation; ``--no-stem-cache`` runs the stem with the
``digits`` augmentation). A prompt-tuning step still runs the 6-block transformer forward and backward, about
0.6 s for a batch of 64 on one CPU thread, so the CPU default is 1,000 training images (a run to its plateau
takes a few minutes); ``--n-train 4000`` is the size of the other image benchmarks (a GPU budget).

Run (the lead schedules the full run; ``--quick`` is a smoke test of the same table shape, under a minute)::

    python benchmarks/mlvpt.py --quick
    python benchmarks/mlvpt.py --threads 2 --out runs/bench_mlvpt/results.json

``--stand-in`` replaces MultiDigits by a small synthetic co-occurring-blob dataset (pipeline check only; its
numbers mean nothing).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

sys.path.insert(0, str(ROOT / "benchmarks"))
import regime  # noqa: E402  (benchmarks/regime.py)

import labelwise.models.prompted_vit  # noqa: E402,F401  (registers the prompt models)
from labelwise.analysis.grouping import (  # noqa: E402
    cooccurrence_false_positive_rate,
    frequent_pairs,
    group_labels,
    plot_label_groups,
)
from labelwise.engine import Trainer  # noqa: E402
from labelwise.losses import create_loss  # noqa: E402
from labelwise.metrics import multilabel_report  # noqa: E402
from labelwise.models import create_model  # noqa: E402
from labelwise.models.feature_cache import split_hybrid_stem  # noqa: E402

VIT = "vit_tiny_patch16_224"
#: Training images of the pretrained regime (CPU-sized; see the module docstring).
N_TRAIN = 1000
#: Epoch cap of the pretrained regime. The group-token readouts (GVPT, VPT-CO, VPT-DC) train slower than the
#: class-token ones: under the regime's common cap of 30, 3 of 4 of their MultiDigits-20 runs ended at the cap
#: before early stopping saw a plateau. Raising the cap reruns only those (regime.CellStore, plateau_reuse).
MAX_EPOCHS = 60
VIT_KW = {"img_size": 64, "patch_size": 8, "embed_dim": 96, "depth": 6, "num_heads": 3}
QUICK_VIT_KW = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}

METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "linear probe": ("linear_probe_vit", {}),
    "VPT-deep": ("vpt_deep", {"num_prompts": 30}),
    "GateVPT": ("gatevpt", {"num_prompts": 30}),
    "E2VPT": ("e2vpt", {}),
    "GVPT": ("gvpt", {"experts_per_group": 3}),
    "ML-VPT": ("mlvpt", {"experts_per_group": 3}),
}
ABLATION: dict[str, tuple[str, dict[str, Any]]] = {
    "VPT-CO": ("gvpt", {"branches": "co", "experts_per_group": 6}),
    "VPT-DC": ("gvpt", {"branches": "dc", "experts_per_group": 6}),
}


# -- data -----------------------------------------------------------------------------------------------------
def _transform(size: int, augment: bool):
    from torchvision.transforms import v2

    ops = [v2.Resize((size, size), antialias=True)]
    if augment:
        ops += [v2.RandAugment()]
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3)]
    return v2.Compose(ops)


def _stand_in(num_classes: int, n: int, size: int, seed: int):
    """Synthetic images: class k paints a coloured square at a class-specific place; classes co-occur in blocks."""
    from labelwise.data.base import ArrayDataset

    rng = np.random.default_rng(seed)
    block = rng.integers(0, 4, size=n)
    y = (rng.random((n, num_classes)) < 0.45) & ((np.arange(num_classes) % 4)[None] == block[:, None])
    y[np.arange(n), rng.integers(0, num_classes, size=n)] = True
    img = rng.integers(0, 60, size=(n, 3, size, size), dtype=np.uint8)
    grid = int(np.ceil(np.sqrt(num_classes)))
    cell = size // grid
    for k in range(num_classes):
        r, c = divmod(k, grid)
        img[y[:, k], k % 3, r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = 220
    return ArrayDataset(torch.from_numpy(img), y.astype(np.uint8), [f"c{k}" for k in range(num_classes)])


def load_splits(name: str, options: dict[str, Any], args: argparse.Namespace, size: int,
                n_train: int | None = None) -> tuple[Any, Any]:
    n_train = n_train or args.n_train
    tf = _transform(size, False)
    tf_train = _transform(size, args.augment)
    if args.stand_in:
        c = 80 if name.endswith("80") else 20
        seed = int(options.get("seed", 0))
        train = _stand_in(c, n_train, size, seed)
        test = _stand_in(c, args.n_test, size, seed + 100)
    else:
        from labelwise.data import load_dataset

        train = load_dataset(name, split="train", n_train=n_train, n_test=args.n_test, **options)
        test = load_dataset(name, split="test", n_train=n_train, n_test=args.n_test, **options)
    train.transform, test.transform = tf_train, tf
    return train, test


# -- training ---------------------------------------------------------------------------------------------------
def trainer(args: argparse.Namespace, *, epochs: int, lr: float, seed: int, output_dir: Path | None = None) -> Trainer:
    return Trainer(max_epochs=epochs, batch_size=args.batch_size, optimizer="adamw", lr=lr, weight_decay=1e-2,
                   schedule="onecycle", accelerator="cpu", seed=seed, output_dir=output_dir, num_workers=0,
                   report=False)


def pretrain(args: argparse.Namespace, vit_kw: dict[str, Any]) -> Path:
    settings = {"vit": VIT, "kw": vit_kw, "epochs": args.pretrain_epochs, "n_train": args.pretrain_n_train,
                "options": args.source_options, "stand_in": args.stand_in, "lr": args.pretrain_lr}
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    run = Path(args.cache_dir) / f"pretrain-{key}"
    best = run / "checkpoints" / "best.safetensors"
    if best.is_file():
        print(f"pretrained backbone: reusing {best}")
        return best
    train, test = load_splits("multidigits80", args.source_options, args, vit_kw["img_size"],
                              n_train=args.pretrain_n_train)
    torch.manual_seed(0)  # model initialisation (the trainer's seed is 0 too)
    model = create_model("linear_probe_vit", num_classes=train.num_classes if hasattr(train, "num_classes")
                         else train.targets.shape[1], train_backbone=True, backbone=VIT, backbone_kwargs=vit_kw)
    t0 = time.time()
    tr = trainer(args, epochs=args.pretrain_epochs, lr=args.pretrain_lr, seed=0, output_dir=run)
    tr.fit(model, create_loss("asl", gamma_neg=2, gamma_pos=0, clip=0), train, test)
    (run / "settings.json").write_text(json.dumps(settings, indent=1))
    print(f"pretrained on multidigits80 in {time.time() - t0:.0f}s: {run}")
    return best


def run_method(name: str, options: dict[str, Any], *, seed: int, weights: Path, groups_path: Path, data: tuple,
               args: argparse.Namespace, vit_kw: dict[str, Any], pairs: list) -> dict[str, Any]:
    train, test = data
    torch.manual_seed(seed)
    opts = dict(options)
    if name in ("gvpt", "mlvpt"):
        opts["groups"] = str(groups_path)
    model = create_model(name, num_classes=train.targets.shape[1], backbone=VIT, backbone_kwargs=vit_kw,
                         weights=str(weights), **opts)
    t0 = time.time()
    tr = trainer(args, epochs=args.epochs, lr=args.lr, seed=seed)
    tr.fit(model, create_loss("asl", gamma_neg=2, gamma_pos=0, clip=0), train)
    scores, targets = tr.predict(model, test)
    rep = multilabel_report(scores, targets, 0.5)
    over = cooccurrence_false_positive_rate(scores, targets, pairs, threshold=0.5)
    c = model.complexity()
    return {"mAP": 100 * rep["mAP"], "CF1": 100 * rep["CF1"], "OF1": 100 * rep["OF1"],
            "over_fpr": 100 * over["mean_fpr"], "base_fpr": 100 * over["baseline_fpr"],
            "learnable": c.trainable_params, "total": c.params, "mflops": c.flops / 1e6, "seconds": time.time() - t0}


def summarise(rows: list[dict[str, Any]], key: str) -> str:
    vals = np.array([r[key] for r in rows], dtype=float)
    return f"{vals.mean():.1f} ± {vals.std(ddof=1):.1f}" if len(vals) > 1 else f"{vals.mean():.1f}"


METHOD_KEYS = {"linear probe": "linear_probe", "VPT-deep": "vpt_deep", "GateVPT": "gatevpt", "E2VPT": "e2vpt",
               "GVPT": "gvpt", "ML-VPT": "mlvpt", "VPT-CO": "vpt_co", "VPT-DC": "vpt_dc"}


def in_method_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` in the order of :data:`METHOD_KEYS` (the store keeps them in the order the runs finished)."""
    order = list(METHOD_KEYS.values())
    return sorted(rows, key=lambda r: order.index(r["method"]) if r["method"] in order else len(order))


def run_pretrained(args: argparse.Namespace) -> int:
    """The pretrained-start regime: frozen md-vit-tiny, both datasets, to a plateau, raw rows to mlvpt.json."""
    from labelwise.config import load_config
    from labelwise.run import build_datasets

    p = {"n_train": N_TRAIN, "n_val": 500, "n_test": 2000, "data_options": dict(regime.PRETRAINED_DATA),
         "image_size": 128, "backbone": VIT, "weights": "md-vit-tiny", "backbone_kwargs": {},
         "stem_cache": bool(args.stem_cache), "max_epochs": MAX_EPOCHS, "patience": regime.PATIENCE,
         "batch_size": 64, "lr": 5e-3, "n_groups": 5, "seeds": list(regime.SEEDS)}
    if args.quick:
        p.update(n_train=96, n_val=32, n_test=64, image_size=32, data_options={"image_size": 32}, max_epochs=1,
                 patience=1, batch_size=32, seeds=[0, 1], weights=regime.shipped_or_none("md-vit-tiny"))
        if p["weights"] is None:
            p["backbone_kwargs"] = dict(QUICK_VIT_KW)
            p["stem_cache"] = False  # a plain ViT has no stem
        else:  # the shipped ViT at 32 px (its position embedding resampled to the 2x2 patch grid)
            p["backbone_kwargs"] = {"img_size": 32}
    else:
        regime.require_shipped(p["weights"])
    if args.lr_override is not None:
        p["lr"] = args.lr_override
    p = regime.apply_common(p, args)
    print(regime.header("mlvpt", p, args), flush=True)
    t_start = time.time()
    rows: list[dict[str, Any]] = []
    cache = Path(args.cache_dir) / ("quick" if args.quick else "pretrained")
    prepared = {}
    for dataset in args.datasets:
        cfg = load_config({
            "data": {"name": dataset, "image_size": p["image_size"], "train_transform": "digits",
                     "eval_transform": "default", "normalize": "imagenet",
                     "options": {"n_train": p["n_train"], "n_val": p["n_val"], "n_test": p["n_test"],
                                 **p["data_options"]}},
            "model": {"name": "linear_probe_vit"},
            "trainer": {"batch_size": p["batch_size"], "optimizer": "adamw", "lr": p["lr"], "weight_decay": 1e-2,
                        **regime.trainer_options(p)},
        })
        data = build_datasets(cfg)
        groups = group_labels(data.train.targets, n_groups=p["n_groups"], seed=0, class_names=list(data.class_names))
        groups_path = groups.save(cache / f"{dataset}_groups{p['n_groups']}.json")
        pairs = frequent_pairs(data.train.targets, top_k=10, min_count=10 if not args.quick else 2)
        print(f"{dataset}: CO sizes {groups.co_sizes}, DC sizes {groups.dc_sizes}; {len(pairs)} frequent pairs",
              flush=True)
        if p["stem_cache"]:  # the frozen CNN stem's maps, once per split (every method shares the frozen ViT)
            stem = split_hybrid_stem(create_model("linear_probe_vit", num_classes=len(data.class_names), backbone=VIT,
                                                  backbone_kwargs=p["backbone_kwargs"], weights=p["weights"]))
            data = regime.cache_splits(stem, data, p["device"])
        prepared[dataset] = (cfg, data, groups_path, pairs)
    budget = regime.Budget(args.time_budget)
    store = regime.cell_store("mlvpt", args, p)
    # seed-major order: a run cut short by --time-budget still holds complete seed pairs for every claim
    for seed in p["seeds"]:
        for dataset, (cfg, data, groups_path, pairs) in prepared.items():
            for label, (name, options) in {**METHODS, **ABLATION}.items():
                stored = store.get((dataset, METHOD_KEYS[label], seed))
                if stored is not None:
                    rows += stored
                    continue
                if budget.exhausted():
                    break
                if not store.claim((dataset, METHOD_KEYS[label], seed)):
                    print(f"  {dataset} {label:<12} seed {seed}: running in another process", flush=True)
                    continue
                torch.manual_seed(seed)
                opts = dict(options)
                if name in ("gvpt", "mlvpt"):
                    opts["groups"] = str(groups_path)
                weights = {"weights": p["weights"]} if p["weights"] else {}
                model = create_model(name, num_classes=len(data.class_names), backbone=VIT,
                                     backbone_kwargs=p["backbone_kwargs"], **weights, **opts)
                c = model.complexity()  # of the whole model, on images
                if p["stem_cache"]:
                    split_hybrid_stem(model)
                t0 = time.time()
                tcfg = cfg.trainer.model_copy(update={"seed": seed})
                tr = regime.fit_to_plateau(tcfg, model, create_loss("asl", gamma_neg=2, gamma_pos=0, clip=0),
                                           data.train, data.val)
                scores, targets = tr.predict(model, data.test)
                rep = multilabel_report(scores, targets, 0.5)
                over = cooccurrence_false_positive_rate(scores, targets, pairs, threshold=0.5) if pairs else {}
                row = {"dataset": dataset, "method": METHOD_KEYS[label], "seed": seed, "mAP": 100 * rep["mAP"],
                       "CF1": 100 * rep["CF1"], "OF1": 100 * rep["OF1"],
                       "cooc_FPR": 100 * float(over.get("mean_fpr", float("nan"))),
                       "base_FPR": 100 * float(over.get("baseline_fpr", float("nan"))),
                       "learnable": c.trainable_params, "total": c.params, "best_epoch": tr.best_epoch,
                       "seconds": round(time.time() - t0, 1)}
                rows.append(row)
                store.put((dataset, METHOD_KEYS[label], seed), [row])
                print(f"  {dataset} {label:<12} seed {seed}: mAP {row['mAP']:.1f}  CF1 {row['CF1']:.1f}  "
                      f"OF1 {row['OF1']:.1f}  cooc FPR {row['cooc_FPR']:.1f}  (epoch {tr.best_epoch}, "
                      f"{row['seconds']:.0f}s)", flush=True)
                regime.write_results("mlvpt", in_method_order(store.rows()), args, p, time.time() - t_start, complete=False, store=store)
    budget.report()
    for dataset in prepared:
        print(f"\n{dataset}: frozen {p['weights'] or 'random'} ViT, mean ± std over the seeds run")
        print("| method | seeds | mAP | CF1 | OF1 | cooc FPR | base FPR | learnable params |")
        print("|---|---|---|---|---|---|---|---|")
        for label, key in METHOD_KEYS.items():
            rs = [r for r in rows if r["dataset"] == dataset and r["method"] == key]
            if rs:
                print(f"| {label} | {len(rs)} | {summarise(rs, 'mAP')} | {summarise(rs, 'CF1')} | "
                      f"{summarise(rs, 'OF1')} | {summarise(rs, 'cooc_FPR')} | {summarise(rs, 'base_FPR')} | "
                      f"{rs[0]['learnable']:,} |")
    total = time.time() - t_start
    # every run of the profile, also those of other commands (e.g. --datasets multidigits80, other --seeds)
    complete = not budget.skipped and store.covers((d, key, seed) for d in regime.full_datasets(args)
                                                   for key in METHOD_KEYS.values() for seed in p["seeds"])
    path = regime.write_results("mlvpt", in_method_order(store.rows()), args, p, total, complete=complete, store=store)
    print(f"\ntotal time {total:.0f}s; raw results: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    regime.add_regime_args(parser, "mlvpt", help_overrides={
        "n_train": f"training images (None: pretrained regime {N_TRAIN} at 128 px, digits 10-25%% of the side, sized "
                   f"for 2 CPU cores; --quick 96 at 32 px)",
        "max_epochs": f"pretrained regime: at most this many epochs (None: {MAX_EPOCHS}; --quick 1)"})
    parser.add_argument("--epochs", type=int, default=5, help="scratch regime: prompt-tuning epochs")
    parser.add_argument("--pretrain-epochs", type=int, default=10, help="scratch regime")
    parser.add_argument("--pretrain-n-train", type=int, default=5000, help="scratch regime")
    parser.add_argument("--batch-size", type=int, default=64, help="scratch regime")
    parser.add_argument("--lr", dest="lr_override", type=float, default=None,
                        help="max lr of the prompts/heads (default 5e-3)")
    parser.add_argument("--pretrain-lr", type=float, default=2e-3)
    parser.add_argument("--source-options", type=json.loads, default={"seed": 0})
    parser.add_argument("--target-options", type=json.loads, default={"seed": 1})
    parser.add_argument("--cache-dir", default=str(ROOT / "runs" / "bench_mlvpt"))
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--stand-in", action="store_true", help="synthetic stand-in data (pipeline check only)")
    parser.add_argument("--out", default=None, help="write all per-run numbers as JSON")
    parser.add_argument("--no-stem-cache", dest="stem_cache", action="store_false",
                        help="pretrained regime: run the frozen CNN stem of md-vit-tiny on every training image, with "
                             "the 'digits' augmentation (translation, scale), instead of training on its feature maps "
                             "computed once per split (the default: exact for a frozen stem, no augmentation, about "
                             "twice as fast on a CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.regime == "pretrained":
        return run_pretrained(args)
    # the scratch regime's defaults
    args.lr = args.lr_override if args.lr_override is not None else 5e-3
    args.seeds = args.seeds or [0, 1, 2]
    args.n_train = args.n_train or 1600
    args.n_test = args.n_test or 1000
    vit_kw = dict(VIT_KW)
    if args.quick:
        args.seeds, args.epochs, args.pretrain_epochs = args.seeds[:2], 1, 1
        args.n_train, args.n_test, args.pretrain_n_train = 192, 128, 192
        vit_kw = dict(QUICK_VIT_KW)
        args.cache_dir = str(Path(args.cache_dir) / "quick")
    t_start = time.time()
    from labelwise.data import DATASETS

    if not args.stand_in and "multidigits20" not in DATASETS:
        print("multidigits20 is not registered in this checkout; use --stand-in for a pipeline check", file=sys.stderr)
        return 2
    weights = pretrain(args, vit_kw)
    data = load_splits("multidigits20", args.target_options, args, vit_kw["img_size"])
    groups = group_labels(data[0].targets, n_groups=5, seed=0, class_names=list(data[0].class_names))
    groups_path = groups.save(Path(args.cache_dir) / "multidigits20_groups5.json")
    plot_label_groups(groups, data[0].targets, Path(args.cache_dir) / "multidigits20_groups5.png")
    pairs = frequent_pairs(data[0].targets, top_k=10, min_count=10)
    print(f"groups: CO sizes {groups.co_sizes}, DC sizes {groups.dc_sizes} ({groups_path})")
    print("frequent pairs (i, j, p(j|i)):", [(i, j, round(p, 2)) for i, j, p in pairs])

    results: dict[str, list[dict[str, Any]]] = {}
    for label, (name, options) in {**METHODS, **ABLATION}.items():
        for seed in args.seeds:
            row = run_method(name, options, seed=seed, weights=weights, groups_path=groups_path, data=data,
                             args=args, vit_kw=vit_kw, pairs=pairs)
            results.setdefault(label, []).append(row)
            print(f"  {label:<12} seed {seed}: mAP {row['mAP']:.1f}  CF1 {row['CF1']:.1f}  OF1 {row['OF1']:.1f}  "
                  f"({row['seconds']:.0f}s)", flush=True)

    n = len(args.seeds)
    print(f"\nMultiDigits-20 (other contexts) from a frozen ViT pretrained on MultiDigits-80; {n} seeds, mean ± std")
    print("| method | mAP | CF1 | OF1 | learnable params | total params | MFLOPs |")
    print("|---|---|---|---|---|---|---|")
    for label in METHODS:
        rows = results[label]
        print(f"| {label} | {summarise(rows, 'mAP')} | {summarise(rows, 'CF1')} | {summarise(rows, 'OF1')} | "
              f"{rows[0]['learnable']:,} | {rows[0]['total']:,} | {rows[0]['mflops']:.1f} |")
    print("\nGrouping ablation (Fig. 4), 30 prompts per block, no MoE")
    print("| prompts | mAP | CF1 | OF1 |")
    print("|---|---|---|---|")
    for label, shown in (("VPT-deep", "VPT (no groups)"), ("VPT-CO", "VPT-CO"), ("VPT-DC", "VPT-DC"),
                         ("GVPT", "CO + DC (GVPT)")):
        rows = results[label]
        print(f"| {shown} | {summarise(rows, 'mAP')} | {summarise(rows, 'CF1')} | {summarise(rows, 'OF1')} |")
    print("\nCo-occurrence over-inference (Fig. 7 measured): FPR of j on test images with i but not j, over the "
          f"{len(pairs)} most frequent training pairs; baseline: FPR of j on images with neither (%)")
    print("| method | FPR(j given i, not j) | FPR(j, neither) |")
    print("|---|---|---|")
    for label in (*METHODS, *ABLATION):
        rows = results[label]
        print(f"| {label} | {summarise(rows, 'over_fpr')} | {summarise(rows, 'base_fpr')} |")
    print(f"\ntotal time {time.time() - t_start:.0f}s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "groups": groups.to_dict(), "pairs": pairs,
                                              "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
