"""LossMonitor (the trainer's loss checks) and gather_predictions, on their own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labelwise.engine.divergence import (
    DIVERGENCE_REFERENCE_STEPS,
    LossDivergedError,
    LossMonitor,
    NonFiniteLossError,
)
from labelwise.engine.predictions import gather_predictions


def _feed(monitor: LossMonitor, values: list[float], epoch: int = 0) -> None:
    for step, v in enumerate(values):
        monitor.record(torch.tensor(v), epoch=epoch, step_in_epoch=step, global_step=step + 1, lr=0.01)


def test_first_non_finite_step_is_named():
    m = LossMonitor(factor=None, stop=True)
    _feed(m, [1.0, 2.0, float("inf"), float("nan")], epoch=2)
    with pytest.raises(NonFiniteLossError, match=r"loss is inf at epoch 3, step 3 \(global step 3\)") as info:
        m.check(kept="no checkpoint was written")
    assert (info.value.epoch, info.value.step_in_epoch, info.value.global_step) == (3, 3, 3)
    assert "no checkpoint was written" in str(info.value)


def test_divergence_against_median_of_first_steps():
    m = LossMonitor(factor=10.0, stop=True)
    _feed(m, [1.0, 3.0, 2.0, 25.0])  # median of |1, 3, 2| = 2: 25 > 10 * 2
    with pytest.raises(LossDivergedError) as info:
        m.check(kept=lambda: "kept")
    assert info.value.step_in_epoch == 4 and info.value.reference == 2.0 and info.value.loss == 25.0


def test_reference_window_is_the_first_steps_only():
    m = LossMonitor(factor=10.0, stop=True)
    _feed(m, [1.0] * DIVERGENCE_REFERENCE_STEPS + [5.0] * 100)
    m.check(kept="kept")  # 5 < 10 * median(first 50) = 10: no divergence
    assert len(m.reference) == DIVERGENCE_REFERENCE_STEPS


def test_warning_mode_warns_once_and_scores_name_the_cause(caplog):
    m = LossMonitor(factor=10.0, stop=False)
    _feed(m, [1.0, 1.0, 50.0, 60.0])
    with caplog.at_level("WARNING", logger="labelwise.engine.trainer"):
        m.check(kept="kept")
        _feed(m, [70.0])
        m.check(kept="kept")
    assert len([r for r in caplog.records if "diverged" in r.getMessage()]) == 1
    with pytest.raises(LossDivergedError, match="first diverged at epoch 1, step 3") as info:
        m.check_scores(np.array([[np.nan]]), epoch=1, global_step=5, lr=0.01, kept="kept")
    assert info.value.step_in_epoch is None
    m.check_scores(np.zeros((2, 2)), epoch=1, global_step=5, lr=0.01, kept="kept")  # finite: no error


def test_processes_agree_on_the_earliest_bad_step():
    """Another process saw a NaN at step 2: this one (all finite) stops there too, naming that step."""
    m = LossMonitor(factor=None, stop=True)
    _feed(m, [1.0, 1.0, 1.0])
    with pytest.raises(NonFiniteLossError, match="step 2"):
        m.check(kept="kept", all_reduce_min=lambda t: torch.minimum(t, torch.tensor([1, 3])))


def test_gather_predictions_drops_padding_duplicates_and_counts_skipped():
    scores = [torch.tensor([[0.1, 0.9], [0.5, 0.5]]), torch.tensor([[0.1, 0.9]])]
    targets = [torch.tensor([[0, 1], [1, 0]], dtype=torch.uint8), torch.tensor([[0, 1]], dtype=torch.uint8)]
    indices = [torch.tensor([3, 1]), torch.tensor([3])]  # row 3 repeated by shard padding, rows 0 and 2 unreadable
    p = gather_predictions(scores, targets, indices, num_classes=2, dataset_size=4)
    assert p.indices.tolist() == [1, 3] and p.skipped == 2
    np.testing.assert_array_equal(p.targets, [[1, 0], [0, 1]])
    assert p.scores.dtype == np.float32 and p.targets.dtype == np.uint8
    empty = gather_predictions([], [], [], num_classes=3, dataset_size=2)
    assert empty.scores.shape == (0, 3) and empty.skipped == 2
