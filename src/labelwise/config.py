"""The run configuration: one validated YAML file describing data, model, loss and trainer.

A run is described by a :class:`RunConfig` with these sections::

    name: quickstart                 # optional; names the default output directory
    output_dir: runs/quickstart      # optional; default runs/<name>-<timestamp>
    data:                            # DataConfig: what labelwise.data.load_dataset builds
      name: multidigits20
      options: {n_train: 4000}       # forwarded to the dataset factory
      image_size: 64
    model:                           # name + options forwarded to labelwise.models.create_model
      name: ofml
      backbone: resnet18
    loss:                            # name + options forwarded to labelwise.losses.create_loss
      name: bce
    trainer:                         # labelwise.engine.TrainerConfig
      max_epochs: 5
      lr: 1.0e-3
    sampler:                         # optional; name + options of labelwise.sampling.create_sampler
      name: adaptive                 # random (default) | hard | adaptive | chain
      selection_pressure: 8.0
    callbacks:                       # optional; a list of registered callbacks (labelwise.engine.CALLBACKS)
      - {name: epoch_checkpoints, every: 2}

:func:`load_config` reads the YAML (safely: no Python objects), applies command-line style dotted overrides
(``trainer.lr=3e-4``, ``data.options.n_train=64``, ``trainer.betas=[0.9,0.99]``; values are parsed as YAML)
and validates everything. Every problem is a :class:`ConfigError` naming the dotted key::

    configs/x.yaml: trainer.lr: Input should be greater than 0
    configs/x.yaml: trainer.optimiser: unknown key (valid keys: accelerator, backbone_lr, ...)
    configs/x.yaml: model.scael: unknown option of model 'ofml' (did you mean 'scale'?)

Model, loss, dataset, sampler and callback options are free-form in the schema (each model has its own), and
are checked against the signature of the registered factory when the configuration is loaded.

:func:`load_config` is the one loader of every command: a run is one *kind* of configuration
(:data:`CONFIG_KINDS`: ``run``, ``continual``, ``online``, ``select``, ``pretrain``), each a
:class:`ConfigSchema` read, overridden, validated and reported the same way. The kind is the file's ``kind:``
key, else the one its sections mark (``continual:`` -> continual, ``sequence:`` -> online, ``protocol:`` /
``datasets:`` -> select, ``architecture:`` -> pretrain; :func:`infer_kind`), else ``run``; a command passes
the kind it reads and a file of another kind is an error naming both.

Examples
--------
>>> from labelwise.config import load_config
>>> cfg = load_config({"data": {"name": "csv"}, "model": {"name": "ofml", "backbone": "resnet18"}},
...                   overrides=["trainer.max_epochs=2", "model.pooling=max"])
>>> cfg.trainer.max_epochs, cfg.model.name, cfg.model.kwargs
(2, 'ofml', {'backbone': 'resnet18', 'pooling': 'max'})
>>> try:
...     load_config({"data": {"name": "csv"}, "model": {"name": "ofml"}}, overrides=["trainer.lr=-1"])
... except ValueError as err:
...     print(err)
trainer.lr: Input should be greater than 0
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .engine.config import TrainerConfig
from .registry import OptionError

__all__ = [
    "CONFIG_KINDS",
    "ConfigKind",
    "ConfigSchema",
    "ConfigSection",
    "infer_kind",
    "read_config",
    "validate_config",
    "ConfigError",
    "DuplicateKeyError",
    "DataConfig",
    "ModelConfig",
    "LossConfig",
    "SamplerConfig",
    "CallbackConfig",
    "RunConfig",
    "load_config",
    "parse_overrides",
    "apply_overrides",
    "save_config",
    "yaml_load",
    "build_transform",
]


class ConfigError(ValueError):
    """An invalid run configuration; the message names the file (when there is one) and the dotted key.

    Attributes
    ----------
    errors : list of (str, str)
        ``(dotted_key, message)`` pairs, one per problem found.
    source : str or None
        The configuration file, if the configuration came from one.
    """

    def __init__(self, errors: Sequence[tuple[str, str]] | str, *, source: str | None = None) -> None:
        if isinstance(errors, str):
            errors = [("", errors)]
        self.errors = list(errors)
        self.source = source
        body = "; ".join(f"{k}: {m}" if k else m for k, m in self.errors)
        super().__init__(f"{source}: {body}" if source else body)


class ConfigSection(BaseModel):
    """Base of every configuration section: an unknown key is an error, assignments are validated.

    Sections of the other configuration kinds (``continual``, ``online``, ``protocol``, ...) derive from it
    so that :func:`load_config` walks them for overrides and names their keys in errors.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


_Strict = ConfigSection


class ConfigSchema(ConfigSection):
    """Base of a configuration kind: the top level of a YAML file that :func:`load_config` reads.

    A kind adds two hooks to the pydantic schema:

    - :meth:`prepare` applies the parsed ``key=value`` overrides to the raw mapping (by default
      :func:`apply_overrides`, which checks every key against the schema);
    - :meth:`check` validates what pydantic cannot (numbers are finite; with ``registered``, names are
      registered and options are accepted by the factories), raising :class:`ConfigError`.

    Examples
    --------
    >>> RunConfig.KIND, issubclass(RunConfig, ConfigSchema)
    ('run', True)
    """

    KIND: ClassVar[str] = ""

    @classmethod
    def prepare(cls, raw: dict[str, Any], overrides: list[tuple[str, Any]]) -> dict[str, Any]:
        """Apply the parsed overrides to the raw mapping read from the file (in place; also returned)."""
        return apply_overrides(raw, overrides, schema=cls)

    def check(self, *, registered: bool = True) -> None:
        """Checks beyond the schema: every number is finite (kinds add theirs)."""
        _check_finite(self)

    def to_dict(self) -> dict[str, Any]:
        """A plain (JSON/YAML-serialisable) dict of the configuration (model/loss options flattened in)."""
        return self.model_dump(mode="json")


class DataConfig(_Strict):
    """The data section: which dataset, which splits, and how images are transformed.

    Examples
    --------
    >>> DataConfig(name="csv", root="data/tags", options={"train_file": "train.csv"}, val_split=None).val_fraction
    0.1
    """

    name: str = Field(min_length=1, description="A name from labelwise.data.list_datasets() (e.g. multidigits20, csv).")
    root: str | None = Field(None, description="Dataset directory (the embedded benchmark uses it as its cache).")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Format-specific options forwarded to load_dataset(name, **options)."
    )
    train_split: str = Field("train", min_length=1, description="Split trained on.")
    val_split: str | None = Field(
        "val", description="Validation split; null carves `val_fraction` of the training split (seeded, stratified)."
    )
    val_fraction: float = Field(
        0.1, gt=0, lt=1, description="Fraction of the training split held out for validation when val_split is null."
    )
    test_split: str | None = Field(
        "test", description="Split evaluated with the best checkpoint after training (null: none)."
    )
    image_size: int | tuple[int, int] | None = Field(
        None, description="Image side (or [height, width]) fed to the model; null for tabular data."
    )
    train_transform: str = Field("default", min_length=1, description="Training augmentation preset.")
    eval_transform: str = Field("default", min_length=1, description="Evaluation transform preset.")
    normalize: str | None = Field(
        "imagenet", description="Input normalisation (a preset name such as imagenet, or null for none)."
    )


class _Named(BaseModel):
    """A ``name`` plus free-form options forwarded to a factory (checked against its signature)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    name: str = Field(min_length=1)

    @property
    def kwargs(self) -> dict[str, Any]:
        """The options other than ``name``, as passed to the factory."""
        return dict(self.model_extra or {})


class ModelConfig(_Named):
    """The model section: ``name`` (see ``labelwise models list``) and options for ``create_model``.

    ``reinit_head`` is the run's own option (not passed to the factory): with ``weights`` naming a whole
    labelwise model whose head has other shapes (another class count), train a freshly initialised head
    instead of failing (see :mod:`labelwise.models.initial_weights`).

    Examples
    --------
    >>> ModelConfig(name="ofml", backbone="resnet18", pooling="avg").kwargs
    {'backbone': 'resnet18', 'pooling': 'avg'}
    >>> ModelConfig(name="ofml", weights="runs/a/checkpoints/best.safetensors", reinit_head=True).kwargs
    {'weights': 'runs/a/checkpoints/best.safetensors'}
    """

    reinit_head: bool = Field(
        False, description="With weights = a whole model: train a new head when its shapes differ (class count)."
    )

    @model_validator(mode="after")
    def _reinit_needs_weights(self) -> ModelConfig:
        if self.reinit_head and not (self.model_extra or {}).get("weights"):
            raise ValueError("reinit_head applies to the model loaded from model.weights; set model.weights too")
        return self


class LossConfig(_Named):
    """The loss section: ``name`` (``bce`` by default) and options for ``create_loss``.

    Examples
    --------
    >>> LossConfig(name="asl", gamma_neg=4).kwargs
    {'gamma_neg': 4}
    """

    name: str = Field("bce", min_length=1)


class _BareNamed(_Named):
    """A :class:`_Named` section that may also be written as its bare name (``sampler: hard``)."""

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class SamplerConfig(_BareNamed):
    """The sampler section: the batch sampler of the training split and its options.

    ``name`` is a strategy of :data:`labelwise.sampling.SAMPLERS`: ``random`` (default: a seeded permutation
    per epoch, the trainer's own sampler), ``hard``, ``adaptive`` or ``chain`` (loss-based batch selection,
    :mod:`labelwise.sampling`). The other keys are options of that strategy (``selection_pressure``,
    ``warmup_epochs``, ``imbalance_weights``, ``k``, ``features``, ...), checked against its signature;
    ``batch_size``, ``seed`` and ``drop_last`` come from the ``trainer`` section.

    Examples
    --------
    >>> SamplerConfig().name
    'random'
    >>> SamplerConfig(name="adaptive", selection_pressure=8.0, warmup_epochs=2).kwargs
    {'selection_pressure': 8.0, 'warmup_epochs': 2}
    >>> SamplerConfig.model_validate("hard").name   # a bare name (``sampler: hard``, ``sampler=hard``)
    'hard'
    """

    name: str = Field("random", min_length=1)


class CallbackConfig(_BareNamed):
    """One item of the callbacks list: a name of :data:`labelwise.engine.CALLBACKS` and its options.

    Examples
    --------
    >>> CallbackConfig(name="epoch_checkpoints", every=5).kwargs
    {'every': 5}
    >>> CallbackConfig.model_validate("epoch_checkpoints").kwargs   # a bare name takes the defaults
    {}
    """


class RunConfig(ConfigSchema):
    """Everything that defines a training run (the ``run`` kind, read by ``labelwise train``).

    Examples
    --------
    >>> cfg = RunConfig(data={"name": "multidigits20", "image_size": 64}, model={"name": "ofml"})
    >>> cfg.loss.name, cfg.trainer.max_epochs, cfg.data.image_size, cfg.sampler.name, cfg.callbacks
    ('bce', 10, 64, 'random', [])
    """

    name: str | None = Field(None, description="Run name; the default output directory is runs/<name>-<time>.")
    output_dir: str | None = Field(None, description="Run directory (config, metrics.csv, checkpoints, report).")
    data: DataConfig
    model: ModelConfig
    loss: LossConfig = Field(default_factory=LossConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    callbacks: list[CallbackConfig] = Field(default_factory=list)

    KIND: ClassVar[str] = "run"

    def check(self, *, registered: bool = True) -> None:
        """Finite numbers, ``trainer.monitor`` a metric of the evaluator; with ``registered``, names and options."""
        _check_finite(self)
        _check_monitor(self)
        if registered:
            _check_registered(self)

    def resolve_output_dir(self, default_root: str | os.PathLike = "runs") -> Path:
        """``output_dir``, or ``<default_root>/<name or data-model>-<YYYYmmdd-HHMMSS>``."""
        if self.output_dir:
            return Path(self.output_dir)
        stem = self.name or f"{self.data.name}-{self.model.name}"
        return Path(default_root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


# -- YAML ------------------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``3e-4`` / ``1E5`` as floats (YAML 1.1 needs a dot: ``3.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class DuplicateKeyError(yaml.YAMLError, ValueError):
    """A YAML mapping sets the same key twice (YAML itself would silently keep the last value).

    Attributes
    ----------
    key : str
        The dotted key (``trainer.lr``).
    lines : tuple of int
        The 1-based lines of the first and the second occurrence.
    """

    def __init__(self, key: str, lines: tuple[int, int]) -> None:
        self.key = key
        self.lines = lines
        super().__init__(f"{key}: duplicate key on lines {lines[0]} and {lines[1]} (keep one)")


def _check_duplicate_keys(node: yaml.Node, path: str = "") -> None:
    """Raise :class:`DuplicateKeyError` for the first key set twice in any mapping below ``node``."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = key_node.value
                dotted = f"{path}.{key}" if path else str(key)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKeyError(dotted, (seen[key], line))
                seen[key] = line
                _check_duplicate_keys(value_node, dotted)
            else:
                _check_duplicate_keys(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, f"{path}.{i}" if path else str(i))


def yaml_load(text: str) -> Any:
    """Parse YAML safely (no arbitrary objects), reading ``1e-4`` as a float; a duplicate key is an error.

    Raises
    ------
    DuplicateKeyError
        A mapping sets a key twice (the message names the dotted key and both lines).
    yaml.YAMLError
        Invalid YAML.

    Examples
    --------
    >>> yaml_load("lr: 3e-4\\nbetas: [0.9, 0.99]\\nname: ofml")
    {'lr': 0.0003, 'betas': [0.9, 0.99], 'name': 'ofml'}
    >>> yaml_load("trainer:\\n  lr: 0.1\\n  epochs: 2\\n  lr: 0.2\\n")
    Traceback (most recent call last):
    ...
    labelwise.config.DuplicateKeyError: trainer.lr: duplicate key on lines 2 and 4 (keep one)
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_duplicate_keys(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


# -- schema walking (for overrides and readable errors) ------------------------------------------------
def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model class an annotation refers to (also through ``X | None``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None:
        subs = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(subs) == 1:
            return subs[0]
    return None


def _is_free_mapping(annotation: Any) -> bool:
    return annotation is dict or get_origin(annotation) is dict or annotation in (Mapping,)


def _valid_keys(model: type[BaseModel]) -> list[str]:
    return sorted(model.model_fields)


def _unknown_key_message(key: str, model: type[BaseModel]) -> str:
    valid = _valid_keys(model)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; valid keys: {', '.join(valid)}"


def _field_path(loc: Sequence[Any], schema: type[BaseModel] | None = None) -> str:
    """Turn a pydantic error location into the dotted key of the user's file (drop union-member tags)."""
    model: type[BaseModel] | None = schema or RunConfig
    parts: list[str] = []
    free = False
    for item in loc:
        if free:
            parts.append(str(item))
            continue
        if model is None:
            if isinstance(item, int):
                parts.append(str(item))
            continue  # union member tags such as 'int' or 'tuple[int, int]'
        key = str(item)
        if key in model.model_fields:
            parts.append(key)
            ann = model.model_fields[key].annotation
            sub = _submodel(ann)
            if sub is not None:
                model = sub
            else:
                free = _is_free_mapping(ann)
                model = None
        else:  # an extra key (forbidden, or a free-form option)
            parts.append(key)
            free = True
    return ".".join(parts)


def _format_validation_error(exc: ValidationError, schema: type[BaseModel] | None = None) -> list[tuple[str, str]]:
    grouped: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        path = _field_path(err["loc"], schema)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            model = _model_at(parent, schema)
            msg = _unknown_key_message(path.rsplit(".", 1)[-1], model) if model else "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        msgs = grouped.setdefault(path, [])
        if msg not in msgs:
            msgs.append(msg)
    return [(path, " or ".join(msgs)) for path, msgs in grouped.items()]


def _model_at(dotted: str, schema: type[BaseModel] | None = None) -> type[BaseModel] | None:
    model: type[BaseModel] | None = schema or RunConfig
    for key in filter(None, dotted.split(".")):
        if model is None or key not in model.model_fields:
            return None
        model = _submodel(model.model_fields[key].annotation)
    return model


# -- overrides -----------------------------------------------------------------------------------------
def parse_overrides(overrides: Iterable[str]) -> list[tuple[str, Any]]:
    """Parse ``"dotted.key=value"`` strings; values are YAML (``3e-4``, ``true``, ``[0.9, 0.99]``, ``null``).

    Examples
    --------
    >>> parse_overrides(["trainer.lr=3e-4", "trainer.betas=[0.9, 0.99]", "data.root=null", "model.name=ofml"])
    [('trainer.lr', 0.0003), ('trainer.betas', [0.9, 0.99]), ('data.root', None), ('model.name', 'ofml')]
    """
    parsed = []
    for text in overrides:
        key, sep, raw = str(text).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {text!r} is not of the form dotted.key=value")
        if any(not part for part in key.split(".")):
            raise ConfigError(f"override {text!r}: empty component in key {key!r}")
        try:
            value = yaml_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError([(key, f"cannot parse value {raw!r} as YAML ({exc})")]) from exc
        parsed.append((key, value))
    return parsed


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str | tuple[str, Any]], *,
                    schema: type[BaseModel] | None = None) -> dict[str, Any]:
    """Set dotted keys in a raw configuration dict (in place, also returned), checking every key.

    ``schema`` is the configuration kind the keys belong to (default :class:`RunConfig`; see
    :data:`CONFIG_KINDS`). A key unknown at its level raises a :class:`ConfigError` naming the full dotted key and listing the
    valid keys of that level. Keys inside free-form sections (``data.options``, model, loss and sampler
    options) are created as needed. Items of the ``callbacks`` list are addressed by index
    (``callbacks.0.every=2``; the next index adds an item).

    Examples
    --------
    >>> apply_overrides({"data": {"name": "x"}}, ["data.options.n_train=64", "trainer.max_epochs=1"])
    {'data': {'name': 'x', 'options': {'n_train': 64}}, 'trainer': {'max_epochs': 1}}
    >>> apply_overrides({"callbacks": [{"name": "epoch_checkpoints"}]}, ["callbacks.0.every=2", "sampler.name=hard"])
    {'callbacks': [{'name': 'epoch_checkpoints', 'every': 2}], 'sampler': {'name': 'hard'}}
    >>> apply_overrides({}, ["trainer.max_epoch=1"])
    Traceback (most recent call last):
    ...
    labelwise.config.ConfigError: trainer.max_epoch: unknown key (did you mean 'max_epochs'?); valid keys: ...
    """
    items = [o if isinstance(o, tuple) else parse_overrides([o])[0] for o in overrides]
    for dotted, value in items:
        parts = dotted.split(".")
        node: Any = raw
        model: type[BaseModel] | None = schema or RunConfig
        free = False
        for depth, key in enumerate(parts):
            here = ".".join(parts[: depth + 1])
            last = depth == len(parts) - 1
            if isinstance(node, list) and not free:  # an item of a list section: callbacks.0.every
                if not key.isdigit() or int(key) > len(node):
                    have = f"indices 0..{len(node) - 1}, or {len(node)} to add an item" if node else "0 to add an item"
                    raise ConfigError([(here, f"not an item of {'.'.join(parts[:depth])} (use {have})")])
                if int(key) == len(node):
                    node.append(value if last else {})
                elif last:
                    node[int(key)] = value
                if not last:
                    node = node[int(key)]
                    if not isinstance(node, dict):
                        raise ConfigError([(here, f"is {node!r}, not a mapping (cannot set {dotted})")])
                continue
            is_section = is_list = False
            if not free and model is not None:
                if key in model.model_fields:
                    ann = model.model_fields[key].annotation
                    sub = _submodel(ann)
                    if sub is not None:
                        model, is_section, is_list = sub, True, get_origin(ann) is list
                    elif _is_free_mapping(ann):
                        model, free, is_section = None, True, True
                    else:
                        model = None
                        if not last:
                            raise ConfigError([(here, f"is a value, not a section (cannot set {dotted})")])
                elif model.model_config.get("extra") == "allow":
                    model, free = None, True  # a model/loss option
                else:
                    raise ConfigError([(here, _unknown_key_message(key, model))])
            if last:
                node[key] = value
            else:
                child = node.get(key)
                if child is None:
                    child = node[key] = [] if is_list else {}
                elif is_list and not isinstance(child, list):
                    raise ConfigError([(here, f"is {child!r}, not a list (cannot set {dotted})")])
                elif not is_list and not isinstance(child, dict):
                    if is_section or free:
                        raise ConfigError([(here, f"is {child!r}, not a mapping (cannot set {dotted})")])
                node = child
    return raw


#: Loss options a run computes from the training split when the config leaves them out
#: (see :func:`labelwise.run.data_loss_options`).
DATA_LOSS_OPTIONS: dict[str, tuple[str, ...]] = {"weighted_bce": ("positive_ratio",)}


def build_transform(data: DataConfig, *, train: bool) -> Callable[..., Any] | None:
    """The training or evaluation transform of the data section (None when ``image_size`` is null).

    Parameters
    ----------
    data : DataConfig
        ``image_size``, ``train_transform`` / ``eval_transform`` (preset names) and ``normalize``.
    train : bool
        Training (augmenting) or evaluation transform.

    Examples
    --------
    >>> from labelwise.config import DataConfig
    >>> build_transform(DataConfig(name="mulan"), train=True) is None      # tabular: no image transform
    True
    """
    if data.image_size is None:
        return None
    from .data.transforms import build_transforms  # torchvision: imported only for image data

    size = data.image_size if isinstance(data.image_size, int) else tuple(data.image_size)
    preset = data.train_transform if train else data.eval_transform
    try:
        return build_transforms(train=train, image_size=size, preset=preset, normalize=data.normalize)
    except (KeyError, ValueError, TypeError) as exc:
        msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        low = msg.lower()
        if "normali" in low:
            key = "data.normalize"
        elif "size" in low:
            key = "data.image_size"
        else:
            key = "data.train_transform" if train else "data.eval_transform"
        raise ConfigError([(key, msg)]) from exc


def _check_registered(cfg: RunConfig) -> None:
    """Names exist in their registries and options match the factories' signatures."""
    from .data import DATASETS
    from .losses import create_loss
    from .models import MODELS

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
        from .losses import LOSSES  # type: ignore[attr-defined]
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


def _sampler_errors(cfg: RunConfig) -> list[tuple[str, str]]:
    """``sampler.name`` is a registered strategy and its options are that strategy's (not the trainer's)."""
    from .sampling import SAMPLERS, TRAINER_SAMPLER_OPTIONS

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

    from .data import ArrayDataset
    from .sampling import create_sampler

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


def _callback_errors(cfg: RunConfig) -> list[tuple[str, str]]:
    """Every ``callbacks`` item names a registered callback and is built with its options (cheap, no data)."""
    from .engine.callbacks import CALLBACKS

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


def _check_finite(cfg: RunConfig) -> None:
    """No number of the configuration is infinite or NaN (``trainer.lr: .inf`` would only fail mid-training)."""
    bad = list(_non_finite(cfg.model_dump(), ""))
    if bad:
        raise ConfigError([(key, f"must be a finite number, got {value}") for key, value in bad])


def _check_monitor(cfg: RunConfig) -> None:
    """``trainer.monitor`` names a metric of ``trainer.evaluator`` (else the run would fail after its first epoch)."""
    from .metrics.evaluator import metric_names

    t = cfg.trainer
    names = metric_names(t.evaluator, t.top_k)
    if t.monitor not in names and t.monitor != "skipped":
        lowered = {n.lower(): n for n in names}
        close = [lowered[t.monitor.lower()]] if t.monitor.lower() in lowered else difflib.get_close_matches(
            t.monitor, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError([("trainer.monitor", f"{t.monitor!r} is not a metric of trainer.evaluator {t.evaluator!r}"
                            f"{hint}; choose one of {', '.join(names)}")])


# -- loading / saving -----------------------------------------------------------------------------------
def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        raw = yaml_load(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        raise ConfigError([(exc.key, f"duplicate key on lines {exc.lines[0]} and {exc.lines[1]} (keep one)")],
                          source=str(path)) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML{where}: {problem}", source=str(path)) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"the top level must be a mapping of sections, got {type(raw).__name__}", source=str(path))
    return raw


@dataclass(frozen=True)
class ConfigKind:
    """One kind of configuration file: its schema, the sections that mark it and the command that reads it.

    Attributes
    ----------
    name : str
        ``run``, ``continual``, ``online``, ``select`` or ``pretrain``.
    schema : str
        ``"module:Class"`` of its :class:`ConfigSchema`. The kinds other than ``run`` are defined by the
        packages that run them (above this layer); the table names them and :meth:`load_schema` imports the
        module when a file of that kind is loaded, the way an entry point names a plugin.
    markers : tuple of str
        Top-level sections that only a file of this kind has (see :func:`infer_kind`).
    command : str
        The ``labelwise`` command that runs it.
    """

    name: str
    schema: str
    markers: tuple[str, ...]
    command: str

    def load_schema(self) -> type[ConfigSchema]:
        """The schema class (imports its module)."""
        module, _, attr = self.schema.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        if not (isinstance(cls, type) and issubclass(cls, ConfigSchema)):  # pragma: no cover - a wiring bug
            raise TypeError(f"{self.schema} is not a ConfigSchema")
        return cls


#: The configuration kinds :func:`load_config` reads (docs: src/labelwise/configs/README.md, "Kinds").
CONFIG_KINDS: dict[str, ConfigKind] = {k.name: k for k in (
    ConfigKind("run", "labelwise.config:RunConfig", (), "labelwise train"),
    ConfigKind("continual", "labelwise.continual.config:ContinualConfig", ("continual", "strategy", "strategies"),
               "labelwise continual"),
    ConfigKind("online", "labelwise.continual.online.config:OnlineRunConfig", ("sequence", "online", "methods"),
               "labelwise online"),
    ConfigKind("select", "labelwise.tabular.config:SelectConfig", ("protocol", "datasets", "table1", "plot"),
               "labelwise select"),
    ConfigKind("pretrain", "labelwise.pretrain:PretrainRecipe", ("architecture", "probe", "quick"),
               "labelwise pretrain"),
)}


def infer_kind(raw: Mapping[str, Any]) -> str:
    """The kind of a raw configuration mapping: its ``kind:`` key, else the kind its sections mark, else ``run``.

    The marker sections are :attr:`ConfigKind.markers` (``continual``/``strategy`` -> continual,
    ``sequence``/``online``/``methods`` -> online, ``protocol``/``datasets`` -> select,
    ``architecture``/``probe`` -> pretrain). Sections of two kinds are an error.

    Examples
    --------
    >>> infer_kind({"data": {"name": "csv"}, "model": {"name": "ofml"}})
    'run'
    >>> infer_kind({"data": {}, "model": {}, "continual": {"scenario": "B4-C2"}})
    'continual'
    >>> infer_kind({"kind": "select", "protocol": {"epochs": 2}})
    'select'
    >>> infer_kind({"kind": "contiual"})
    Traceback (most recent call last):
    ...
    labelwise.config.ConfigError: kind: unknown configuration kind 'contiual' (did you mean 'continual'?); kinds: run, continual, online, select, pretrain
    """
    if "kind" in raw:
        kind = raw["kind"]
        if kind not in CONFIG_KINDS:
            close = difflib.get_close_matches(str(kind), list(CONFIG_KINDS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError([("kind", f"unknown configuration kind {kind!r}{hint}; kinds: {', '.join(CONFIG_KINDS)}")])
        return str(kind)
    found = {k.name: [m for m in k.markers if m in raw] for k in CONFIG_KINDS.values()}
    found = {name: marks for name, marks in found.items() if marks}
    if len(found) > 1:
        which = "; ".join(f"{', '.join(m)} ({name})" for name, m in found.items())
        raise ConfigError([("kind", f"the file has sections of several kinds: {which}; set kind: to one of them "
                                    "and remove the others")])
    return next(iter(found), "run")


def read_config(source: str | os.PathLike | Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Read a configuration source into a fresh raw mapping, and the file it came from (None for a mapping).

    ``source`` is a YAML file, the name of a shipped config (:func:`labelwise.shipped_configs.resolve_config`;
    an existing path wins) or a mapping (deep-copied). Reading checks the YAML (duplicate keys, syntax),
    not the schema: that is :func:`validate_config`.

    Examples
    --------
    >>> raw, src = read_config("quickstart")
    >>> sorted(raw)[:3], src.endswith("quickstart.yaml")
    (['data', 'loss', 'model'], True)
    """
    if isinstance(source, Mapping):
        return _deepcopy(dict(source)), None
    from .shipped_configs import resolve_config

    path = resolve_config(source)
    return _read_yaml(path), str(path)


def validate_config(
    raw: dict[str, Any],
    overrides: Iterable[str | tuple[str, Any]] = (),
    *,
    kind: str | type[ConfigSchema] | None = None,
    check: bool = True,
    source: str | None = None,
) -> Any:
    """Apply overrides to a raw mapping (from :func:`read_config`) and validate it into its kind's schema.

    This is the second half of :func:`load_config` (which documents the parameters); ``source`` names the
    file in errors. Commands that add overrides of their own between reading and validating (``labelwise
    pretrain --quick`` applies the recipe's ``quick`` list) call the two halves.
    """
    try:
        schema = _schema_for(raw, kind)
        raw.pop("kind", None)
        items = parse_overrides_items(overrides)
        prepared = schema.prepare(raw, items)
        try:
            cfg = schema.model_validate(prepared)
        except ValidationError as exc:
            raise ConfigError(_format_validation_error(exc, schema)) from None
        cfg.check(registered=check)
    except ConfigError as exc:
        if source is not None and exc.source is None:
            raise ConfigError(exc.errors, source=source) from None
        raise
    return cfg


def parse_overrides_items(overrides: Iterable[str | tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``key=value`` strings parsed (:func:`parse_overrides`); ``(key, value)`` pairs kept as they are."""
    return [o if isinstance(o, tuple) else parse_overrides([o])[0] for o in overrides]


def _schema_for(raw: Mapping[str, Any], kind: str | type[ConfigSchema] | None) -> type[ConfigSchema]:
    """The schema of ``kind`` (a name or a class), or of the inferred kind; a file of another kind is an error."""
    if isinstance(kind, type):
        return kind
    found = infer_kind(raw)
    if kind is None:
        return CONFIG_KINDS[found].load_schema()
    if kind not in CONFIG_KINDS:
        raise ValueError(f"unknown configuration kind {kind!r}; kinds: {', '.join(CONFIG_KINDS)}")
    declared = "kind" in raw or any(m in raw for m in CONFIG_KINDS[found].markers)
    if found != kind and declared:
        why = "its kind: key" if "kind" in raw else \
            f"its {', '.join(repr(m) for m in CONFIG_KINDS[found].markers if m in raw)} section(s)"
        raise ConfigError([("kind", f"this is a {found} configuration ({why}); {CONFIG_KINDS[kind].command} reads "
                                    f"{kind} configurations (run it with {CONFIG_KINDS[found].command})")])
    return CONFIG_KINDS[kind].load_schema()


def load_config(
    source: str | os.PathLike | Mapping[str, Any],
    overrides: Iterable[str | tuple[str, Any]] = (),
    *,
    kind: str | type[ConfigSchema] | None = None,
    check: bool = True,
) -> Any:
    """Load, override and validate a configuration of any kind: the one loader of every ``labelwise`` command.

    Parameters
    ----------
    source : str, path or mapping
        A YAML file, the name of a shipped config (``"quickstart"``, ``"dlfl/multidigits20_ofml"``,
        ``"continual/voc_b4c2"``; see :mod:`labelwise.shipped_configs`; an existing path wins), or an
        already-parsed mapping (e.g. the ``run_config`` stored in a checkpoint).
    overrides : iterable of str
        Dotted ``key=value`` assignments applied before validation (values parsed as YAML), checked against
        the kind's schema.
    kind : str or ConfigSchema class, optional
        ``run``, ``continual``, ``online``, ``select`` or ``pretrain`` (:data:`CONFIG_KINDS`). Default: the
        file's ``kind:`` key, else the kind its sections mark (:func:`infer_kind`), else ``run``. A file of
        another kind than the one asked for is an error naming both.
    check : bool
        Also check that names are registered and that their options are accepted by the factories (imports
        the models, losses, ... packages).

    Returns
    -------
    ConfigSchema
        A :class:`RunConfig` for the ``run`` kind; the kind's schema otherwise
        (:class:`labelwise.continual.config.ContinualConfig`, ...).

    Raises
    ------
    FileNotFoundError
        The file does not exist and is not a shipped config name (the message lists close names).
    ConfigError
        Invalid YAML (with line and column), a duplicate key (with both lines), an unknown key, a bad or
        non-finite value, an unknown name or option; the message names the file and the dotted key.

    Examples
    --------
    >>> cfg = load_config({"data": {"name": "csv", "root": "tags.csv"}, "model": {"name": "ofml"}},
    ...                   ["data.options.n_train=128"])
    >>> cfg.data.options
    {'n_train': 128}
    >>> load_config({"data": {"name": "csv"}, "model": {"name": "ofml", "pooling": "max"}, "lr": 1})
    Traceback (most recent call last):
    ...
    labelwise.config.ConfigError: lr: unknown key; valid keys: callbacks, data, loss, model, name, output_dir, sampler, trainer
    >>> type(load_config("online/multidigits", ["online.memory_size=50"], check=False)).__name__
    'OnlineRunConfig'
    """
    raw, src = read_config(source)
    return validate_config(raw, overrides, kind=kind, check=check, source=src)


def _deepcopy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deepcopy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_deepcopy(v) for v in obj]
    return obj


def save_config(cfg: RunConfig, path: str | os.PathLike) -> Path:
    """Write the resolved configuration as YAML (loadable again with :func:`load_config`).

    Examples
    --------
    >>> import tempfile, os
    >>> cfg = load_config({"data": {"name": "csv"}, "model": {"name": "ofml"}}, check=False)
    >>> p = save_config(cfg, os.path.join(tempfile.mkdtemp(), "config.yaml"))
    >>> load_config(p, check=False) == cfg
    True
    """
    from .engine.checkpoint import atomic_write_text

    path = Path(path)
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None))
    return path
