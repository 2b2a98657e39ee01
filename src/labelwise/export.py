"""Export a trained model to ONNX or TorchScript, checked against the PyTorch model.

Exported models take a float batch ``[B, 3, H, W]`` (already resized and normalised as in the run's
evaluation transform; or ``[B, D]`` features for tabular models) and return **logits** ``[B, C]``: apply a
sigmoid to get probabilities, then the thresholds. The batch axis is dynamic.

The class names, thresholds and preprocessing travel with the file: as ONNX ``metadata_props``
(``labelwise`` key, a JSON string) and as the TorchScript extra file ``labelwise.json``::

    {"class_names": [...], "thresholds": {"global": 0.5, "per_class": [...] | null},
     "input_shape": [3, 64, 64], "output": "logits", "normalize": "imagenet", ...}

Checks: ``check=True`` runs the exported model (onnxruntime for ONNX, the loaded TorchScript module) on a
random batch of a batch size different from the traced one, and raises if the largest absolute
difference to the PyTorch output reaches ``atol`` (1e-4 by default).

The ONNX file is written by PyTorch's TorchScript-based exporter (``dynamo=False``): the ``torch.export``
based exporter needs the optional ``onnxscript`` package. TorchScript itself is deprecated by PyTorch
(2.14 warns on ``torch.jit.save``/``load``; those warnings are silenced here) but still the format most
C++/mobile runtimes load; prefer ONNX for new deployments.

Examples
--------
>>> import tempfile, os, torch
>>> from labelwise.models import create_model
>>> from labelwise.export import export_onnx, export_torchscript
>>> model = create_model("ofml", num_classes=4, backbone="test_resnet")
>>> d = tempfile.mkdtemp()
>>> r = export_onnx(model, os.path.join(d, "model.onnx"), input_shape=(3, 32, 32), metadata={"class_names": list("abcd")})
>>> r.max_abs_diff < 1e-4
True
>>> export_torchscript(model, os.path.join(d, "model.pt"), input_shape=(3, 32, 32)).format
'torchscript'
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["ExportResult", "ExportCheckError", "export_onnx", "export_torchscript", "export_checkpoint",
           "read_onnx_metadata"]


class ExportCheckError(RuntimeError):
    """The exported model's output differs from PyTorch's by more than the tolerance."""


@dataclass
class ExportResult:
    """What an export wrote: ``path``, ``format`` and the checked ``max_abs_diff`` (None if unchecked)."""

    path: Path
    format: str
    max_abs_diff: float | None
    input_shape: tuple[int, ...]


def _prepare(model: torch.nn.Module, input_shape: Sequence[int]) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The module to export (``LogitsOnly(model)`` for dict outputs) in eval mode on the CPU, and the shape."""
    from .models import LogitsOnly

    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be positive sizes without the batch axis, e.g. (3, 224, 224); got {input_shape}")
    module = model.to("cpu").eval()
    with torch.no_grad():
        try:
            out = module(torch.zeros((2, *shape)))
        except RuntimeError as exc:  # e.g. 1 input channel for a 3-channel model
            reason = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise ValueError(f"input_shape {','.join(map(str, shape))} does not fit the model: {reason}") from exc
    if isinstance(out, dict):
        if "logits" not in out:
            raise TypeError(f"{type(model).__name__} returns a dict without 'logits' (keys: {sorted(out)})")
        module = LogitsOnly(module).eval()
        out = out["logits"]
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise TypeError(f"the model must return logits [B, C] or a dict with them; got {type(out).__name__}"
                        + (f" of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else ""))
    return module, shape


def _example(shape: tuple[int, ...], batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *shape), generator=g)


def _compare(reference: torch.Tensor, other: np.ndarray, atol: float, what: str) -> float:
    ref = reference.detach().cpu().numpy()
    if ref.shape != other.shape:
        raise ExportCheckError(f"{what}: output shape {other.shape} differs from PyTorch's {ref.shape}")
    diff = float(np.max(np.abs(ref - other))) if ref.size else 0.0
    if not diff < atol:
        raise ExportCheckError(f"{what}: max abs difference to PyTorch {diff:.3g} >= tolerance {atol:g}")
    return diff


def export_onnx(
    model: torch.nn.Module,
    path: str | os.PathLike,
    *,
    input_shape: Sequence[int],
    opset: int = 17,
    check: bool = True,
    atol: float = 1e-4,
    metadata: dict[str, Any] | None = None,
) -> ExportResult:
    """Export ``model`` (logits output) to ONNX with a dynamic batch axis.

    Parameters
    ----------
    model : nn.Module
        A labelwise model (dict output with ``"logits"``) or any module returning logits.
    path : str or path
        The ``.onnx`` file to write.
    input_shape : sequence of int
        One input without the batch axis: ``(3, H, W)`` for images, ``(D,)`` for features.
    opset : int
        ONNX opset version.
    check : bool
        Compare onnxruntime's output with PyTorch's on a random batch of 3 (needs ``onnxruntime``).
    atol : float
        Largest accepted absolute difference of the logits.
    metadata : dict, optional
        JSON-serialisable information stored in the model's ``metadata_props`` under ``labelwise``
        (class names, thresholds, preprocessing).

    Returns
    -------
    ExportResult

    Raises
    ------
    ExportCheckError
        The check found a larger difference than ``atol``.

    Examples
    --------
    >>> import tempfile, os, torch
    >>> lin = torch.nn.Linear(5, 2)
    >>> r = export_onnx(lin, os.path.join(tempfile.mkdtemp(), "lin.onnx"), input_shape=(5,))
    >>> r.format, r.input_shape, r.max_abs_diff < 1e-4
    ('onnx', (5,), True)
    """
    import onnx

    wrapped, shape = _prepare(model, input_shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = _example(shape, 2, 0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            wrapped,
            (example,),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    info = {"output": "logits (apply sigmoid for probabilities)", "input_shape": list(shape), **(metadata or {})}
    entry = proto.metadata_props.add()
    entry.key, entry.value = "labelwise", json.dumps(info)
    onnx.save(proto, str(path))

    diff = None
    if check:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = _example(shape, 3, 1)
        with torch.no_grad():
            ref = wrapped(x)
        out = sess.run(["logits"], {"input": x.numpy()})[0]
        diff = _compare(ref, out, atol, f"{path} (onnxruntime)")
    return ExportResult(path, "onnx", diff, shape)


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``labelwise`` metadata stored in an exported ONNX file (``{}`` if there is none).

    Examples
    --------
    >>> import tempfile, os, torch
    >>> p = export_onnx(torch.nn.Linear(3, 2), os.path.join(tempfile.mkdtemp(), "m.onnx"), input_shape=(3,),
    ...                 metadata={"class_names": ["a", "b"]}, check=False).path
    >>> read_onnx_metadata(p)["class_names"]
    ['a', 'b']
    """
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == "labelwise":
            return json.loads(entry.value)
    return {}


def export_torchscript(
    model: torch.nn.Module,
    path: str | os.PathLike,
    *,
    input_shape: Sequence[int],
    check: bool = True,
    atol: float = 1e-4,
    metadata: dict[str, Any] | None = None,
) -> ExportResult:
    """Export ``model`` (logits output) with ``torch.jit.trace`` and save it with ``torch.jit.save``.

    Parameters
    ----------
    model : nn.Module
        A labelwise model (dict output) or any module returning logits.
    path : str or path
        The file to write (``.pt`` by convention; load with ``torch.jit.load``).
    input_shape : sequence of int
        One input without the batch axis.
    check : bool
        Reload the file and compare its output with PyTorch's on a random batch of 3.
    atol : float
        Largest accepted absolute difference of the logits.
    metadata : dict, optional
        Stored as the extra file ``labelwise.json`` (``torch.jit.load(p, _extra_files={"labelwise.json": ""})``).

    Returns
    -------
    ExportResult

    Examples
    --------
    >>> import tempfile, os, torch
    >>> r = export_torchscript(torch.nn.Linear(5, 2), os.path.join(tempfile.mkdtemp(), "lin.pt"), input_shape=(5,))
    >>> r.max_abs_diff < 1e-4
    True
    """
    wrapped, shape = _prepare(model, input_shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*deprecated")
        traced = torch.jit.trace(wrapped, _example(shape, 2, 0), check_trace=False)
        info = {"output": "logits (apply sigmoid for probabilities)", "input_shape": list(shape), **(metadata or {})}
        torch.jit.save(traced, str(path), _extra_files={"labelwise.json": json.dumps(info)})
    diff = None
    if check:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*deprecated")
            loaded = torch.jit.load(str(path), map_location="cpu")
        x = _example(shape, 3, 1)
        with torch.no_grad():
            ref = wrapped(x)
            out = loaded(x)
        diff = _compare(ref, out.detach().cpu().numpy(), atol, f"{path} (TorchScript)")
    return ExportResult(path, "torchscript", diff, shape)


def export_checkpoint(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    *,
    format: str = "onnx",  # noqa: A002 - the natural name on the command line
    which: str = "best",
    input_shape: Sequence[int] | None = None,
    check: bool = True,
    atol: float = 1e-4,
    opset: int = 17,
) -> ExportResult:
    """Export the model of a checkpoint (file or run directory) to ONNX or TorchScript.

    The input shape defaults to ``(3, H, W)`` from the run's ``data.image_size``, or ``(in_features,)`` for
    tabular models. Class names, thresholds and the preprocessing (image size, normalisation) are stored as
    metadata.

    Parameters
    ----------
    checkpoint : str or path
    output : str or path
        File to write.
    format : {"onnx", "torchscript"}
    which : {"best", "last"}
        Checkpoint picked when a directory is given.
    input_shape : sequence of int, optional
        Override the input shape (without the batch axis).
    check, atol, opset
        See :func:`export_onnx` / :func:`export_torchscript`.

    Returns
    -------
    ExportResult

    Examples
    --------
    >>> export_checkpoint("runs/quickstart", "model.onnx", format="onnx").max_abs_diff    # doctest: +SKIP
    3.5e-07
    """
    from .run import load_model

    if format not in ("onnx", "torchscript"):
        raise ValueError(f"format must be 'onnx' or 'torchscript', got {format!r}")
    model, cfg, ckpt = load_model(checkpoint, which=which)
    if input_shape is None:
        size = cfg.data.image_size
        if size is not None:
            h, w = (size, size) if isinstance(size, int) else tuple(size)
            input_shape = (3, h, w)
        elif "in_features" in cfg.model.kwargs:
            input_shape = (int(cfg.model.kwargs["in_features"]),)
        else:
            raise ValueError(f"{ckpt.path}: cannot tell the input shape (no data.image_size); pass input_shape")
    meta = {
        "class_names": list(ckpt.class_names),
        "thresholds": ckpt.thresholds,
        "model": cfg.model.name,
        "image_size": cfg.data.image_size,
        "normalize": cfg.data.normalize,
        "eval_transform": cfg.data.eval_transform,
        "checkpoint": str(ckpt.path),
    }
    if format == "onnx":
        return export_onnx(model, output, input_shape=input_shape, check=check, atol=atol, opset=opset, metadata=meta)
    return export_torchscript(model, output, input_shape=input_shape, check=check, atol=atol, metadata=meta)
