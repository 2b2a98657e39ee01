"""Gathering rows across DDP processes: the one all-gather of tensors whose row counts differ per process.

The Evaluator (scores and targets of every rank), the trainer (predictions of the evaluation shards) and the
batch-selection samplers (the losses of every process's shard) all concatenate, in rank order, tensors whose
first dimension differs across processes. ``torch.distributed.all_gather`` needs equal shapes, so
:func:`all_gather_rows` first gathers the row counts, pads every tensor to the largest count, gathers and
trims. It works with any backend that has ``all_gather`` (with NCCL the exchange goes through the current
CUDA device). Without an initialised process group, or with one process, the tensor is returned unchanged.

Examples
--------
>>> import torch
>>> all_gather_rows(torch.arange(6).reshape(3, 2)).tolist()  # one process: the tensor itself
[[0, 1], [2, 3], [4, 5]]
>>> world_size()
1
"""

from __future__ import annotations

import torch

__all__ = ["all_gather_rows", "world_size", "exchange_device"]


def world_size() -> int:
    """The number of processes of the initialised default process group (1 without one)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size())
    return 1


def exchange_device() -> torch.device:
    """Where tensors are exchanged: the current CUDA device with the NCCL backend, else the CPU."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_rows(tensor: torch.Tensor, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Concatenate along dim 0 the ``tensor`` of every process, in rank order (row counts may differ).

    A collective operation: every process of the group must call it (with the same trailing shape and
    dtype). Not differentiable.

    Parameters
    ----------
    tensor : Tensor
        This process's rows ``[n_rank, ...]``.
    device : torch.device or str, optional
        Where the exchange happens; default :func:`exchange_device`.

    Returns
    -------
    Tensor
        ``[sum of n_rank, ...]`` on the device of ``tensor``; ``tensor`` itself on a single process.
    """
    world = world_size()
    if world <= 1:
        return tensor
    dist = torch.distributed
    dev = torch.device(device) if device is not None else exchange_device()
    n = torch.tensor([tensor.shape[0]], dtype=torch.int64, device=dev)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    counts = [int(v.item()) for v in sizes]
    padded = torch.zeros((max(counts), *tensor.shape[1:]), dtype=tensor.dtype, device=dev)
    padded[: tensor.shape[0]] = tensor.detach().to(dev)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:k] for p, k in zip(parts, counts)], 0).to(tensor.device)
