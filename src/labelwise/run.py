"""Python API of a configured run: build data, model, loss and trainer from a :class:`~labelwise.config.RunConfig`.

``labelwise train`` is :func:`train_from_config`, ``labelwise evaluate`` is :func:`evaluate_checkpoint`;
both are usable directly from Python::

    from labelwise.config import load_config
    from labelwise.run import train_from_config
    summary = train_from_config(load_config("quickstart", ["trainer.max_epochs=2"]))
    summary["test_metrics"]["mAP"], summary["output_dir"]

Run directories are protected: the run holds ``.labelwise.lock`` for its whole life (a second run writing into
the same directory is refused, naming the holder; see :mod:`labelwise.engine.run_lock`), and a new run refuses
a non-empty directory (a previous run, or files that are not a run) unless ``overwrite=True``
(``labelwise train --overwrite``); continuing a run with ``resume`` writes into its own directory. Both are
:func:`labelwise.engine.run_dir.claim_output_dir`, shared by every command that writes an output directory.

What a run directory holds after :func:`train_from_config`::

    config.yaml               the resolved configuration (load it again with load_config)
    metrics.csv, tb/          one row per epoch; TensorBoard events
    checkpoints/best.*        safetensors weights + JSON sidecar (run config, class names, thresholds)
    checkpoints/last.*        the same plus the resume state (optimiser, schedule, RNG, ...)
    test_metrics.json         metrics of the best checkpoint on the test split
    report/*.png              per-class AP, precision-recall curves (val and test), learning curves
    report/index.html         the self-contained report page (labelwise.analysis.html_report); rebuilt
                              from report/predictions_{val,test}.npz by `labelwise report RUN`
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import DATA_LOSS_OPTIONS, ConfigError, DataConfig, RunConfig, build_transform, load_config
from .data.dataset_kind import is_image_dataset
from .engine.run_dir import RUN_FILES, claim_output_dir, prepare_output_dir  # noqa: F401 (RUN_FILES: re-exported)

__all__ = [
    "DataSplits",
    "build_datasets",
    "load_run_split",
    "build_transform",
    "build_model",
    "build_loss",
    "build_sampler",
    "build_callbacks",
    "data_loss_options",
    "train_from_config",
    "prepare_output_dir",
    "evaluate_checkpoint",
    "load_model",
    "format_metrics",
]


@dataclass
class DataSplits:
    """The datasets of a run (``val``/``test`` may be None) and their common class names."""

    train: Any
    val: Any | None
    test: Any | None
    class_names: list[str]


# -- data ---------------------------------------------------------------------------------------------
def _message(exc: BaseException) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def _load_split(data: DataConfig, split: str, extra: dict[str, Any] | None = None) -> Any:
    from .data import load_dataset

    options = {**data.options, **(extra or {})}
    try:
        return load_dataset(data.name, root=data.root, split=split, **options)
    except TypeError as exc:  # an option the factory does not take
        raise ConfigError([("data.options", _message(exc))]) from exc
    except KeyError as exc:
        raise ConfigError([("data", _message(exc))]) from exc


def _with_classes(data: DataConfig, split: str, ds: Any, class_names: list[str]) -> Any:
    """Reload ``split`` with the training class list when it inferred a different one (e.g. CSV lists)."""
    if list(ds.class_names) == class_names:
        return ds
    if "class_names" not in data.options:
        try:
            again = _load_split(data, split, {"class_names": class_names})
        except ConfigError:
            again = None
        if again is not None and list(again.class_names) == class_names:
            return again
    missing = sorted(set(class_names) - set(ds.class_names))
    extra = sorted(set(ds.class_names) - set(class_names))
    raise ValueError(
        f"dataset {data.name!r}: split {split!r} has different classes than {data.train_split!r}"
        f" (missing {missing[:10]}, extra {extra[:10]}); give data.options.class_names"
    )


def build_datasets(cfg: RunConfig, *, splits: Sequence[str] = ("train", "val", "test")) -> DataSplits:
    """Load the train/val/test datasets of ``cfg`` with their transforms.

    The validation set is ``data.val_split``, or, when it is null, a seeded iterative-stratified
    ``data.val_fraction`` of the training split (seed ``trainer.seed``). Validation and test splits get the
    evaluation transform and the training split's class list.

    Parameters
    ----------
    cfg : RunConfig
    splits : sequence of {"train", "val", "test"}
        Which datasets to build (the training split is always loaded: it defines the classes).

    Returns
    -------
    DataSplits

    Examples
    --------
    >>> from labelwise.config import load_config
    >>> cfg = load_config({"data": {"name": "multidigits20", "image_size": 32,
    ...                             "options": {"n_train": 64, "n_val": 32, "n_test": 32}},
    ...                    "model": {"name": "ofml"}})                     # doctest: +SKIP
    >>> d = build_datasets(cfg)                                          # doctest: +SKIP
    >>> len(d.train), len(d.val), len(d.class_names)                     # doctest: +SKIP
    (64, 32, 20)
    """
    data = cfg.data
    unknown = set(splits) - {"train", "val", "test"}
    if unknown:
        raise ValueError(f"splits must be among train, val, test; got {sorted(unknown)}")
    train_full = _load_split(data, data.train_split)
    class_names = list(train_full.class_names)
    image = is_image_dataset(train_full)
    if image and data.image_size is None:
        raise ConfigError([("data.image_size", f"dataset {data.name!r} holds images: set data.image_size")])
    train_tf = build_transform(data, train=True) if image else None
    eval_tf = build_transform(data, train=False) if image else None

    train = train_full
    val = None
    if data.val_split is None:
        from .data.splits import iterative_train_test_split

        if len(train_full) < 2:
            raise ValueError(f"dataset {data.name!r}: cannot carve a validation set from {len(train_full)} sample(s)")
        tr_idx, va_idx = iterative_train_test_split(train_full.targets, test_size=data.val_fraction, seed=cfg.trainer.seed)
        train = train_full.view(tr_idx, transform=train_tf) if image else train_full.view(tr_idx)
        if "val" in splits:
            val = train_full.view(va_idx, transform=eval_tf) if image else train_full.view(va_idx)
    else:
        if image:
            train_full.transform = train_tf
        if "val" in splits:
            val = _with_classes(data, data.val_split, _load_split(data, data.val_split), class_names)
            if image:
                val.transform = eval_tf
    test = None
    if "test" in splits and data.test_split is not None:
        test = _with_classes(data, data.test_split, _load_split(data, data.test_split), class_names)
        if image:
            test.transform = eval_tf
    return DataSplits(train=train, val=val, test=test, class_names=class_names)


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


def _input_features(ds: Any) -> int | None:
    if len(ds) == 0:
        return None
    x = ds.load_input(0)
    if isinstance(x, torch.Tensor | np.ndarray) and x.ndim == 1:
        return int(x.shape[0])
    return None


# -- model and loss ----------------------------------------------------------------------------------
def _model_kwargs_for(cfg: RunConfig, train: Any | None) -> dict[str, Any]:
    """Model options, with ``in_features`` filled in from tabular data when the model takes it."""
    import inspect

    from .models import MODELS

    kwargs = cfg.model.kwargs
    if "in_features" not in kwargs and train is not None:
        factory = MODELS.get(cfg.model.name)
        try:
            takes = "in_features" in inspect.signature(factory).parameters
        except (TypeError, ValueError):
            takes = False
        d = _input_features(train) if takes else None
        if d is not None:
            kwargs["in_features"] = d
    return kwargs


def build_model(cfg: RunConfig, num_classes: int, *, kwargs: dict[str, Any] | None = None) -> torch.nn.Module:
    """``create_model(cfg.model.name, num_classes=num_classes, **options)`` with errors naming ``model.<key>``.

    Examples
    --------
    >>> from labelwise.config import load_config
    >>> cfg = load_config({"data": {"name": "csv"}, "model": {"name": "mlp", "in_features": 5, "hidden": [8]}})
    >>> build_model(cfg, 3)(torch.zeros(2, 5))["logits"].shape
    torch.Size([2, 3])
    """
    from .models import create_model

    options = cfg.model.kwargs if kwargs is None else kwargs
    try:
        return create_model(cfg.model.name, num_classes=num_classes, **options)
    except KeyError as exc:
        raise ConfigError([("model.name", _message(exc))]) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError([("model", str(exc))]) from exc


def _load_initial_weights(model: torch.nn.Module, cfg: RunConfig, weights: str) -> Any:
    """Load the head of a whole-model ``model.weights`` file too; errors name ``model.weights``."""
    from .models.initial_weights import load_initial_weights

    try:
        return load_initial_weights(model, weights, reinit_head=cfg.model.reinit_head)
    except ValueError as exc:
        raise ConfigError([("model.weights", str(exc))]) from exc


def data_loss_options(cfg: RunConfig, train: Any | None) -> dict[str, Any]:
    """Loss options computed from the training split when the config leaves them out.

    ``weighted_bce`` needs ``positive_ratio`` (the fraction of positives per class among the known labels
    of the training split, as the pedestrian-attribute literature computes it); every other loss needs
    nothing. Options given in the config are never replaced.

    Examples
    --------
    >>> import numpy as np
    >>> from labelwise.config import load_config
    >>> from labelwise.data import ArrayDataset
    >>> cfg = load_config({"data": {"name": "csv"}, "model": {"name": "ofml"}, "loss": {"name": "weighted_bce"}})
    >>> train = ArrayDataset(np.zeros((4, 2)), [[1, 0], [1, 1], [0, 0], [1, 0]], ["a", "b"])
    >>> data_loss_options(cfg, train)
    {'positive_ratio': [0.75, 0.25]}
    """
    missing = [k for k in DATA_LOSS_OPTIONS.get(cfg.loss.name, ()) if k not in cfg.loss.kwargs]
    if not missing or train is None:
        return {}
    from .losses import positive_ratio

    mask = getattr(train, "known_mask", None)
    ratio = positive_ratio(np.asarray(train.targets), None if mask is None else np.asarray(mask))
    return {"positive_ratio": [float(v) for v in ratio.tolist()]}


def build_loss(cfg: RunConfig, train: Any | None = None, *, kwargs: dict[str, Any] | None = None) -> torch.nn.Module:
    """``create_loss(cfg.loss.name, **options)`` with errors naming ``loss``.

    Options that depend on the data (:data:`DATA_LOSS_OPTIONS`, e.g. ``weighted_bce``'s ``positive_ratio``)
    are computed from ``train`` when the config leaves them out (:func:`data_loss_options`); ``kwargs``
    replaces the options altogether (already completed by the caller).

    Examples
    --------
    >>> from labelwise.config import load_config
    >>> cfg = load_config({"data": {"name": "csv"}, "model": {"name": "ofml"}, "loss": {"name": "focal"}})
    >>> type(build_loss(cfg)).__name__
    'FocalLoss'
    """
    from .losses import create_loss

    options = {**cfg.loss.kwargs, **data_loss_options(cfg, train)} if kwargs is None else kwargs
    missing = [k for k in DATA_LOSS_OPTIONS.get(cfg.loss.name, ()) if k not in options]
    if missing:
        raise ConfigError([(f"loss.{k}", f"loss {cfg.loss.name!r} needs {k}: set it in the config or build "
                            "the loss with the training split") for k in missing])
    try:
        return create_loss(cfg.loss.name, **options)
    except KeyError as exc:
        raise ConfigError([("loss.name", _message(exc))]) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError([("loss", str(exc))]) from exc


def build_sampler(cfg: RunConfig, train: Any) -> Any:
    """The global batch sampler of the training split described by ``cfg.sampler`` (errors name ``sampler``).

    ``random`` is the trainer's own :class:`~labelwise.engine.samplers.RandomBatchSampler` (a seeded
    permutation per epoch; ``shuffle: false`` keeps the dataset order); ``hard``, ``adaptive`` and ``chain``
    are the loss-based samplers of :mod:`labelwise.sampling` (a batch sampler and a trainer callback that
    reads the training step's per-sample losses). ``batch_size``, ``seed`` and ``drop_last`` come from
    ``cfg.trainer``.

    Examples
    --------
    >>> import numpy as np
    >>> from labelwise.config import load_config
    >>> from labelwise.data import ArrayDataset
    >>> train = ArrayDataset(np.zeros((8, 2), np.float32), np.eye(8, 2, dtype=np.uint8), class_names=["a", "b"])
    >>> cfg = load_config({"data": {"name": "csv"}, "model": {"name": "mlp"}, "trainer": {"batch_size": 4},
    ...                    "sampler": {"name": "hard", "selection_pressure": 8.0, "warmup_epochs": 1}})
    >>> build_sampler(cfg, train)
    HardBatchSampler(num_samples=8, batch_size=4, selection_pressure=8.0, warmup_epochs=1, imbalance_weights=False, seed=0)
    """
    from .engine.samplers import RandomBatchSampler
    from .sampling import create_sampler

    t, options = cfg.trainer, cfg.sampler.kwargs
    try:
        if cfg.sampler.name == "random":
            return RandomBatchSampler(len(train), t.batch_size, shuffle=options.get("shuffle", True),
                                      drop_last=t.drop_last, seed=t.seed)
        return create_sampler(cfg.sampler.name, train, batch_size=t.batch_size, seed=t.seed, drop_last=t.drop_last,
                              **options)
    except KeyError as exc:
        raise ConfigError([("sampler.name", _message(exc))]) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError([("sampler", str(exc))]) from exc


def build_callbacks(cfg: RunConfig) -> list[Any]:
    """The trainer callbacks of the ``callbacks`` list, in order (errors name ``callbacks.<i>``).

    Examples
    --------
    >>> from labelwise.config import load_config
    >>> cfg = load_config({"data": {"name": "csv"}, "model": {"name": "mlp"},
    ...                    "callbacks": [{"name": "epoch_checkpoints", "every": 2}]})
    >>> [type(cb).__name__ for cb in build_callbacks(cfg)]
    ['EpochCheckpoints']
    """
    from .engine.callbacks import CALLBACKS

    out = []
    for i, item in enumerate(cfg.callbacks):
        try:
            out.append(CALLBACKS.get(item.name)(**item.kwargs))
        except KeyError as exc:
            raise ConfigError([(f"callbacks.{i}.name", _message(exc))]) from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError([(f"callbacks.{i}", str(exc))]) from exc
    return out


def _evaluate_predictions(trainer: Any, preds: Any, class_names: list[str]) -> dict[str, Any]:
    """Metrics of predictions exactly as the trainer computes them for validation."""
    public = getattr(trainer, "metrics_from_predictions", None)
    if public is not None:
        return dict(public(preds, class_names))
    return dict(trainer.metrics_from_predictions(preds, class_names))


# -- training -----------------------------------------------------------------------------------------
def train_from_config(
    cfg: RunConfig,
    *,
    output_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    evaluate_test: bool = True,
    callbacks: Iterable[Any] = (),
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train the run described by ``cfg``, then evaluate the best checkpoint on the test split.

    Parameters
    ----------
    cfg : RunConfig
        The validated configuration (see :func:`labelwise.config.load_config`).
    output_dir : str or path, optional
        Run directory; default ``cfg.output_dir``, else ``runs/<name>-<timestamp>``.
    resume : str or path, optional
        A ``last`` checkpoint (or a run directory) to continue from (model, optimiser, schedule, EMA, RNG,
        sampler and callback states, and ``metrics.csv``); ``cfg`` must name the same ``sampler`` and
        ``callbacks`` as the interrupted run.
    evaluate_test : bool
        Evaluate the best checkpoint on ``data.test_split`` (when set) and write ``test_metrics.json`` and the
        test report.
    callbacks : iterable of labelwise.engine.Callback
        Extra trainer hooks, after those of ``cfg.callbacks``.
    log : callable, optional
        Receives one-line progress messages (the CLI prints them).
    overwrite : bool
        Allow a new run (no ``resume``) in a non-empty directory. A previous labelwise run there is replaced
        (its ``config.yaml``, ``metrics.csv``, ``test_metrics.json``, ``checkpoints/``, ``tb/`` and
        ``report/`` are removed first); in a directory that is not a run, files with those names are
        overwritten and other files are left alone. False (default): such a directory is refused with a
        ``FileExistsError``.

    Raises
    ------
    labelwise.engine.RunLockedError
        Another live run holds the run directory (the message names its pid, host and command).
    FileExistsError
        The run directory is not empty and neither ``resume`` nor ``overwrite`` was given.
    FileNotFoundError
        ``resume`` names no checkpoint or run directory.
    labelwise.engine.CheckpointWriteError
        A checkpoint could not be written (disk full...); the previous ``last`` checkpoint is intact.
    labelwise.engine.NonFiniteLossError
        The training loss became NaN/inf; the message names the epoch, step and learning rate.

    Returns
    -------
    dict
        The trainer's summary (``best_metric``, ``best_epoch``, ``last_metrics``, checkpoints, ...) plus
        ``output_dir``, ``class_names``, ``val_metrics`` (best checkpoint), ``test_metrics`` (or None),
        ``report`` (written PNG paths) and ``seconds`` (wall time).

    Examples
    --------
    >>> from labelwise.config import load_config
    >>> cfg = load_config("quickstart", ["trainer.max_epochs=1"])  # doctest: +SKIP
    >>> summary = train_from_config(cfg, output_dir="runs/try")                # doctest: +SKIP
    >>> round(summary["test_metrics"]["mAP"], 3)                                # doctest: +SKIP
    0.9
    """
    from .engine.checkpoint import check_checkpoint_exists

    t0 = time.perf_counter()
    say = log or (lambda msg: None)
    if resume is not None:
        check_checkpoint_exists(resume)  # before a run directory is chosen or created
    run_dir = _run_dir_for(cfg, output_dir, resume)
    # DDP re-launches this command for the other ranks: they must use the same (timestamped) run dir.
    inherited = os.environ.get(_RUN_DIR_ENV)
    if inherited and output_dir is None and not cfg.output_dir and resume is None:
        run_dir = Path(inherited)
    os.environ[_RUN_DIR_ENV] = str(run_dir)
    try:
        # the lock and the non-empty check, in the writing process only (the other ranks of DDP do not write)
        with claim_output_dir(run_dir, overwrite=overwrite, resume=resume is not None, log=say):
            return _train(cfg, run_dir, resume=resume, evaluate_test=evaluate_test, callbacks=callbacks, say=say,
                          t0=t0)
    finally:
        os.environ.pop(_RUN_DIR_ENV, None)


_RUN_DIR_ENV = "LABELWISE_RUN_DIR"


def _train(cfg: RunConfig, run_dir: Path, *, resume: str | os.PathLike | None, evaluate_test: bool,
           callbacks: Iterable[Any], say: Callable[[str], None], t0: float) -> dict[str, Any]:
    from .engine import Trainer, seed_everything
    from .engine.checkpoint import load_checkpoint

    # Seed before anything random is created (validation carve-out, transforms, model initialisation);
    # Trainer.fit seeds again with the same seed before the first batch is drawn.
    seed_everything(cfg.trainer.seed, deterministic=cfg.trainer.deterministic)
    say(f"loading data {cfg.data.name!r}")
    data = build_datasets(cfg)
    kwargs = _model_kwargs_for(cfg, data.train)
    model = build_model(cfg, len(data.class_names), kwargs=kwargs)
    if kwargs.get("weights"):
        _load_initial_weights(model, cfg, kwargs["weights"])  # logs what it matched (logger of initial_weights)
    resolved = cfg.model_copy(update={"output_dir": str(run_dir)})
    resolved_dict = resolved.to_dict()
    resolved_dict["model"].update(kwargs)  # e.g. in_features found from the data, so checkpoints rebuild it
    loss_extra = data_loss_options(cfg, data.train)
    resolved_dict["loss"].update(loss_extra)  # recorded, so the resolved config rebuilds the same loss
    criterion = build_loss(cfg, kwargs={**cfg.loss.kwargs, **loss_extra})
    if loss_extra:
        say(f"loss {cfg.loss.name}: {', '.join(loss_extra)} computed from the training split")
    sampler = build_sampler(cfg, data.train)
    trainer = Trainer(cfg.trainer, callbacks=[*build_callbacks(cfg), *callbacks], output_dir=run_dir,
                      run_config=resolved_dict)
    say(
        f"training {cfg.model.name} on {cfg.data.name}: {len(data.train)} train / "
        f"{len(data.val) if data.val is not None else 0} val samples, {len(data.class_names)} classes -> {run_dir}"
    )
    if cfg.sampler.name != "random":
        say(f"batch sampler: {sampler!r}")
    summary = dict(trainer.fit(model, criterion, data.train, data.val, batch_sampler=sampler, resume=resume))
    summary["output_dir"] = str(run_dir)
    summary["class_names"] = data.class_names
    summary["val_metrics"] = None
    summary["test_metrics"] = None
    summary["report"] = sorted(str(p) for p in (run_dir / "report").glob("*.png")) if (run_dir / "report").is_dir() else []

    best = summary.get("best_checkpoint")
    if best is not None:
        ckpt = load_checkpoint(best, load_state=False)
        model.load_state_dict(ckpt.weights)
        summary["val_metrics"] = ckpt.meta.get("metrics")
    if evaluate_test and data.test is not None:
        say(f"evaluating the {'best' if best else 'final'} model on split {cfg.data.test_split!r}")
        preds = trainer.predict(model, data.test)
        metrics = _evaluate_predictions(trainer, preds, data.class_names)
        summary["test_metrics"] = metrics
        written = trainer.write_split_results("test", preds, metrics, dataset=data.test)  # the run dir's owner
        summary["report"] = sorted({*summary["report"], *map(str, written)})
    summary["seconds"] = time.perf_counter() - t0
    return summary


def _run_dir_for(cfg: RunConfig, output_dir: str | os.PathLike | None, resume: str | os.PathLike | None) -> Path:
    """``output_dir`` > ``cfg.output_dir`` > the run directory of ``resume`` > ``runs/<name>-<time>``."""
    if output_dir is not None:
        return Path(output_dir)
    if cfg.output_dir:
        return Path(cfg.output_dir)
    if resume is not None:
        p = Path(resume)
        if p.is_dir():
            return p.parent if p.name == "checkpoints" else p
        if p.parent.name == "checkpoints":
            return p.parent.parent
    return cfg.resolve_output_dir()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor | np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


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
    from .engine.checkpoint import load_checkpoint

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
    from .engine import Trainer

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


# -- display -------------------------------------------------------------------------------------------
_TABLE_KEYS = ("mAP", "CF1", "OF1", "CP", "CR", "OP", "OR")


def format_metrics(metrics: dict[str, Any], *, title: str = "", keys: Sequence[str] | None = None) -> str:
    """A plain-text table of the headline metrics (mAP, CF1, OF1, CP, CR, OP, OR and their top-k variants).

    Examples
    --------
    >>> print(format_metrics({"mAP": 0.91234, "CF1": 0.8, "OF1": 0.85, "CF1_top3": 0.7, "per_class_AP": [1]}))
    metric    value
    --------  ------
    mAP       0.9123
    CF1       0.8000
    OF1       0.8500
    CF1_top3  0.7000
    """
    if keys is None:
        base = [k for k in _TABLE_KEYS if k in metrics]
        topk = [k for k in metrics if any(k.startswith(b) and k != b and "top" in k.lower() for b in _TABLE_KEYS)]
        others = [k for k in ("mA", "instance_F1", "hamming_loss", "macro_AUC", "micro_F1", "macro_F1") if k in metrics]
        keys = base + topk + others
        if not keys:  # unknown evaluator: every scalar
            keys = [k for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    rows = []
    for k in keys:
        v = metrics.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            rows.append((k, f"{v:.4f}" if isinstance(v, float) else str(v)))
    w = max([len("metric")] + [len(k) for k, _ in rows])
    vw = max([len("value")] + [len(v) for _, v in rows])
    lines = ([title] if title else []) + [f"{'metric':<{w}}  {'value':<{vw}}".rstrip(), f"{'-' * w}  {'-' * vw}"]
    lines += [f"{k:<{w}}  {v}" for k, v in rows]
    return "\n".join(lines)
