"""The ``sampler:`` section and the ``callbacks:`` list of the run configuration: loading, overrides, the
samplers and callbacks a run builds from them, and errors that name the dotted key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labelwise.config import ConfigError, load_config, save_config
from labelwise.data import ArrayDataset
from labelwise.engine import EpochCheckpoints
from labelwise.engine.samplers import RandomBatchSampler
from labelwise.run import build_callbacks, build_sampler
from labelwise.sampling import AdaptiveBatchSampler, ChainBatchSampler, HardBatchSampler

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "src" / "labelwise" / "configs" / "quickstart.yaml"
BASE = {"data": {"name": "csv"}, "model": {"name": "mlp"}, "trainer": {"batch_size": 8, "seed": 3}}


def _train(n=40, q=4):
    rng = np.random.default_rng(0)
    y = (rng.random((n, q)) < 0.3).astype(np.uint8)
    y[0] = 1  # every label has a positive
    return ArrayDataset(rng.normal(size=(n, 5)).astype(np.float32), y, class_names=list("abcd"))


def _write(tmp_path, text, name="run.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


YAML = """\
data: {name: csv}
model: {name: mlp}
trainer: {batch_size: 8, seed: 3, drop_last: true}
sampler:
  name: adaptive
  selection_pressure: 16.0
  warmup_epochs: 2
  imbalance_weights: false
callbacks:
  - {name: epoch_checkpoints, every: 3}
"""


def test_yaml_sampler_section_builds_that_sampler(tmp_path):
    cfg = load_config(_write(tmp_path, YAML))
    s = build_sampler(cfg, _train())
    assert type(s) is AdaptiveBatchSampler
    assert (s.selection_pressure, s.warmup_epochs, s.use_weights) == (16.0, 2, False)
    assert (s.batch_size, s.seed, s.drop_last, len(s)) == (8, 3, True, 5)  # from the trainer section
    (cb,) = build_callbacks(cfg)
    assert isinstance(cb, EpochCheckpoints) and cb.every == 3
    assert load_config(save_config(cfg, tmp_path / "resolved.yaml")) == cfg  # the run directory's copy reloads


@pytest.mark.parametrize("name, cls", [("hard", HardBatchSampler), ("adaptive", AdaptiveBatchSampler),
                                       ("chain", ChainBatchSampler)])
def test_sampler_name_override_on_the_quickstart(name, cls):
    cfg = load_config(QUICKSTART, [f"sampler.name={name}", "sampler.warmup_epochs=1"])
    assert cfg.sampler.name == name and cfg.sampler.kwargs == {"warmup_epochs": 1}
    s = build_sampler(load_config(BASE, [f"sampler.name={name}", "sampler.warmup_epochs=1"]), _train())
    assert type(s) is cls and s.warmup_epochs == 1
    if name == "adaptive":
        assert s.use_weights and s.feature_source == "input"  # the sampler's own defaults
    if name == "hard":
        assert not s.use_weights


def test_random_is_the_default_and_is_the_trainers_sampler():
    cfg = load_config(BASE)
    assert cfg.sampler.name == "random" and cfg.callbacks == []
    s = build_sampler(cfg, _train())
    ref = RandomBatchSampler(40, 8, seed=3)
    assert type(s) is RandomBatchSampler
    for epoch in range(2):
        s.set_epoch(epoch), ref.set_epoch(epoch)
        assert list(s) == list(ref)
    ordered = build_sampler(load_config(BASE, ["sampler.shuffle=false"]), _train())
    assert list(ordered)[0] == list(range(8))


@pytest.mark.parametrize(
    "overrides, key, text",
    [
        (["sampler.name=adaptiv"], "sampler.name", "did you mean 'adaptive'"),
        (["sampler.name=chain", "sampler.selction_pressure=2"], "sampler.selction_pressure",
         "did you mean 'selection_pressure'"),
        (["sampler.name=adaptive", "sampler.seed=1"], "sampler.seed", "set trainer.seed instead"),
        (["sampler.name=hard", "sampler.batch_size=4"], "sampler.batch_size", "set trainer.batch_size instead"),
        (["sampler.warmup_epochs=2"], "sampler.warmup_epochs", "unknown option of sampler 'random'"),
        (["sampler.name=hard", "sampler.warmup_order=shuffled"], "sampler.warmup_order", "'random' or 'sequential'"),
        (["sampler.name=adaptive", "sampler.selection_pressure=high"], "sampler.selection_pressure", "float"),
        (["sampler.name=adaptive", "sampler.features=pixels"], "sampler.features", "'auto', 'input', 'model'"),
        (["sampler.name=chain", "sampler.num_related=0"], "sampler.num_related", ">= 1"),
        (["sampler.nme=hard"], "sampler.nme", "unknown option of sampler 'random'"),
        (["callbacks.0.name=epoch_chekpoints"], "callbacks.0.name", "did you mean 'epoch_checkpoints'"),
        (["callbacks.0.name=epoch_checkpoints", "callbacks.0.evry=2"], "callbacks.0.evry", "did you mean 'every'"),
        (["callbacks.0.name=epoch_checkpoints", "callbacks.0.every=0"], "callbacks.0", "positive integer"),
        (["callbacks.2.name=epoch_checkpoints"], "callbacks.2", "not an item of callbacks"),
        (["callbacks.0.every=2"], "callbacks.0.name", "required key is missing"),
    ],
)
def test_bad_sampler_and_callback_options_name_the_key(tmp_path, overrides, key, text):
    src = _write(tmp_path, "data: {name: csv}\nmodel: {name: mlp}\n")
    with pytest.raises(ConfigError) as info:
        load_config(src, overrides)
    message = str(info.value)
    assert message.startswith(f"{src}: {key}: "), message
    assert text in message


def test_bad_sampler_option_in_a_yaml_file_names_file_and_key(tmp_path):
    src = _write(tmp_path, YAML.replace("imbalance_weights: false", "imbalance_weight: false"))
    with pytest.raises(ConfigError, match=r"run\.yaml: sampler\.imbalance_weight: unknown option of sampler "
                                          r"'adaptive' \(did you mean 'imbalance_weights'\?\)"):
        load_config(src)


def test_callbacks_overrides_by_index():
    cfg = load_config(BASE, ["callbacks.0.name=epoch_checkpoints", "callbacks.0.every=2",
                             "callbacks.1.name=epoch_checkpoints"])
    assert [(c.name, c.kwargs) for c in cfg.callbacks] == [("epoch_checkpoints", {"every": 2}),
                                                          ("epoch_checkpoints", {})]
    again = load_config(cfg.to_dict(), ["callbacks.1.every=5"])
    assert [c.kwargs for c in again.callbacks] == [{"every": 2}, {"every": 5}]


def test_bare_names():
    cfg = load_config(BASE, ["sampler=chain", "callbacks=[epoch_checkpoints]"])
    assert cfg.sampler.name == "chain" and cfg.sampler.kwargs == {}
    assert [(c.name, c.kwargs) for c in cfg.callbacks] == [("epoch_checkpoints", {})]
    with pytest.raises(ConfigError, match="sampler.name: unknown sampler 'chian'"):
        load_config(BASE, ["sampler=chian"])
