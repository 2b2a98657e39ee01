"""Every configuration in the shipped configs two_stage/ validates, builds the paper's head and keeps the IV-B recipe."""

from __future__ import annotations

import pytest

import labelwise.models.heads.two_stage  # noqa: F401  (registers the head until heads/__init__ imports it)
from labelwise.config import load_config
from labelwise.data import DATASETS
from labelwise.models.heads.two_stage import TwoStageTransformerHead
from labelwise.shipped_configs import config_dir

CONFIG_DIR = config_dir() / "two_stage"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


def test_config_folder_has_every_setting():
    names = {p.stem for p in CONFIGS}
    expected = {
        "coco_r101_448",
        "coco_r101_576",
        "voc2007_r101_448",
        "voc2007_r101_576",
        "coco_convnextv2b_384",
        "multidigits20",
        "multidigits80",
    }
    assert expected <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_validates(path):
    raw_name = next(
        line.split(":", 1)[1].strip() for line in path.read_text().splitlines() if line.startswith("  name:")
    )
    assert raw_name in DATASETS, f"{path.name}: dataset {raw_name!r} is not registered"
    cfg = load_config(path)
    kw = cfg.model.kwargs
    assert cfg.model.name == "two_stage_transformer"
    # the paper's architecture: iRPE encoder (contextual product on keys, ratio 2), 1 + 2 layers, no SA
    assert (
        kw["encoder"],
        kw["decoder_self_attention"],
        kw["num_encoder_layers"],
        kw["num_decoder_layers"],
    ) == ("rpe", "off", 1, 2)
    assert (kw["rpe_method"], kw["rpe_mode"], kw["rpe_on"], kw["rpe_ratio"]) == (
        "product",
        "contextual",
        "k",
        2.0,
    )
    # the positional table is made for the configured feature-map size (stride 32)
    assert kw["pos_size"] == cfg.data.image_size // 32
    # Table VI / IV-B loss and optimiser
    assert cfg.loss.name == "apl" and cfg.loss.kwargs == {"gamma_pos": 0.0, "gamma_neg": 2.0}
    t = cfg.trainer
    assert (t.optimizer, t.weight_decay, tuple(t.betas), t.schedule) == (
        "adamw",
        5e-3,
        (0.9, 0.9999),
        "onecycle",
    )
    if path.stem.startswith(("coco", "voc")):
        assert (t.lr, t.max_epochs, kw["pretrained"]) == (5e-5, 80, True)
        assert cfg.data.train_transform != "default"  # Cutout + RandAugment
    # the head options build (cheap: a tiny input width stands in for the backbone's)
    head_kw = {k: v for k, v in kw.items() if k not in ("backbone", "pretrained", "weights")}
    head = TwoStageTransformerHead(8, 3, **head_kw)
    assert head.pos_size == (kw["pos_size"], kw["pos_size"])
