"""Checkpoints as safetensors + JSON, written atomically and loaded without pickle.

A checkpoint named ``<name>`` in a directory is three files:

``<name>.safetensors``
    The model weights (a flat ``state_dict`` of contiguous CPU tensors). When the trainer keeps an EMA of
    the weights, these are the EMA weights (the model that is evaluated and exported).
``<name>.state.safetensors`` (optional)
    Every tensor of the resume state: optimiser moments, the raw (non-EMA) weights, RNG byte tensors,
    sampler and callback tensors. Keys are the paths of the tensors in the state structure
    (``"optimizer/state/3/exp_avg"``).
``<name>.json``
    The sidecar: format version, ``run_config`` (the resolved recipe, stored verbatim), ``class_names``,
    ``thresholds`` (global and per class), ``metrics``, and the resume state with every tensor replaced by
    ``{"__tensor__": key}`` (see :func:`encode_state`), plus the sha256 of both safetensors files. The
    sidecar does not name its sibling files: they are found from its own name, so a checkpoint can be
    renamed (``best.*`` -> ``epoch7.*``, all files of the pair together).

Writing is crash-safe: every file is written under a temporary name, flushed and ``fsync``-ed; the new
sidecar is committed by renaming it to ``<name>.json.new`` (the journal) before the files are moved into
place with ``os.replace`` and the directory is ``fsync``-ed. A process killed at any moment leaves either
the previous checkpoint or the new one: :func:`load_checkpoint` (and the next save) rolls an interrupted
commit forward from the journal, whose sha256 sums prove which files are complete.

A write that fails (disk full, quota, permissions) raises :class:`CheckpointWriteError` (an ``OSError``)
after removing the partial ``*.new`` and temporary files; the previous checkpoint of that name stays
valid and loadable. :func:`sweep_temporary_files` removes the temporary files a killed process left behind.
Files are created with the permissions of the process umask (``0o666 & ~umask``), like ``open()``.

Loading only ever parses safetensors and JSON. A pickle file (``torch.save`` output, renamed or not) is
refused with an error naming the file, without executing any of it; so is a file whose sha256 differs from
the one recorded in the sidecar.

Examples
--------
>>> import tempfile, torch
>>> from labelwise.engine.checkpoint import save_checkpoint, load_checkpoint
>>> d = tempfile.mkdtemp()
>>> paths = save_checkpoint(d + "/best", {"w": torch.ones(2, 3)}, metadata={"class_names": ["a", "b"]},
...                         state={"epoch": 3, "moments": [torch.zeros(2)]})
>>> ckpt = load_checkpoint(d + "/best.json")
>>> ckpt.weights["w"].shape, ckpt.meta["class_names"], ckpt.state["epoch"], ckpt.state["moments"][0].tolist()
(torch.Size([2, 3]), ['a', 'b'], 3, [0.0, 0.0])
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "CheckpointWriteError",
    "save_checkpoint",
    "load_checkpoint",
    "load_safetensors",
    "resolve_checkpoint_path",
    "check_checkpoint_exists",
    "encode_state",
    "decode_state",
    "atomic_write_bytes",
    "atomic_write_text",
    "sweep_temporary_files",
]

FORMAT_NAME = "labelwise-checkpoint"
_TMP_SUFFIX = ".tmp"
_TMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # tempfile.mkstemp(prefix=".<name>.", suffix=".tmp")
FORMAT_VERSION = 1
_PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle", ".tar")


class CheckpointError(ValueError):
    """A checkpoint file is missing, not in the labelwise format, corrupt, or (refused) a pickle."""


class CheckpointWriteError(OSError):
    """A checkpoint (or another run file) could not be written: disk full, quota, permissions.

    The partial files were removed and the previous checkpoint of that name is intact. ``errno`` is the one
    of the underlying ``OSError`` (``errno.ENOSPC`` for a full disk); ``str(exc)`` is a one-line message.
    """

    def __init__(self, errno_: int | None, message: str) -> None:
        super().__init__(errno_, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``weights`` (model state dict), ``meta`` (the sidecar JSON without the state)
    and ``state`` (the decoded resume state, or None when the checkpoint has none)."""

    weights: dict[str, torch.Tensor]
    meta: dict[str, Any]
    state: dict[str, Any] | None = None
    path: Path = field(default_factory=Path)

    @property
    def class_names(self) -> list[str] | None:
        return self.meta.get("class_names")

    @property
    def run_config(self) -> dict[str, Any]:
        return self.meta.get("run_config") or {}

    @property
    def thresholds(self) -> dict[str, Any]:
        return self.meta.get("thresholds") or {}


# -- atomic file writing ---------------------------------------------------------------------------------
def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it where the platform allows (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)  # pragma: no cover - not Linux: the usual get-by-setting dance
    os.umask(old)
    return old


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync it and rename it to ``path``.

    The file gets the mode ``open()`` would give it (``0o666 & ~umask``), not ``mkstemp``'s 0600.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), 0o666 & ~_umask())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, flush, fsync, ``os.replace``, fsync of the dir).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.bin"); atomic_write_bytes(p, b"abc"); open(p, "rb").read()
    b'abc'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_synced(path, data)
    except OSError as exc:
        raise _write_error(exc, path, len(data)) from exc
    _fsync_dir(path.parent)


def _write_error(exc: OSError, path: Path, size: int, *, what: str | None = None, kept: str = "") -> OSError:
    if isinstance(exc, CheckpointWriteError):
        return exc
    reason = exc.strerror or str(exc)
    msg = f"could not write {what or path} ({reason}; {size / 1e6:.1f} MB to write)"
    if kept:
        msg += f"; {kept}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        msg += f"; free space on the file system of {path.parent} and run again"
    return CheckpointWriteError(exc.errno, msg)


def sweep_temporary_files(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary files an interrupted write left in ``directory`` (not recursive).

    These are the ``.<name>.<random>.tmp`` files of :func:`atomic_write_bytes` and checkpoint writes, and
    the ``*.new`` files of a checkpoint commit that never reached its journal (a complete journalled commit
    is rolled forward instead). Only call it when no other process writes into ``directory`` (the trainer
    calls it while holding the run lock).

    Returns
    -------
    list of Path
        The removed files.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / ".last.safetensors.new.k2j3x_9q.tmp").write_bytes(b"x")
    >>> [p.name for p in sweep_temporary_files(d)], sorted(p.name for p in d.iterdir())
    (['.last.safetensors.new.k2j3x_9q.tmp'], [])
    """
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    prefixes = set()
    for p in directory.iterdir():
        if _TMP_NAME.match(p.name) and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
        elif p.name.endswith(".json.new") or p.name.endswith(".safetensors.new"):
            prefixes.add(_prefix(p.with_name(p.name[: -len(".new")])))
    for prefix in sorted(prefixes):
        removed.extend(_recover(prefix))
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


# -- state encoding: nested structures of JSON values and tensors ---------------------------------------
def encode_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Replace every tensor / numpy array in ``obj`` by ``{"__tensor__": key}`` and put it in ``tensors``.

    Dicts with non-string keys become ``{"__items__": [[key, value], ...]}`` and tuples
    ``{"__tuple__": [...]}``, so :func:`decode_state` gives back the same structure. Values other than
    JSON scalars, lists, tuples, dicts, tensors and numpy arrays/scalars raise a ``TypeError`` naming the
    path of the value.

    Examples
    --------
    >>> t = {}
    >>> enc = encode_state({"step": 2, "m": {0: torch.ones(1)}}, t)
    >>> enc, list(t)
    ({'step': 2, 'm': {'__items__': [[0, {'__tensor__': 'm/0'}]]}}, ['m/0'])
    >>> decode_state(enc, t)["m"][0]
    tensor([1.])
    """
    if isinstance(obj, torch.Tensor):
        key = prefix or "tensor"
        if key in tensors:
            raise ValueError(f"duplicate tensor key {key!r} in checkpoint state")
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        return encode_state(torch.from_numpy(np.ascontiguousarray(obj)), tensors, prefix)
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict):
        sub = (lambda k: f"{prefix}/{k}") if prefix else str
        if all(isinstance(k, str) for k in obj) and "__tensor__" not in obj and "__items__" not in obj:
            return {k: encode_state(v, tensors, sub(k)) for k, v in obj.items()}
        items = []
        for k, v in obj.items():
            if not (k is None or isinstance(k, bool | int | float | str)):
                raise TypeError(f"checkpoint state at {prefix or '<root>'!r}: unsupported dict key {k!r}")
            items.append([k, encode_state(v, tensors, sub(k))])
        return {"__items__": items}
    if isinstance(obj, list | tuple):
        enc = [encode_state(v, tensors, f"{prefix}/{i}" if prefix else str(i)) for i, v in enumerate(obj)]
        return {"__tuple__": enc} if isinstance(obj, tuple) else enc
    raise TypeError(
        f"checkpoint state at {prefix or '<root>'!r}: cannot store a {type(obj).__name__} "
        "(use JSON values, lists, dicts, tensors or numpy arrays)"
    )


def decode_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode_state`."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            key = obj["__tensor__"]
            if key not in tensors:
                raise CheckpointError(f"checkpoint state refers to tensor {key!r} missing from the tensor file")
            return tensors[key]
        if set(obj) == {"__items__"}:
            return {k: decode_state(v, tensors) for k, v in obj["__items__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(decode_state(v, tensors) for v in obj["__tuple__"])
        return {k: decode_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_state(v, tensors) for v in obj]
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    raise TypeError(f"cannot write a {type(obj).__name__} to the checkpoint JSON")


def _finite_or_none(metrics: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (metrics or {}).items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None if math.isnan(v) else v
        else:
            out[k] = v
    return out


# -- save ------------------------------------------------------------------------------------------------
def _prefix(path: str | os.PathLike) -> Path:
    p = Path(path)
    for suffix in (".state.safetensors", ".safetensors", ".json.new", ".json"):
        if p.name.endswith(suffix):
            return p.with_name(p.name[: -len(suffix)])
    return p


def _files(prefix: Path) -> dict[str, Path]:
    return {
        "weights": prefix.with_name(prefix.name + ".safetensors"),
        "state": prefix.with_name(prefix.name + ".state.safetensors"),
        "json": prefix.with_name(prefix.name + ".json"),
        "journal": prefix.with_name(prefix.name + ".json.new"),
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _serialize_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    from safetensors.torch import save

    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return save(flat, metadata=metadata)


def save_checkpoint(
    path: str | os.PathLike,
    weights: dict[str, torch.Tensor],
    *,
    metadata: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write a checkpoint ``<path>.safetensors`` (+ ``<path>.state.safetensors``) + ``<path>.json``.

    Parameters
    ----------
    path : str or path
        The checkpoint prefix (``run/checkpoints/best``); a ``.json``/``.safetensors`` suffix is stripped.
    weights : dict of str to Tensor
        The model state dict (stored as contiguous CPU tensors; shared storage is copied).
    metadata : dict, optional
        JSON-serialisable sidecar content (``run_config``, ``class_names``, ``thresholds``, ``metrics``...).
        Non-finite metric values are written as ``null`` (NaN) or ``Infinity``.
    state : dict, optional
        The resume state: JSON values and tensors (see :func:`encode_state`). None writes no state file.

    Returns
    -------
    dict
        ``{"weights": Path, "json": Path}`` plus ``"state"`` when a state was written.

    Notes
    -----
    Crash-safe and atomic, see the module documentation. Only call it from one process.
    """
    prefix = _prefix(path)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    files = _files(prefix)
    _recover(prefix)

    weights_bytes = _serialize_tensors(weights, {"format": FORMAT_NAME})
    sidecar: dict[str, Any] = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION}
    meta = dict(metadata or {})
    if "metrics" in meta:
        meta["metrics"] = _finite_or_none(meta["metrics"])
    for reserved in ("format", "format_version", "files", "state"):
        meta.pop(reserved, None)
    sidecar.update(meta)
    # Only the sums: the files are found from the sidecar's own name (renaming a checkpoint keeps working).
    sidecar["files"] = {"weights_sha256": _sha256(weights_bytes)}
    state_bytes = None
    if state is not None:
        tensors: dict[str, torch.Tensor] = {}
        sidecar["state"] = encode_state(state, tensors)
        state_bytes = _serialize_tensors(tensors, {"format": FORMAT_NAME})
        sidecar["files"]["state_sha256"] = _sha256(state_bytes)
    text = json.dumps(sidecar, indent=1, default=_json_default, allow_nan=True)

    # Phase 1: new files under their ".new" names, durable; then the journal (the commit point).
    new_weights = files["weights"].with_name(files["weights"].name + ".new")
    new_state = files["state"].with_name(files["state"].name + ".new")
    try:
        _write_synced(new_weights, weights_bytes)
        if state_bytes is not None:
            _write_synced(new_state, state_bytes)
        _write_synced(files["journal"], text.encode("utf-8"))
    except OSError as exc:
        # Nothing was committed: drop the partial files; the previous checkpoint of this name is untouched.
        for p in (new_weights, new_state, files["journal"]):
            p.unlink(missing_ok=True)
        size = len(weights_bytes) + len(state_bytes or b"") + len(text)
        kept = (f"the previous checkpoint {files['json']} is intact" if files["json"].exists()
                else "no previous checkpoint of that name existed")
        raise _write_error(exc, files["json"], size, what=f"checkpoint {prefix}", kept=kept) from exc
    _fsync_dir(prefix.parent)
    # Phase 2: move into place (replayed by _recover if interrupted).
    _roll_forward(prefix)
    out = {"weights": files["weights"], "json": files["json"]}
    if state_bytes is not None:
        out["state"] = files["state"]
    return out


def _roll_forward(prefix: Path) -> None:
    files = _files(prefix)
    journal = json.loads(files["journal"].read_text(encoding="utf-8"))
    kinds = _kinds(journal)
    for kind in kinds:
        final = files[kind]
        new = final.with_name(final.name + ".new")
        if new.exists():
            os.replace(new, final)
    if "state" not in kinds and files["state"].exists():
        files["state"].unlink()
    os.replace(files["journal"], files["json"])
    _fsync_dir(prefix.parent)


def _recover(prefix: Path) -> list[Path]:
    """Finish an interrupted commit (journal present and its files complete) or discard a partial one.

    Returns the files that were discarded (none when the commit was rolled forward).
    """
    files = _files(prefix)
    journal_path = files["journal"]
    stale = [files["weights"].with_name(files["weights"].name + ".new"),
             files["state"].with_name(files["state"].name + ".new")]
    discarded: list[Path] = []
    if journal_path.exists():
        try:
            journal = json.loads(journal_path.read_text(encoding="utf-8"))
            ok = True
            for kind in _kinds(journal):
                final = files[kind]
                new = final.with_name(final.name + ".new")
                src = new if new.exists() else final
                if not src.exists() or _sha256_file(src) != journal["files"][f"{kind}_sha256"]:
                    ok = False
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if ok:
            _roll_forward(prefix)
            return discarded
        journal_path.unlink(missing_ok=True)
        discarded.append(journal_path)
    for p in stale:
        if p.exists():
            p.unlink(missing_ok=True)
            discarded.append(p)
    return discarded


def _kinds(sidecar: dict[str, Any]) -> list[str]:
    """The safetensors files a sidecar records (``weights``, and ``state`` when it has a resume state)."""
    recorded = sidecar.get("files") or {}
    return [kind for kind in ("weights", "state") if f"{kind}_sha256" in recorded or kind in recorded]


# -- load ------------------------------------------------------------------------------------------------
def _check_not_pickle(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:1] == b"\x80" or head[:4] == b"PK\x03\x04":
        raise CheckpointError(
            f"{path}: this is a pickle / torch.save file, not safetensors; labelwise never unpickles files "
            "(convert it with safetensors.torch.save_file in a trusted environment)"
        )


def load_safetensors(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors file, refusing anything else (pickles included) with an error naming the file.

    Examples
    --------
    >>> import tempfile, os, torch
    >>> from safetensors.torch import save_file
    >>> p = os.path.join(tempfile.mkdtemp(), "w.safetensors"); save_file({"a": torch.zeros(2)}, p)
    >>> load_safetensors(p)["a"]
    tensor([0., 0.])
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise CheckpointError(f"{path}: {path.suffix} files are pickles; labelwise only loads safetensors + JSON")
    _check_not_pickle(path)
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a valid safetensors file ({exc})") from exc


def resolve_checkpoint_path(path: str | os.PathLike, *, default: str = "last") -> Path:
    """The sidecar path of a checkpoint given as a prefix, one of its files, a checkpoints dir or a run dir.

    Examples
    --------
    >>> resolve_checkpoint_path("/nonexistent/run/checkpoints/best.safetensors").name
    'best.json'
    """
    p = Path(path)
    if p.suffix.lower() in _PICKLE_SUFFIXES:
        raise CheckpointError(f"{p}: {p.suffix} files are pickles; labelwise only loads safetensors + JSON checkpoints")
    if p.is_dir():
        for candidate in (p / "checkpoints" / default, p / default):
            files = _files(candidate)
            if files["json"].exists() or files["journal"].exists():
                return files["json"]
        raise FileNotFoundError(f"no {default!r} checkpoint in {p} (looked for checkpoints/{default}.json)")
    return _files(_prefix(p))["json"]


def _raise_missing(given: str | os.PathLike, json_path: Path) -> None:
    given = Path(given)
    if not given.exists() and not any(f.exists() for f in _files(_prefix(json_path)).values()):
        raise FileNotFoundError(
            f"checkpoint not found: {given} (no such run directory or checkpoint; give a run directory, its "
            "checkpoints/ folder or a checkpoint's .json / .safetensors file)"
        )
    raise FileNotFoundError(f"checkpoint sidecar not found: {json_path} (the JSON file next to {given})")


def check_checkpoint_exists(path: str | os.PathLike, *, default: str = "last") -> Path:
    """The sidecar path of the checkpoint ``path`` names (as :func:`load_checkpoint` resolves it), or a
    ``FileNotFoundError`` naming ``path`` as the user gave it; nothing is read.

    Examples
    --------
    >>> check_checkpoint_exists("runs/missing")
    Traceback (most recent call last):
    ...
    FileNotFoundError: checkpoint not found: runs/missing (no such run directory or checkpoint; ...)
    """
    json_path = resolve_checkpoint_path(path, default=default)
    files = _files(_prefix(json_path))
    if not (files["json"].is_file() or files["journal"].is_file()):
        _raise_missing(path, json_path)
    return json_path


def load_checkpoint(
    path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    load_state: bool = True,
    default: str = "last",
) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (safetensors + JSON only, never pickle).

    Parameters
    ----------
    path : str or path
        ``<prefix>``, ``<prefix>.json``, ``<prefix>.safetensors``, a run directory or its ``checkpoints``
        directory (then the ``default`` checkpoint, ``"last"`` or ``"best"``).
    device : str or torch.device
        Where the tensors are loaded.
    load_state : bool
        Also load and decode the resume state (``Checkpoint.state``); False reads only the weights.

    Raises
    ------
    FileNotFoundError
        A file is missing (its path is named).
    CheckpointError
        A file is a pickle, not valid safetensors/JSON, not a labelwise checkpoint, or its sha256 differs
        from the sidecar's.
    """
    json_path = resolve_checkpoint_path(path, default=default)
    prefix = _prefix(json_path)
    if _files(prefix)["journal"].exists():
        _recover(prefix)
    if not json_path.is_file():
        _raise_missing(path, json_path)
    raw = json_path.read_bytes()
    if raw[:1] == b"\x80" or raw[:4] == b"PK\x03\x04":
        raise CheckpointError(f"{json_path}: this is a pickle file, not a JSON sidecar; refusing to load it")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{json_path}: not a valid JSON checkpoint sidecar ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{json_path}: not a labelwise checkpoint sidecar (no \"format\": {FORMAT_NAME!r})")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{json_path}: checkpoint format version {meta['format_version']} is newer than this labelwise "
            f"({FORMAT_VERSION}); upgrade labelwise"
        )
    files = meta.get("files") or {}

    def _load(kind: str) -> dict[str, torch.Tensor]:
        if f"{kind}_sha256" not in files:
            raise CheckpointError(f"{json_path}: sidecar records no {kind} file")
        fpath = _files(prefix)[kind]  # the sibling of the sidecar, whatever name it was written under
        if not fpath.is_file() and isinstance(files.get(kind), str) and (json_path.parent / files[kind]).is_file():
            fpath = json_path.parent / files[kind]  # sidecars of labelwise <= 0.1 recorded the name
        if not fpath.is_file():
            raise FileNotFoundError(f"checkpoint file not found: {fpath} (the {kind} file of {json_path})")
        _check_not_pickle(fpath)
        digest = _sha256_file(fpath)
        if digest != files.get(f"{kind}_sha256"):
            raise CheckpointError(
                f"{fpath}: sha256 {digest[:12]}... differs from the one recorded in {json_path.name} "
                f"({str(files.get(f'{kind}_sha256'))[:12]}...): the file is corrupt or was replaced"
            )
        return load_safetensors(fpath, device=device)

    weights = _load("weights")
    state = None
    encoded_state = meta.pop("state", None)
    if load_state and encoded_state is not None:
        state = decode_state(encoded_state, _load("state"))
    return Checkpoint(weights=weights, meta=meta, state=state, path=json_path)
