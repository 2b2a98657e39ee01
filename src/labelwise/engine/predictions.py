"""What :meth:`labelwise.engine.Trainer.predict` returns, and how the batches of all processes become it.

Each process predicts its shard of the evaluation data (:class:`~labelwise.engine.EvalShardSampler` pads the
shards to equal length, repeating rows); :func:`gather_predictions` concatenates the batches, gathers them
from every process and keeps each dataset row once, in dataset order, so every process ends with the same
:class:`Predictions`. Rows whose input could not be read are absent (``indices`` says which rows are there)
and counted in ``skipped``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..metrics.distributed import all_gather_rows

__all__ = ["Predictions", "gather_predictions"]


class Predictions(tuple):
    """``(scores, targets)`` returned by :meth:`Trainer.predict`, with ``indices`` and ``skipped`` attributes.

    ``scores`` are float32 probabilities ``[N, C]``, ``targets`` uint8 ``[N, C]``, both in dataset order;
    ``indices`` (int64 ``[N]``) are the dataset positions of the rows (``arange(len(data))`` unless inputs
    were skipped) and ``skipped`` the number of unreadable inputs dropped.

    Examples
    --------
    >>> import numpy as np
    >>> p = Predictions(np.zeros((2, 3), "float32"), np.ones((2, 3), "uint8"), np.arange(2))
    >>> scores, targets = p
    >>> scores.shape, p.indices.tolist(), p.skipped
    ((2, 3), [0, 1], 0)
    """

    indices: np.ndarray
    skipped: int

    def __new__(cls, scores: np.ndarray, targets: np.ndarray, indices: np.ndarray, skipped: int = 0):
        self = super().__new__(cls, (scores, targets))
        self.indices = indices
        self.skipped = int(skipped)
        return self

    def __getnewargs__(self):
        return (self[0], self[1], self.indices, self.skipped)

    @property
    def scores(self) -> np.ndarray:
        return self[0]

    @property
    def targets(self) -> np.ndarray:
        return self[1]


def gather_predictions(scores: list[torch.Tensor], targets: list[torch.Tensor], indices: list[torch.Tensor], *,
                       num_classes: int, dataset_size: int, device: torch.device | str = "cpu",
                       world_size: int = 1) -> Predictions:
    """One :class:`Predictions` from this process's batches of scores, targets and dataset indices.

    Parameters
    ----------
    scores, targets, indices : list of torch.Tensor
        Per batch: probabilities ``[b, C]``, targets ``[b, C]`` and dataset positions ``[b]`` (any may be empty
        lists when the process saw no readable input).
    num_classes : int
        ``C``, for the shape of empty results.
    dataset_size : int
        Rows of the evaluated dataset: those absent after gathering count as ``skipped``.
    device : torch.device or str
        Where the empty tensors are made (the device of the batches).
    world_size : int
        Processes to gather from (``> 1``: one all-gather per tensor; every process must call it).

    Returns
    -------
    Predictions
        float32 scores, uint8 targets, int64 indices, each dataset row once and in dataset order.

    Examples
    --------
    >>> import torch
    >>> p = gather_predictions([torch.tensor([[0.2], [0.9]]), torch.tensor([[0.2]])],
    ...                        [torch.tensor([[0], [1]]), torch.tensor([[0]])],
    ...                        [torch.tensor([2, 0]), torch.tensor([2])], num_classes=1, dataset_size=4)
    >>> p.indices.tolist(), p.scores.ravel().tolist(), p.skipped
    ([0, 2], [0.8999999761581421, 0.20000000298023224], 2)
    """
    s = torch.cat(scores) if scores else torch.zeros((0, num_classes), device=device)
    t = torch.cat(targets) if targets else torch.zeros((0, num_classes), dtype=torch.uint8, device=device)
    i = torch.cat(indices) if indices else torch.zeros((0,), dtype=torch.long, device=device)
    if world_size > 1:
        s, t, i = all_gather_rows(s), all_gather_rows(t), all_gather_rows(i)
    uniq, first = np.unique(i.cpu().numpy(), return_index=True)
    s_np = s.cpu().numpy()[first].astype(np.float32, copy=False)
    t_np = t.cpu().numpy()[first].astype(np.uint8, copy=False)
    # count unreadable samples once, whatever the padding duplicated (every process holds them all now)
    return Predictions(s_np, t_np, uniq.astype(np.int64), dataset_size - len(uniq))
