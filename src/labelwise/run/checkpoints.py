"""A trained run loaded back: its model from a checkpoint (:func:`load_model`), its metrics on a split
(:func:`evaluate_checkpoint`, ``labelwise evaluate``) and a split of its dataset re-loaded from its
``config.yaml`` (:func:`load_run_split`, the report page's dataset loader).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..config import ConfigError, RunConfig, build_transform, load_config
from ..data.dataset_kind import is_image_dataset
from .build import _load_split, _with_classes, build_datasets, build_model

__all__ = ["load_run_split", "load_model", "evaluate_checkpoint"]


def load_run_split(run_dir: str | os.PathLike, split: str) -> tuple[Any | None, str]:
    """The ``split`` (``"val"`` or ``"test"``) of a run re-loaded from its ``config.yaml``.

    The report page's dataset loader (``labelwise report`` passes it to
    :func:`labelwise.analysis.html_report.write_html_report` for the error gallery's thumbnails). Never raises:
    a moved dataset must not prevent the rest of the page.

    Returns
    -------
    tuple
        ``(dataset, "")``, or ``(None, why not)``.

    Examples
    --------
    >>> import tempfile
    >>> load_run_split(tempfile.mkdtemp(), "val")[1].endswith("config.yaml is missing")
    True
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        return None, f"{cfg_path} is missing"
    try:
        import yaml

        raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        if "data" not in raw:
            return None, f"{cfg_path} has no data section (a run of the Python API): pass dataset= to rebuild it"
        cfg = load_config(raw, check=False)
        if split == "val":
            if cfg.data.val_split is None:
                return build_datasets(cfg, splits=("val",)).val, ""
            return _load_split(cfg.data, cfg.data.val_split), ""
        if cfg.data.test_split is None:
            return None, f"{cfg_path}: data.test_split is null"
        return _load_split(cfg.data, cfg.data.test_split), ""
    except Exception as exc:  # noqa: BLE001 - a moved dataset must not prevent the rest of the page
        return None, f"could not load the {split} split from {cfg_path}: {type(exc).__name__}: {exc}"


# -- checkpoints ---------------------------------------------------------------------------------------
def _rebuild_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Model options for rebuilding from a checkpoint: its weights replace any pretrained/initial weights."""
    out = dict(kwargs)
    if "pretrained" in out:
        out["pretrained"] = False
    if "weights" in out:
        out["weights"] = None
    return out


def load_model(checkpoint: str | os.PathLike, *, which: str = "best", device: str | torch.device = "cpu"
               ) -> tuple[torch.nn.Module, RunConfig, Any]:
    """Rebuild the model of a checkpoint and load its weights.

    Parameters
    ----------
    checkpoint : str or path
        A checkpoint (``.json``/``.safetensors``/prefix), its ``checkpoints`` directory or the run directory.
    which : {"best", "last"}
        Checkpoint picked when a directory is given.
    device : str or torch.device

    Returns
    -------
    model : nn.Module
        In eval mode, on ``device``.
    cfg : RunConfig
        The run configuration stored in the checkpoint.
    ckpt : labelwise.engine.checkpoint.Checkpoint
        The loaded checkpoint (``class_names``, ``thresholds``, ``meta``).

    Examples
    --------
    >>> model, cfg, ckpt = load_model("runs/quickstart")                   # doctest: +SKIP
    >>> ckpt.class_names[:3]                                                 # doctest: +SKIP
    ['0', '1', '2']
    """
    from ..engine.checkpoint import load_checkpoint

    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    ckpt = load_checkpoint(checkpoint, load_state=False, default=which)
    if not ckpt.run_config:
        raise ValueError(f"{ckpt.path}: the checkpoint has no run_config; it was not written by a configured run")
    if not ckpt.class_names:
        raise ValueError(f"{ckpt.path}: the checkpoint names no classes")
    cfg = load_config(ckpt.run_config, check=False)
    model = build_model(cfg, len(ckpt.class_names), kwargs=_rebuild_kwargs(cfg.model.kwargs))
    try:
        model.load_state_dict(ckpt.weights, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{ckpt.path}: weights do not match model {cfg.model.name!r}: {exc}") from exc
    return model.to(device).eval(), cfg, ckpt


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    *,
    split: str = "test",
    overrides: Iterable[str] = (),
    which: str = "best",
    progress: bool | None = None,
) -> dict[str, Any]:
    """Metrics of a checkpoint on a split of its dataset (or of another one, via ``data.*`` overrides).

    The model is rebuilt from the checkpoint's run configuration; the data section can be changed with
    dotted overrides (``data.root=...``, ``data.options.n_test=500``). Metrics are computed by the trainer's
    evaluator with the configuration's ``trainer.evaluator`` and ``trainer.threshold``, so they equal the
    metrics reported during training for the same split and weights.

    Parameters
    ----------
    checkpoint : str or path
        Checkpoint file or run directory.
    split : str
        Split name passed to the dataset factory (``"val"`` with a carved validation set rebuilds the same
        seeded carve-out).
    overrides : iterable of str
        ``data.*`` (and ``trainer.evaluator``/``trainer.threshold``/``trainer.eval_batch_size``/...) overrides.
    which : {"best", "last"}
        Checkpoint used when a directory is given.
    progress : bool, optional
        Show a progress bar (default: the run's ``trainer.progress``).

    Returns
    -------
    dict
        The metrics dict (``mAP``, ``CF1``, ``OF1``, ... per the evaluator) with ``"split"`` and
        ``"checkpoint"`` added.

    Examples
    --------
    >>> evaluate_checkpoint("runs/quickstart", split="test")["mAP"]        # doctest: +SKIP
    0.91
    """
    from ..engine import Trainer

    overrides = list(overrides)
    for o in overrides:
        key = str(o).partition("=")[0].strip()
        if not (key.startswith("data.") or key.startswith("trainer.")):
            raise ConfigError([(key, "only data.* and trainer.* keys can be overridden when evaluating a checkpoint")])
    model, cfg, ckpt = load_model(checkpoint, which=which)
    if overrides:
        cfg = load_config(cfg.to_dict(), overrides)
    if progress is not None:
        cfg = cfg.model_copy(update={"trainer": cfg.trainer.model_copy(update={"progress": bool(progress)})})
    data_cfg = cfg.data
    if split == "val" and data_cfg.val_split is None:
        data = build_datasets(cfg, splits=("val",))
        ds = data.val
    else:
        ds = _with_classes(data_cfg, split, _load_split(data_cfg, split), list(ckpt.class_names))
        if is_image_dataset(ds):
            if data_cfg.image_size is None:
                raise ConfigError([("data.image_size", "the dataset holds images: set data.image_size")])
            ds.transform = build_transform(data_cfg, train=False)
    if list(ds.class_names) != list(ckpt.class_names):
        raise ValueError(f"split {split!r} has classes {ds.class_names[:5]}... but the checkpoint {ckpt.class_names[:5]}...")
    trainer = Trainer(cfg.trainer.model_copy(update={"devices": 1, "num_nodes": 1, "strategy": "auto"}))
    metrics = trainer.evaluate(model, ds)
    metrics["split"] = split
    metrics["checkpoint"] = str(ckpt.path)
    return metrics
