"""The run configurations shipped inside the package (``labelwise/configs/``), found by name.

A shipped config is named by its path under ``labelwise/configs/`` without ``.yaml``: ``quickstart``,
``dlfl/multidigits20_ofml``, ``continual/voc_b4c2``. :func:`resolve_config` turns the ``--config`` argument of
``labelwise train`` / ``continual`` / ``online`` into a file: an existing path always wins; otherwise the
argument is looked up as a shipped name (``configs/quickstart.yaml``, ``quickstart.yaml`` and a unique file name
such as ``multidigits20_ofml`` are accepted too). An unknown name is an error listing the closest names.

Examples
--------
>>> from labelwise.shipped_configs import config_names, resolve_config
>>> "quickstart" in config_names() and "dlfl/multidigits20_ofml" in config_names()
True
>>> resolve_config("dlfl/multidigits20_ofml").name
'multidigits20_ofml.yaml'
>>> resolve_config("quickstrat")
Traceback (most recent call last):
...
FileNotFoundError: config file not found: quickstrat; not a shipped config name either (did you mean: quickstart?) ('labelwise configs list' lists them)
"""

from __future__ import annotations

import difflib
import os
import shutil
from importlib import resources
from pathlib import Path

__all__ = ["config_dir", "config_names", "config_path", "config_summary", "copy_config", "resolve_config"]

_SUFFIXES = (".yaml", ".yml")


def config_dir() -> Path:
    """The directory holding the shipped configs (``labelwise/configs`` of the installed package)."""
    return Path(str(resources.files("labelwise") / "configs"))


def config_names() -> list[str]:
    """Sorted names of the shipped configs (paths under :func:`config_dir` without ``.yaml``)."""
    root = config_dir()
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def _normalise(name: str) -> str:
    key = name.replace("\\", "/").strip()
    for prefix in ("./", "configs/"):
        if key.startswith(prefix):
            key = key[len(prefix):]
    for suffix in _SUFFIXES:
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    return key


def config_path(name: str) -> Path:
    """The file of the shipped config ``name`` (e.g. ``"quickstart"``, ``"dlfl/multidigits20_ofml"``).

    Raises
    ------
    FileNotFoundError
        No shipped config has that name (the message lists the closest names).

    Examples
    --------
    >>> config_path("configs/quickstart.yaml") == config_path("quickstart")
    True
    """
    names = config_names()
    key = _normalise(str(name))
    if key in names:
        return config_dir() / f"{key}.yaml"
    by_stem = [n for n in names if n.rsplit("/", 1)[-1] == key]
    if len(by_stem) == 1:
        return config_dir() / f"{by_stem[0]}.yaml"
    if len(by_stem) > 1:
        raise FileNotFoundError(f"config {name!r} is ambiguous: give one of {', '.join(by_stem)}")
    close = difflib.get_close_matches(key, names, n=5, cutoff=0.6)
    close += [n for n in difflib.get_close_matches(key, [n.rsplit("/", 1)[-1] for n in names], n=5, cutoff=0.6)
              if n not in close]
    close = [n for n in names if n in close or n.rsplit("/", 1)[-1] in close][:5]
    hint = f" (did you mean: {', '.join(close)}?)" if close else ""
    raise FileNotFoundError(f"config file not found: {name}; not a shipped config name either{hint} "
                            "('labelwise configs list' lists them)")


def resolve_config(source: str | os.PathLike) -> Path:
    """The YAML file meant by a ``--config`` argument: an existing path, else a shipped config name.

    Raises
    ------
    FileNotFoundError
        Neither an existing file nor a shipped config name (the message lists close names).

    Examples
    --------
    >>> resolve_config("quickstart") == config_dir() / "quickstart.yaml"
    True
    """
    path = Path(source)
    if path.is_file():
        return path
    if path.is_dir():
        raise FileNotFoundError(f"config {os.fspath(source)!r} is a directory, not a YAML file")
    return config_path(os.fspath(source))


def config_summary(name: str) -> str:
    """The first sentence-line of a shipped config's leading comment (empty when it has none).

    Examples
    --------
    >>> config_summary("quickstart").startswith("Quickstart")
    True
    """
    for line in config_path(name).read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text.startswith("#"):
            break
        text = text.lstrip("#").strip()
        if text:
            return text
    return ""


def copy_config(name: str, dest: str | os.PathLike, *, force: bool = False) -> Path:
    """Copy the shipped config ``name`` to ``dest`` (a file, or an existing directory) and return the new file.

    Raises
    ------
    FileExistsError
        The target file exists and ``force`` is false.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> copy_config("quickstart", d).name
    'quickstart.yaml'
    >>> copy_config("quickstart", d)
    Traceback (most recent call last):
    ...
    FileExistsError: .../quickstart.yaml exists; pass --force (force=True) to overwrite it
    """
    src = config_path(name)
    target = Path(dest)
    if target.is_dir():
        target = target / src.name
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; pass --force (force=True) to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    return target
