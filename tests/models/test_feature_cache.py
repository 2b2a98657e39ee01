"""The frozen-backbone feature cache: the head on cached maps computes what the whole model computes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from labelwise.data import ArrayDataset
from labelwise.data.dataset_kind import is_image_dataset
from labelwise.engine import Trainer
from labelwise.losses import create_loss
from labelwise.models import create_model
from labelwise.models.feature_cache import cache_feature_maps, extract_feature_maps, split_backbone


def _images(n: int = 10, c: int = 4, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 255, (n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 2, (n, c)).astype(np.uint8)
    known = rng.random((n, c)) > 0.2
    return ArrayDataset(x, y, [f"c{i}" for i in range(c)], known_mask=known, transform=lambda t: t.float() / 255,
                        name="toy")


@pytest.mark.parametrize("name", ["ofml", "ssca", "two_stage_transformer"])
def test_head_on_cached_maps_equals_whole_model(name: str) -> None:
    torch.manual_seed(0)
    data = _images()
    model = create_model(name, num_classes=4, backbone="test_resnet").eval()
    whole = copy.deepcopy(model)
    backbone = split_backbone(model)
    cached = cache_feature_maps(backbone, data, batch_size=3)  # batches of uneven size, order kept
    x = torch.stack([data[i]["input"] for i in range(len(data))])
    with torch.no_grad():
        expected = whole(x)["logits"]
        got = model(cached.inputs)["logits"]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_cache_keeps_targets_mask_names_and_is_not_an_image_dataset() -> None:
    data = _images()
    backbone = split_backbone(create_model("ofml", num_classes=4, backbone="test_resnet"))
    backbone.train()
    cached = cache_feature_maps(backbone, data)
    assert backbone.training  # mode restored
    assert cached.class_names == data.class_names and cached.name == "toy[features]"
    np.testing.assert_array_equal(np.asarray(cached.targets), np.asarray(data.targets))
    np.testing.assert_array_equal(np.asarray(cached.known_mask), np.asarray(data.known_mask))
    assert not is_image_dataset(cached) and cached.inputs.dtype == torch.float32
    # batch-norm statistics are not updated by caching (eval mode)
    bn = next(m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    cache_feature_maps(backbone, data)
    torch.testing.assert_close(bn.running_mean, before)


def test_trainer_fits_the_head_on_cached_maps() -> None:
    torch.manual_seed(0)
    data = _images(n=16)
    model = create_model("ofml", num_classes=4, backbone="test_resnet")
    cached = cache_feature_maps(split_backbone(model), data)
    head_before = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(max_epochs=1, batch_size=8, accelerator="cpu", progress=False, save_checkpoints=False,
                      tensorboard=False, report=False)
    trainer.fit(model, create_loss("bce"), cached)
    assert any(not torch.equal(a, b) for a, b in zip(head_before, model.parameters(), strict=True))
    assert set(trainer.evaluate(model, cached)) >= {"mAP"}


def test_errors() -> None:
    with pytest.raises(TypeError, match="no backbone"):
        split_backbone(torch.nn.Linear(2, 2))
    model = create_model("ofml", num_classes=4, backbone="test_resnet")
    split_backbone(model)
    with pytest.raises(TypeError, match="no backbone"):
        split_backbone(model)  # already split
    empty = ArrayDataset(np.zeros((0, 3, 8, 8), np.float32), np.zeros((0, 2), np.uint8), ["a", "b"], name="empty")
    with pytest.raises(ValueError, match="empty"):
        extract_feature_maps(torch.nn.Identity(), empty)
    flat = ArrayDataset(np.zeros((2, 5), np.float32), np.eye(2, dtype=np.uint8), ["a", "b"])
    with pytest.raises(ValueError, match=r"\[B, D, H, W\]"):
        extract_feature_maps(torch.nn.Identity(), flat)


def test_array_dataset_is_image_flag() -> None:
    y = np.eye(2, dtype=np.uint8)
    assert ArrayDataset(np.zeros((2, 3, 4, 4), np.uint8), y, ["a", "b"]).is_image
    assert not ArrayDataset(np.zeros((2, 3, 4, 4), np.float32), y, ["a", "b"], is_image=False).is_image
    with pytest.raises(ValueError, match="is_image=True"):
        ArrayDataset(np.zeros((2, 5), np.float32), y, ["a", "b"], is_image=True)


# -- the frozen stem of a hybrid ViT (prompt tuning on cached stem maps) -----------------------------------------
_HYBRID = {"img_size": 32, "hybrid_stem": {"backbone": "test_resnet", "backbone_kwargs": {"output_stride": 8}}}


def _prompt_model(name: str, groups_path: str) -> torch.nn.Module:
    options = {"vpt_deep": {"num_prompts": 3}, "gatevpt": {"num_prompts": 3}, "e2vpt": {},
               "linear_probe_vit": {}, "mlvpt": {"groups": groups_path, "experts_per_group": 2}}[name]
    return create_model(name, num_classes=4, backbone="test_vit", backbone_kwargs=_HYBRID, **options)


@pytest.mark.parametrize("name", ["linear_probe_vit", "vpt_deep", "gatevpt", "e2vpt", "mlvpt"])
def test_prompt_tuning_on_cached_stem_maps_equals_the_whole_model(name: str, tmp_path) -> None:
    from labelwise.analysis.grouping import group_labels
    from labelwise.models.feature_cache import split_hybrid_stem

    data = _images(n=12)
    groups_path = str(group_labels(data.targets, n_groups=2, seed=0, class_names=data.class_names)
                      .save(tmp_path / "groups.json"))
    torch.manual_seed(0)
    whole = _prompt_model(name, groups_path)
    model = copy.deepcopy(whole)
    stem = split_hybrid_stem(model)
    assert not any(p.requires_grad for p in stem.parameters())
    cached = cache_feature_maps(stem, data, batch_size=5)
    x = torch.stack([data[i]["input"] for i in range(len(data))])
    assert cached.inputs.shape[-2:] == (4, 4)  # 32 px at output stride 8
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(cached.inputs)["logits"], whole.eval()(x)["logits"],
                                   rtol=1e-5, atol=1e-5)
    # one training step: the same gradients reach the learnable parameters (prompts, gates, heads)
    loss = create_loss("bce")
    y = torch.as_tensor(data.targets, dtype=torch.float32)
    for m, inputs in ((whole, x), (model, cached.inputs)):
        m.train()
        m.zero_grad()
        torch.manual_seed(1)  # the same prompt-dropout draws (GateVPT's default 0.1)
        loss(m(inputs)["logits"], y).backward()
    grads = {n: p.grad for n, p in whole.named_parameters() if p.requires_grad}
    assert grads and all(g is not None for g in grads.values())
    for n, p in model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, grads[n], rtol=1e-4, atol=1e-6)


def test_split_hybrid_stem_errors() -> None:
    from labelwise.models.feature_cache import split_hybrid_stem

    with pytest.raises(TypeError, match="0 hybrid ViT stems"):
        split_hybrid_stem(create_model("vpt_deep", num_classes=2, backbone="test_vit", backbone_kwargs={"img_size": 32}))
    trained = create_model("linear_probe_vit", num_classes=2, backbone="test_vit", backbone_kwargs=_HYBRID,
                           train_backbone=True)
    with pytest.raises(ValueError, match="stem is trained"):
        split_hybrid_stem(trained)
    assert type(trained.backbone.model.patch_embed.backbone).__name__ == "HybridStem"  # left in place
