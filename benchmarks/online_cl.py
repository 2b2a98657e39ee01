"""Online multi-label continual learning on the MultiDigits sequence (DLFL Table 7 shape, section 4.3).

Finetune, EWC, CRS, PRS, PRS + SSCA, CRS + SSCA, GSS, ExStream, OCDM and Multitask (the joint upper bound, with
the linear head and with SSCA) under the PRS online protocol (one pass, stream batch 10, a replay batch of 10 from
the memory joins every stream batch), on a long-tailed COCOseq-shaped stream built from ``multidigits80`` (4
tasks with disjoint classes, see :func:`labelwise.continual.online.multidigits_sequence`): C-F1 / O-F1 / mAP of
the majority, moderate and minority classes and overall after the last task, mean ± std over seeds.

Regimes (``--regime``):

* ``pretrained`` (default, issue 16): the shipped ``md-resnet10t`` (pretrained on MultiDigits-40, another label
  space; the stand-in for PRS's ImageNet-pretrained ResNet; docs/pretrained.md) on the stream rendered at
  128x128 with small digits (10-25 % of the side), output stride 16 (an 8x8 map). With ``--backbone-mode
  frozen`` (default; what 2 CPU cores allow) the backbone runs once over the stream and test images and every
  method trains, in one pass, a trainable residual 1x1-convolution stage on the cached map
  (:class:`labelwise.models.map_adapter.MapAdapter`) and its head (linear, or SSCA). **With a frozen backbone
  forgetting happens only in that stage and the heads.** ``finetune`` trains the whole network on the images (a
  GPU budget). Writes docs/results/online_cl.json (raw per-seed rows, RESULTS_SCHEMA names), resumable run by
  run (docs/results/online_cl.cells.jsonl).
* ``scratch``: the earlier profile: ``resnet10t`` at 32x32 (a 2x2 map for SSCA), pretrained first by this
  script on ``multidigits20`` (cached in ``--output``; ``--random-init`` skips it, where every method stays near
  chance); writes ``results.json`` and ``table.md`` to ``--output``.

Memory 150 for a stream of about 2400 images (PRS: 2000 of 35 072, 5.7 %).

::

    python benchmarks/online_cl.py --quick               # < 1 min, same rows
    python benchmarks/online_cl.py                       # the full pretrained run (sizing in --help)
    python benchmarks/online_cl.py --regime scratch --output runs/online_cl
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import regime  # noqa: E402  (benchmarks/regime.py)

METHODS = [
    ("finetune", "baseline"),
    ("ewc", "baseline"),
    ("crs", "baseline"),
    ("prs", "baseline"),
    ("prs", "ssca"),
    ("crs", "ssca"),
    ("gss", "baseline"),
    ("exstream", "baseline"),
    ("ocdm", "baseline"),
    ("multitask", "baseline"),
    ("multitask", "ssca"),  # the joint upper bound of the SSCA head (raw name multitask_ssca, beyond the schema)
]


def scratch_profile(args: argparse.Namespace) -> dict[str, Any]:
    """The scratch regime's sizes (the earlier profile)."""
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
        p["seeds"] = list(args.seeds)
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


def main_scratch(args: argparse.Namespace) -> int:
    """The scratch regime (the earlier profile): results.json and table.md in ``--output``."""
    if args.threads == 2:
        args.threads = None  # the earlier default: 1 torch thread
    from labelwise.continual.online import (
        OnlineConfig,
        format_table,
        multidigits_sequence,
        run_online,
        summarize,
    )
    from labelwise.continual.online.runner import method_label

    p = scratch_profile(args)
    methods = [METHOD_KEYS[m] for m in args.methods] if args.methods else METHODS
    if args.multitask_epochs is not None:
        p["online"]["multitask_epochs"] = args.multitask_epochs
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
    if p["pretrain"] and not args.random_init:
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


def method_key(method: str, head: str) -> str:
    """The raw-results name (RESULTS_SCHEMA.md): ``prs``, ``prs_ssca``, ...

    >>> method_key("prs", "ssca"), method_key("multitask", "baseline")
    ('prs_ssca', 'multitask')
    """
    return method if head == "baseline" else f"{method}_{head}"


#: Raw-results name -> (method, head).
METHOD_KEYS = {method_key(m, h): (m, h) for m, h in METHODS}

#: Pretrained regime (frozen backbone, 2 CPU cores): the stream, the online options and the seeds. Sized so
#: that the full command (the 11 methods x 3 seeds) fits well within 60 minutes (measured: 9.1); see --help.
PRETRAINED = {
    "sequence": {"n_train": 8000, "n_test": 6000, "image_size": 128, "test_per_class": 30,
                 "min_scale": regime.PRETRAINED_DATA["min_scale"], "max_scale": regime.PRETRAINED_DATA["max_scale"]},
    "online": {"memory_size": 270, "stream_batch": 10, "replay_batch": 10, "q": -0.03, "lr": 5e-3,
               "lambda_ewc": 100.0, "multitask_epochs": 5, "backbone": "resnet10t",
               "backbone_kwargs": {"channels": [32, 64, 128, 256], "output_stride": 16}, "weights": "md-resnet10t",
               "embed_dim": 64},
    "seeds": [0, 1, 2],
}


def profile(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes of the pretrained run (``--quick`` shrinks everything but keeps the rows)."""
    import copy

    p: dict[str, Any] = copy.deepcopy(PRETRAINED)
    p["backbone_mode"] = args.backbone_mode
    if args.backbone_mode == "frozen":
        p["trainable"] = "MapAdapter (residual 1x1 conv) + head"
    if args.quick:
        p["sequence"].update(n_train=240, n_test=800, image_size=32, test_per_class=8, min_scale=None,
                             max_scale=None)
        p["online"].update(memory_size=20, multitask_epochs=1, weights=regime.shipped_or_none("md-resnet10t"))
        p["seeds"] = [0]
    else:
        regime.require_shipped(p["online"]["weights"])
    if args.seeds is not None:
        p["seeds"] = list(args.seeds)
    if args.n_train is not None:
        p["sequence"]["n_train"] = int(args.n_train)
    if args.n_test is not None:
        p["sequence"]["n_test"] = int(args.n_test)
    if args.multitask_epochs is not None:
        p["online"]["multitask_epochs"] = int(args.multitask_epochs)
    if args.baseline_model:
        p["online"]["baseline_model"] = args.baseline_model
    if args.lr is not None:
        p["online"]["lr"] = float(args.lr)
    p["online"]["threads"] = max(1, args.threads)
    p["online"]["device"] = args.device
    p["device"], p["workers"] = args.device, args.workers
    return p


def cache_sequence(seq: Any, cfg: Any, device: str = "cpu") -> Any:
    """The sequence with its stream and test images replaced by the frozen backbone's feature maps.

    Only the images the runs use (the stream's and the test tasks') are cached, with the evaluation transform
    the shipped backbone was trained with (resize, ImageNet normalisation); task indices are renumbered into
    the cached arrays, the class groups stay.
    """
    import dataclasses

    from labelwise.continual.online.runner import build_model
    from labelwise.data.transforms import build_transforms
    from labelwise.models.feature_cache import cache_feature_maps, split_backbone

    t0 = time.perf_counter()
    backbone = split_backbone(build_model(seq.num_classes, "baseline", cfg))
    size = int(seq.train.inputs.shape[-1])
    transform = build_transforms(train=False, image_size=size, normalize="imagenet")

    def cached(ds: Any, tasks: list[np.ndarray]) -> tuple[Any, list[np.ndarray]]:
        idx = np.concatenate(tasks)
        maps = cache_feature_maps(backbone, ds.view(idx, transform=transform), device=device)
        bounds = np.cumsum([0] + [len(t) for t in tasks])
        return maps, [np.arange(bounds[i], bounds[i + 1]) for i in range(len(tasks))]

    train, train_tasks = cached(seq.train, seq.train_tasks)
    test, test_tasks = cached(seq.test, seq.test_tasks)
    print(f"  cached feature maps {tuple(train.inputs.shape[1:])} of {len(train)} stream / {len(test)} test images "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    return dataclasses.replace(seq, train=train, test=test, train_tasks=train_tasks, test_tasks=test_tasks)


def head_model(seq: Any, head: str, cfg: Any, channels: int) -> Any:
    """A run's model on cached maps: the method's model with a trainable MapAdapter where the backbone was."""
    from labelwise.continual.online.runner import build_model
    from labelwise.models.feature_cache import split_backbone
    from labelwise.models.map_adapter import MapAdapter

    model = build_model(seq.num_classes, head, cfg.model_copy(update={"weights": None}))
    split_backbone(model)
    model.backbone = MapAdapter(channels)
    return model


def result_row(method: str, seed: int, r: Any) -> dict[str, Any]:
    """One raw-results row (RESULTS_SCHEMA: percent)."""
    row: dict[str, Any] = {"dataset": "multidigits80seq", "method": method, "seed": seed}
    for g in ("overall", "majority", "moderate", "minority"):  # the schema's six keys and the other group F1s
        for m in ("mAP", "CF1", "OF1"):
            v = float(r.final[g][m])
            if not np.isnan(v):
                row[f"{g}_{m}"] = round(100.0 * v, 4)
    row["seconds"] = round(float(r.seconds), 1)
    if r.memory_counts is not None:
        row["memory_counts"] = list(r.memory_counts)
    return row


def main_pretrained(args: argparse.Namespace) -> int:
    """The pretrained regime: raw per-seed rows in docs/results/online_cl.json, resumable run by run."""
    import torch

    from labelwise.continual.online import OnlineConfig, format_table, multidigits_sequence, run_online
    from labelwise.continual.online.runner import OnlineResult

    torch.set_num_threads(max(1, args.threads))
    p = profile(args)
    names = args.methods or list(METHOD_KEYS)
    print(regime.header("online_cl", p, args), flush=True)
    t_all = time.perf_counter()
    seq_opts = {k: v for k, v in p["sequence"].items() if v is not None}
    seq = multidigits_sequence(**seq_opts, cache=not args.quick)
    s = seq.summary()
    print(f"sequence: {seq!r}\n  classes/task {s['classes_per_task']}, groups {s['group_sizes']} (thresholds "
          f"{seq.info['thresholds']}), stream {seq.num_train} images, test {sum(s['test_sizes'])}", flush=True)
    cfg = OnlineConfig.from_dict(p["online"])
    channels = None
    if p["backbone_mode"] == "frozen":
        seq = cache_sequence(seq, cfg, device=args.device)
        channels = int(seq.train.inputs.shape[1])
    else:  # fine-tuning on the images: the evaluation transform the shipped backbone was trained with
        import dataclasses

        from labelwise.data.transforms import build_transforms

        tf = build_transforms(train=False, image_size=int(seq.train.inputs.shape[-1]), normalize="imagenet")
        seq = dataclasses.replace(seq, train=seq.train.view(None, transform=tf), test=seq.test.view(None, transform=tf))
    budget = regime.Budget(args.time_budget)
    store = regime.cell_store("online_cl", args, p)
    results: list[Any] = []
    stop = False
    for seed in p["seeds"]:  # seed-major: a run cut short by --time-budget holds complete seeds
        for name in names:
            method, head = METHOD_KEYS[name]
            cell = ("multidigits80seq", name, seed)
            stored = store.get(cell)
            if stored is None:
                if budget.exhausted():
                    stop = True
                    break
                if not store.claim(cell):
                    print(f"  {name:12s} seed {seed}: running in another process", flush=True)
                    continue
                model = head_model(seq, head, cfg, channels) if channels is not None else None
                r = run_online(seq, method, head=head, config=cfg, seed=seed, model=model)
                stored = [result_row(name, seed, r)]
                store.put(cell, stored)
                o = stored[0]
                print(f"  {name:12s} seed {seed}: mAP {o.get('overall_mAP', float('nan')):.1f} CF1 "
                      f"{o.get('overall_CF1', float('nan')):.1f} OF1 {o.get('overall_OF1', float('nan')):.1f} "
                      f"minority mAP {o.get('minority_mAP', float('nan')):.1f} ({r.seconds:.0f} s)", flush=True)
            f = {g: {m: stored[0].get(f"{g}_{m}", float("nan")) / 100.0 for m in ("mAP", "CF1", "OF1")}
                 for g in ("overall", "majority", "moderate", "minority")}
            results.append(OnlineResult(method, head, seed, f, [], None, 0.0, 0))
            regime.write_results("online_cl", store.rows(), args, p, time.perf_counter() - t_all, complete=False,
                                 store=store)
        if stop:
            break
    budget.report()
    seconds = time.perf_counter() - t_all
    from labelwise.continual.online import summarize

    print()
    print(format_table(summarize(results), title=f"MultiDigits online sequence, pretrained regime, final (after task "
                                                 f"{seq.num_tasks}), percent, mean ± std"))
    print(f"\ntotal {seconds / 60:.1f} min")
    # every run of the profile, also those of other commands or processes
    complete = not budget.skipped and store.covers(("multidigits80seq", name, seed) for name in METHOD_KEYS
                                                   for seed in p["seeds"])
    out = regime.write_results("online_cl", store.rows(), args, p, seconds, complete=complete, store=store,
                               extra={"sequence": s})
    print(f"raw results: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Pretrained-regime sizing (2 CPU cores, frozen backbone): a stream generated from "
               f"{PRETRAINED['sequence']['n_train']} training images at 128 px (about 4,700 kept), memory "
               f"{PRETRAINED['online']['memory_size']}, Multitask {PRETRAINED['online']['multitask_epochs']} passes, "
               f"the 11 methods x seeds {PRETRAINED['seeds']}: 9.1 minutes measured on the shared cores (5 seeds: 16), "
               "the maps cached in about 2 minutes (measured costs in docs/online_cl.md).")
    regime.add_regime_args(ap, "online_cl", backbone_mode=True, help_overrides={
        "regime": "pretrained: from the shipped md-resnet10t, 128 px, a one-pass stream; scratch: the earlier profile",
        "seeds": f"seeds (None: pretrained regime {PRETRAINED['seeds']}, --quick [0], scratch [0, 1, 2])",
        "n_train": f"images generated for the online sequence (None: {PRETRAINED['sequence']['n_train']}, about "
                   f"4,700 of them streamed; --quick 240)",
        "n_test": f"test images generated (None: {PRETRAINED['sequence']['n_test']}; --quick 800)",
        "backbone_mode": "pretrained regime: 'frozen' streams the shipped backbone's cached feature maps through a "
                         "trainable MapAdapter stage + the head (forgetting happens only there); 'finetune' "
                         "trains backbone and head on the stream (a GPU budget)"},
        not_applicable=regime.NO_PLATEAU_OPTIONS,
        not_applicable_reason="online_cl streams the MultiDigits-80 sequence once (no validation plateau)")
    ap.add_argument("--methods", nargs="+", default=None, choices=list(METHOD_KEYS),
                    help="methods by raw-results name (None: all)")
    ap.add_argument("--multitask-epochs", dest="multitask_epochs", type=int, default=None,
                    help=f"passes of the Multitask upper bound (None: pretrained regime "
                         f"{PRETRAINED['online']['multitask_epochs']}, --quick 1, scratch 1)")
    ap.add_argument("--lr", type=float, default=None,
                    help=f"pretrained regime: Adam learning rate (None: {PRETRAINED['online']['lr']})")
    ap.add_argument("--baseline-model", default=None, help="baseline head model: ofml (default) or ofml_cosine")
    ap.add_argument("--output", default=None, help="scratch regime: directory for results.json and table.md")
    ap.add_argument("--random-init", dest="random_init", action="store_true",
                    help="scratch regime: random-init backbone (no multidigits20 pretraining)")
    args = ap.parse_args(argv)
    if args.regime == "scratch":
        return main_scratch(args)
    return main_pretrained(args)

if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
