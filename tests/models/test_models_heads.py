"""Registry, OFML linear / cosine heads and models, param groups, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from labelwise.models import (
    CosineHead,
    CosineLinear,
    ImageClassifier,
    LinearHead,
    create_model,
    list_heads,
    list_models,
    register_image_model,
)
from labelwise.registry import OptionError


def test_registry_lists_models_and_heads():
    assert {"ofml", "ofml_cosine", "mlp"} <= set(list_models())
    assert {"linear", "cosine"} <= set(list_heads())


def test_unknown_model_name_lists_close_matches():
    with pytest.raises(KeyError, match=r"unknown model 'ofml_cosin'; did you mean 'ofml_cosine'"):
        create_model("ofml_cosin", num_classes=3)


def test_unknown_head_option_named():
    with pytest.raises(OptionError, match=r"unknown option 'poolin' of model 'ofml' \(did you mean 'pooling'\?\)"):
        create_model("ofml", num_classes=3, backbone="test_resnet", poolin="max")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_num_classes_validated(bad):
    with pytest.raises(ValueError, match="num_classes"):
        create_model("ofml", num_classes=bad, backbone="test_resnet")


@pytest.mark.parametrize("name", ["ofml", "ofml_cosine"])
@pytest.mark.parametrize(
    ("backbone", "kwargs", "size", "dim", "grid"),
    [
        ("test_resnet", {}, (64, 64), 96, (2, 2)),
        ("resnet18", {}, (32, 32), 512, (1, 1)),
        ("test_vit", {"dynamic_img_size": True}, (64, 48), 64, (4, 3)),
    ],
)
def test_image_model_outputs(name, backbone, kwargs, size, dim, grid):
    model = create_model(name, num_classes=7, backbone=backbone, backbone_kwargs=kwargs).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 3, *size))
    assert out["logits"].shape == (3, 7)
    assert out["features"].shape == (3, dim)
    assert out["feature_map"].shape == (3, dim, *grid)
    torch.testing.assert_close(out["features"], out["feature_map"].mean(dim=(2, 3)))
    assert model.num_classes == 7
    assert model.data_config["input_size"][0] == 3
    assert model.create_args == {
        "name": name,
        "num_classes": 7,
        "backbone": backbone,
        "backbone_kwargs": kwargs,
    }


def test_linear_head_matches_formula():
    head = LinearHead(6, 4, pooling="max").eval()
    fmap = torch.randn(2, 6, 3, 3)
    out = head(fmap)
    expected = F.linear(fmap.amax(dim=(2, 3)), head.fc.weight, head.fc.bias)
    torch.testing.assert_close(out["logits"], expected)


def test_linear_head_catavgmax_and_logits_bn():
    head = LinearHead(6, 4, pooling="catavgmax", logits_bn=True)
    assert head.fc.in_features == 12
    out = head(torch.randn(8, 6, 2, 2))
    # training-mode BatchNorm1d on the logits: zero mean, unit (biased) variance per class
    torch.testing.assert_close(out["logits"].mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    assert out["features"].shape == (8, 12)


@pytest.mark.parametrize("pooling", ["avg", "max", "avgmax"])
def test_cosine_head_invariants(pooling):
    torch.manual_seed(0)
    scale = 16.0
    head = CosineHead(32, 10, pooling=pooling, scale=scale).eval()
    fmap = torch.randn(5, 32, 4, 4)
    out = head(fmap)
    logits = out["logits"]
    # bounded by the scale, and equal to scale * cos with unit-norm weights and features
    assert logits.abs().max() <= scale + 1e-5
    w = head.fc.normalized_weight()
    torch.testing.assert_close(w.norm(dim=1), torch.ones(10))
    f = out["features"]
    cos = (f / f.norm(dim=1, keepdim=True)) @ (head.fc.weight / head.fc.weight.norm(dim=1, keepdim=True)).t()
    torch.testing.assert_close(out["cosine"], cos)
    torch.testing.assert_close(logits, scale * cos)
    # scaling the features by a positive constant leaves the logits unchanged
    for c in (0.01, 3.0, 250.0):
        torch.testing.assert_close(head(c * fmap)["logits"], logits, rtol=1e-5, atol=1e-5)
    # scaling the class weights leaves them unchanged too
    with torch.no_grad():
        head.fc.weight.mul_(7.0)
    torch.testing.assert_close(head(fmap)["logits"], logits, rtol=1e-5, atol=1e-5)


def test_cosine_linear_options():
    layer = CosineLinear(4, 3, scale=10.0, learn_scale=True, bias=True)
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"weight", "scale", "bias"}
    fixed = CosineLinear(4, 3, scale=10.0)
    assert {n for n, _ in fixed.named_parameters()} == {"weight"}
    assert "scale" in fixed.state_dict()  # a fixed scale is saved as a buffer
    x = torch.randn(6, 4)
    with torch.no_grad():
        layer.bias.fill_(0.5)
    torch.testing.assert_close(layer(x), 10.0 * layer.cosine(x) + 0.5)
    # learnable scale receives a gradient
    layer(x).sum().backward()
    assert layer.scale.grad is not None and layer.scale.grad.abs() > 0
    # zero features give zero cosines, not NaN
    assert torch.equal(fixed(torch.zeros(2, 4)), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="scale"):
        CosineLinear(4, 3, scale=0.0)


def test_cosine_linear_label_logits_is_diagonal_of_full_logits():
    layer = CosineLinear(8, 5, scale=30.0)
    label_features = torch.randn(3, 5, 8)
    full = layer(label_features)  # [B, C, C]: every label feature against every class
    torch.testing.assert_close(layer.label_logits(label_features), torch.diagonal(full, dim1=1, dim2=2))
    assert layer.label_cosine(label_features).abs().max() <= 1 + 1e-6
    with pytest.raises(ValueError, match=r"\[B, 5, 8\]"):
        layer.label_logits(torch.randn(3, 4, 8))


def test_cosine_model_options_forwarded():
    model = create_model(
        "ofml_cosine", num_classes=4, backbone="test_resnet", scale=30.0, learn_scale=True, bias=True
    )
    assert math.isclose(float(model.head.fc.scale.detach()), 30.0)
    assert model.head.fc.bias is not None


@pytest.mark.parametrize("name", ["ofml", "ofml_cosine"])
def test_gradients_reach_backbone_and_head(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, backbone="test_resnet")
    out = model(torch.randn(4, 3, 64, 64))
    F.binary_cross_entropy_with_logits(out["logits"], torch.randint(0, 2, (4, 3)).float()).backward()
    groups = model.param_groups()
    assert all(p.grad is not None for p in groups["head"])
    assert model.backbone.model.conv1[0].weight.grad.abs().sum() > 0
    # every backbone parameter is on the graph (timm zero-initialises the last BN of each residual block, so
    # some convolutions get exactly-zero gradients at step 0; their BN scales do not)
    assert all(p.grad is not None for p in groups["backbone"])
    assert model.backbone.model.layer1[0].bn2.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["ofml", "ofml_cosine"])
def test_param_groups_partition_parameters(name):
    model = (
        create_model(name, num_classes=3, backbone="test_resnet", learn_scale=True)
        if name == "ofml_cosine"
        else (create_model(name, num_classes=3, backbone="test_resnet", logits_bn=True))
    )
    groups = model.param_groups()
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    assert {id(p) for p in groups["head"]} == {id(p) for p in model.head.parameters()}


def test_register_image_model_with_defaults():
    register_image_model("test_only_maxpool", LinearHead, pooling="max")
    model = create_model("test_only_maxpool", num_classes=2, backbone="test_resnet")
    assert isinstance(model, ImageClassifier) and model.head.pool.pooling == "max"
    model = create_model("test_only_maxpool", num_classes=2, backbone="test_resnet", pooling="avg")
    assert model.head.pool.pooling == "avg"
    with pytest.raises(OptionError, match="unknown option 'nope' of model 'test_only_bad'"):
        register_image_model("test_only_bad", LinearHead, nope=1)


def test_head_must_return_logits_dict():
    class Bad(torch.nn.Module):
        def forward(self, fmap):
            return fmap.mean((2, 3))

    model = ImageClassifier(
        create_model("ofml", num_classes=2, backbone="test_resnet").backbone, Bad()
    ).eval()
    with pytest.raises(TypeError, match="Bad must return a dict"):
        model(torch.randn(1, 3, 32, 32))
