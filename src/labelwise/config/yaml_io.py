"""Reading configuration YAML safely: no Python objects, ``3e-4`` read as a float, a duplicate key an error.

Examples
--------
>>> yaml_load("lr: 3e-4")
{'lr': 0.0003}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["DuplicateKeyError", "yaml_load", "read_yaml_file"]


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


DuplicateKeyError.__module__ = "labelwise.config"  # its public name (tracebacks, docs)


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


def read_yaml_file(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML configuration file; every problem a :class:`ConfigError` naming the file."""
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

