"""The run kind's schema (:class:`RunConfig` and its sections) and the bases every configuration kind derives
from (:class:`ConfigSection`, :class:`ConfigSchema`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..engine.config import TrainerConfig
from .checks import check_finite, check_monitor, check_registered
from .overrides import DEFAULT_SCHEMA, apply_overrides

__all__ = [
    "ConfigSection",
    "ConfigSchema",
    "DataConfig",
    "ModelConfig",
    "LossConfig",
    "SamplerConfig",
    "CallbackConfig",
    "RunConfig",
]


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
        check_finite(self)

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
        check_finite(self)
        check_monitor(self)
        if registered:
            check_registered(self)

    def resolve_output_dir(self, default_root: str | os.PathLike = "runs") -> Path:
        """``output_dir``, or ``<default_root>/<name or data-model>-<YYYYmmdd-HHMMSS>``."""
        if self.output_dir:
            return Path(self.output_dir)
        stem = self.name or f"{self.data.name}-{self.model.name}"
        return Path(default_root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


DEFAULT_SCHEMA.append(RunConfig)  # the kind apply_overrides and error keys walk when given none
