"""GPU training throughput: labelwise's Trainer vs a bare timm + PyTorch loop doing the same work.

Models (random weights, 80 labels): ResNet-50 at 448 px and ViT-B/16 at 224 px. Two phases per model:

* **synthetic**: batches already on the device; labelwise = ``Trainer._train_step`` (its real optimisation
  step: forward, masked BCE with its denominators, Fabric backward, AdamW step) after a ``Trainer.fit`` of one
  step has set everything up (precision, channels_last, compile); bare = ``timm.create_model`` + autocast +
  ``BCEWithLogitsLoss`` + backward + AdamW step.
* **loader**: the real input pipeline on a COCO-format JPEG fixture (``benchmarks/input_pipeline.py``):
  labelwise = ``Trainer.fit`` on the ``coco2014`` dataset with the recipe's train transform and
  ``num_workers: auto``, pinned memory, persistent workers; bare = ``torchvision.io.decode_jpeg`` + the same v2
  transforms in a plain DataLoader with the same worker count and pinned memory + the bare loop.

Both sides use the same precision (bf16 autocast on GPU, fp32 on CPU), channels_last (GPU) and compile setting.
Every timing brackets ``torch.cuda.synchronize()``; warm-up steps are excluded. A top-level time budget
(``--budget-s``, default 270 s) skips what no longer fits (reported as skipped). Prints a table and writes
``docs/results/gpu_throughput.json``.

    python benchmarks/gpu_throughput.py                         # on one GPU: the full measurement (< 5 min on an H200)
    python benchmarks/gpu_throughput.py --compile               # also with torch.compile on both sides
    python benchmarks/gpu_throughput.py --tiny --device cpu     # seconds, CPU: tiny models (the test)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from input_pipeline import NUM_CATEGORIES, bare_loader, write_coco_fixture  # noqa: E402

#: (label, timm name, image size, batch size) of the full run, and of --tiny
FULL = [("resnet50@448", "resnet50", 448, 64), ("vit_b16@224", "vit_base_patch16_224", 224, 128)]
TINY = [("test_resnet@64", "test_resnet", 64, 8), ("test_vit@64", "test_vit", 64, 8)]


class _Clock:
    """Wall time with the device synchronised at both ends."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def now(self) -> float:
        self.sync()
        return time.perf_counter()


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.t0, self.seconds = time.perf_counter(), seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.t0)


def _trainer_config(args: argparse.Namespace, device: torch.device, batch_size: int, **extra: Any) -> dict[str, Any]:
    return {"accelerator": "cuda" if device.type == "cuda" else "cpu", "devices": 1, "batch_size": batch_size,
            "optimizer": "adamw", "lr": 1e-4, "weight_decay": 0.0, "precision": args.precision,
            "channels_last": args.channels_last, "compile": args.compile, "progress": False, "tensorboard": False,
            "report": False, "save_checkpoints": False, "seed": 0, **extra}


def _labelwise_model(name: str, size: int) -> torch.nn.Module:
    from labelwise.models import create_model

    kw = {"img_size": size} if "vit" in name else {}
    return create_model("ofml", num_classes=NUM_CATEGORIES, backbone=name, pretrained=False, backbone_kwargs=kw)


def _synthetic_batch(batch_size: int, size: int, device: torch.device, channels_last: bool) -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn((batch_size, 3, size, size), generator=g).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = (torch.rand((batch_size, NUM_CATEGORIES), generator=g) < 0.05).float().to(device)
    return {"input": x, "target": y, "mask": torch.ones_like(y, dtype=torch.bool),
            "index": torch.arange(batch_size, device=device), "skipped": 0}


def labelwise_synthetic(args, device, name, size, batch_size, steps, warmup) -> float:
    """Images/s of the Trainer's optimisation step on a batch already on the device."""
    from labelwise.data import ArrayDataset
    from labelwise.engine import Trainer
    from labelwise.losses import create_loss

    batch = _synthetic_batch(batch_size, size, device, channels_last=False)
    trainer = Trainer(**_trainer_config(args, device, batch_size, max_steps=1, max_epochs=1))
    model = _labelwise_model(name, size)
    setup = ArrayDataset(batch["input"].cpu(), batch["target"].cpu().numpy().astype(np.uint8),
                         [f"c{k}" for k in range(NUM_CATEGORIES)])
    trainer.fit(model, create_loss("bce"), setup)  # sets up fabric, precision, channels_last, compile; 1 step
    if trainer.channels_last:
        batch["input"] = batch["input"].contiguous(memory_format=torch.channels_last)
    clock = _Clock(device)
    for _ in range(warmup):
        trainer._train_step(batch)
    t0 = clock.now()
    for _ in range(steps):
        trainer._train_step(batch)
    return steps * batch_size / (clock.now() - t0)


def _bare_setup(args, device, name, size):
    import timm

    kw = {"img_size": size} if "vit" in name else {}
    model = timm.create_model(name, pretrained=False, num_classes=NUM_CATEGORIES, **kw).to(device)
    channels_last = device.type == "cuda" if args.channels_last == "auto" else bool(args.channels_last)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    fwd = torch.compile(model) if args.compile else model
    crit = torch.nn.BCEWithLogitsLoss()
    bf16 = args.precision == "bf16-mixed" or (args.precision == "auto" and device.type == "cuda")

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = fwd(x)
        loss = crit(logits.float(), y)
        loss.backward()
        opt.step()

    model.train()
    return step, channels_last


def bare_synthetic(args, device, name, size, batch_size, steps, warmup) -> float:
    step, channels_last = _bare_setup(args, device, name, size)
    batch = _synthetic_batch(batch_size, size, device, channels_last)
    clock = _Clock(device)
    for _ in range(warmup + 1):
        step(batch["input"], batch["target"])
    t0 = clock.now()
    for _ in range(steps):
        step(batch["input"], batch["target"])
    return steps * batch_size / (clock.now() - t0)


class _StepTimer:
    """Callback: time from the end of warm-up step ``warmup`` to the end of the last step (device synchronised)."""

    def __init__(self, device: torch.device, warmup: int) -> None:
        from labelwise.engine.callbacks import Callback

        self.clock, self.warmup = _Clock(device), warmup
        self.t0 = self.t1 = None
        self.n = 0
        timer = self

        class _CB(Callback):
            def on_after_batch(self, trainer, batch, outputs, per_sample_loss):
                if trainer.global_step == timer.warmup:
                    timer.t0 = timer.clock.now()
                elif trainer.global_step > timer.warmup:
                    timer.n += int(batch["target"].shape[0])
                    timer.t1 = timer.clock.now()

        self.callback = _CB()

    def images_per_s(self) -> float:
        return self.n / (self.t1 - self.t0) if self.t0 is not None and self.t1 is not None else float("nan")


def labelwise_loader(args, device, name, size, batch_size, steps, warmup, fixture) -> tuple[float, int]:
    """Images/s of ``Trainer.fit`` on the COCO fixture (real dataset, transform and loader)."""
    from labelwise.config import load_config
    from labelwise.data import load_dataset
    from labelwise.engine import Trainer
    from labelwise.losses import create_loss
    from labelwise.run import build_transform

    cfg = load_config("dlfl/coco_r101_448", [f"data.root={fixture}", f"data.image_size={size}"], check=False)
    ds = load_dataset("coco2014", root=str(fixture), split="train")
    ds.transform = build_transform(cfg.data, train=True)
    timer = _StepTimer(device, warmup)
    trainer = Trainer(**_trainer_config(args, device, batch_size, max_steps=warmup + steps, max_epochs=1000,
                                        drop_last=True, num_workers=args.num_workers),
                      callbacks=[timer.callback])
    trainer.fit(_labelwise_model(name, size), create_loss("bce"), ds)
    return timer.images_per_s(), trainer.num_workers_for(ds)


def bare_loader_run(args, device, name, size, batch_size, steps, warmup, fixture, workers) -> float:
    step, channels_last = _bare_setup(args, device, name, size)
    loader = bare_loader(Path(fixture), workers=workers, batch_size=batch_size, image_size=size,
                         pin_memory=device.type == "cuda")
    clock = _Clock(device)
    done, n, t0 = 0, 0, None
    while done < warmup + steps:
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            step(x, y)
            done += 1
            if done == warmup:
                t0 = clock.now()
            elif done > warmup:
                n += x.shape[0]
            if done >= warmup + steps:
                break
    return n / (clock.now() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    p.add_argument("--tiny", action="store_true", help="tiny models, batch 8, few steps (CPU test; seconds)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per measurement (default 30; --tiny 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps (default 10; --tiny 1)")
    p.add_argument("--precision", default="auto", choices=("auto", "32-true", "bf16-mixed"),
                   help="both sides (auto: bf16-mixed on GPU, fp32 on CPU)")
    p.add_argument("--channels-last", default="auto", choices=("auto", "true", "false"),
                   help="both sides (auto: on GPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile both sides (adds about a minute a model)")
    p.add_argument("--num-workers", default="auto", help="loader workers of both sides (default: auto = usable cores)")
    p.add_argument("--phases", default="synthetic,loader", help="synthetic, loader or both")
    p.add_argument("--images", type=int, default=None, help="fixture JPEGs (default 2048; --tiny 48)")
    p.add_argument("--fixture", default=None, help="fixture directory (default $TMPDIR/labelwise-coco-fixture-N)")
    p.add_argument("--budget-s", type=float, default=270.0, help="stop starting measurements after this (default 270)")
    p.add_argument("--output", default=None, help="results JSON (default docs/results/gpu_throughput.json; "
                                                  "--tiny: not written unless given)")
    args = p.parse_args(argv)
    budget = _Budget(args.budget_s)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    args.channels_last = {"auto": "auto", "true": True, "false": False}[args.channels_last]
    if args.num_workers != "auto":
        args.num_workers = int(args.num_workers)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    models = TINY if args.tiny else FULL
    steps = args.steps or (3 if args.tiny else 30)
    warmup = args.warmup or (1 if args.tiny else 10)
    phases = [s.strip() for s in args.phases.split(",") if s.strip()]
    n_images = args.images or (48 if args.tiny else 2048)
    fixture = Path(args.fixture or Path(os.environ.get("TMPDIR", "/tmp")) / f"labelwise-coco-fixture-{n_images}")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    print(f"# device {device} ({gpu}); precision {args.precision}, channels_last {args.channels_last}, compile "
          f"{args.compile}; {steps} timed steps after {warmup} warm-up; budget {args.budget_s:.0f} s", flush=True)
    if "loader" in phases:
        t = time.perf_counter()
        write_coco_fixture(fixture, n_images, workers=os.cpu_count() or 1)
        print(f"# fixture: {n_images} JPEGs 640x480 in {fixture} ({time.perf_counter() - t:.0f} s)", flush=True)

    rows, skipped = [], []
    for label, name, size, batch_size in models:
        for phase in phases:
            if budget.left() < (20 if args.tiny else 45):
                skipped.append(f"{label} {phase}")
                print(f"  {label} {phase}: skipped (time budget)", flush=True)
                continue
            t = time.perf_counter()
            workers = None
            if phase == "synthetic":
                lw = labelwise_synthetic(args, device, name, size, batch_size, steps, warmup)
                bare = bare_synthetic(args, device, name, size, batch_size, steps, warmup)
            else:
                lw, workers = labelwise_loader(args, device, name, size, batch_size, steps, warmup, fixture)
                bare = bare_loader_run(args, device, name, size, batch_size, steps, warmup, fixture, workers)
            ratio = lw / bare
            extra = f", {workers} workers" if workers is not None else ""
            print(f"  {label} {phase}: labelwise {lw:.1f}, bare {bare:.1f} images/s, ratio {ratio:.3f} "
                  f"({time.perf_counter() - t:.0f} s{extra})", flush=True)
            for method, value in (("labelwise", lw), ("bare", bare)):
                row = {"dataset": "synthetic" if phase == "synthetic" else f"coco-fixture-{n_images}x640x480",
                       "method": method, "seed": 0, "model": label, "phase": phase, "batch_size": batch_size,
                       "images_per_s": round(value, 2), "ratio_to_bare": round(value / bare, 4)}
                if workers is not None:
                    row["workers"] = workers
                rows.append(row)
            if device.type == "cuda":
                torch.cuda.empty_cache()

    print(f"\ntraining images/s on {gpu} (precision {args.precision}, channels_last {args.channels_last}, "
          f"compile {args.compile})")
    print("| model | input | batch | labelwise | bare timm + PyTorch | labelwise / bare |")
    print("|---|---|---|---|---|---|")
    for lw_row in [r for r in rows if r["method"] == "labelwise"]:
        bare_row = next(r for r in rows if r["method"] == "bare" and r["model"] == lw_row["model"]
                        and r["phase"] == lw_row["phase"])
        source = "on-device batches" if lw_row["phase"] == "synthetic" else f"JPEG loader, {lw_row['workers']} workers"
        print(f"| {lw_row['model']} | {source} | {lw_row['batch_size']} | {lw_row['images_per_s']:.1f} | "
              f"{bare_row['images_per_s']:.1f} | {lw_row['ratio_to_bare']:.3f} |")
    if skipped:
        print(f"skipped (time budget): {', '.join(skipped)}")
    print(f"total {budget.seconds - budget.left():.0f} s")

    out = args.output or (None if args.tiny else str(ROOT / "docs" / "results" / "gpu_throughput.json"))
    if out:
        given = argv if argv is not None else sys.argv[1:]
        result = {"benchmark": "gpu_throughput",
                  "command": " ".join(["python benchmarks/gpu_throughput.py", *given]),
                  "commit": _commit(), "regime": "scratch",
                  "machine": f"{gpu}, {len(os.sched_getaffinity(0))} usable CPU cores, torch {torch.__version__}",
                  "settings": {"precision": args.precision, "channels_last": args.channels_last,
                               "compile": args.compile, "steps": steps, "warmup": warmup, "images": n_images},
                  "skipped": skipped, "rows": rows}
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"raw numbers: {out}")
    return 0


def _commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
