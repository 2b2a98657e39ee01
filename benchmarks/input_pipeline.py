"""Input pipeline speed: labelwise's training loader vs a bare torchvision pipeline on the same COCO-format JPEGs.

Writes a COCO-format fixture (``train2014/*.jpg`` of real size, default 2,000 images of 640x480, and
``annotations/instances_train2014.json`` with 80 categories), then measures the training images/s of

* **labelwise**: the real training loader: ``coco2014`` dataset factory, the train transform of the DLFL COCO
  recipe (``dlfl/coco_r101_448``: random resized crop + flip at 448 px, ImageNet normalisation), the trainer's
  own DataLoader (``Trainer._loader``: batch sampler, per-batch seeds, ``collate_batch``), and
* **bare**: ``torchvision.io.decode_jpeg`` + the same v2 transforms + the default collate in a plain DataLoader,

at each worker count (default 0, 1, 2): ``--repeats`` passes (default 5) of ``--batches`` timed batches (default
20 = 640 images) after a first batch (worker start, excluded), the two pipelines alternating; the table gives
the median images/s and the median ratio of adjacent (paired) passes, which saw about the same machine load. Prints a table and writes raw numbers to
``docs/results/input_pipeline.json`` (RESULTS_SCHEMA: regime "scratch").

    python benchmarks/input_pipeline.py            # full: 2,000 images, workers 0,1,2 (a few minutes on 2 cores)
    python benchmarks/input_pipeline.py --quick    # 96 images, workers 0,1 (seconds)

:func:`write_coco_fixture` is also used by ``benchmarks/gpu_throughput.py`` (the real loader on the GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

# torchvision 0.29 deprecates its JPEG codec in favour of torchcodec; the bare pipeline uses it on purpose
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities", category=DeprecationWarning)

ROOT = Path(__file__).resolve().parents[1]
NUM_CATEGORIES = 80


def _write_images(img_dir: str, start: int, stop: int, size: tuple[int, int], seed: int, quality: int) -> None:
    from torchvision.io import encode_jpeg

    torch.set_num_threads(1)
    h, w = size
    for i in range(start, stop):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
        low = torch.rand((1, 3, max(2, h // 32), max(2, w // 32)), generator=gen) * 255
        field = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)[0]
        field = field + torch.randn((3, h, w), generator=gen) * 12
        img = field.clamp(0, 255).to(torch.uint8)
        Path(img_dir, f"COCO_train2014_{i:012d}.jpg").write_bytes(encode_jpeg(img, quality=quality).numpy().tobytes())


def write_coco_fixture(root: str | os.PathLike, n_images: int = 2000, size: tuple[int, int] = (480, 640),
                       *, seed: int = 0, quality: int = 90, workers: int = 1) -> Path:
    """Write (once) a COCO 2014-layout fixture of ``n_images`` JPEGs of ``size`` (height, width) under ``root``.

    The images are smooth random colour fields with noise (about 120 KB each at 640x480, like photographs,
    not like flat colour); each has 1-4 of 80 categories. ``workers`` processes write the images (the files do
    not depend on it). An existing complete fixture with the same parameters is reused.
    """
    root = Path(root)
    stamp = root / "fixture.json"
    params = {"n_images": n_images, "size": list(size), "seed": seed, "quality": quality}
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return root
    img_dir, ann_dir = root / "train2014", root / "annotations"
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    chunks = [(k * n_images // max(1, workers), (k + 1) * n_images // max(1, workers)) for k in range(max(1, workers))]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_images, *zip(*[(str(img_dir), a, b, size, seed, quality) for a, b in chunks])))
    else:
        _write_images(str(img_dir), 0, n_images, size, seed, quality)
    rng = np.random.default_rng(seed)
    h, w = size
    images, anns = [], []
    for i in range(n_images):
        images.append({"id": i + 1, "file_name": f"COCO_train2014_{i:012d}.jpg", "height": h, "width": w})
        for c in rng.choice(NUM_CATEGORIES, size=int(rng.integers(1, 5)), replace=False):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 1, "iscrowd": 0,
                         "bbox": [0, 0, 10, 10], "area": 100.0})
    cats = [{"id": k + 1, "name": f"category_{k + 1:02d}", "supercategory": "thing"} for k in range(NUM_CATEGORIES)]
    (ann_dir / "instances_train2014.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                                  "categories": cats}))
    stamp.write_text(json.dumps(params))
    return root


def labelwise_train_loader(root: Path, *, workers: int, batch_size: int, image_size: int,
                           device: str = "cpu", seed: int = 0) -> Any:
    """The trainer's training DataLoader of the COCO fixture with the DLFL COCO recipe's train transform."""
    from labelwise.config import load_config
    from labelwise.data import load_dataset
    from labelwise.engine import Trainer
    from labelwise.engine.samplers import RandomBatchSampler, ShardedBatchSampler
    from labelwise.run import build_transform

    cfg = load_config("dlfl/coco_r101_448", [f"data.root={root}", f"data.image_size={image_size}"], check=False)
    ds = load_dataset("coco2014", root=str(root), split="train")
    ds.transform = build_transform(cfg.data, train=True)
    trainer = Trainer(cfg.trainer.model_copy(update={
        "num_workers": workers, "batch_size": batch_size, "accelerator": "cuda" if device.startswith("cuda") else "cpu",
        "progress": False, "tensorboard": False}))
    trainer._loaders = {}  # as inside fit: persistent workers
    sampler = RandomBatchSampler(len(ds), batch_size, drop_last=True, seed=seed)
    shard = ShardedBatchSampler(sampler, rank=0, world_size=1)
    return trainer._loader(ds, shard, seed_parts=[seed, 0, 0], cache="train"), trainer


class _BareDataset(torch.utils.data.Dataset):
    """torchvision.io.decode_jpeg + v2 transforms over the fixture's files (what a hand-written pipeline does)."""

    def __init__(self, paths: list[str], targets: np.ndarray, transform: Any) -> None:
        self.paths, self.targets, self.transform = paths, targets, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.io import ImageReadMode, decode_jpeg, read_file

        img = decode_jpeg(read_file(self.paths[i]), mode=ImageReadMode.RGB)
        return self.transform(img), torch.from_numpy(self.targets[i].astype(np.float32))


def bare_loader(root: Path, *, workers: int, batch_size: int, image_size: int, pin_memory: bool = False,
                seed: int = 0) -> torch.utils.data.DataLoader:
    """A plain DataLoader: decode_jpeg + RandomResizedCrop + flip + float + normalise, default collate."""
    from torchvision.transforms import v2

    data = json.loads((root / "annotations" / "instances_train2014.json").read_text())
    index = {im["id"]: k for k, im in enumerate(data["images"])}
    targets = np.zeros((len(index), NUM_CATEGORIES), dtype=np.uint8)
    for a in data["annotations"]:
        targets[index[a["image_id"]], a["category_id"] - 1] = 1
    paths = [str(root / "train2014" / im["file_name"]) for im in data["images"]]
    tf = v2.Compose([v2.RandomResizedCrop((image_size, image_size), scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3),
                                          antialias=True),
                     v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
                     v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    return torch.utils.data.DataLoader(_BareDataset(paths, targets, tf), batch_size=batch_size, shuffle=True,
                                       drop_last=True, num_workers=workers, pin_memory=pin_memory,
                                       persistent_workers=workers > 0,
                                       generator=torch.Generator().manual_seed(seed))


def images_per_second(loader: Any, *, input_of: Any, max_batches: int | None = None) -> tuple[float, int]:
    """Images/s of one pass over ``loader`` from the second batch on (the first one, with worker start, excluded)."""
    it = iter(loader)
    first = next(it)
    n, t0 = 0, time.perf_counter()
    del first
    for k, batch in enumerate(it):
        n += int(input_of(batch).shape[0])
        if max_batches is not None and k + 1 >= max_batches:
            break
    return n / (time.perf_counter() - t0), n


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="96 images, workers 0,1, one pass (seconds)")
    p.add_argument("--images", type=int, default=None, help="fixture images (default 2000; --quick 96)")
    p.add_argument("--fixture", default=None, help="fixture directory (default: $TMPDIR/labelwise-coco-fixture-N)")
    p.add_argument("--image-size", type=int, default=448)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", default=None, help="comma-separated worker counts (default 0,1,2; --quick 0,1)")
    p.add_argument("--repeats", type=int, default=None,
                   help="passes per setting, the pipelines alternating (default 5; --quick 1)")
    p.add_argument("--batches", type=int, default=None,
                   help="timed batches per pass (default 20; --quick and 0: the whole epoch)")
    p.add_argument("--output", default=None, help="results JSON (default docs/results/input_pipeline.json; "
                                                  "--quick: not written unless given)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # the loaders' main process: one thread, as in a training process that waits on data
    n_images = args.images or (96 if args.quick else 2000)
    workers = [int(w) for w in (args.workers or ("0,1" if args.quick else "0,1,2")).split(",")]
    repeats = args.repeats or (1 if args.quick else 5)
    batches = None if args.batches == 0 else (args.batches or (None if args.quick else 20))
    fixture = Path(args.fixture or Path(os.environ.get("TMPDIR", "/tmp")) / f"labelwise-coco-fixture-{n_images}")
    t0 = time.perf_counter()
    write_coco_fixture(fixture, n_images, workers=len(os.sched_getaffinity(0)))
    print(f"# fixture: {n_images} JPEGs 640x480 in {fixture} ({time.perf_counter() - t0:.0f} s); "
          f"{len(os.sched_getaffinity(0))} usable cores", flush=True)

    rows, table = [], []
    for w in workers:
        runs: dict[str, list[float]] = {"labelwise": [], "bare": []}
        for r in range(repeats):
            order = ("labelwise", "bare") if r % 2 == 0 else ("bare", "labelwise")
            for method in order:
                if method == "labelwise":
                    loader, trainer = labelwise_train_loader(fixture, workers=w, batch_size=args.batch_size,
                                                             image_size=args.image_size, seed=r)
                    ips, n = images_per_second(loader, input_of=lambda b: b["input"], max_batches=batches)
                    trainer._close_loaders()
                else:
                    loader = bare_loader(fixture, workers=w, batch_size=args.batch_size, image_size=args.image_size,
                                         seed=r)
                    ips, n = images_per_second(loader, input_of=lambda b: b[0], max_batches=batches)
                del loader
                runs[method].append(ips)
                print(f"  workers {w} {method:<9} pass {r}: {ips:7.1f} images/s ({n} images)", flush=True)
        # adjacent passes of the two pipelines saw about the same machine load: their ratios are paired
        ratio = float(np.median([a / b for a, b in zip(runs["labelwise"], runs["bare"])]))
        med = {m: float(np.median(v)) for m, v in runs.items()}
        table.append((w, med["labelwise"], med["bare"], ratio))
        for method in ("labelwise", "bare"):
            rows.append({"dataset": f"coco-fixture-{n_images}x640x480", "method": method, "seed": 0, "workers": w,
                         "images_per_s": round(med[method], 2),
                         "ratio_to_bare": round(ratio, 4) if method == "labelwise" else 1.0,
                         "passes_images_per_s": [round(v, 2) for v in runs[method]]})

    print(f"\ntraining loader images/s at {args.image_size} px, batch {args.batch_size}, {n_images} JPEGs 640x480 "
          f"(median of {repeats} passes of {'an epoch' if batches is None else f'{batches} batches'}; ratio: median "
          "of the paired passes)")
    print("| workers | labelwise | bare torchvision | labelwise / bare |")
    print("|---|---|---|---|")
    for w, lw, bare, ratio in table:
        print(f"| {w} | {lw:.1f} | {bare:.1f} | {ratio:.2f} |")

    out = args.output or (None if args.quick else str(ROOT / "docs" / "results" / "input_pipeline.json"))
    if out:
        cmd = "python benchmarks/input_pipeline.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])
                                                       if (argv if argv is not None else sys.argv[1:]) else "")
        result = {
            "benchmark": "input_pipeline",
            "command": cmd.strip(),
            "commit": _commit(),
            "regime": "scratch",
            "machine": (f"{len(os.sched_getaffinity(0))} usable CPU cores ({platform.machine()}), Python "
                        f"{platform.python_version()}, torch {torch.__version__}, torchvision "
                        f"{__import__('torchvision').__version__}"),
            "settings": {"images": n_images, "image_hw": [480, 640], "image_size": args.image_size,
                         "batch_size": args.batch_size, "repeats": repeats, "timed_batches_per_pass": batches,
                         "transform": "dlfl/coco_r101_448 train"},
            "rows": rows,
        }
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"raw numbers: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
