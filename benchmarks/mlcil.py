"""Multi-label class-incremental benchmark on MultiDigits (RebLL Tables 1-2, 4, 5, 6 and Fig. 4 shapes).

Runs every strategy on MultiDigits-20 {B4-C2} and {B5-C3} (and MultiDigits-80 {B20-C4} with ``--with-md80``)
for several seeds and prints, as markdown tables (mean +- std over seeds, in %):

* Table 1/2 shape: Joint, Fine-Tuning, LwF, KD, the comparison methods AGCN, KRT, CSC and L2P (each on its own
  model: ``METHOD_MODELS``), AKD (buffer 0), ER, DER++, PODNet, RebLL (AKD + OR) (buffer k per class): Last mAP /
  CF1 / OF1, Avg mAP, and the FPR after the last task;
* Table 4 (AKD ablation, first scenario): Fine-Tuning (L_bce), AKD (L_cls), KD (L_bce + L_kd),
  AKD (L_cls + L_akd);
* Table 5 (OR ablation): AKD, + Replay (L_bce), + OR (L_bce), + OR (L_er);
* Table 6 (decay factor): fixed alpha = 2.0 vs adaptive alpha log|C^{1:t}| with alpha = 1.2 (AKD, no memory).

It also writes ``results.json`` (every run's per-task rows) and one ``map_curves_<scenario>.png`` (Fig. 4) in
``--output``.

Usage::

    python benchmarks/mlcil.py --quick                 # < 1 minute: tiny data and model, one seed
    python benchmarks/mlcil.py                          # the full run (about 45 minutes on 2 CPU cores)
    python benchmarks/mlcil.py --with-md80 --seeds 0 1  # + MultiDigits-80 B20-C4

CF1/OF1/FPR use the 0.8 threshold of KRT/CSC/RebLL.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# (row label, strategy name, options, buffer label)
MAIN = [
    ("Joint", "joint", {"final_only": True}, "-"),
    ("Fine-Tuning", "finetune", {}, "0"),
    ("LwF", "lwf", {}, "0"),
    ("KD", "kd", {}, "0"),
    ("AGCN", "agcn", {}, "0"),
    ("KRT", "krt", {}, "0"),
    ("CSC", "csc", {}, "0"),
    ("L2P", "l2p", {}, "0"),
    ("RebLL (AKD)", "akd", {}, "0"),
    ("ER", "er", {}, "k/class"),
    ("DER++", "derpp", {}, "k/class"),
    ("PODNet", "podnet", {}, "k/class"),
    ("RebLL (AKD + OR)", "rebll", {}, "k/class"),
]
TABLE4 = [
    ("Fine-Tuning (L_bce)", "finetune", {}),
    ("AKD (L_cls)", "rebll", {"replay": False, "distill": None}),
    ("KD (L_bce + L_kd)", "kd", {}),
    ("AKD (L_cls + L_akd)", "akd", {}),
]
TABLE5 = [
    ("AKD (L_cls + L_akd)", "akd", {}),
    ("+ Replay (L_bce)", "rebll", {"relabel": False, "replay_loss": "bce"}),
    ("+ OR (L_bce)", "rebll", {"replay_loss": "bce"}),
    ("+ OR (L_er)", "rebll", {}),
]
TABLE6 = [
    ("alpha (alpha = 2.0), fixed", "akd", {"decay": "fixed", "alpha": 2.0}),
    ("alpha log|C^{1:t}| (alpha = 1.2)", "akd", {}),
]

# the comparison methods run on their own models: (model name, head options); the CNN ones keep the scenario's
# backbone (name, pretrained, weights), L2P gets a frozen small ViT (the one configs/mlvpt/
# multidigits80_pretrain_vit.yaml pretrains: pass its checkpoint with --vit-weights).
METHOD_MODELS = {
    "krt": ("krt", {}),
    "csc": ("ci_gcn", {}),
    "agcn": ("agcn", {}),
    "l2p": ("l2p", {"backbone": "vit_tiny_patch16_224", "pretrained": False,
                    "backbone_kwargs": {"patch_size": 8, "embed_dim": 96, "depth": 6, "num_heads": 3}}),
}
# KRT's pseudo-label target (its ``pseudo_label_cardinality``): the labels per image of the training set, as KRT
# takes 1.4 for VOC and 2.9 for COCO. Here: the mean number of labels per image of the scenario's training split
# (the data section of its config: MultiDigits-20 with n_train 2000 -> 2.388; MultiDigits-80 with n_train 4000 ->
# 2.8855), rounded to 2 decimals. tests/continual/test_continual_mlcil_benchmark.py recomputes them.
KRT_CARDINALITY = {"md20-B4-C2": 2.39, "md20-B5-C3": 2.39, "md80-B20-C4": 2.89}
_BACKBONE_KEYS = ("backbone", "pretrained", "weights", "weights_strict", "backbone_kwargs")

SCENARIOS = {
    "md20-B4-C2": "multidigits20_b4c2.yaml",
    "md20-B5-C3": "multidigits20_b5c3.yaml",
    "md80-B20-C4": "multidigits80_b20c4.yaml",
}


def _key(name: str, options: dict[str, Any]) -> str:
    return name + ("" if not options else "|" + ",".join(f"{k}={options[k]}" for k in sorted(options)))


def _fmt(values: list[float]) -> str:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64) * 100
    if v.size == 0:
        return "-"
    return f"{v.mean():.1f}" if v.size == 1 else f"{v.mean():.1f} ± {v.std(ddof=1):.1f}"


def build_scenario(config: Path, overrides: list[str]):
    from labelwise.continual import ClassIncrementalScenario
    from labelwise.continual.config import load_continual_config
    from labelwise.run import build_datasets

    cfg = load_continual_config(config, overrides)
    data = build_datasets(cfg.run, splits=("train", "test"))
    cont = cfg.continual
    sc = ClassIncrementalScenario.from_string(data.train, data.test, cont.scenario, class_order=cont.class_order,
                                              seed=cont.class_order_seed)
    return cfg, sc


def build_method_model(cfg, name: str, num_classes: int, *, vit_weights: str | None = None):
    """The model of a strategy: the scenario's model, or the comparison method's own (``METHOD_MODELS``)."""
    from labelwise.models import create_model
    from labelwise.run import build_model

    if name not in METHOD_MODELS:
        return build_model(cfg.run, num_classes)
    model_name, head = METHOD_MODELS[name]
    if model_name == "l2p":
        options = {**head, "backbone_kwargs": {**head["backbone_kwargs"], "img_size": cfg.run.data.image_size}}
        if vit_weights:
            options["weights"] = vit_weights
    else:
        options = {k: v for k, v in cfg.run.model.kwargs.items() if k in _BACKBONE_KEYS}
        options.update(head)
    return create_model(model_name, num_classes=num_classes, **options)


def run_one(cfg, scenario, name: str, options: dict[str, Any], seed: int, per_class: int,
            *, vit_weights: str | None = None, cardinality: float | None = None) -> dict[str, Any]:
    import torch

    from labelwise.continual import run_continual
    from labelwise.continual.strategies import create_strategy

    torch.manual_seed(seed)
    opts = dict(options)
    strategy_cls_takes_memory = name in ("er", "derpp", "podnet", "rebll")
    if strategy_cls_takes_memory and opts.get("replay", True):
        opts.setdefault("memory_per_class", per_class)
    if name == "krt" and cardinality is not None:
        opts.setdefault("pseudo_label_cardinality", cardinality)
    opts["seed"] = seed
    strategy = create_strategy(name, **opts)
    model = build_method_model(cfg, name, scenario.num_classes, vit_weights=vit_weights)
    trainer_options = cfg.run.trainer.model_dump()
    trainer_options.update(seed=seed, progress=False, save_checkpoints=False, tensorboard=False, report=False)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_continual(scenario, strategy, model, trainer_options=trainer_options,
                            base_lr=cfg.continual.base_lr, threshold=cfg.continual.threshold, plot=False)
    return {"tasks": res.tasks, "avg_mAP": res.summary["avg_mAP"], "last": res.summary["last"],
            "forgetting_mean": res.summary["forgetting_mean"], "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny data/model, one seed, one epoch (< 1 minute)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default 0 1; --quick: 0)")
    p.add_argument("--with-md80", action="store_true", help="also MultiDigits-80 B20-C4")
    p.add_argument("--epochs", type=int, default=None, help="epochs per task (default: the configs' 3; --quick 1)")
    p.add_argument("--n-train", type=int, default=None, help="training images (default: the configs')")
    p.add_argument("--n-test", type=int, default=None, help="test images (default: the configs')")
    p.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=None,
                   help="scenarios to run (default md20-B4-C2 md20-B5-C3, + md80-B20-C4 with --with-md80); "
                        "the ablation tables use the first")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="extra config overrides, e.g. model.backbone=resnet10t data.image_size=48")
    p.add_argument("--output", default="runs/mlcil", help="directory for results.json and the curves")
    p.add_argument("--vit-weights", default=None,
                   help="frozen ViT checkpoint for L2P (configs/mlvpt/multidigits80_pretrain_vit.yaml's best); "
                        "without it L2P prompts a random frozen ViT")
    args = p.parse_args(argv)

    seeds = args.seeds or ([0] if args.quick else [0, 1])
    scen_names = args.scenarios or (["md20-B4-C2", "md20-B5-C3"] + (["md80-B20-C4"] if args.with_md80 else []))
    overrides: list[str] = []
    if args.quick:
        overrides += ["data.options.n_train=160", "data.options.n_test=100", "data.options.n_val=16",
                      "data.image_size=16", "model.backbone=test_resnet", "trainer.batch_size=32",
                      "trainer.eval_batch_size=128", "trainer.max_epochs=1"]
    if args.epochs is not None:
        overrides.append(f"trainer.max_epochs={args.epochs}")
    if args.n_train is not None:
        overrides.append(f"data.options.n_train={args.n_train}")
    if args.n_test is not None:
        overrides.append(f"data.options.n_test={args.n_test}")
    overrides += list(args.set)

    jobs: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
    for i, s in enumerate(scen_names):
        rows = {_key(n, o): (n, o) for _, n, o, _ in MAIN}
        if i == 0:
            for table in (TABLE4, TABLE5, TABLE6):
                rows.update({_key(n, o): (n, o) for _, n, o in table})
        jobs[s] = rows
    total = sum(len(v) for v in jobs.values()) * len(seeds)
    print(f"# MLCIL benchmark: {total} runs ({', '.join(scen_names)}; seeds {seeds}; overrides {overrides})",
          flush=True)

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    t_start = time.perf_counter()
    done = 0
    per_class: dict[str, int] = {}
    for s in scen_names:
        from labelwise.shipped_configs import config_path

        cfg, sc = build_scenario(config_path(f"continual/{SCENARIOS[s]}"), overrides)
        per_class[s] = int(cfg.strategy.options.get("memory_per_class", 2))
        results[s] = {}
        for key, (name, opts) in jobs[s].items():
            for seed in seeds:
                r = run_one(cfg, sc, name, opts, seed, per_class[s], vit_weights=args.vit_weights,
                            cardinality=KRT_CARDINALITY.get(s))
                results[s].setdefault(key, []).append(r)
                done += 1
                print(f"  [{done}/{total}] {s} {key} seed {seed}: Last mAP {100 * r['last']['mAP']:.1f} "
                      f"Avg {100 * r['avg_mAP']:.1f} FPR {100 * r['last']['FPR']:.1f} ({r['seconds']:.1f}s)",
                      file=sys.stderr, flush=True)
        _curves(results[s], sc, out / f"map_curves_{s}.png", title=s)
    elapsed = time.perf_counter() - t_start
    (out / "results.json").write_text(json.dumps({"seeds": seeds, "overrides": overrides, "results": results},
                                                 indent=1, default=_json_default))

    def cell(s: str, key: str) -> list[str]:
        rs = results[s][key]
        return [_fmt([r["last"]["mAP"] for r in rs]), _fmt([r["last"]["CF1"] for r in rs]),
                _fmt([r["last"]["OF1"] for r in rs]), _fmt([r["avg_mAP"] for r in rs]),
                _fmt([r["last"]["FPR"] for r in rs])]

    head = " | ".join(f"{s} Last mAP | CF1 | OF1 | Avg mAP | FPR" for s in scen_names)
    print(f"\n## Table 1/2 shape (buffer k/class = {', '.join(f'{s}: {per_class[s]}' for s in scen_names)}; "
          f"seeds {seeds}; % mean ± std)\n")
    print(f"| Method | Buffer | {head} |")
    print("|---|---|" + "---|" * (5 * len(scen_names)))
    for label, name, opts, buf in MAIN:
        cells = sum((cell(s, _key(name, opts)) for s in scen_names), [])
        if name == "joint":
            cells = [c if (i % 5) != 3 else "-" for i, c in enumerate(cells)]
        print(f"| {label} | {buf} | " + " | ".join(cells) + " |")
    s0 = scen_names[0]
    for title, table in (("Table 4 shape: AKD ablation", TABLE4), ("Table 5 shape: OR ablation", TABLE5),
                         ("Table 6 shape: decay factor", TABLE6)):
        print(f"\n## {title} ({s0})\n")
        print("| Method | Last mAP | CF1 | OF1 | Avg mAP | FPR |")
        print("|---|---|---|---|---|---|")
        for label, name, opts in table:
            print(f"| {label} | " + " | ".join(cell(s0, _key(name, opts))) + " |")
    print(f"\nTotal time {elapsed / 60:.1f} min; results in {out}/results.json, curves in {out}/map_curves_*.png")
    return 0


def _curves(res: dict[str, list[dict[str, Any]]], sc, path: Path, *, title: str) -> None:
    from labelwise.continual import plot_map_curves

    curves = {}
    for label, name, opts, _ in MAIN:
        runs = res.get(_key(name, opts))
        if not runs:
            continue
        rows = [[r for r in run["tasks"] if not r.get("skipped")] for run in runs]
        xs = [r["num_seen"] for r in rows[0]]
        ys = np.mean([[r["mAP"] for r in rr] for rr in rows], axis=0).tolist()
        curves[label] = (xs, ys)
    plot_map_curves(curves, path, title=title)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


if __name__ == "__main__":
    sys.exit(main())
