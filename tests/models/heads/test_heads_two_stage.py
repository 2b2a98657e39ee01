"""The two-stage Transformer head: zero-init equivalence, label independence, gradients, shapes, options."""

from __future__ import annotations

import pytest
import torch

import labelwise.models.heads.two_stage  # noqa: F401  (registers the head until heads/__init__ imports it)
from labelwise.models import LogitsOnly, create_model
from labelwise.models.heads.two_stage import LabelwiseLinear, TwoStageTransformerHead

SMALL = {"d_model": 32, "num_heads": 4, "dim_feedforward": 48}


def _head(**kw) -> TwoStageTransformerHead:
    return TwoStageTransformerHead(24, 6, **{**SMALL, **kw})


# -- Table IV switch: the iRPE encoder equals a standard one at initialisation -----------------------------
@pytest.mark.parametrize(
    "rpe",
    [
        {},  # paper defaults: contextual, product, keys, ratio 2, shared heads
        {"rpe_on": "qkv", "rpe_method": "cross", "rpe_shared_heads": False},
        {"rpe_on": "qk", "rpe_method": "euclidean", "rpe_mode": "bias"},
        {"rpe_on": "kv", "rpe_method": "quant", "rpe_ratio": 1.0},
    ],
)
def test_rpe_encoder_equals_standard_encoder_at_init(rpe):
    torch.manual_seed(0)
    standard = _head(encoder="standard", num_encoder_layers=2).eval()
    with_rpe = _head(encoder="rpe", num_encoder_layers=2, **rpe).eval()
    missing, unexpected = with_rpe.load_state_dict(standard.state_dict(), strict=False)
    assert not unexpected and missing and all(".rpe_" in k and k.endswith(".table") for k in missing)
    x = torch.randn(3, 24, 5, 7)
    assert torch.allclose(with_rpe(x)["logits"], standard(x)["logits"], atol=1e-5)
    with torch.no_grad():  # non-zero tables change the output: the comparison above can fail
        for name in missing:
            with_rpe.get_parameter(name).normal_()
    assert not torch.allclose(with_rpe(x)["logits"], standard(x)["logits"], atol=1e-4)


def test_encoder_none_has_no_encoder_and_differs_from_standard():
    head = _head(encoder="none")
    assert len(head.encoder) == 0
    assert not any("encoder" in n for n, _ in head.named_parameters())
    assert head(torch.randn(2, 24, 3, 3))["logits"].shape == (2, 6)


# -- Table V switch: label queries are independent without decoder self-attention ------------------------
def test_permuting_label_queries_permutes_logits():
    torch.manual_seed(1)
    head = _head(decoder_self_attention="off").eval()
    x = torch.randn(2, 24, 4, 4)
    logits = head(x)["logits"]
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        head.label_embed.copy_(head.label_embed[perm])
        head.fc.weight.copy_(head.fc.weight[perm])
        head.fc.bias.copy_(head.fc.bias[perm])
    assert torch.allclose(head(x)["logits"], logits[:, perm], atol=1e-5)


@pytest.mark.parametrize("spec, depends", [("off", False), ("on", True), ("second", True), ([0], True)])
def test_label_logit_depends_on_other_queries_only_with_self_attention(spec, depends):
    torch.manual_seed(2)
    head = _head(decoder_self_attention=spec).eval()
    x = torch.randn(2, 24, 4, 4)
    before = head(x)["logits"]
    with torch.no_grad():
        head.label_embed[5].normal_()  # change label 5's query only
    after = head(x)["logits"]
    assert not torch.allclose(after[:, 5], before[:, 5], atol=1e-4)
    others_changed = not torch.allclose(after[:, :5], before[:, :5], atol=1e-6)
    assert others_changed == depends


def test_self_attention_layer_placement():
    def layers(spec, n=3):
        return [
            layer.self_attn is not None
            for layer in _head(num_decoder_layers=n, decoder_self_attention=spec).decoder
        ]

    assert layers("off") == [False, False, False]
    assert layers("on") == [True, True, True]
    assert layers("second") == [False, True, False]
    assert layers([0, 2]) == [True, False, True]


# -- gradients -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("decoder_self_attention", ["off", "on"])
def test_gradients_reach_every_parameter_including_rpe_tables(decoder_self_attention):
    torch.manual_seed(3)
    model = create_model(
        "two_stage_transformer",
        num_classes=5,
        backbone="test_resnet",
        rpe_on="qkv",
        decoder_self_attention=decoder_self_attention,
        pos_size=2,
        **SMALL,
    )
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, 64, 64), (torch.rand(4, 5) > 0.5).float()
    tables = {n: p for n, p in model.named_parameters() if n.endswith(".table")}
    assert sorted(tables) == sorted(f"head.encoder.0.self_attn.rpe_{c}.table" for c in "qkv")
    for step in range(2):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(x)["logits"], y).backward()
        for name, p in model.named_parameters():
            assert p.grad is not None, name
            # every head parameter gets a non-zero gradient, the zero-initialised iRPE tables included;
            # (inside the backbone, timm zero-initialises the last BatchNorm of each residual block, which
            # blocks the gradient of the convolutions before it at step 0: that is the backbone's business)
            if name.startswith("head."):
                assert torch.count_nonzero(p.grad) > 0, f"{name} got a zero gradient at step {step}"
        assert sum(torch.count_nonzero(p.grad) for p in model.backbone.parameters()) > 0
        opt.step()
    assert all(torch.count_nonzero(t) > 0 for t in tables.values())  # the tables moved off zero


# -- shapes across feature-map sizes -----------------------------------------------------------------------
@pytest.mark.parametrize("size", [(1, 1), (2, 2), (12, 12), (14, 14), (18, 18), (5, 9), (18, 12)])
@pytest.mark.parametrize("pos_size", [14, (2, 2)])
def test_shapes_across_feature_map_sizes(size, pos_size):
    head = _head(pos_size=pos_size, return_attention=True).eval()
    out = head(torch.randn(2, 24, *size))
    assert out["logits"].shape == (2, 6)
    assert out["label_features"].shape == (2, 6, 32)
    assert out["features"].shape == (2, 32)
    assert out["attention"].shape == (2, 6, *size)
    assert torch.allclose(out["attention"].sum((2, 3)), torch.ones(2, 6), atol=1e-5)
    assert torch.isfinite(out["logits"]).all()


def test_position_table_exact_at_configured_size_and_interpolated_elsewhere():
    head = _head(pos_size=(3, 4))
    assert head.position_embedding(3, 4) is head.pos_embed
    resized = head.position_embedding(6, 8)
    assert resized.shape == (1, 32, 6, 8)
    constant = _head(pos_size=4)
    with torch.no_grad():
        constant.pos_embed.fill_(0.5)
    assert torch.allclose(constant.position_embedding(9, 2), torch.full((1, 32, 9, 2), 0.5), atol=1e-5)
    assert _head(pos_embed="none").position_embedding(3, 3) is None


@pytest.mark.parametrize("backbone, image, grid", [("test_resnet", 64, 2), ("resnet18", 96, 3)])
def test_model_registration_and_outputs(backbone, image, grid):
    model = create_model("two_stage_transformer", num_classes=7, backbone=backbone, pos_size=grid, **SMALL)
    assert model.num_classes == 7
    groups = model.param_groups()
    assert {id(p) for p in groups["head"]} == {id(p) for p in model.head.parameters()}
    out = model(torch.randn(2, 3, image, image))
    assert out["logits"].shape == (2, 7) and out["feature_map"].shape[-2:] == (grid, grid)
    assert create_model("two_stage", num_classes=3, backbone="test_resnet", **SMALL).head.num_classes == 3


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_torchscript_trace_matches_eager():
    model = create_model("two_stage_transformer", num_classes=4, backbone="test_resnet", pos_size=2, **SMALL)
    wrapped = LogitsOnly(model).eval()
    x = torch.randn(2, 3, 64, 64)
    traced = torch.jit.trace(wrapped, x)
    assert torch.allclose(traced(x), wrapped(x), atol=1e-5)


def test_labelwise_linear_is_per_class():
    fc = LabelwiseLinear(3, 5)
    x = torch.randn(4, 3, 5)
    expected = torch.stack([x[:, c] @ fc.weight[c] + fc.bias[c] for c in range(3)], 1)
    assert torch.allclose(fc(x), expected, atol=1e-6)
    assert LabelwiseLinear(3, 5, bias=False).bias is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"encoder": "rpe2"}, "encoder"),
        ({"encoder": "rpe", "num_encoder_layers": 0}, "num_encoder_layers"),
        ({"decoder_self_attention": "first"}, "decoder_self_attention"),
        ({"decoder_self_attention": "second", "num_decoder_layers": 1}, "at least 2"),
        ({"decoder_self_attention": [2]}, "layer indices"),
        ({"d_model": 30}, "divisible"),
        ({"pos_embed": "sine"}, "pos_embed"),
        ({"pos_size": (3, 0)}, "pos_size"),
        ({"rpe_method": "manhattan"}, "rpe_method"),
        ({"rpe_mode": "ctx"}, "rpe_mode"),
        ({"rpe_on": "x"}, "rpe_on"),
        ({"rpe_on": "v", "rpe_mode": "bias"}, "contextual"),
        ({"dropout": 1.0}, "dropout"),
        ({"activation": "swish"}, "activation"),
    ],
)
def test_bad_options_raise_naming_the_option(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _head(**kwargs)


def test_unknown_option_is_a_type_error_listing_options():
    with pytest.raises(TypeError, match="rpe_ratio"):
        create_model("two_stage_transformer", num_classes=2, backbone="test_resnet", rpe_ration=2.0)


def test_bad_feature_map_rank():
    with pytest.raises(ValueError, match="feature map"):
        _head()(torch.randn(2, 24, 9))
