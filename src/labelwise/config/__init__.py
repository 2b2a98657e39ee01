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

The package, a module per step (everything is importable from ``labelwise.config``):

- ``schema``: :class:`RunConfig` and its sections; :class:`ConfigSection` / :class:`ConfigSchema`, the bases of
  every kind;
- ``yaml_io``: :func:`yaml_load` (safe, ``3e-4`` a float, :class:`DuplicateKeyError`) and reading a file;
- ``overrides``: :func:`parse_overrides` / :func:`apply_overrides`, and the dotted key of a validation error;
- ``checks``: what the schema cannot check (finite numbers, ``trainer.monitor``, registered names and options);
- ``transform``: :func:`build_transform`, the image transform of the data section;
- ``loader``: :data:`CONFIG_KINDS`, :func:`read_config` + :func:`validate_config` = :func:`load_config`,
  :func:`save_config`;
- ``errors``: :class:`ConfigError`.

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

from .checks import DATA_LOSS_OPTIONS
from .errors import ConfigError
from .loader import (
    CONFIG_KINDS,
    ConfigKind,
    infer_kind,
    load_config,
    read_config,
    save_config,
    validate_config,
)
from .overrides import apply_overrides, parse_overrides, parse_overrides_items
from .schema import (
    CallbackConfig,
    ConfigSchema,
    ConfigSection,
    DataConfig,
    LossConfig,
    ModelConfig,
    RunConfig,
    SamplerConfig,
)
from .transform import build_transform
from .yaml_io import DuplicateKeyError, yaml_load

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
    "parse_overrides_items",
    "apply_overrides",
    "save_config",
    "yaml_load",
    "build_transform",
    "DATA_LOSS_OPTIONS",
]
