"""Joint training: the upper bound, trained on every task's data with all seen classes labelled.

Examples
--------
>>> from labelwise.continual.strategies import create_strategy
>>> create_strategy("joint", final_only=True).skip_task(0)
True
"""

from __future__ import annotations

from labelwise.protocols import Dataset

from .base import Strategy, register_strategy

__all__ = ["Joint"]


@register_strategy("joint")
class Joint(Strategy):
    """At task ``t``, train on the images of tasks ``1..t`` with every class of ``C^{1:t}`` known.

    Parameters
    ----------
    final_only : bool, default False
        Train once, at the last task, on all classes (the single "Joint" row of the paper tables; no
        Avg mAP). False trains at every task, continuing from the previous model (the Joint curve of Fig. 4).
    seed : int
    """

    name = "joint"

    def __init__(self, *, final_only: bool = False, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.final_only = bool(final_only)

    def skip_task(self, task: int) -> bool:
        return self.final_only and task < self.scenario.num_tasks - 1 if self.scenario is not None else self.final_only

    def train_data(self, task: int) -> Dataset:
        return self.scenario.joint_view(task)
