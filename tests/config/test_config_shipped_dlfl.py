"""Every configuration in the shipped configs dlfl/ validates and keeps the paper's head and recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

import labelwise.data.formats.pedestrian  # noqa: F401  (registers the PAR datasets until formats/__init__ does)
from labelwise.config import load_config
from labelwise.data import DATASETS
from labelwise.shipped_configs import config_dir

CONFIG_DIR = config_dir() / "dlfl"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
PAR = {"pa100k_r50", "peta_zs_r50", "rap_zs_r50"}
GENERIC = {"coco_r101_448", "voc2007_r101_448", "nuswide_r101_448"}


def test_every_setting_present():
    assert PAR | GENERIC | {"multidigits20_ssca", "multidigits20_ofml", "multidigits80_ssca", "multidigits80_ofml"} <= {
        p.stem for p in CONFIGS
    }


def _load(path: Path):
    raw_name = next(ln.split(":", 1)[1].strip() for ln in path.read_text().splitlines() if ln.startswith("  name:"))
    assert raw_name in DATASETS, f"{path.name}: dataset {raw_name!r} is not registered"
    return load_config(path)  # weighted_bce's positive_ratio is left to the run (computed from the train split)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_validates(path):
    cfg = _load(path)
    t, kw = cfg.trainer, cfg.model.kwargs
    if path.stem in PAR:
        assert cfg.model.name == "ssca" and kw["num_modules"] == 3 and kw["scale"] == 30.0
        assert kw["backbone"].startswith("resnet50") and tuple(cfg.data.image_size) == (256, 192)
        assert cfg.data.train_transform == "par" and cfg.loss.name == "weighted_bce"
        assert (t.optimizer, t.lr, t.weight_decay, t.schedule, t.plateau_factor, t.plateau_patience) == (
            "sgd", 0.01, 1e-4, "plateau", 0.1, 4)
        assert (t.max_epochs, t.batch_size, t.evaluator, t.monitor) == (30, 64, "pedestrian", "mA")
    elif path.stem in GENERIC:
        assert cfg.model.name == "ssca" and kw["num_modules"] == 1 and kw["scale"] == 30.0
        assert kw["backbone"].startswith("resnet101") and cfg.data.image_size == 448
        assert (t.optimizer, t.lr, t.backbone_lr, t.weight_decay, t.max_epochs, t.batch_size) == (
            "sgd", 5e-3, 5e-4, 1e-4, 20, 32)
    else:
        ofml = path.stem.endswith("_ofml")
        assert cfg.model.name == ("ofml_cosine" if ofml else "ssca") and kw["scale"] == 30.0
        assert kw["backbone"] == "resnet10t" and cfg.data.image_size == 64
