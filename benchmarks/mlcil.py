"""Multi-label class-incremental benchmark on MultiDigits (RebLL Tables 1-2, 4, 5, 6 and Fig. 4 shapes).

Runs every strategy on MultiDigits-20 {B4-C2} and {B5-C3} and MultiDigits-80 {B20-C4} for several seeds (the
raw-results names of RESULTS_SCHEMA.md in brackets; ``METHOD_KEYS``):

* Table 1/2 shape: Joint [joint], Fine-Tuning [finetune], LwF [lwf], KD [kd], EWC [ewc], the comparison methods
  AGCN [agcn], KRT [krt], CSC [csc] and L2P [l2p] (each on its own model: ``METHOD_MODELS``), AKD [akd] (buffer
  0), ER [er], DER++ [derpp], PODNet [podnet], RebLL (AKD + OR) [rebll] (buffer k per class): Last mAP / CF1 /
  OF1, Avg mAP, the FPR after the last task and the mean forgetting;
* Table 4 (AKD ablation, first scenario): Fine-Tuning (L_bce) [finetune], AKD (L_cls) [akd_cls], KD (L_bce +
  L_kd) [kd], AKD (L_cls + L_akd) [akd];
* Table 5 (OR ablation): AKD [akd], + Replay (L_bce) [akd_er], + OR (L_bce) [akd_er_or], + OR (L_er) [rebll];
* Table 6 (decay factor): fixed alpha = 2.0 [akd_fixed_decay] vs adaptive alpha log|C^{1:t}| with alpha = 1.2
  [akd] (AKD, no memory).

Regimes (``--regime``):

* ``pretrained`` (default, issue 16): the shipped ``md-resnet10t`` (pretrained on MultiDigits-40, another label
  space; docs/pretrained.md) at 128x128 with small digits and output stride 16 (an 8x8 map). With
  ``--backbone-mode frozen`` (default; what 2 CPU cores allow) the backbone runs once per dataset and its
  feature maps are cached; every strategy trains, task after task, a model made of one trainable residual
  1x1-convolution stage on the frozen map (:class:`labelwise.models.map_adapter.MapAdapter`, shared by all
  classes) and the method's head. **With a frozen backbone forgetting happens only in that stage and the
  heads**: a linear head alone would not forget at all under task-level partial labels (no loss reaches an old
  class's weights), which is why the shared stage is there; PODNet's spatial distillation acts on its output
  map; replay draws cached maps (no augmentation: a cache holds one map per image). ``finetune`` trains the
  whole network on the images (a GPU budget). Writes docs/results/mlcil.json (raw per-seed rows, RESULTS_SCHEMA
  names), resumable run by run (docs/results/mlcil.cells.jsonl).
* ``scratch``: the scenarios' configs (a from-scratch ResNet-18 at 64 px, 3 epochs per task), tables and
  Fig. 4 curves in ``--output``.

L2P prompts a frozen ViT; ``--with-l2p`` adds it (it is left out of the default list), on the shipped
``md-vit-tiny`` when present (else a random frozen ViT). md-vit-tiny is a hybrid ViT whose frozen stem *is*
md-resnet10t at output stride 16, the CNN whose maps the frozen mode caches: when the stem's weights equal the
cached backbone's (checked, :func:`l2p_reads_cached_maps`), L2P's stem is split off
(:func:`labelwise.models.feature_cache.split_hybrid_stem`) and L2P runs on the same cached maps as every other
method (exact: a frozen stem is a fixed function of the image); otherwise it runs on the images.

Usage::

    python benchmarks/mlcil.py --quick                  # < 1 minute: tiny data, same rows
    python benchmarks/mlcil.py                          # full pretrained run, 1/2: the MultiDigits-20 scenarios
    python benchmarks/mlcil.py --scenarios md80-B20-C4  # full pretrained run, 2/2 (same raw-results file)
    python benchmarks/mlcil.py --regime scratch --with-md80 --seeds 0 1

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import regime  # noqa: E402  (benchmarks/regime.py)

ROOT = Path(__file__).resolve().parents[1]

# (row label, strategy name, options, buffer label)
MAIN = [
    ("Joint", "joint", {"final_only": True}, "-"),
    ("Fine-Tuning", "finetune", {}, "0"),
    ("LwF", "lwf", {}, "0"),
    ("KD", "kd", {}, "0"),
    ("EWC", "ewc", {}, "0"),
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
#: The timm name of the shipped ``md-vit-tiny`` (configs/pretrain/md_vit_tiny.yaml; its card fills in the shape).
_SHIPPED_VIT_BACKBONE = "vit_tiny_patch16_224"
_BACKBONE_KEYS = ("backbone", "pretrained", "weights", "weights_strict", "backbone_kwargs")

SCENARIOS = {
    "md20-B4-C2": "multidigits20_b4c2.yaml",
    "md20-B5-C3": "multidigits20_b5c3.yaml",
    "md80-B20-C4": "multidigits80_b20c4.yaml",
}


def _key(name: str, options: dict[str, Any]) -> str:
    return name + ("" if not options else "|" + ",".join(f"{k}={options[k]}" for k in sorted(options)))


#: Method names of the raw-results file (RESULTS_SCHEMA.md), by run; the ablation rows that are no main method
#: get their own names: ``akd_cls`` (Table 4, L_cls alone), ``akd_er`` (Table 5, + Replay with L_bce),
#: ``akd_er_or`` (Table 5, + OR with L_bce; + OR with L_er is ``rebll``), ``akd_fixed_decay`` (Table 6, fixed
#: alpha = 2.0; the adaptive one is ``akd``).
METHOD_KEYS = {_key(n, o): n for _, n, o, _ in MAIN}
METHOD_KEYS.update({
    _key("rebll", {"replay": False, "distill": None}): "akd_cls",
    _key("rebll", {"relabel": False, "replay_loss": "bce"}): "akd_er",
    _key("rebll", {"replay_loss": "bce"}): "akd_er_or",
    _key("akd", {"decay": "fixed", "alpha": 2.0}): "akd_fixed_decay",
})
#: ``dataset`` of the raw rows: the scenario on its dataset.
SCENARIO_ROWS = {"md20-B4-C2": "multidigits20-B4-C2", "md20-B5-C3": "multidigits20-B5-C3",
                 "md80-B20-C4": "multidigits80-B20-C4"}


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


def build_method_model(cfg, name: str, num_classes: int, *, vit_weights: str | None = None,
                       frozen_channels: int | None = None):
    """The model of a strategy: the scenario's model, or the comparison method's own (``METHOD_MODELS``).

    ``frozen_channels`` (the cached maps' channels, frozen-backbone mode): the backbone is taken out and a
    trainable :class:`~labelwise.models.map_adapter.MapAdapter` takes its place, so the model maps cached
    feature maps to its outputs. L2P (a prompted ViT) keeps its ViT: on cached maps (only when
    :func:`l2p_reads_cached_maps`) its hybrid stem is split off, else it runs on images (``frozen_channels=None``).
    """
    model = _method_model(cfg, name, num_classes, vit_weights=vit_weights)
    if frozen_channels is not None and name == "l2p":
        from labelwise.models.feature_cache import split_hybrid_stem

        split_hybrid_stem(model)
    elif frozen_channels is not None:
        from labelwise.models.feature_cache import split_backbone
        from labelwise.models.map_adapter import MapAdapter

        split_backbone(model)
        model.backbone = MapAdapter(frozen_channels)
    return model


def l2p_reads_cached_maps(cfg, num_classes: int, vit_weights: str | None) -> bool:
    """Whether L2P's ViT has a frozen hybrid stem equal to the scenario's (cached) backbone, weights included.

    Then L2P can train on the frozen mode's cached maps with its stem split off, computing exactly what it
    computes on the images.
    """
    import torch

    from labelwise.models.feature_cache import split_backbone, split_hybrid_stem
    from labelwise.run import build_model

    try:
        stem = split_hybrid_stem(_method_model(cfg, "l2p", num_classes, vit_weights=vit_weights))
    except (TypeError, ValueError):  # a plain ViT, or a trained stem
        return False
    mine = stem.body.state_dict()
    theirs = split_backbone(build_model(cfg.run, num_classes)).state_dict()
    return mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)


def _method_model(cfg, name: str, num_classes: int, *, vit_weights: str | None = None):
    from labelwise.models import create_model
    from labelwise.run import build_model

    if name not in METHOD_MODELS:
        return build_model(cfg.run, num_classes)
    model_name, head = METHOD_MODELS[name]
    if model_name == "l2p":
        from labelwise.models.shipped import list_shipped

        if vit_weights in list_shipped():  # a shipped ViT: its card gives the architecture
            options = {**head, "backbone": _SHIPPED_VIT_BACKBONE, "weights": vit_weights,
                       "backbone_kwargs": {"img_size": cfg.run.data.image_size}}
        else:
            options = {**head, "backbone_kwargs": {**head["backbone_kwargs"], "img_size": cfg.run.data.image_size}}
            if vit_weights:
                options["weights"] = vit_weights
    else:
        options = {k: v for k, v in cfg.run.model.kwargs.items() if k in _BACKBONE_KEYS}
        options.update(head)
    return create_model(model_name, num_classes=num_classes, **options)


def run_one(cfg, scenario, name: str, options: dict[str, Any], seed: int, per_class: int,
            *, vit_weights: str | None = None, cardinality: float | None = None,
            frozen_channels: int | None = None, workers: int = 0, joint_epochs: int | None = None) -> dict[str, Any]:
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
    model = build_method_model(cfg, name, scenario.num_classes, vit_weights=vit_weights,
                               frozen_channels=frozen_channels)
    trainer_options = cfg.run.trainer.model_dump()
    trainer_options.update(seed=seed, progress=False, save_checkpoints=False, tensorboard=False, report=False,
                           num_workers=workers)
    if name == "joint" and joint_epochs is not None:  # trained once, on everything: its own epoch budget
        trainer_options["max_epochs"] = joint_epochs
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_continual(scenario, strategy, model, trainer_options=trainer_options,
                            base_lr=cfg.continual.base_lr, threshold=cfg.continual.threshold, plot=False)
    return {"tasks": res.tasks, "avg_mAP": res.summary["avg_mAP"], "last": res.summary["last"],
            "forgetting_mean": res.summary["forgetting_mean"], "seconds": time.perf_counter() - t0}


#: Pretrained regime (frozen backbone, 2 CPU cores): images per dataset, epochs per task, seeds. Sized so that
#: each of the two full commands (the MultiDigits-20 scenarios; MultiDigits-80 B20-C4) fits within 60 minutes
#: with every default method and 3 seeds (measured: 45 and about 25; --help and docs/continual.md).
PRETRAINED = {
    "n_train": {"multidigits20": 2000, "multidigits80": 2500},
    "n_test": {"multidigits20": 1000, "multidigits80": 1000},
    "epochs_per_task": 4,
    "joint_epochs": 16,
    "seeds": [0, 1, 2],
}
#: The two full commands of the pretrained regime (they add up in one docs/results/mlcil.json).
FULL_COMMANDS = (["md20-B4-C2", "md20-B5-C3"], ["md80-B20-C4"])
MD_RESNET10T = {"backbone": "resnet10t", "weights": "md-resnet10t",
                "backbone_kwargs": {"channels": [32, 64, 128, 256], "output_stride": 16}}


def profile(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes of the pretrained run (``--quick`` shrinks everything but keeps the rows)."""
    p: dict[str, Any] = {
        "n_train": dict(PRETRAINED["n_train"]), "n_test": dict(PRETRAINED["n_test"]),
        "data_options": dict(regime.PRETRAINED_DATA), "image_size": 128, **MD_RESNET10T,
        "backbone_mode": args.backbone_mode, "epochs_per_task": PRETRAINED["epochs_per_task"],
        "joint_epochs": PRETRAINED["joint_epochs"], "batch_size": 64,
        "optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4, "memory_per_class": {"multidigits20": 2,
                                                                                      "multidigits80": 5},
        "threshold": 0.8, "seeds": list(PRETRAINED["seeds"]),
    }
    if args.backbone_mode == "frozen":
        p["trainable"] = "MapAdapter (residual 1x1 conv) + head"
    if args.quick:
        p.update(n_train={"multidigits20": 160, "multidigits80": 320}, n_test={"multidigits20": 100,
                 "multidigits80": 160}, data_options={"image_size": 32}, image_size=32, epochs_per_task=1,
                 joint_epochs=2, batch_size=32, seeds=[0], weights=regime.shipped_or_none("md-resnet10t"))
    else:
        regime.require_shipped(p["weights"])
    if args.epochs is not None:
        p["epochs_per_task"] = args.epochs
    if args.lr is not None:
        p["lr"] = float(args.lr)
    if args.seeds is not None:
        p["seeds"] = list(args.seeds)
    for key in ("n_train", "n_test"):
        value = getattr(args, key, None)
        if value is not None:
            p[key] = {d: int(value) for d in p[key]}
    p["device"], p["workers"] = args.device, args.workers
    return p


def scenario_overrides(scenario: str, p: dict[str, Any]) -> list[Any]:
    """Config overrides of one scenario in the pretrained regime (data, model, trainer)."""
    dataset = "multidigits80" if scenario.startswith("md80") else "multidigits20"
    model = {k: p[k] for k in ("backbone", "backbone_kwargs")}
    if p.get("weights"):
        model["weights"] = p["weights"]
    return [
        ("data.image_size", p["image_size"]),
        ("data.options", {"n_train": p["n_train"][dataset], "n_val": 16, "n_test": p["n_test"][dataset],
                          **p["data_options"]}),
        ("model", {"name": "ofml", "pretrained": False, **model}),
        ("trainer.max_epochs", p["epochs_per_task"]), ("trainer.batch_size", p["batch_size"]),
        ("trainer.optimizer", p["optimizer"]), ("trainer.lr", p["lr"]), ("trainer.weight_decay", p["weight_decay"]),
        ("trainer.accelerator", "cuda" if str(p["device"]).startswith("cuda") else "cpu"),
        ("continual.threshold", p["threshold"]),
    ]


def method_jobs(scenarios: list[str], with_l2p: bool,
                methods: list[str] | None = None) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Per scenario: (raw method name, strategy, options); the ablation rows on the first scenario only.

    ``methods``: keep only these raw method names.
    """
    jobs: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for i, s in enumerate(scenarios):
        rows = {_key(n, o): (n, o) for _, n, o, _ in MAIN if with_l2p or n != "l2p"}
        if i == 0:
            for table in (TABLE4, TABLE5, TABLE6):
                rows.update({_key(n, o): (n, o) for _, n, o in table})
        jobs[s] = [(METHOD_KEYS[k], n, o) for k, (n, o) in rows.items()
                   if methods is None or METHOD_KEYS[k] in methods]
    return jobs


class _Prepared:
    """A scenario ready to run: its config, the scenario on cached maps (or images) and the image scenario."""

    def __init__(self, cfg: Any, scenario: Any, images: Any, channels: int | None) -> None:
        self.cfg, self.scenario, self.images, self.channels = cfg, scenario, images, channels


def prepare(name: str, p: dict[str, Any], caches: dict[str, Any]) -> _Prepared:
    """Load the scenario's data; in frozen mode cache the backbone's maps (once per dataset, shared)."""
    from labelwise.continual import ClassIncrementalScenario
    from labelwise.continual.config import load_continual_config
    from labelwise.run import build_datasets
    from labelwise.shipped_configs import config_path

    cfg = load_continual_config(config_path(f"continual/{SCENARIOS[name]}"), scenario_overrides(name, p))
    cont = cfg.continual
    key = json.dumps(cfg.run.data.model_dump(), sort_keys=True, default=str)
    if key not in caches:
        data = build_datasets(cfg.run, splits=("train", "test"))
        caches[key] = (data, cache_maps(cfg, data, p) if p.get("backbone_mode") == "frozen" else None)
    data, cached = caches[key]

    def make(train: Any, test: Any) -> Any:
        return ClassIncrementalScenario.from_string(train, test, cont.scenario, class_order=cont.class_order,
                                                    seed=cont.class_order_seed)

    images = make(data.train, data.test)
    if p.get("backbone_mode") == "frozen":
        return _Prepared(cfg, make(cached.train, cached.test), images, int(cached.train.inputs.shape[1]))
    return _Prepared(cfg, images, images, None)


def cache_maps(cfg: Any, data: Any, p: dict[str, Any]) -> Any:
    """The train and test splits as the frozen shipped backbone's feature maps (evaluation transform, once)."""
    from labelwise.models.feature_cache import cache_feature_maps, split_backbone
    from labelwise.run import build_model

    t0 = time.perf_counter()
    backbone = split_backbone(build_model(cfg.run, len(data.class_names)))
    device = p.get("device", "cpu")
    train = cache_feature_maps(backbone, data.train.view(None, transform=data.test.transform), device=device)
    test = cache_feature_maps(backbone, data.test, device=device)
    print(f"cached feature maps {tuple(train.inputs.shape[1:])} of {len(train)}/{len(test)} {cfg.run.data.name} "
          f"images in {time.perf_counter() - t0:.0f} s", flush=True)
    return regime.CachedSplits(train, None, test, list(data.class_names), time.perf_counter() - t0)


def result_row(scenario: str, method: str, seed: int, r: dict[str, Any]) -> dict[str, Any]:
    """One raw-results row (RESULTS_SCHEMA: percent)."""
    last = r["last"]

    def pct(x: Any) -> float:
        return float("nan") if x is None or math.isnan(float(x)) else round(100.0 * float(x), 4)

    row = {"dataset": SCENARIO_ROWS[scenario], "method": method, "seed": seed, "last_mAP": pct(last["mAP"]),
           "avg_mAP": pct(r["avg_mAP"]), "last_CF1": pct(last["CF1"]), "last_OF1": pct(last["OF1"]),
           "FPR": pct(last["FPR"]), "forgetting": pct(r["forgetting_mean"]), "seconds": round(r["seconds"], 1)}
    return {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}  # Joint: no forgetting


def main_pretrained(args: argparse.Namespace) -> int:
    """The pretrained regime: raw per-seed rows in docs/results/mlcil.json, resumable run by run."""
    import torch

    torch.set_num_threads(max(1, args.threads))
    p = profile(args)
    scenarios = args.scenarios or (["md20-B4-C2"] if args.quick else list(FULL_COMMANDS[0]))
    jobs = method_jobs(scenarios, args.with_l2p or (args.methods is not None and "l2p" in args.methods),
                       args.methods)
    print(regime.header("mlcil", p, args) + f"; scenarios {scenarios}", flush=True)
    vit = args.vit_weights or regime.shipped_or_none("md-vit-tiny")
    t_all = time.perf_counter()
    caches: dict[str, Any] = {}
    prepared = {s: prepare(s, p, caches) for s in scenarios}
    budget = regime.Budget(args.time_budget)
    store = regime.cell_store("mlcil", args, p)
    raw: list[dict[str, Any]] = []
    total = sum(len(v) for v in jobs.values()) * len(p["seeds"])
    l2p_maps: dict[str, bool] = {}

    def l2p_on_maps(s: str) -> bool:
        if s not in l2p_maps:
            prep = prepared[s]
            l2p_maps[s] = prep.channels is not None and l2p_reads_cached_maps(prep.cfg, prep.scenario.num_classes, vit)
            print(f"  L2P on {s}: " + ("its ViT's frozen stem is the cached backbone: runs on the cached maps"
                                        if l2p_maps[s] else "runs on the images"), flush=True)
        return l2p_maps[s]

    done = 0
    stop = False
    for seed in p["seeds"]:  # seed-major: a run cut short by --time-budget holds complete seeds
        for s in scenarios:
            prep = prepared[s]
            dataset = "multidigits80" if s.startswith("md80") else "multidigits20"
            cardinality = round(float(np.asarray(prep.scenario.train.targets).sum(axis=1).mean()), 2)
            for method, name, opts in jobs[s]:
                done += 1
                cell = (SCENARIO_ROWS[s], method, seed)
                stored = store.get(cell)
                if stored is not None:
                    raw += stored
                    continue
                if budget.exhausted():
                    stop = True
                    break
                if not store.claim(cell):
                    print(f"  [{done}/{total}] {s} {method} seed {seed}: running in another process", flush=True)
                    continue
                on_images = name == "l2p" and not l2p_on_maps(s)
                r = run_one(prep.cfg, prep.images if on_images else prep.scenario, name, opts, seed,
                            p["memory_per_class"][dataset], vit_weights=vit, cardinality=cardinality,
                            frozen_channels=None if on_images else prep.channels, workers=p["workers"],
                            joint_epochs=p["joint_epochs"])
                row = result_row(s, method, seed, r)
                raw.append(row)
                store.put(cell, [row])
                print(f"  [{done}/{total}] {s} {method} seed {seed}: Last mAP {row['last_mAP']:.1f} "
                      f"Avg {row['avg_mAP']:.1f} FPR {row['FPR']:.1f} forgetting {row.get('forgetting', math.nan):.1f} "
                      f"({row['seconds']:.1f}s)", flush=True)
                regime.write_results("mlcil", store.rows(), args, p, time.perf_counter() - t_all, complete=False,
                                     store=store)
            if stop:
                break
        if stop:
            break
    budget.report()
    seconds = time.perf_counter() - t_all
    print()
    print(summary_table(raw))  # this command's runs; the raw results hold every stored run of the profile
    print(f"\ntotal {seconds / 60:.1f} min")
    # every run stored under this profile: a full run split into commands by --scenarios adds up in one file
    # complete: every run of the full default (both commands, every default method, every seed) is stored
    full = [] if args.quick else [(SCENARIO_ROWS[sc], method, seed) for sc_list in FULL_COMMANDS
                                  for sc, runs in method_jobs(list(sc_list), False, None).items()
                                  for method, _, _ in runs for seed in p["seeds"]]
    out = regime.write_results("mlcil", store.rows(), args, p, seconds,
                               complete=not budget.skipped and store.covers(full), store=store,
                               extra={"scenarios": scenarios})
    print(f"raw results: {out}")
    return 0


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Mean over seeds per scenario and method (the generated docs table has the stds and the claims)."""
    keys = ("last_mAP", "avg_mAP", "last_CF1", "last_OF1", "FPR", "forgetting")
    lines = ["| scenario | method | seeds | " + " | ".join(keys) + " |", "|---|---|---:|" + "---:|" * len(keys)]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["method"]), []).append(r)
    for (ds, m), rs in groups.items():
        cells = [f"{np.mean(v):.1f}" if (v := [x[k] for x in rs if k in x]) else "-" for k in keys]
        lines.append(f"| {ds} | {m} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Pretrained-regime sizing (2 CPU cores, frozen backbone; docs/continual.md): "
               f"{PRETRAINED['n_train']} training and {PRETRAINED['n_test']} test images at 128 px, "
               f"{PRETRAINED['epochs_per_task']} epochs per task (Joint: {PRETRAINED['joint_epochs']} epochs on all "
               f"the data), seeds {PRETRAINED['seeds']}, every method but L2P. The full run is two commands, "
               "measured with other jobs on the cores at 45 minutes (in two slices, 34 + 11) and about 25 (its "
               "first 10-minute slice ran 20 of 51 runs): the default (md20-B4-C2 + md20-B5-C3, the "
               "ablation rows on md20-B4-C2) and --scenarios md80-B20-C4; both add to the same raw results.")
    regime.add_regime_args(parser, "mlcil", backbone_mode=True, help_overrides={
        "regime": "pretrained: from the shipped md-resnet10t, 128 px, a fixed number of epochs per task; scratch: the earlier profile",
        "seeds": f"seeds (None: pretrained regime {PRETRAINED['seeds']}, --quick [0], scratch [0, 1])",
        "n_train": f"training images of every scenario's dataset (None: pretrained regime {PRETRAINED['n_train']}; "
                   f"--quick 160 / 320)",
        "n_test": f"test images (None: pretrained regime {PRETRAINED['n_test']}; --quick 100 / 160)",
        "backbone_mode": "pretrained regime: 'frozen' trains a shared MapAdapter stage + each method's head on the "
                         "shipped backbone's cached feature maps (forgetting happens only there); 'finetune' "
                         "trains backbone and head end to end, as the paper does (a GPU budget)"},
        not_applicable=regime.NO_PLATEAU_OPTIONS,
        not_applicable_reason="mlcil runs scenarios (--scenarios) for a fixed number of epochs per task (--epochs), "
                              "not to a validation plateau")
    parser.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=None,
                        help="scenarios to run (None: pretrained regime md20-B4-C2 md20-B5-C3 (md80-B20-C4 is the "
                             "second full command), --quick md20-B4-C2, scratch md20-B4-C2 md20-B5-C3 and "
                             "md80-B20-C4 with --with-md80); the ablation rows run on the first")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs per task (None: pretrained regime {PRETRAINED['epochs_per_task']}, --quick 1; "
                             "scratch: the configs' 3)")
    parser.add_argument("--lr", type=float, default=None, help="pretrained regime: Adam learning rate (None: 1e-3)")
    parser.add_argument("--methods", nargs="+", default=None, choices=sorted(set(METHOD_KEYS.values())),
                        help="pretrained regime: only these methods (raw-results names; None: all but l2p)")
    parser.add_argument("--with-l2p", dest="with_l2p", action="store_true",
                        help="pretrained regime: also L2P (a prompted frozen ViT, the shipped md-vit-tiny when "
                             "present: on the cached maps when its frozen stem is the cached backbone, as for "
                             "md-vit-tiny, else on the images, slow on a CPU)")
    parser.add_argument("--vit-weights", default=None,
                        help="frozen ViT weights for L2P (a shipped name or a file; None: md-vit-tiny if shipped, "
                             "else a random frozen ViT)")
    parser.add_argument("--with-md80", action="store_true", help="scratch regime: also MultiDigits-80 B20-C4")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="scratch regime: extra config overrides, e.g. model.backbone=resnet10t")
    parser.add_argument("--output", default="runs/mlcil",
                        help="scratch regime: directory for results.json and the curves")
    args = parser.parse_args(argv)
    if args.regime == "scratch":
        return main_scratch(args)
    return main_pretrained(args)

def main_scratch(args: argparse.Namespace) -> int:
    """The scratch regime: the scenarios' configs (a from-scratch ResNet-18 at 64 px), tables and curves only."""

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
