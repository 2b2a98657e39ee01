"""Hybrid ViT (a CNN feature map as the patch embedding): options, shapes, frozen stem, shipped by name, prompts."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from safetensors.torch import save_file

import labelwise.models.prompt_pool  # noqa: F401  (registers l2p)
from labelwise.analysis.grouping import LabelGroups
from labelwise.models import Backbone, create_model
from labelwise.models import shipped as shipped_mod
from labelwise.models.hybrid_vit import hybrid_architecture
from labelwise.models.shipped import sha256_file

VIT = "vit_tiny_patch16_224"
STEM = {"backbone": "resnet10t", "backbone_kwargs": {"channels": [8, 8, 16, 24], "output_stride": 16}}
KW = {"img_size": 128, "embed_dim": 32, "depth": 2, "num_heads": 2, "hybrid_stem": STEM}


def images(n=2, size=128, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _ship(directory, name, backbone, kwargs, seed=0):
    torch.manual_seed(seed)
    body = Backbone(backbone, **kwargs)
    path = directory / f"{name}.safetensors"
    save_file(body.model.state_dict(), str(path))
    card = {"name": name, "file": path.name, "sha256": sha256_file(path),
            "architecture": {"backbone": backbone, "backbone_kwargs": hybrid_architecture(kwargs)}}
    (directory / f"{name}.json").write_text(json.dumps(card))
    return body


def test_builds_from_yaml_options_with_an_8x8_token_grid_at_128px():
    from labelwise.config import load_config
    from labelwise.run.build import build_model

    text = """
    data: {name: multidigits20, image_size: 128}
    model:
      name: ofml
      backbone: vit_tiny_patch16_224
      backbone_kwargs:
        img_size: 128
        embed_dim: 32
        depth: 2
        num_heads: 2
        hybrid_stem: {backbone: resnet10t, frozen: true, backbone_kwargs: {channels: [8, 8, 16, 24], output_stride: 16}}
    """
    cfg = load_config(yaml.safe_load(text))
    model = build_model(cfg, 5)
    body = model.backbone
    assert type(body.model.patch_embed).__name__ == "HybridEmbed"
    assert tuple(body.model.patch_embed.grid_size) == (8, 8) and body.model.pos_embed.shape == (1, 65, 32)
    x = images()
    out = model(x)
    assert out["logits"].shape == (2, 5) and out["feature_map"].shape == (2, 32, 8, 8)
    assert body(x).shape == (2, 32, 8, 8) and body.pooled_features(x).shape == (2, 32)
    assert body.data_config["input_size"] == (3, 128, 128)
    # the 1x1 projection of the 24 CNN channels to the width
    assert body.model.patch_embed.proj.weight.shape == (32, 24, 1, 1)


def test_frozen_stem_has_no_gradients_and_fixed_statistics():
    torch.manual_seed(0)
    body = Backbone(VIT, **{**KW, "hybrid_stem": {**STEM, "frozen": True}})
    stem = body.model.patch_embed.backbone
    before = {k: v.clone() for k, v in stem.state_dict().items()}
    body.train()
    assert not stem.body.training and body.model.blocks[0].training
    body(images()).sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in stem.parameters())
    assert body.model.patch_embed.proj.weight.grad is not None
    for k, v in stem.state_dict().items():  # batch-norm running statistics untouched
        assert torch.equal(v, before[k]), k
    trainable = Backbone(VIT, **KW)
    trainable.train()
    trainable(images()).sum().backward()
    assert all(p.grad is not None for p in trainable.model.patch_embed.backbone.parameters())


def test_stem_weights_load_and_the_card_records_their_architecture(tmp_path, monkeypatch):
    cnn = _ship(tmp_path, "tiny-cnn", "resnet10t", {"channels": [8, 8, 16, 24]})
    monkeypatch.setattr(shipped_mod, "SHIPPED_DIR", tmp_path)
    stem = {"backbone": "resnet10t", "weights": "tiny-cnn", "frozen": True, "backbone_kwargs": {"output_stride": 16}}
    body = Backbone(VIT, **{**KW, "hybrid_stem": stem})
    loaded = body.model.patch_embed.backbone.body.model.state_dict()
    for k, v in cnn.model.state_dict().items():
        assert torch.equal(loaded[k], v), k
    arch = hybrid_architecture({**KW, "hybrid_stem": stem})["hybrid_stem"]
    assert arch == {"backbone": "resnet10t", "backbone_kwargs": {"channels": [8, 8, 16, 24], "output_stride": 16}}


def test_shipped_hybrid_loads_by_name_with_the_cards_architecture(tmp_path, monkeypatch):
    src = _ship(tmp_path, "tiny-hybrid", VIT, KW, seed=3)
    monkeypatch.setattr(shipped_mod, "SHIPPED_DIR", tmp_path)
    dst = Backbone(VIT, weights="tiny-hybrid")  # no options: all from the card, the stem from the file
    assert dst.shipped is not None and not dst.load_result.missing and not dst.load_result.unexpected
    src.eval(), dst.eval()
    x = images()
    torch.testing.assert_close(dst(x), src(x))
    assert dst(x).shape == (2, 32, 8, 8)
    # another input size: the position embedding is resampled to the 2x2 grid at 32 px
    small = Backbone(VIT, weights="tiny-hybrid", img_size=32)
    assert small(images(size=32)).shape == (2, 32, 2, 2)


@pytest.mark.parametrize("name", ["linear_probe_vit", "vpt_deep", "gvpt", "mlvpt", "gatevpt", "e2vpt", "l2p"])
def test_prompted_models_run_on_the_hybrid(name):
    torch.manual_seed(0)
    extra = {
        "vpt_deep": {"num_prompts": 3},
        "gvpt": {"groups": LabelGroups(co=[[0, 1], [2]], dc=[[0, 2], [1]], num_classes=3), "experts_per_group": 2},
        "gatevpt": {"num_prompts": 3}, "e2vpt": {"num_prompts": 4, "num_kv_prompts": 2, "segments": 4},
        "l2p": {"pool_size": 4, "prompt_length": 2, "top_k": 2},
    }
    extra["mlvpt"] = extra["gvpt"]
    model = create_model(name, num_classes=3, backbone=VIT, backbone_kwargs=KW, **extra.get(name, {}))
    model.train()
    out = model(images())
    assert out["logits"].shape == (2, 3)
    out["logits"].sum().backward()
    stem = model.backbone.model.patch_embed.backbone
    assert all(p.grad is None for p in stem.parameters())  # the whole ViT, stem included, is frozen
    assert any(p.grad is not None for p in model.param_groups()["head"])
    if name in ("vpt_deep", "gvpt"):  # Xavier bound from the projection's fan-in: the 24 CNN channels
        bound = math.sqrt(6.0 / (24 + 32))
        assert model.backbone.prompts.abs().max() <= bound and model.backbone.prompts.abs().max() > bound / 2


@pytest.mark.parametrize(("backbone", "kwargs", "error", "match"), [
    (VIT, {"hybrid_stem": "resnet10t"}, ValueError, "hybrid_stem must be a mapping"),
    (VIT, {"hybrid_stem": {"backbone": "resnet10t", "freeze": True}}, ValueError, "unknown key.*'freeze'"),
    (VIT, {"hybrid_stem": {"backbone_kwargs": {}}}, ValueError, "hybrid_stem.backbone must be a timm model"),
    (VIT, {"hybrid_stem": {**STEM, "frozen": "yes"}}, ValueError, "frozen must be true or false"),
    (VIT, {"hybrid_stem": {"backbone": "resnet10t", "backbone_kwargs": [1]}}, ValueError, "must be a mapping"),
    (VIT, {"hybrid_stem": {"backbone": "resnet10t", "backbone_kwargs": {"hybrid_stem": {}}}}, ValueError,
     "cannot itself have a hybrid_stem"),
    (VIT, {"patch_size": 16, "hybrid_stem": STEM}, ValueError, "patch_size 16 applies to the 8x8 feature map"),
    (VIT, {"hybrid_stem": {"backbone": "resnet1Ot"}}, KeyError, "unknown timm backbone 'resnet1Ot'"),
    ("resnet18", {"hybrid_stem": STEM}, ValueError, "needs a timm VisionTransformer"),
])
def test_bad_hybrid_options_raise_clear_errors(backbone, kwargs, error, match):
    base = {"img_size": 128, "embed_dim": 32, "depth": 1, "num_heads": 2} if backbone == VIT else {}
    with pytest.raises(error, match=match):
        Backbone(backbone, **{**base, **kwargs})
