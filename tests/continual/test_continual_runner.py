from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from labelwise.continual import ClassIncrementalScenario, run_continual
from labelwise.continual.strategies import create_strategy, list_strategies
from labelwise.engine import Callback, Trainer

sys.path.insert(0, str(Path(__file__).parent))
from continual_helpers import TRAINER, TinyNet, model_for, tiny_images  # noqa: E402


class Spy(Callback):
    """Checks every training batch: current rows only carry C^t (or C^{1:t} for joint), memory rows only past classes."""

    def __init__(self, strategy, joint=False):
        self.strategy = strategy
        self.joint = joint
        self.batches = 0
        self.memory_rows = 0

    def on_before_batch(self, trainer, batch):
        s = self.strategy
        info = s.task
        allowed = s.scenario.class_mask(info.seen_classes if self.joint else info.classes)
        n = batch["n_current"]
        tgt, mask = batch["target"].numpy(), batch["mask"].numpy()
        assert (tgt[:n][:, ~allowed] == 0).all(), "a label outside the task leaked into training targets"
        assert (mask[:n] == allowed).all()
        past = s.scenario.class_mask(info.past_classes)
        assert (mask[n:][:, ~past] == False).all()  # noqa: E712  memory only knows past classes
        assert (tgt[n:][:, ~past] == 0).all()
        self.memory_rows += tgt.shape[0] - n
        self.batches += 1
        return batch


@pytest.mark.parametrize("name", list_strategies())
def test_every_strategy_runs_a_scenario(name, tmp_path):
    train, test = tiny_images(n=48, seed=0), tiny_images(n=30, seed=1)
    sc = ClassIncrementalScenario(train, test, base=2, increment=2)
    strategy = create_strategy(name)
    spy = Spy(strategy, joint=name == "joint")
    trainer = Trainer(callbacks=[strategy, spy], **TRAINER)
    res = run_continual(sc, strategy, model_for(name), trainer=trainer, output_dir=tmp_path, threshold=0.5)
    assert spy.batches > 0
    assert len(res.tasks) == 3 and all(0 <= r["mAP"] <= 1 for r in res.tasks)
    assert res.summary["last"]["mAP"] == res.tasks[-1]["mAP"]
    assert res.summary["avg_mAP"] == pytest.approx(np.mean([r["mAP"] for r in res.tasks]))
    if strategy.memory is not None:
        assert spy.memory_rows > 0
        assert len(strategy.memory) <= strategy.memory.capacity == 2 * 6
    for f in ("tasks.csv", "ap_per_class.csv", "forgetting.csv", "summary.json", "map_curve.png"):
        assert (tmp_path / f).exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["class_order"] == sorted(train.class_names)
    # AP of task-0 classes is measured after every task, of task-2 classes only at the end
    first, last = sc.task(0).classes, sc.task(2).classes
    assert np.isfinite(res.ap[:, first]).all() and np.isnan(res.ap[:2, last]).all()


def test_joint_final_only_skips_earlier_tasks(tmp_path):
    train = tiny_images(n=40)
    sc = ClassIncrementalScenario(train, train, base=2, increment=2)
    res = run_continual(sc, create_strategy("joint", final_only=True), TinyNet(6), trainer_options=TRAINER)
    assert [r["skipped"] for r in res.tasks] == [True, True, False]
    assert res.summary["avg_mAP"] == pytest.approx(res.tasks[-1]["mAP"])


def test_teacher_is_the_previous_task_model_and_frozen():
    train = tiny_images(n=32)
    sc = ClassIncrementalScenario(train, train, base=2, increment=2)
    s = create_strategy("rebll")
    model = TinyNet(6)
    seen = []

    class Snap(Callback):
        def on_task_end(self, trainer, task):
            seen.append({k: v.clone() for k, v in trainer.model.state_dict().items()})

    trainer = Trainer(callbacks=[Snap(), s], **TRAINER)
    run_continual(sc, s, model, trainer=trainer)
    # after the last task the teacher holds the final model's weights (copied at its end)
    for k, v in s.teacher.state_dict().items():
        assert torch.equal(v, seen[-1][k])
    assert not any(p.requires_grad for p in s.teacher.parameters())
    assert s.memory.known[:, sc.order].all()  # relabeled: every memory label is known after the last task
