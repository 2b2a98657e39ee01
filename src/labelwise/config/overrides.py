"""Dotted keys of a configuration: ``key=value`` overrides checked against the schema, and the dotted key of
each validation error (the two walk the schema the same way).

Examples
--------
>>> parse_overrides(["trainer.lr=3e-4"])
[('trainer.lr', 0.0003)]
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError
from .yaml_io import yaml_load

__all__ = ["parse_overrides", "parse_overrides_items", "apply_overrides", "format_validation_error"]


#: The schema of overrides and error keys when none is given: the run kind, set by the schema module (which
#: imports this one) when it defines :class:`~labelwise.config.RunConfig`.
DEFAULT_SCHEMA: list[type[BaseModel]] = []


def _default_schema() -> type[BaseModel]:
    return DEFAULT_SCHEMA[0]


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
    model: type[BaseModel] | None = schema or _default_schema()
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


def format_validation_error(exc: ValidationError, schema: type[BaseModel] | None = None) -> list[tuple[str, str]]:
    """The ``(dotted_key, message)`` pairs of a pydantic error in the user's keys: one pair per key, an unknown
    key with a close match and the valid keys of its level, ``schema`` the kind (default :class:`RunConfig`)."""
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
    model: type[BaseModel] | None = schema or _default_schema()
    for key in filter(None, dotted.split(".")):
        if model is None or key not in model.model_fields:
            return None
        model = _submodel(model.model_fields[key].annotation)
    return model


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
    items = parse_overrides_items(overrides)
    for dotted, value in items:
        parts = dotted.split(".")
        node: Any = raw
        model: type[BaseModel] | None = schema or _default_schema()
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


def parse_overrides_items(overrides: Iterable[str | tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``key=value`` strings parsed (:func:`parse_overrides`); ``(key, value)`` pairs kept as they are."""
    return [o if isinstance(o, tuple) else parse_overrides([o])[0] for o in overrides]
