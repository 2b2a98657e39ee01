"""The one configuration loader of every command: the kinds table, reading (:func:`read_config`), overriding
and validating (:func:`validate_config`), both at once (:func:`load_config`), and writing (:func:`save_config`)."""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import ConfigError
from .overrides import format_validation_error, parse_overrides_items
from .schema import ConfigSchema, RunConfig
from .yaml_io import read_yaml_file

__all__ = ["CONFIG_KINDS", "ConfigKind", "infer_kind", "read_config", "validate_config", "load_config", "save_config"]


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
    from ..shipped_configs import resolve_config

    path = resolve_config(source)
    return read_yaml_file(path), str(path)


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
            raise ConfigError(format_validation_error(exc, schema)) from None
        cfg.check(registered=check)
    except ConfigError as exc:
        if source is not None and exc.source is None:
            raise ConfigError(exc.errors, source=source) from None
        raise
    return cfg


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
    from ..engine.checkpoint import atomic_write_text

    path = Path(path)
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None))
    return path

