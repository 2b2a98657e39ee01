"""The trainer's distributed context: the device Fabric picks and the NVML setting Lightning changes on import.

Tensors of uneven row counts are gathered by :func:`labelwise.metrics.distributed.all_gather_rows`.
"""

from __future__ import annotations

import os
import sys

import torch

__all__ = ["device_type", "restore_nvml_env"]

# ``import lightning.fabric`` sets PYTORCH_NVML_BASED_CUDA_CHECK=1 for the whole process (for its fork-based
# strategies, which the trainer does not offer). With it, every ``torch.cuda.is_available()`` - called by
# every ``optimizer.step()`` - dlopens NVML (~0.3-1 ms per step). The value seen before the first import is
# restored after it (see ``Trainer.setup_fabric``).
_NVML_ENV = "PYTORCH_NVML_BASED_CUDA_CHECK"
_NVML_BEFORE = os.environ.get(_NVML_ENV) if "lightning.fabric" not in sys.modules else "keep"


def restore_nvml_env() -> None:
    """Put back the ``PYTORCH_NVML_BASED_CUDA_CHECK`` value seen before ``lightning.fabric`` was imported."""
    if _NVML_BEFORE is None:
        os.environ.pop(_NVML_ENV, None)
    elif _NVML_BEFORE != "keep":
        os.environ[_NVML_ENV] = _NVML_BEFORE


def device_type(accelerator: str) -> str:
    """The device type Fabric picks for ``accelerator`` (``"auto"``: cuda, else mps, else cpu)."""
    if accelerator in ("gpu", "cuda"):
        return "cuda"
    if accelerator in ("cpu", "mps"):
        return accelerator
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"
