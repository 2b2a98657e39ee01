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
