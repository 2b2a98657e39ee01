"""Training runs configured with a ``sampler:`` section (``labelwise train ... sampler.name=adaptive``):
every sampler trains, the same seed gives the same adaptive run, and an interrupted adaptive run resumed from
its checkpoint continues exactly (same batches, same weights, same metrics)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from labelwise.cli import main
from labelwise.config import load_config
from labelwise.engine import Callback
from labelwise.engine.checkpoint import load_checkpoint
from labelwise.run import train_from_config

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "src" / "labelwise" / "configs" / "quickstart.yaml"
#: 64 training images in batches of 16 (4 steps per epoch), the 2-stage test backbone, 32 px.
TINY = ["data.options.n_train=64", "data.options.n_val=32", "data.options.n_test=32", "data.image_size=32",
        "data.options.image_size=32", "model.backbone=test_resnet", "trainer.batch_size=16",
        "trainer.progress=false", "trainer.report=false", "trainer.tensorboard=false", "trainer.schedule=none",
        "trainer.tune_thresholds=false"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("multidigits_cache")


class Recorder(Callback):
    """Records the sample indices of every training step; raises KeyboardInterrupt after step ``crash_at``."""

    def __init__(self, crash_at=None):
        self.crash_at = crash_at
        self.batches = {}

    def on_before_batch(self, trainer, batch):
        self.batches[trainer.global_step] = batch["index"].tolist()
        return batch

    def on_after_batch(self, trainer, batch, outputs, per_sample_loss):
        if self.crash_at is not None and trainer.global_step == self.crash_at:
            raise KeyboardInterrupt


def _metrics(run):
    return [{k: v for k, v in row.items() if k != "epoch_time"} for row in csv.DictReader(open(run / "metrics.csv"))]


def _weights(run, which="last"):
    return load_checkpoint(run / "checkpoints" / which, load_state=False).weights


@pytest.mark.parametrize("name", ["random", "hard", "adaptive", "chain"])
def test_tiny_train_with_each_sampler(cache, tmp_path, capsys, name):
    run = tmp_path / name
    assert main(["train", "--config", str(QUICKSTART), *TINY, f"data.root={cache}", "trainer.max_epochs=2",
                 f"sampler.name={name}", *([] if name == "random" else ["sampler.warmup_epochs=1"]),
                 "callbacks=[{name: epoch_checkpoints, every: 2}]", "--output", str(run), "--no-test"]) == 0
    assert "best validation mAP" in capsys.readouterr().out
    assert len(_metrics(run)) == 2
    kept = sorted(p.name for p in (run / "checkpoints").glob("epoch_*"))
    assert kept == ["epoch_002.json", "epoch_002.safetensors"]  # the callbacks: list is built and run
    assert load_checkpoint(run / "checkpoints" / "epoch_002.json", load_state=False).meta["epoch"] == 2
    state = load_checkpoint(run / "checkpoints" / "last", load_state=True).state["sampler"]
    if name == "random":
        assert "strategy" not in state and state["epoch"] == 1
    else:  # the loss table of the selection sampler is in the checkpoint
        assert state["strategy"] == name and bool(state["seen"].all())
        assert load_config(run / "config.yaml").sampler.name == name


def _adaptive_cfg(cache, run, *extra):
    return load_config(QUICKSTART, [*TINY, f"data.root={cache}", f"output_dir={run}", "trainer.max_epochs=3",
                                    "trainer.deterministic=true", "sampler.name=adaptive", "sampler.warmup_epochs=1",
                                    "sampler.selection_pressure=16", "sampler.features=model", *extra])


def _selection_steps_differ_from_a_permutation(batches, n=64, steps=4):
    epoch = [i for step in range(steps, 2 * steps) for i in batches[step]]
    return sorted(epoch) != list(range(n))


def test_same_seed_same_adaptive_run(cache, tmp_path):
    recs = [Recorder(), Recorder(), Recorder()]
    runs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for rec, run, seed in zip(recs, runs, (0, 0, 1)):
        train_from_config(_adaptive_cfg(cache, run, f"trainer.seed={seed}"), callbacks=[rec], evaluate_test=False)
    assert recs[0].batches == recs[1].batches and len(recs[0].batches) == 12
    assert _selection_steps_differ_from_a_permutation(recs[0].batches)  # selection epochs really select
    assert _metrics(runs[0]) == _metrics(runs[1])
    for a, b in zip(_weights(runs[0]).values(), _weights(runs[1]).values()):
        assert torch.equal(a, b)
    assert recs[2].batches != recs[0].batches  # another seed, another run


@pytest.mark.parametrize("crash_at", [2, 10], ids=["during-warmup-feature-collection", "mid-selection-epoch"])
def test_interrupted_adaptive_run_resumes_exactly(cache, tmp_path, crash_at):
    every_step = "trainer.checkpoint_every_n_steps=1"  # the reference too: the logged loss is summed alike
    ref_rec = Recorder()
    train_from_config(_adaptive_cfg(cache, tmp_path / "ref", every_step), callbacks=[ref_rec], evaluate_test=False)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_from_config(_adaptive_cfg(cache, run, every_step), callbacks=[Recorder(crash_at)], evaluate_test=False)
    saved = load_checkpoint(run / "checkpoints" / "last", load_state=True).state
    assert saved["global_step"] == crash_at - 1 and saved["sampler"]["strategy"] == "adaptive"
    rec = Recorder()
    train_from_config(_adaptive_cfg(cache, run, every_step), callbacks=[rec], resume=run, evaluate_test=False)
    assert min(rec.batches) == crash_at - 1
    assert rec.batches == {s: b for s, b in ref_rec.batches.items() if s >= crash_at - 1}  # the same batches
    for a, b in zip(_weights(tmp_path / "ref").values(), _weights(run).values()):
        assert torch.equal(a, b)
    assert _metrics(tmp_path / "ref") == _metrics(run)


def test_resuming_with_another_sampler_is_refused(cache, tmp_path):
    run = tmp_path / "run"
    train_from_config(_adaptive_cfg(cache, run, "trainer.max_epochs=1"), evaluate_test=False)
    random_cfg = load_config(QUICKSTART, [*TINY, f"data.root={cache}", f"output_dir={run}", "trainer.max_epochs=2"])
    with pytest.raises(ValueError, match=r"'adaptive' sampler.*sampler\.name=adaptive"):
        train_from_config(random_cfg, resume=run, evaluate_test=False)
