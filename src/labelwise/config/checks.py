"""Checks of a run configuration beyond its schema: numbers are finite, ``trainer.monitor`` is a metric, names
are registered and options are accepted by their factories (each problem a dotted key and a message).

``cfg`` is a :class:`~labelwise.config.RunConfig` (``check_finite``: any configuration kind); the schema module
imports this one, so the annotations do not name it."""

from __future__ import annotations

import difflib
import importlib.util
import math
from collections.abc import Callable, Iterable
from typing import Any

from ..registry import OptionError
from .errors import ConfigError
from .transform import build_transform

__all__ = ["DATA_LOSS_OPTIONS", "check_finite", "check_monitor", "check_registered"]

#: Loss options a run computes from the training split when the config leaves them out
#: (see :func:`labelwise.run.data_loss_options`).
DATA_LOSS_OPTIONS: dict[str, tuple[str, ...]] = {"weighted_bce": ("positive_ratio",)}


def check_registered(cfg: Any) -> None:
    """Names exist in their registries and options match the factories' signatures."""
    from ..data import DATASETS
    from ..losses import create_loss
    from ..models import MODELS

    errors: list[tuple[str, str]] = []

    def lookup(registry: Any, name: str, key: str) -> Callable[..., Any] | None:
        try:
            return registry.get(name)
        except KeyError as exc:
            errors.append((key, str(exc.args[0]) if exc.args else str(exc)))
            return None

    def options(registry: Any, name: str, given: dict[str, Any], section: str) -> None:
        try:
            registry.check_options(name, given, context=section)
        except OptionError as exc:
            errors.extend(exc.errors)

    dataset = lookup(DATASETS, cfg.data.name, "data.name")
    if dataset is not None:
        options(DATASETS, cfg.data.name, cfg.data.options, "data.options")
        for reserved in ("root", "split"):
            if reserved in cfg.data.options:
                errors.append((f"data.options.{reserved}", f"set data.{reserved if reserved == 'root' else 'train_split/val_split/test_split'} instead"))
    model = lookup(MODELS, cfg.model.name, "model.name")
    if model is not None:
        options(MODELS, cfg.model.name, cfg.model.kwargs, "model")
    try:
        from ..losses import LOSSES  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - older losses package without a public registry
        LOSSES = None
    loss_factory = lookup(LOSSES, cfg.loss.name, "loss.name") if LOSSES is not None else None
    if loss_factory is not None:
        options(LOSSES, cfg.loss.name, cfg.loss.kwargs, "loss")
    errors.extend(_sampler_errors(cfg))
    errors.extend(_callback_errors(cfg))
    from_data = [k for k in DATA_LOSS_OPTIONS.get(cfg.loss.name, ()) if k not in cfg.loss.kwargs]
    if not errors and LOSSES is not None and not from_data:
        try:  # losses are cheap: construct once so bad values surface now (unless the data fills options)
            create_loss(cfg.loss.name, **cfg.loss.kwargs)
        except (TypeError, ValueError, KeyError) as exc:
            errors.append(("loss", str(exc)))
    if not errors and cfg.data.image_size is not None and importlib.util.find_spec("labelwise.data.transforms"):
        for train in (True, False):  # preset names and normalisation are checked by building the transforms
            try:
                build_transform(cfg.data, train=train)
            except ConfigError as exc:
                errors.extend(e for e in exc.errors if e not in errors)
    if errors:
        raise ConfigError(errors)


def _sampler_errors(cfg: Any) -> list[tuple[str, str]]:
    """``sampler.name`` is a registered strategy and its options are that strategy's (not the trainer's)."""
    from ..sampling import SAMPLERS, TRAINER_SAMPLER_OPTIONS

    name = cfg.sampler.name
    try:
        SAMPLERS.get(name)
    except KeyError as exc:
        return [("sampler.name", str(exc.args[0]) if exc.args else str(exc))]
    errors = [(f"sampler.{key}", f"set {TRAINER_SAMPLER_OPTIONS[key]} instead (the sampler takes it from there)")
              for key in cfg.sampler.kwargs if key in TRAINER_SAMPLER_OPTIONS]
    rest = [key for key in cfg.sampler.kwargs if key not in TRAINER_SAMPLER_OPTIONS]
    try:
        SAMPLERS.check_options(name, rest, context="sampler")
    except OptionError as exc:
        errors += exc.errors
    if not errors and name != "random":
        errors += _sampler_value_errors(name, cfg.sampler.kwargs)
    return errors


def _sampler_value_errors(name: str, options: dict[str, Any]) -> list[tuple[str, str]]:
    """Build the sampler once on a small synthetic training set so that bad option values fail at load time."""
    import numpy as np

    from ..data import ArrayDataset
    from ..sampling import create_sampler

    k = options.get("k", 5)
    n = max(32, k + 2) if isinstance(k, int) and not isinstance(k, bool) else 32
    rng = np.random.default_rng(0)
    targets = np.stack([np.ones(n, np.uint8), (np.arange(n) % 8 == 0).astype(np.uint8)], axis=1)
    probe = ArrayDataset(rng.normal(size=(n, 2)).astype(np.float32), targets, class_names=["a", "b"])
    try:
        create_sampler(name, probe, batch_size=4, **options)
    except (TypeError, ValueError) as exc:
        bad = [key for key in options if key in str(exc)] or [key for key in options if repr(options[key]) in str(exc)]
        return [(f"sampler.{bad[0]}" if len(bad) == 1 else "sampler", str(exc))]
    return []


def _callback_errors(cfg: Any) -> list[tuple[str, str]]:
    """Every ``callbacks`` item names a registered callback and is built with its options (cheap, no data)."""
    from ..engine.callbacks import CALLBACKS

    errors: list[tuple[str, str]] = []
    for i, item in enumerate(cfg.callbacks):
        try:
            CALLBACKS.check_options(item.name, item.kwargs, context=f"callbacks.{i}")
            CALLBACKS.create(item.name, **item.kwargs)
        except KeyError as exc:
            errors.append((f"callbacks.{i}.name", str(exc.args[0]) if exc.args else str(exc)))
        except OptionError as exc:
            errors.extend(exc.errors)
        except (TypeError, ValueError) as exc:
            errors.append((f"callbacks.{i}", str(exc)))
    return errors


def _non_finite(value: Any, path: str) -> Iterable[tuple[str, Any]]:
    if isinstance(value, float) and not math.isfinite(value):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _non_finite(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _non_finite(v, f"{path}.{i}" if path else str(i))


def check_finite(cfg: Any) -> None:
    """No number of the configuration is infinite or NaN (``trainer.lr: .inf`` would only fail mid-training)."""
    bad = list(_non_finite(cfg.model_dump(), ""))
    if bad:
        raise ConfigError([(key, f"must be a finite number, got {value}") for key, value in bad])


def check_monitor(cfg: Any) -> None:
    """``trainer.monitor`` names a metric of ``trainer.evaluator`` (else the run would fail after its first epoch)."""
    from ..metrics.evaluator import metric_names

    t = cfg.trainer
    names = metric_names(t.evaluator, t.top_k)
    if t.monitor not in names and t.monitor != "skipped":
        lowered = {n.lower(): n for n in names}
        close = [lowered[t.monitor.lower()]] if t.monitor.lower() in lowered else difflib.get_close_matches(
            t.monitor, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError([("trainer.monitor", f"{t.monitor!r} is not a metric of trainer.evaluator {t.evaluator!r}"
                            f"{hint}; choose one of {', '.join(names)}")])
