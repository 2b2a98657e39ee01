"""Pretraining recipes: train a backbone on a MultiDigits corpus, export it as shipped weights with a model card.

A recipe (a YAML file, or a shipped name ``pretrain/*`` from labelwise/configs/pretrain/) is a YAML mapping:

``name``
    The weights name (``md-resnet18``): the exported files are ``<name>.safetensors``, ``<name>.json`` (the
    card) and ``<name>.md`` (the card, readable).
``architecture``
    ``backbone`` (timm name) and ``backbone_kwargs`` (the options that define the weight shapes: channel
    widths, patch size, depth, a hybrid ViT's ``hybrid_stem``, ...); they are written to the card and become the
    defaults of any backbone loading the weights by name (:mod:`labelwise.models.shipped`). A ``hybrid_stem``
    is written in its shape-defining form (:func:`labelwise.models.hybrid_vit.hybrid_architecture`: the stem's
    initial ``weights`` and ``frozen`` dropped, a shipped stem's architecture filled in), since the exported file
    holds the stem too.
``run``
    An ordinary labelwise run configuration (``data`` / ``model`` / ``loss`` / ``trainer``, see
    :mod:`labelwise.config`) that trains the backbone with a head; ``model.backbone`` and the architecture
    options are filled in from ``architecture``. The head is dropped on export.
``probe``
    The held-out task of the card's linear probe: ``data`` (a run-config data section, e.g. MultiDigits-20
    with another seed) and ``backbone_kwargs`` (non-shape options for feature extraction, e.g.
    ``output_stride``). Features are the globally average-pooled final feature map of the frozen backbone; the
    probe is a one-vs-rest logistic regression (scikit-learn, standardised features); the card reports its
    test mAP / CF1 / OF1 (%).
``export``
    ``dtype`` (``float16`` halves the file; the backbone loads it into float32) .
``quick``
    Dotted overrides (``run.trainer.max_epochs=1``) applied by ``--quick``: a run of a few seconds that
    exercises the whole recipe (tests).

A recipe is the ``pretrain`` kind of :func:`labelwise.config.load_config` (:class:`PretrainRecipe`; a file
with an ``architecture`` or ``probe`` section): the same YAML checks, dotted ``key=value`` overrides checked
against the schema (``run.trainer.max_epochs=2``), and errors naming the file and the key.

Examples
--------
>>> from labelwise.config import load_config
>>> recipe = load_config("pretrain/md_resnet10t", ["run.trainer.max_epochs=1"], check=False)
>>> type(recipe).__name__, recipe.architecture.backbone, recipe.run.trainer.max_epochs
('PretrainRecipe', 'resnet10t', 1)
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from .config import ConfigSchema, ConfigSection, DataConfig, RunConfig

__all__ = [
    "PretrainRecipe",
    "load_recipe",
    "pretrain",
    "extract_features",
    "linear_probe",
    "device_description",
]

log = logging.getLogger(__name__)

class ArchitectureSection(ConfigSection):
    """The ``architecture`` section: the backbone and the options that define its weight shapes."""

    backbone: str = Field(..., min_length=1, description="timm name of the backbone.")
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict, description="Options that define the shapes.")


class ProbeSection(ConfigSection):
    """The ``probe`` section: the held-out task of the card's linear probe."""

    data: DataConfig
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict, description="Non-shape options for features.")


class ExportSection(ConfigSection):
    """The ``export`` section."""

    dtype: Literal["float16", "float32", "bfloat16"] = "float32"


class PretrainRecipe(ConfigSchema):
    """A pretraining recipe (module documentation): the ``pretrain`` configuration kind."""

    name: str = Field(..., min_length=1, description="Weights name: <name>.safetensors, <name>.json, <name>.md.")
    seed: int = 0
    description: str = ""
    architecture: ArchitectureSection
    run: RunConfig
    probe: ProbeSection
    export: ExportSection = Field(default_factory=ExportSection)
    quick: list[str] = Field(default_factory=list, description="Dotted overrides applied by --quick.")

    KIND: ClassVar[str] = "pretrain"

    def check(self, *, registered: bool = True) -> None:
        """Finite numbers; the run section with the architecture filled in is a valid run configuration."""
        super().check(registered=registered)
        from .config import ConfigError, load_config

        recipe = self.to_recipe()
        try:
            _run_config(recipe, None, None, check=registered)
        except ConfigError as exc:
            raise ConfigError([(f"run.{k}" if k else "run", m) for k, m in exc.errors]) from None
        if registered:
            try:
                load_config({"data": {**recipe["probe"]["data"], "val_split": None}, "model": {"name": "ofml"}})
            except ConfigError as exc:
                raise ConfigError([(f"probe.{k}" if k else "probe", m) for k, m in exc.errors]) from None

    def to_recipe(self) -> dict[str, Any]:
        """The recipe as a plain dict of the keys the file (and the overrides) set, as :func:`pretrain` takes it."""
        return self.model_dump(mode="json", exclude_unset=True)


def load_recipe(source: str | os.PathLike[str] | dict[str, Any], overrides: Sequence[str] = (), *,
                quick: bool = False) -> dict[str, Any]:
    """Read and check a pretraining recipe (see the module docstring), with ``--quick`` and dotted overrides.

    The recipe goes through :func:`labelwise.config.load_config` (``kind="pretrain"``); with ``quick`` the
    recipe's own ``quick`` overrides are applied first, then ``overrides``.

    Returns
    -------
    dict
        The recipe's keys (:meth:`PretrainRecipe.to_recipe`) and ``_source``, the file it came from.

    Raises
    ------
    FileNotFoundError
        The recipe file does not exist.
    labelwise.config.ConfigError
        A missing or unknown key, or an unusable value (named, with the file).

    Examples
    --------
    >>> load_recipe({"name": "x"})
    Traceback (most recent call last):
    ...
    labelwise.config.ConfigError: architecture: required key is missing; run: required key is missing; probe: required key is missing
    """
    from .config import read_config, validate_config

    raw, src = read_config(source)
    extra = list(raw.get("quick") or []) if quick and isinstance(raw.get("quick"), list) else []
    recipe = validate_config(raw, [*extra, *overrides], kind="pretrain", source=src).to_recipe()
    recipe["_source"] = src or "<dict>"
    return recipe


def device_description(device: str | torch.device) -> str:
    """A one-line description of the compute device (GPU name, or CPU model and thread count).

    Examples
    --------
    >>> "CPU" in device_description("cpu")
    True
    """
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(dev)} (CUDA), {os.cpu_count()} CPU cores"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), " \
           f"{os.cpu_count()} cores visible"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


@torch.no_grad()
def extract_features(backbone: torch.nn.Module, dataset: Any, *, batch_size: int = 256,
                     device: str | torch.device = "cpu", num_workers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Globally average-pooled features of a frozen backbone over a dataset (a feature cache for frozen heads).

    Parameters
    ----------
    backbone : labelwise.models.Backbone
        Any module with ``pooled_features(images)``.
    dataset : Dataset
        Items ``{"input": Tensor, "target": Tensor}`` (labelwise datasets).

    Returns
    -------
    (features float32 [N, D], targets uint8 [N, C])

    Examples
    --------
    >>> import torch
    >>> from labelwise.data.base import ArrayDataset
    >>> from labelwise.models import Backbone
    >>> ds = ArrayDataset(torch.rand(3, 3, 32, 32), torch.tensor([[1, 0], [0, 1], [1, 1]]), ["a", "b"])
    >>> f, y = extract_features(Backbone("test_resnet"), ds)
    >>> f.shape, y.shape
    ((3, 96), (3, 2))
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    was_training = backbone.training
    backbone.eval().to(device)
    feats, targets = [], []
    for batch in loader:
        x = batch["input"].to(device, non_blocking=True).float()
        feats.append(backbone.pooled_features(x).float().cpu())
        targets.append(batch["target"].cpu())
    backbone.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(targets).numpy().astype(np.uint8)


def linear_probe(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], *,
                 c: float = 1.0, seed: int = 0) -> dict[str, float]:
    """One-vs-rest logistic regression on standardised features; test mAP / CF1 / OF1 in percent.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = (rng.random((200, 3)) < 0.4).astype(np.uint8)
    >>> x = y * 4.0 + rng.normal(size=(200, 3))
    >>> linear_probe((x[:150], y[:150]), (x[150:], y[150:]))["mAP"] > 90
    True
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    from .metrics import multilabel_report

    x_tr, y_tr = train
    x_te, y_te = test
    keep = (y_tr.min(axis=0) != y_tr.max(axis=0))  # classes with both values in the training set
    scaler = StandardScaler().fit(x_tr)
    clf = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000, random_state=seed))
    clf.fit(scaler.transform(x_tr), y_tr[:, keep])
    scores = np.zeros(y_te.shape, dtype=np.float64)
    scores[:, keep] = clf.predict_proba(scaler.transform(x_te))
    rep = multilabel_report(torch.from_numpy(scores[:, keep]), torch.from_numpy(y_te[:, keep]), 0.5)
    return {"mAP": 100 * float(rep["mAP"]), "CF1": 100 * float(rep["CF1"]), "OF1": 100 * float(rep["OF1"]),
            "classes": int(keep.sum())}


def _run_config(recipe: dict[str, Any], device: str | None, workers: int | None, *, check: bool = True) -> Any:
    from .config import load_config

    run = copy.deepcopy(recipe["run"])
    arch = recipe["architecture"]
    model = run.setdefault("model", {})
    model["backbone"] = arch["backbone"]
    model["backbone_kwargs"] = {**(arch.get("backbone_kwargs") or {}), **(model.get("backbone_kwargs") or {})}
    model.setdefault("pretrained", False)
    run.setdefault("name", f"pretrain-{recipe['name']}")
    trainer = run.setdefault("trainer", {})
    trainer.setdefault("seed", int(recipe.get("seed", 0)))
    trainer.update({"progress": False, "tensorboard": False, "report": False, "save_checkpoints": True})
    if device is not None:
        trainer["accelerator"] = "cuda" if device.startswith("cuda") else device
        if device.startswith("cuda"):
            trainer.setdefault("precision", "bf16-mixed")
            trainer.setdefault("pin_memory", True)
    if workers is not None:
        trainer["num_workers"] = int(workers)
    return load_config(run, kind="run", check=check)


def _write_card_markdown(card: dict[str, Any], path: Path) -> None:
    probe = card["probe"]
    lines = [
        f"# {card['name']}",
        "",
        card.get("description", "").strip(),
        "",
        f"- architecture: `{card['architecture']['backbone']}` with `{json.dumps(card['architecture']['backbone_kwargs'])}`"
        f" ({card['parameters']:,} parameters, stored as {card['dtype']}, {card['bytes']:,} bytes)",
        f"- file: `{card['file']}`, sha256 `{card['sha256']}`",
        f"- pretraining data: `{card['data']['name']}` ({card['data']['classes']} classes), options "
        f"`{json.dumps(card['data']['options'])}`",
        f"- training: {card['training']['epochs']} epoch(s), best validation mAP {card['training']['best_val_mAP']:.2f} "
        f"at epoch {card['training']['best_epoch']}; seed {card['seed']}",
        f"- linear probe on `{probe['dataset']}` (held out; options `{json.dumps(probe['options'])}`): "
        f"test mAP {probe['mAP']:.2f}, CF1 {probe['CF1']:.2f}, OF1 {probe['OF1']:.2f}",
        f"- device: {card['device']}; wall time {card['wall_seconds']:.0f} s; torch {card['torch']}",
        f"- recipe: `{card['recipe_source']}`{' (quick)' if card['quick'] else ''}; command `{card['command']}`; "
        f"commit `{card['commit']}`",
        "",
        "Load by name: `model: {backbone: " + card["architecture"]["backbone"] + ", weights: " + card["name"] + "}`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def pretrain(recipe: dict[str, Any], output_dir: str | os.PathLike[str], *, device: str | None = None,
             workers: int | None = None, command: str = "", quick: bool = False,
             run_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Run a recipe: train, export the backbone (safetensors), probe it, write the card (JSON + markdown).

    Parameters
    ----------
    recipe : dict
        From :func:`load_recipe`.
    output_dir : path
        Receives ``<name>.safetensors``, ``<name>.json``, ``<name>.md`` and the training run under ``run/``.
        Pass :data:`labelwise.models.shipped.SHIPPED_DIR` to ship the weights in the package.
    device : str, optional
        ``cpu`` or ``cuda`` (overrides ``run.trainer.accelerator``).
    workers : int, optional
        DataLoader workers (overrides ``run.trainer.num_workers``).
    command : str
        The command line, recorded in the card.
    quick : bool
        Recorded in the card (the recipe was loaded with ``quick=True``).
    run_dir : path, optional
        Directory of the training run (checkpoints, metrics); default ``<output_dir>/<name>-run`` (with a
        timestamp suffix when that directory already holds a run).

    Returns
    -------
    dict
        The model card.
    """
    from safetensors.torch import save_file

    from .models import Backbone
    from .models.hybrid_vit import hybrid_architecture
    from .models.shipped import sha256_file
    from .run import build_datasets, train_from_config

    t0 = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = str(recipe["name"])
    cfg = _run_config(recipe, device, workers)
    run_dir = Path(run_dir) if run_dir is not None else out / f"{name}-run"
    if run_dir.exists() and any(run_dir.iterdir()):  # a re-run: keep the earlier run, train in a fresh directory
        run_dir = run_dir.with_name(f"{run_dir.name}-{_dt.datetime.now(_dt.UTC).strftime('%Y%m%d-%H%M%S')}")
    log.info("pretraining %s on %s", name, cfg.data.name)
    torch.manual_seed(cfg.trainer.seed)  # the head and backbone initialisation (train_from_config does not seed it)
    np.random.seed(cfg.trainer.seed)
    summary = train_from_config(cfg, output_dir=run_dir, evaluate_test=False, log=log.info)
    best = run_dir / "checkpoints" / "best.safetensors"
    if not best.is_file():
        best = run_dir / "checkpoints" / "last.safetensors"
    arch = recipe["architecture"]
    # the card's architecture: shape-defining options only (a hybrid stem's initial weights and freezing dropped)
    arch_kwargs = hybrid_architecture(arch.get("backbone_kwargs") or {})
    body = Backbone(arch["backbone"], **arch_kwargs)
    body.load_weights(best, strict=True)

    dtype = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}[
        str((recipe.get("export") or {}).get("dtype", "float32"))]
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous().cpu()
             for k, v in body.model.state_dict().items()}
    weights_path = out / f"{name}.safetensors"
    save_file(state, str(weights_path), metadata={"name": name, "backbone": arch["backbone"]})

    # linear probe on the held-out task, from the exported file (what users load)
    probe_cfg = recipe["probe"]
    probe_kwargs = {**arch_kwargs, **(probe_cfg.get("backbone_kwargs") or {})}
    frozen = Backbone(arch["backbone"], weights=weights_path, **probe_kwargs)
    from .config import load_config

    pcfg = load_config({"data": {**probe_cfg["data"], "val_split": None}, "model": {"name": "ofml"},
                        "trainer": {"seed": int(recipe.get("seed", 0))}})
    splits = build_datasets(pcfg, splits=("train", "test"))
    splits.train.transform = splits.test.transform  # no augmentation for the probe's features
    dev = device or ("cuda" if cfg.trainer.accelerator in ("cuda", "gpu") else "cpu")
    feats_train = extract_features(frozen, splits.train, device=dev)
    feats_test = extract_features(frozen, splits.test, device=dev)
    probe = linear_probe(feats_train, feats_test, seed=int(recipe.get("seed", 0)))

    card = {
        "name": name,
        "description": recipe.get("description", ""),
        "file": weights_path.name,
        "sha256": sha256_file(weights_path),
        "bytes": weights_path.stat().st_size,
        "dtype": str(dtype).replace("torch.", ""),
        "parameters": int(sum(p.numel() for p in body.model.parameters())),
        "architecture": {"backbone": arch["backbone"], "backbone_kwargs": arch_kwargs,
                         "feature_channels": body.num_features},
        "data": {"name": cfg.data.name, "options": dict(cfg.data.options), "image_size": cfg.data.image_size,
                 "classes": len(summary.get("class_names") or [])},
        "seed": int(cfg.trainer.seed),
        "training": {"epochs": int(summary.get("epochs") or 0), "best_epoch": summary.get("best_epoch"),
                     "best_val_mAP": 100 * float(summary.get("best_metric") or 0.0),
                     "stopped_early": bool(summary.get("stopped_early"))},
        "probe": {"dataset": pcfg.data.name, "options": dict(pcfg.data.options),
                  "image_size": pcfg.data.image_size, "features": "global average pool of the frozen backbone",
                  "classifier": "one-vs-rest logistic regression (C=1, standardised features)",
                  "train_images": int(feats_train[0].shape[0]), "test_images": int(feats_test[0].shape[0]),
                  **{k: v for k, v in probe.items()}},
        "recipe": {k: v for k, v in recipe.items() if not k.startswith("_")},
        "recipe_source": recipe.get("_source", "<dict>"),
        "quick": bool(quick),
        "device": device_description(dev),
        "torch": torch.__version__,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "commit": _git_commit(),
    }
    from .run.formatting import _jsonable

    (out / f"{name}.json").write_text(json.dumps(_jsonable(card), indent=2) + "\n", encoding="utf-8")
    _write_card_markdown(card, out / f"{name}.md")
    return card


# -- command line: labelwise pretrain ------------------------------------------------------------------
def add_parser(sub: Any) -> None:
    """Add ``labelwise pretrain`` to the subcommands of the ``labelwise`` parser."""
    p = sub.add_parser(
        "pretrain", help="pretrain a backbone with a recipe and export shipped weights + model card",
        description="Run a pretraining recipe (shipped pretrain/* recipes or a YAML file): train the backbone on its corpus, export "
                    "<name>.safetensors and the model card <name>.json/.md (checksum, recipe, data, seed, linear "
                    "probe on a held-out task, device, wall time). See docs/pretrained.md.")
    p.add_argument("--config", "-c", required=True, help="pretraining recipe (shipped pretrain/* recipes or a YAML file)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides of recipe keys (YAML values)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--output", "-o", default=None, help="output directory (default: runs/pretrain/<name>)")
    where.add_argument("--ship", action="store_true",
                       help="write the weights and card into the package (labelwise/weights/), loadable by name")
    p.add_argument("--quick", action="store_true", help="apply the recipe's 'quick' overrides (a run of seconds)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: the recipe's trainer.accelerator)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader worker processes")
    p.set_defaults(func=_cmd_pretrain)


def _cmd_pretrain(args: Any) -> int:
    import sys

    from .models.shipped import SHIPPED_DIR

    recipe = load_recipe(args.config, args.overrides, quick=args.quick)
    if args.ship:
        out = SHIPPED_DIR
    else:
        out = Path(args.output) if args.output else Path("runs") / "pretrain" / str(recipe["name"])
    command = "labelwise pretrain " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["pretrain"] else sys.argv[1:])
    run_dir = Path("runs") / "pretrain" / f"{recipe['name']}-run" if args.ship else None  # keep the package clean
    card = pretrain(recipe, out, device=args.device, workers=args.workers, command=command.strip(), quick=args.quick,
                    run_dir=run_dir)
    probe = card["probe"]
    print(f"{card['name']}: {out / card['file']} ({card['bytes']:,} bytes, sha256 {card['sha256'][:16]}...); "
          f"best val mAP {card['training']['best_val_mAP']:.2f}; linear probe on {probe['dataset']}: mAP "
          f"{probe['mAP']:.2f}; {card['wall_seconds']:.0f} s on {card['device']}", flush=True)
    return 0
