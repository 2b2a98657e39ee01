"""Seeding and generator states: ``seed_everything``, the DataLoader workers' seeds, checkpointable RNG states."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from .distributed import restore_nvml_env

__all__ = ["seed_everything", "seed_worker", "rng_state", "set_rng_state"]


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); with ``deterministic`` also select deterministic kernels.

    ``deterministic=True`` calls ``torch.use_deterministic_algorithms(True, warn_only=True)``, sets
    ``cudnn.deterministic = True`` and ``cudnn.benchmark = False``, and sets ``CUBLAS_WORKSPACE_CONFIG``
    when it is unset.

    Examples
    --------
    >>> seed_everything(3); a = torch.rand(1); seed_everything(3); bool(torch.equal(a, torch.rand(1)))
    True
    """
    from lightning.fabric.utilities.seed import seed_everything as _seed

    _seed(int(seed), workers=False, verbose=False)
    restore_nvml_env()
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` of DataLoader workers: numpy and python seeded from the worker's torch seed."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def rng_state() -> dict[str, Any]:
    """The python, numpy, torch (and initialised CUDA) generator states, storable in a checkpoint."""
    py_version, py_state, py_gauss = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_state[0], np_state[1].astype(np.int64), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generator states saved by :func:`rng_state`."""
    v, s, g = state["python"]
    random.setstate((int(v), tuple(int(i) for i in s), g))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys).astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.to(torch.uint8).cpu() for t in state["cuda"]])
