"""Keep the weights of every n-th epoch: ``checkpoints/epoch_<NNN>.safetensors`` + ``.json``.

The trainer keeps only ``best`` and ``last`` (each overwritten); this callback adds a weights-only
checkpoint of the epochs you ask for (learning dynamics, averaging, evaluating an earlier epoch with
``labelwise evaluate --checkpoint runs/<run>/checkpoints/epoch_004.json``). In a run configuration::

    callbacks:
      - {name: epoch_checkpoints, every: 2}

Examples
--------
>>> from labelwise.engine import CALLBACKS
>>> cb = CALLBACKS.get("epoch_checkpoints")(every=2)
>>> [cb.wants(epoch) for epoch in range(4)]   # 0-based epochs: saves epochs 2 and 4
[False, True, False, True]
"""

from __future__ import annotations

import logging
from typing import Any

from .callbacks import CALLBACKS, Callback

__all__ = ["EpochCheckpoints"]

logger = logging.getLogger(__name__)


@CALLBACKS.register("epoch_checkpoints")
class EpochCheckpoints(Callback):
    """Save ``checkpoints/epoch_<NNN>`` (weights, metrics, thresholds; no resume state) every ``every`` epochs.

    Parameters
    ----------
    every : int
        Save after epochs ``every``, ``2 * every``, ... (numbered from 1, as in ``metrics.csv``).

    Raises
    ------
    ValueError
        ``every`` is not a positive integer.
    """

    def __init__(self, every: int = 1) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer (epochs), got {every!r}")
        self.every = every

    def wants(self, epoch: int) -> bool:
        """Whether the 0-based ``epoch`` is saved."""
        return (int(epoch) + 1) % self.every == 0

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, Any]) -> None:
        """Write the checkpoint of this epoch (every process calls it; rank 0 writes)."""
        if self.wants(epoch):
            path = trainer.save_checkpoint(f"epoch_{int(epoch) + 1:03d}", with_state=False, metrics=metrics)
            if path is not None:
                logger.info("saved %s", path)
