"""The pretrained-start regime at GPU scale: 224 px, a ResNet-50, more data; under 8 minutes on one H200.

Three timed phases, all through labelwise (same recipe shape as ``pretrain/md_resnet10t`` and the
benchmarks' pretrained regime, scaled up):

1. **data**: the MultiDigits-40 pretraining corpus (``--pretrain-shards`` shards of ``--shard-size`` images,
   each its own seed, generated in parallel processes) and MultiDigits-20 train/val/test, at 224x224 with
   digits covering 10-25% of the side (22-56 px);
2. **pretrain**: ResNet-50 (output stride 16: a 14x14 map) + OFML head on MultiDigits-40 (a label space
   disjoint from MultiDigits-20: other colours), ASL, AdamW one-cycle, bf16 on CUDA; then a linear probe of the
   frozen pooled features on MultiDigits-20 (the card's quality measure);
3. **fine-tune**: OFML on MultiDigits-20 from the pretrained backbone, to a validation plateau (early stopping
   on val mAP, best epoch restored); test mAP / CF1 / OF1. The same from random initialisation when
   ``--scratch-baseline`` is given and time remains.

``--time-budget`` (default 450 s) caps the whole run: each training phase gets an epoch count that its
measured first epoch says fits in what is left (at least one epoch), and the summary says what was cut.
Writes ``<out>/gpu_check.json`` (numbers, phase times, device) and prints a summary.

Usage::

    python benchmarks/pretrained_gpu_check.py --device cuda --workers 12        # on the GPU machine
    python benchmarks/pretrained_gpu_check.py --tiny                            # CPU smoke test (seconds)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import regime  # noqa: E402  (benchmarks/regime.py)


def _shard(args: tuple[str, str, dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from labelwise.data import load_dataset

    name, split, options = args
    ds = load_dataset(name, split=split, **options)
    return ds.inputs.numpy(), np.asarray(ds.targets), list(ds.class_names)


def load_many(jobs: list[tuple[str, str, dict[str, Any]]], workers: int) -> list[Any]:
    """Generate (or read from the cache) several MultiDigits splits in parallel processes."""
    if workers <= 1 or len(jobs) == 1:
        return [_shard(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(_shard, jobs))


def dataset(parts: list[tuple[np.ndarray, np.ndarray, list[str]]], transform: Any) -> Any:
    from labelwise.data.base import ArrayDataset

    x = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    y = np.concatenate([p[1] for p in parts])
    return ArrayDataset(x, y, parts[0][2], transform=transform)


def trainer_config(p: dict[str, Any], *, epochs: int, lr: float, seed: int, plateau: bool) -> Any:
    from labelwise.engine.config import TrainerConfig

    opts: dict[str, Any] = {
        "max_epochs": epochs, "batch_size": p["batch_size"], "optimizer": "adamw", "lr": lr,
        "weight_decay": 1e-4, "seed": seed, "num_workers": p["workers"], "progress": False, "tensorboard": False,
        "report": False, "save_checkpoints": False,
        "accelerator": "cuda" if p["device"].startswith("cuda") else "cpu",
    }
    if opts["accelerator"] == "cuda":
        opts.update(precision="bf16-mixed", pin_memory=True)
    if plateau:
        opts.update(schedule="plateau", plateau_patience=max(1, p["patience"] // 2), plateau_factor=0.2,
                    early_stopping_patience=p["patience"], eval_every=1)
    else:
        opts.update(schedule="onecycle", pct_start=0.2, eval_every=max(1, epochs))
    return TrainerConfig(**opts)


def epochs_that_fit(first_epoch_s: float, left_s: float, wanted: int) -> int:
    """How many epochs (>= 1, <= wanted) fit in ``left_s`` given a measured epoch time.

    Examples
    --------
    >>> epochs_that_fit(10.0, 95.0, 30), epochs_that_fit(10.0, 5.0, 30), epochs_that_fit(1.0, 100.0, 8)
    (9, 1, 8)
    """
    return max(1, min(wanted, int(left_s // max(first_epoch_s, 1e-6))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test: 32 px, a few dozen images, 1 epoch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (and generation processes)")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--pretrain-shards", type=int, default=8)
    parser.add_argument("--shard-size", type=int, default=2500, help="pretraining images per shard")
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--n-train", type=int, default=8000, help="MultiDigits-20 fine-tuning images")
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--max-epochs", type=int, default=20, help="fine-tuning: at most this many epochs")
    parser.add_argument("--patience", type=int, default=3, help="fine-tuning: early-stopping patience (epochs)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--time-budget", type=float, default=450.0, help="seconds for the whole run")
    parser.add_argument("--scratch-baseline", action="store_true", help="also fine-tune from random weights")
    parser.add_argument("--out", default=str(ROOT / "runs" / "gpu_check"))
    args = parser.parse_args(argv)
    p = {k: v for k, v in vars(args).items()}
    if args.tiny:
        p.update(image_size=32, pretrain_shards=2, shard_size=32, pretrain_epochs=1, n_train=48, n_val=16,
                 n_test=32, max_epochs=1, patience=1, batch_size=16, time_budget=300.0)
    t_start = time.perf_counter()
    left = lambda: p["time_budget"] - (time.perf_counter() - t_start)  # noqa: E731
    out = Path(p["out"])
    out.mkdir(parents=True, exist_ok=True)
    print(f"GPU check: {p}", flush=True)
    report: dict[str, Any] = {"profile": p, "machine": regime.machine(p["device"]), "commit": regime.git_commit(),
                              "phases": {}, "cut": []}

    from labelwise.data.transforms import build_transforms
    from labelwise.losses import create_loss
    from labelwise.metrics import multilabel_report
    from labelwise.models import Backbone, create_model
    from labelwise.pretrain import extract_features, linear_probe

    size = p["image_size"]
    geo = {"image_size": size, "min_scale": 0.1, "max_scale": 0.25} if size >= 64 else {"image_size": size}
    train_tf = build_transforms(train=True, image_size=size, preset="digits", normalize="imagenet")
    eval_tf = build_transforms(train=False, image_size=size, preset="default", normalize="imagenet")

    # 1. data
    t0 = time.perf_counter()
    jobs = [("multidigits40", "train", {**geo, "n_train": p["shard_size"], "n_val": 0, "n_test": 0, "seed": 100 + k})
            for k in range(p["pretrain_shards"])]
    jobs += [("multidigits40", "val", {**geo, "n_train": 0, "n_val": max(16, p["n_val"] // 2), "n_test": 0,
                                       "seed": 100})]
    md20 = {**geo, "n_train": p["n_train"], "n_val": p["n_val"], "n_test": p["n_test"], "seed": 0}
    jobs += [("multidigits20", s, md20) for s in ("train", "val", "test")]
    parts = load_many(jobs, max(1, p["workers"]))
    pre_train = dataset(parts[: p["pretrain_shards"]], train_tf)
    pre_val = dataset([parts[p["pretrain_shards"]]], eval_tf)
    tr20, va20, te20 = (dataset([parts[-3]], train_tf), dataset([parts[-2]], eval_tf), dataset([parts[-1]], eval_tf))
    report["phases"]["data_s"] = round(time.perf_counter() - t0, 1)
    print(f"data: {len(pre_train)} pretraining + {len(tr20)}/{len(va20)}/{len(te20)} MultiDigits-20 images "
          f"in {report['phases']['data_s']:.0f}s", flush=True)

    from labelwise.engine import Trainer

    bkw = {"output_stride": 16}
    asl = create_loss("asl", gamma_neg=2, gamma_pos=0, clip=0)

    # 2. pretrain (epochs fitted to the budget after a one-epoch measurement)
    t0 = time.perf_counter()
    model = create_model("ofml", num_classes=40, backbone=p["backbone"], backbone_kwargs=bkw)
    if p["device"].startswith("cuda"):
        model = model.to(memory_format=torch.channels_last)
    share = 0.45 * left()
    first = Trainer(trainer_config(p, epochs=1, lr=2e-3, seed=0, plateau=False))
    first.fit(model, asl, pre_train, pre_val)
    epoch_s = time.perf_counter() - t0
    more = epochs_that_fit(epoch_s, share - epoch_s, p["pretrain_epochs"] - 1) if p["pretrain_epochs"] > 1 else 0
    if more < p["pretrain_epochs"] - 1:
        report["cut"].append(f"pretraining: {1 + more} of {p['pretrain_epochs']} epochs fit the budget")
    if more > 0:
        rest = Trainer(trainer_config(p, epochs=more, lr=1e-3, seed=1, plateau=False))
        rest.fit(model, asl, pre_train, pre_val)
        pre_metrics = rest.evaluate(model, pre_val)
    else:
        pre_metrics = first.evaluate(model, pre_val)
    weights = out / f"md-{p['backbone']}.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous().cpu() for k, v in model.backbone.model.state_dict().items()}, str(weights))
    report["phases"]["pretrain_s"] = round(time.perf_counter() - t0, 1)
    report["pretrain"] = {"epochs": 1 + more, "val_mAP": 100 * float(pre_metrics["mAP"]), "images": len(pre_train)}
    print(f"pretrain: {1 + more} epoch(s), MultiDigits-40 val mAP {report['pretrain']['val_mAP']:.2f} "
          f"({report['phases']['pretrain_s']:.0f}s)", flush=True)

    # linear probe of the frozen pooled features on MultiDigits-20
    t0 = time.perf_counter()
    body = Backbone(p["backbone"], weights=weights, **bkw)
    probe_train = dataset([parts[-3]], eval_tf)
    probe = linear_probe(extract_features(body, probe_train, device=p["device"]),
                         extract_features(body, te20, device=p["device"]))
    report["linear_probe"] = probe
    report["phases"]["probe_s"] = round(time.perf_counter() - t0, 1)
    print(f"linear probe on MultiDigits-20: mAP {probe['mAP']:.2f} ({report['phases']['probe_s']:.0f}s)", flush=True)

    # 3. fine-tune to a plateau (and optionally from scratch)
    def finetune(init: Path | None, key: str, budget: float) -> None:
        t1 = time.perf_counter()
        net = create_model("ofml_cosine", num_classes=20, backbone=p["backbone"], backbone_kwargs=bkw,
                           **({"weights": str(init)} if init else {}))
        one = Trainer(trainer_config(p, epochs=1, lr=1e-3, seed=0, plateau=False))
        one.fit(net, create_loss("bce"), tr20, va20)
        per_epoch = time.perf_counter() - t1
        epochs = epochs_that_fit(per_epoch, budget - per_epoch, p["max_epochs"])
        if epochs < p["max_epochs"]:
            report["cut"].append(f"{key}: at most {epochs} of {p['max_epochs']} epochs fit the budget")
        tr = regime.fit_to_plateau(trainer_config(p, epochs=epochs, lr=1e-3, seed=0, plateau=True), net,
                                   create_loss("bce"), tr20, va20)
        scores, targets = tr.predict(net, te20)
        rep = multilabel_report(scores, targets, 0.5)
        report[key] = {"mAP": 100 * float(rep["mAP"]), "CF1": 100 * float(rep["CF1"]), "OF1": 100 * float(rep["OF1"]),
                       "best_epoch": tr.best_epoch, "epochs_run": len(tr.history), "max_epochs": epochs}
        report["phases"][f"{key}_s"] = round(time.perf_counter() - t1, 1)
        print(f"{key}: test mAP {report[key]['mAP']:.2f}, CF1 {report[key]['CF1']:.2f}, OF1 {report[key]['OF1']:.2f} "
              f"(best epoch {tr.best_epoch}; {report['phases'][f'{key}_s']:.0f}s)", flush=True)

    finetune(weights, "finetune_pretrained", 0.75 * left() if args.scratch_baseline else left())
    if args.scratch_baseline:
        if left() > 30:
            finetune(None, "finetune_scratch", left())
        else:
            report["cut"].append("finetune_scratch: no time left")
    report["total_s"] = round(time.perf_counter() - t_start, 1)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"total {report['total_s']:.0f}s (budget {p['time_budget']:.0f}s); cut: {report['cut'] or 'nothing'}; "
          f"{out / 'gpu_check.json'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
