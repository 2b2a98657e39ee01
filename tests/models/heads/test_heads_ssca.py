"""SSCA head: shapes, gradients, the equations on a hand-built case, normalised-classifier invariants."""

from __future__ import annotations

import math

import pytest
import torch

from labelwise.models import ImageClassifier, create_model
from labelwise.models.heads.cosine import CosineHead, CosineLinear
from labelwise.models.heads.ssca import SSCAHead, SSCAModule, ssca_complexity


@pytest.mark.parametrize("num_modules", [1, 2, 3])
@pytest.mark.parametrize("embed_dim", [None, 8])
def test_shapes_and_gradients(num_modules, embed_dim):
    torch.manual_seed(0)
    head = SSCAHead(16, 5, num_modules=num_modules, embed_dim=embed_dim)
    fmap = torch.randn(3, 16, 4, 3, requires_grad=True)
    out = head(fmap)
    e = 16 if embed_dim is None else embed_dim
    assert out["logits"].shape == (3, 5)
    assert len(out["loss_logits"]) == num_modules and all(t.shape == (3, 5) for t in out["loss_logits"])
    assert out["label_features"].shape == (3, 5, e)
    assert out["attention"].shape == (3, num_modules, 5, 4, 3)
    assert out["module_cosine"].shape == (3, num_modules, 5)
    torch.testing.assert_close(out["attention"].sum(dim=(-1, -2)), torch.ones(3, num_modules, 5))
    torch.testing.assert_close(out["logits"], torch.stack(out["loss_logits"]).mean(0))
    torch.testing.assert_close(out["logits"], 30.0 * out["cosine"])
    # the summed loss reaches every parameter (queries, every theta/phi, every classifier) and the input
    loss = sum(torch.nn.functional.binary_cross_entropy_with_logits(lg, torch.ones_like(lg)) for lg in out["loss_logits"])
    loss.backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert fmap.grad is not None and fmap.grad.abs().sum() > 0


def test_module_matches_equations_by_hand():
    torch.manual_seed(1)
    m = SSCAModule(4, 4, 3)
    q = torch.randn(2, 4)
    fmap = torch.randn(1, 4, 2, 2)
    feats, attn = m(q, fmap)
    # Eq. 13-14 written out with explicit loops over labels and positions
    wt, wp = m.theta.weight.detach(), m.phi.weight.detach()
    pos = [fmap[0, :, i, j] for i in range(2) for j in range(2)]
    phi = torch.stack([wp @ p for p in pos])  # [HW, E]
    for lab in range(2):
        tq = wt @ q[lab]
        s = torch.tensor([float(tq @ phi[k]) / math.sqrt(3) for k in range(4)])
        a = torch.exp(s) / torch.exp(s).sum()
        torch.testing.assert_close(attn[0, lab].detach(), a)
        torch.testing.assert_close(feats[0, lab].detach(), (a[:, None] * phi).sum(0))


def test_cascade_uses_previous_label_features_as_queries():
    torch.manual_seed(2)
    head = SSCAHead(6, 3, num_modules=2, embed_dim=4)
    fmap = torch.randn(2, 6, 3, 3)
    out = head(fmap)
    f1, _ = head.blocks[0](head.queries, fmap)
    f2, _ = head.blocks[1](f1, fmap)
    torch.testing.assert_close(out["label_features"], f2)
    torch.testing.assert_close(out["loss_logits"][0], head.classifiers[0].label_logits(f1))
    assert head.blocks[0].theta.in_features == 6 and head.blocks[1].theta.in_features == 4


def test_normalised_classifier_invariants():
    torch.manual_seed(3)
    head = SSCAHead(8, 4, num_modules=2, scale=12.5)
    fmap = torch.randn(2, 8, 3, 3)
    out = head(fmap)
    assert out["logits"].abs().max() <= 12.5 + 1e-5
    # logits depend only on the angle: rescaling the class weights does not change them
    with torch.no_grad():
        for clf in head.classifiers:
            clf.weight.mul_(7.0)
    torch.testing.assert_close(head(fmap)["logits"], out["logits"])
    # per label: logit = scale * cos(label feature j, weight j), no bias, weights of unit norm after normalising
    clf = head.classifiers[-1]
    assert clf.bias is None
    torch.testing.assert_close(clf.normalized_weight().norm(dim=1), torch.ones(4))
    lf = out["label_features"]
    w = clf.weight
    cos = (lf * w).sum(-1) / (lf.norm(dim=-1) * w.norm(dim=-1))
    torch.testing.assert_close(out["module_cosine"][:, -1], cos)


def test_queries_kaiming_initialised():
    torch.manual_seed(4)
    head = SSCAHead(512, 200)
    std = head.queries.std().item()
    assert abs(std - math.sqrt(2.0 / 512)) < 0.05 * math.sqrt(2.0 / 512)


@pytest.mark.parametrize("bad", [{"num_modules": 0}, {"num_modules": 1.5}, {"embed_dim": 0}, {"dropout": 1.0}, {"scale": 0.0}])
def test_bad_options(bad):
    with pytest.raises(ValueError):
        SSCAHead(8, 3, **bad)


def test_create_model_any_backbone_and_param_groups():
    model = create_model("ssca", num_classes=7, backbone="test_resnet", num_modules=3, scale=16.0)
    assert isinstance(model, ImageClassifier) and model.num_classes == 7
    out = model(torch.randn(2, 3, 64, 64))
    assert out["logits"].shape == (2, 7) and out["feature_map"].shape[1] == model.head.in_features
    groups = model.param_groups()
    assert any(p is model.head.queries for p in groups["head"])
    assert not any(p is model.head.queries for p in groups["backbone"])
    vit = create_model("ssca", num_classes=3, backbone="test_vit", embed_dim=16)
    assert vit(torch.randn(1, 3, 160, 160))["logits"].shape == (1, 3)


def test_fair_baseline_is_same_backbone_and_classifier():
    base = create_model("ofml_cosine", num_classes=5, backbone="test_resnet")
    ssca = create_model("ssca", num_classes=5, backbone="test_resnet")
    assert isinstance(base.head, CosineHead) and base.head.pool.pooling == "avg"
    fc = base.head.fc
    assert isinstance(fc, CosineLinear) and fc.bias is None and float(fc.scale) == 30.0
    assert not isinstance(fc.scale, torch.nn.Parameter) and base.head.dropout.p == 0.0
    assert all(float(c.scale) == 30.0 and c.bias is None for c in ssca.head.classifiers)
    assert type(base.backbone.model) is type(ssca.backbone.model)


def test_complexity_rows():
    rows = ssca_complexity(num_classes=6, backbone="test_resnet", image_size=64, num_modules=(0, 1, 2))
    d = 96
    assert [r["S"] for r in rows] == [0, 1, 2]
    # head parameters by the equations: queries M*D + per module theta + phi + classifier
    assert rows[0]["head_params_M"] * 1e6 == pytest.approx(6 * d)
    assert rows[1]["head_params_M"] * 1e6 == pytest.approx(6 * d + 2 * d * d + 6 * d)
    assert rows[2]["head_params_M"] * 1e6 == pytest.approx(6 * d + 2 * (2 * d * d + 6 * d))
    assert rows[2]["gmacs"] > rows[1]["gmacs"] > rows[0]["gmacs"]
