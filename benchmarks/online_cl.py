"""Online multi-label continual learning on the MultiDigits sequence (DLFL Table 7 shape).

Finetune, EWC, CRS, PRS, PRS + SSCA, GSS, ExStream, OCDM and Multitask (joint upper bound) under the PRS online protocol (one pass,
stream batch 10, a replay batch of 10 from the memory joins every stream batch), on a long-tailed
COCOseq-shaped stream built from ``multidigits80`` (4 tasks with disjoint classes, see
:func:`labelwise.continual.online.multidigits_sequence`). Prints the C-F1 / O-F1 / mAP of the majority,
moderate and minority classes and overall, mean ± std over seeds, after the last task; writes
``results.json`` (every run, per-task rows, memory class counts) and ``table.md`` to ``--output``.

Scale (2 shared cores, 1 torch thread): ``resnet10t`` at 32x32 with output stride 16 (a 2x2 feature map for
SSCA), pretrained first on ``multidigits20`` (10 digits x red/cyan, a different label space; the stand-in for
PRS's ImageNet-pretrained ResNet, cached in ``--output``; ``--scratch`` starts from a random init, where every
method stays near chance); memory 150 for a 2357-image stream (PRS: 2000 of 35 072, 5.7 %). ``--quick`` uses a
123-image stream, timm's ``test_resnet`` and a random init (a pipeline check, same table).

::

    python benchmarks/online_cl.py --quick               # < 1 min, same table shape
    python benchmarks/online_cl.py --output runs/online_cl   # full profile
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

METHODS = [
    ("finetune", "baseline"),
    ("ewc", "baseline"),
    ("crs", "baseline"),
    ("prs", "baseline"),
    ("prs", "ssca"),
    ("gss", "baseline"),
    ("exstream", "baseline"),
    ("ocdm", "baseline"),
    ("multitask", "baseline"),
]


def profile(args: argparse.Namespace) -> dict[str, Any]:
    p: dict[str, Any] = {
        "sequence": {"n_train": 4000, "n_test": 6000, "image_size": 32, "test_per_class": 30},
        "online": {
            "memory_size": 150,
            "stream_batch": 10,
            "replay_batch": 10,
            "q": -0.03,
            "lr": 1e-3,
            "lambda_ewc": 100.0,
            "backbone": "resnet10t",
            "backbone_kwargs": {"output_stride": 16},
            "embed_dim": 64,
            "threads": 1,
        },
        "pretrain": {"n_train": 5000, "epochs": 4, "batch": 64, "lr": 2e-3},
        "seeds": [0, 1, 2],
    }
    if args.quick:
        p["sequence"].update(n_train=240, n_test=800, image_size=24, test_per_class=8)
        p["online"].update(memory_size=20, backbone="test_resnet", backbone_kwargs={"output_stride": 8})
        p["pretrain"] = None  # random init: the quick profile only checks the pipeline and the table
    if args.seeds:
        p["seeds"] = [int(s) for s in args.seeds.split(",")]
    if args.threads:
        p["online"]["threads"] = args.threads
    return p


def pretrain(p: dict[str, Any], path: Path, *, log: Any = print) -> Path:
    """Pretrain the backbone on ``multidigits20`` (10 digits x red/cyan; a different label space) and save it.

    The stand-in for PRS's ImageNet-pretrained ResNet: the online runs start from these weights (the head is
    dropped when loading). Cached at ``path``.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    from labelwise.data import load_dataset
    from labelwise.models import create_model

    if path.is_file():
        log(f"  pretrained backbone: {path} (cached)")
        return path
    pt = p["pretrain"]
    t0 = time.perf_counter()
    torch.manual_seed(0)
    torch.set_num_threads(p["online"].get("threads") or 1)
    ds = load_dataset(
        "multidigits20",
        split="train",
        n_train=pt["n_train"],
        image_size=p["sequence"]["image_size"],
        seed=12345,
    )
    model = create_model(
        "ofml",
        num_classes=ds.num_classes,
        backbone=p["online"]["backbone"],
        backbone_kwargs=p["online"]["backbone_kwargs"],
    )
    opt = torch.optim.Adam(model.parameters(), lr=pt["lr"])
    x_all = (ds.inputs.float() / 255.0 - 0.5) / 0.25
    y_all = torch.from_numpy(np.asarray(ds.targets, dtype=np.float32))
    rng = np.random.default_rng(0)
    steps = pt["epochs"] * int(np.ceil(len(ds) / pt["batch"]))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=pt["lr"], total_steps=steps)
    model.train()
    for _ in range(pt["epochs"]):
        order = torch.from_numpy(rng.permutation(len(ds)))
        for s in range(0, len(ds), pt["batch"]):
            b = order[s : s + pt["batch"]]
            loss = F.binary_cross_entropy_with_logits(model(x_all[b])["logits"], y_all[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    log(
        f"  pretrained backbone on multidigits20 ({len(ds)} images, {pt['epochs']} epochs, final loss "
        f"{float(loss.detach()):.4f}) in {time.perf_counter() - t0:.0f} s -> {path}"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny profile (< 1 min), same table")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default 1)")
    ap.add_argument("--methods", default=None, help="comma-separated '<method>[+ssca]', e.g. prs,crs+ssca")
    ap.add_argument(
        "--baseline-model", default=None, help="baseline head model: ofml (default) or ofml_cosine"
    )
    ap.add_argument("--output", default=None, help="directory for results.json and table.md")
    ap.add_argument(
        "--scratch", action="store_true", help="random-init backbone (no multidigits20 pretraining)"
    )
    args = ap.parse_args(argv)

    from labelwise.continual.online import (
        OnlineConfig,
        format_table,
        multidigits_sequence,
        run_online,
        summarize,
    )
    from labelwise.continual.online.runner import method_label

    p = profile(args)
    methods = METHODS
    if args.methods:
        from labelwise.continual.online.cli import parse_method

        methods = [parse_method(m) for m in args.methods.split(",") if m.strip()]
    if args.baseline_model:
        p["online"]["baseline_model"] = args.baseline_model
    t0 = time.perf_counter()
    seq = multidigits_sequence(**p["sequence"], cache=not args.quick)
    s = seq.summary()
    print(f"sequence: {seq!r}")
    print(
        f"  classes/task {s['classes_per_task']}, groups {s['group_sizes']} (thresholds {seq.info['thresholds']}), "
        f"stream {seq.num_train} images, test {sum(s['test_sizes'])}"
    )
    if p["pretrain"] and not args.scratch:
        out_dir = Path(args.output) if args.output else Path("runs/online_cl")
        tag = f"{p['online']['backbone']}-{p['sequence']['image_size']}-{p['pretrain']['n_train']}-{p['pretrain']['epochs']}"
        p["online"]["weights"] = str(pretrain(p, out_dir / f"pretrain-multidigits20-{tag}.safetensors"))
    cfg = OnlineConfig.from_dict(p["online"])
    print(f"  config: {p['online']}, seeds {p['seeds']}")
    results = []
    for seed in p["seeds"]:
        for method, head in methods:
            r = run_online(seq, method, head=head, config=cfg, seed=seed)
            results.append(r)
            o = r.final["overall"]
            print(
                f"  {method_label(method, head):12s} seed {seed}: mAP {100 * o['mAP']:.1f} CF1 {100 * o['CF1']:.1f} "
                f"OF1 {100 * o['OF1']:.1f} minority mAP {100 * r.final['minority']['mAP']:.1f} ({r.seconds:.0f} s)",
                flush=True,
            )
    wall = time.perf_counter() - t0
    groups = {g: seq.groups[g] for g in ("majority", "moderate", "minority")}
    for r in results:
        if r.memory_counts is not None and r.seed == p["seeds"][0]:
            c = np.asarray(r.memory_counts, dtype=float)
            share = ", ".join(
                f"{g} {100 * c[idx].sum() / max(c.sum(), 1):.0f} %" for g, idx in groups.items()
            )
            print(
                f"  memory label share after the stream ({method_label(r.method, r.head)}, seed {r.seed}): {share}"
            )
    stream = seq.train_counts().astype(float)
    print(
        "  stream label share: "
        + ", ".join(f"{g} {100 * stream[i].sum() / stream.sum():.0f} %" for g, i in groups.items())
    )
    table = format_table(
        summarize(results),
        title=f"MultiDigits online sequence, {len(p['seeds'])} seeds, final (after task {seq.num_tasks}), "
        f"percent, mean ± std",
    )
    print()
    print(table)
    print(f"\nwall time {wall:.0f} s")
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(table + "\n")
        (out / "results.json").write_text(
            json.dumps(
                {
                    "profile": p,
                    "sequence": s,
                    "wall_seconds": round(wall, 1),
                    "runs": [r.to_dict() for r in results],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
