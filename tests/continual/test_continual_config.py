from __future__ import annotations

import pytest

from labelwise.config import ConfigError
from labelwise.continual.cli import add_parser
from labelwise.continual.config import load_continual_config
from labelwise.shipped_configs import config_dir

CONFIGS = sorted((config_dir() / "continual").glob("*.yaml"))
PAPER = {"voc_b4c2.yaml": ("B4-C2", 4.0e-5, None, 2), "voc_b5c3.yaml": ("B5-C3", 4.0e-5, None, 2),
         "coco_b20c4.yaml": ("B20-C4", 5.0e-5, 3.0e-5, 5), "coco_b0c5.yaml": ("B0-C5", 5.0e-5, 3.0e-5, 5)}


def test_all_configs_present():
    names = {p.name for p in CONFIGS}
    assert set(PAPER) <= names
    assert {"multidigits20_b4c2.yaml", "multidigits20_b5c3.yaml", "multidigits80_b20c4.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
@pytest.mark.parametrize("strategy", ["rebll", "er", "joint"])
def test_configs_load(path, strategy):
    cfg = load_continual_config(path, strategy=strategy, check=False)
    assert cfg.strategy.name == strategy
    assert cfg.continual.threshold == 0.8
    t = cfg.run.trainer
    if path.name in PAPER:
        scenario, lr, base_lr, per_class = PAPER[path.name]
        assert cfg.continual.scenario == scenario and t.lr == lr and cfg.continual.base_lr == base_lr
        assert (t.optimizer, t.weight_decay, t.batch_size, t.max_epochs) == ("adam", 1e-4, 64, 20)
        assert cfg.run.model.kwargs["backbone"] == "tresnet_m"
        if strategy in ("rebll", "er"):
            assert cfg.strategy.options["memory_per_class"] == per_class
        assert "COCO-trained" in path.read_text()  # the initialisation leak caveat is documented


def test_overrides_and_errors(tmp_path):
    path = CONFIGS[0]
    cfg = load_continual_config(path, ["continual.scenario=b5-c3", "strategy.options.alpha=2.0",
                                       "strategy.options.decay=fixed", "trainer.max_epochs=1"], check=False)
    assert cfg.continual.scenario == "B5-C3" and cfg.strategy.options["alpha"] == 2.0
    assert cfg.run.trainer.max_epochs == 1
    with pytest.raises(ConfigError, match="strategy.options.alpah"):
        load_continual_config(path, ["strategy.options.alpah=1"], check=False)
    with pytest.raises(ConfigError, match="strategy.name"):
        load_continual_config(path, strategy="icarl", check=False)
    with pytest.raises(ConfigError, match="continual.scenario"):
        load_continual_config(path, ["continual.scenario=B4"], check=False)
    with pytest.raises(ConfigError, match="continual.treshold"):
        load_continual_config(path, ["continual.treshold=0.5"], check=False)
    with pytest.raises(ConfigError, match="trainer.max_epoch"):
        load_continual_config(path, ["trainer.max_epoch=1"], check=False)
    with pytest.raises(FileNotFoundError):
        load_continual_config(tmp_path / "none.yaml")


def test_cli_parser():
    import argparse

    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["continual", "-c", "x.yaml", "-s", "podnet", "continual.threshold=0.5", "-o", "out"])
    assert (args.config, args.strategy, args.overrides, args.output) == ("x.yaml", "podnet", ["continual.threshold=0.5"], "out")
