"""Building the pieces of a run from a :class:`~labelwise.config.RunConfig`: the datasets
(:func:`build_datasets`), the model, the loss (with the options computed from the training split), the batch
sampler and the callbacks. Errors name the configuration key (``model.<key>``, ``loss``, ``sampler``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..config import DATA_LOSS_OPTIONS, ConfigError, DataConfig, RunConfig, build_transform
from ..data.dataset_kind import is_image_dataset

__all__ = [
    "DataSplits",
    "build_datasets",
    "build_model",
    "build_loss",
    "build_sampler",
    "build_callbacks",
    "data_loss_options",
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
    from ..data import load_dataset

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
        from ..data.splits import iterative_train_test_split

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

    from ..models import MODELS

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
    from ..models import create_model

    options = cfg.model.kwargs if kwargs is None else kwargs
    try:
        return create_model(cfg.model.name, num_classes=num_classes, **options)
    except KeyError as exc:
        raise ConfigError([("model.name", _message(exc))]) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError([("model", str(exc))]) from exc


def _load_initial_weights(model: torch.nn.Module, cfg: RunConfig, weights: str) -> Any:
    """Load the head of a whole-model ``model.weights`` file too; errors name ``model.weights``."""
    from ..models.initial_weights import load_initial_weights

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
    from ..losses import positive_ratio

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
    from ..losses import create_loss

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
    from ..engine.samplers import RandomBatchSampler
    from ..sampling import create_sampler

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
    from ..engine.callbacks import CALLBACKS

    out = []
    for i, item in enumerate(cfg.callbacks):
        try:
            out.append(CALLBACKS.create(item.name, **item.kwargs))
        except KeyError as exc:
            raise ConfigError([(f"callbacks.{i}.name", _message(exc))]) from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError([(f"callbacks.{i}", str(exc))]) from exc
    return out
