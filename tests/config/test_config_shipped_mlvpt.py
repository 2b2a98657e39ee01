"""Every configuration in the shipped configs mlvpt/ validates with the RunConfig and keeps the section 5.1 recipe."""

from __future__ import annotations

import pytest
import yaml

import labelwise.models.prompted_vit  # noqa: F401  (registers the prompt models)
from labelwise.config import ConfigError, load_config
from labelwise.data import DATASETS
from labelwise.shipped_configs import config_dir

CONFIG_DIR = config_dir() / "mlvpt"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


def test_every_setting_is_there():
    names = {p.stem for p in CONFIGS}
    expected = {f"{d}_{b}_224" for d in ("coco", "voc2007", "nuswide") for b in ("vitb16", "dinov2b")}
    assert expected | {"multidigits80_pretrain_vit", "multidigits20_mlvpt"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_validates(path):
    dataset = yaml.safe_load(path.read_text())["data"]["name"]
    if dataset not in DATASETS:
        pytest.skip(f"dataset {dataset!r} is not registered in this checkout yet")
    cfg = load_config(path)
    kw, t = cfg.model.kwargs, cfg.trainer
    assert cfg.loss.name == "asl" and cfg.loss.kwargs == {"gamma_neg": 2.0, "gamma_pos": 0.0, "clip": 0.0}
    assert (t.optimizer, t.weight_decay if cfg.model.name != "linear_probe_vit" else 1e-2, t.schedule, t.batch_size) \
        == ("adamw", 1e-2, "onecycle", 64)
    if cfg.model.name == "mlvpt":
        assert (kw["experts_per_group"], kw["hidden_dim"], kw["isolation"]) == (3, 5, "group")
    if not path.stem.startswith("multidigits"):
        assert (t.max_epochs, t.lr, t.ema_decay) == (40, 5e-4, 0.9997)
        assert cfg.data.train_transform == "randaugment_cutout" and cfg.data.image_size == 224
        assert kw["backbone"] in ("vit_base_patch16_224", "vit_base_patch14_dinov2")


def test_typo_in_model_option_is_named():
    path = CONFIG_DIR / "coco_vitb16_224.yaml"
    if "coco2014" not in DATASETS:
        pytest.skip("coco2014 not registered")
    with pytest.raises(ConfigError, match="model.experts_per_grup"):
        load_config(path, ["model.experts_per_grup=3"])
