"""Prompted frozen ViT, group mask, group-aware MoE and the registered prompt-tuning models."""

from __future__ import annotations

import math

import pytest
import torch

import labelwise.models.prompted_vit  # noqa: F401  (registers the models)
from labelwise.analysis.grouping import LabelGroups
from labelwise.models import create_model
from labelwise.models.heads.group_moe import GroupMoEHead, mean_probability_logit
from labelwise.models.prompted_vit import PromptedViT, prompt_attention_mask

IMG = 32
BK = {"backbone": "test_vit", "backbone_kwargs": {"img_size": IMG}}
GROUPS = LabelGroups(co=[[0, 1, 2], [3, 4], [5]], dc=[[0, 3], [1, 5], [2, 4]], num_classes=6)
NAMES = ["linear_probe_vit", "vpt_shallow", "vpt_deep", "gvpt", "mlvpt"]


def build(name, **kw):
    torch.manual_seed(0)
    extra = {"groups": GROUPS, "experts_per_group": 2} if name in ("gvpt", "mlvpt") else {}
    if name.startswith("vpt"):
        extra = {"num_prompts": 4}
    return create_model(name, num_classes=6, **{**BK, **extra, **kw})


def images(n=2, seed=0):
    return torch.randn(n, 3, IMG, IMG, generator=torch.Generator().manual_seed(seed))


# -- the encoder -----------------------------------------------------------------------------------------
def test_no_prompts_equals_timm_forward_features():
    enc = PromptedViT("test_vit", backbone_kwargs={"img_size": IMG})
    x = images()
    tokens = enc(x)
    ref = enc.model.forward_features(x)
    torch.testing.assert_close(torch.cat([tokens["prefix"], tokens["patches"]], dim=1), ref)


def test_all_true_mask_equals_no_mask():
    torch.manual_seed(0)
    enc = PromptedViT("test_vit", num_prompts=3, backbone_kwargs={"img_size": IMG}, isolation="off")
    x = images()
    plain = enc(x)
    enc.isolation = "group"  # one group: the group mask lets every prompt see every prompt
    enc._mask_cache.clear()
    masked = enc(x)
    for k in plain:
        torch.testing.assert_close(plain[k], masked[k])


def test_mask_layout():
    m = prompt_attention_mask(2, [0, 1, 1, 0], 3, isolation="group")
    assert m.shape == (9, 9) and m[:2].all() and m[6:].all()  # prefix and patch queries see everything
    assert m[2:6, :2].all() and m[2:6, 6:].all()  # prompts see prefix and patches
    assert m[2:6, 2:6].int().tolist() == [[1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1]]
    assert prompt_attention_mask(1, [0, 1], 2, isolation="off") is None
    with pytest.raises(ValueError, match="isolation"):
        prompt_attention_mask(1, [0], 2, isolation="partial")


def test_group_mask_blocks_cross_group_information():
    model = build("gvpt")  # deep prompts: co groups 0,1,2 then dc groups 3,4,5; 2 tokens each
    enc = model.backbone
    assert enc.prompt_groups.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    x = images()
    others = [i for i in range(12) if i not in (2, 3)]
    with torch.no_grad():
        before = enc(x)
        enc.prompts[-1, 2:4] += torch.randn_like(enc.prompts[-1, 2:4])  # group 1, in the block producing the outputs
        after = enc(x)
    torch.testing.assert_close(after["prompts"][:, others], before["prompts"][:, others], rtol=0, atol=0)
    assert not torch.allclose(after["prompts"][:, 2:4], before["prompts"][:, 2:4])
    # class and patch tokens attend to all prompts (paper and published code), so they see the change
    assert not torch.allclose(after["prefix"], before["prefix"])
    assert not torch.allclose(after["patches"], before["patches"])


def test_group_mask_in_one_block_and_indirect_flow_through_patches():
    model = build("gvpt")
    enc = model.backbone
    mask = enc.attention_mask(4, torch.device("cpu"))
    block = enc.model.blocks[0]
    tokens = torch.randn(2, 1 + 12 + 4, 64)
    changed = tokens.clone()
    changed[:, 1 + 2:1 + 4] += 1.0  # group 1 inputs
    with torch.no_grad():
        a, b = block(tokens, attn_mask=mask), block(changed, attn_mask=mask)
        c, d = block(tokens), block(changed)
    others = [1 + i for i in range(12) if i not in (2, 3)]
    assert torch.equal(a[:, others], b[:, others])
    assert not torch.equal(c[:, others], d[:, others])  # without the mask, the change reaches other prompts
    # deep prompts of earlier blocks reach other groups *through the patch tokens* of later blocks (by design:
    # patches attend to all prompts); the mask blocks the direct prompt-to-prompt exchange only
    with torch.no_grad():
        before = enc(images())["prompts"]
        enc.prompts[0, 2:4] += 1.0
        after = enc(images())["prompts"]
    assert not torch.equal(after[:, [i - 1 for i in others]], before[:, [i - 1 for i in others]])


def test_train_mode_keeps_backbone_in_eval():
    model = build("mlvpt", backbone_kwargs={"img_size": IMG, "drop_rate": 0.5, "drop_path_rate": 0.5})
    model.train()
    assert model.training and model.backbone.training
    assert not any(m.training for m in model.backbone.model.modules())
    x = images()
    with torch.no_grad():  # no dropout anywhere in the frozen ViT: two passes agree
        torch.testing.assert_close(model(x)["logits"], model(x)["logits"])


# -- frozen backbone ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_backbone_gets_no_gradient_and_does_not_change(name):
    model = build(name)
    frozen = {k: v.clone() for k, v in model.backbone.model.state_dict().items()}
    learnable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert learnable and not any(n.startswith("backbone.model.") for n in learnable)
    # every parameter to the optimizer, with weight decay: frozen ones must still not move
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    model.train()
    out = model(images(4))
    loss = sum(torch.nn.functional.binary_cross_entropy_with_logits(lg, torch.ones_like(lg))
               for lg in out.get("loss_logits", [out["logits"]]))
    loss.backward()
    assert all(p.grad is None for p in model.backbone.model.parameters())
    opt.step()
    for k, v in model.backbone.model.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    moved = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, learnable[n])]
    assert set(moved) == set(learnable)


# -- every registered model --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_shapes_gradients_param_groups_complexity(name):
    model = build(name)
    out = model(images(3))
    assert out["logits"].shape == (3, 6) and out["features"].shape == (3, 64)
    loss_logits = out.get("loss_logits", [out["logits"]])
    assert all(lg.shape == (3, 6) for lg in loss_logits)
    sum(lg.sum() for lg in loss_logits).backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable)
    groups = model.param_groups()
    assert groups["backbone"] == [] and {id(p) for p in groups["head"]} == {id(p) for p in trainable}
    c = model.complexity()
    assert c.trainable_params == sum(p.numel() for p in trainable)
    assert c.params == sum(p.numel() for p in model.parameters()) and c.flops > 0


def test_learnable_parameter_count_formula():
    # Table 4 accounting: prompts L*P*D, experts P*(2*D*h + h + D), gates R*C*N_m*(D + 1), classifiers R*C*(D + 1)
    model = build("mlvpt")
    d, depth, c, r, n_c, n_m, h = 64, 6, 6, 2, 3, 2, 5
    p = r * n_c * n_m
    expected = depth * p * d + p * (2 * d * h + h + d) + r * c * n_m * (d + 1) + r * c * (d + 1)
    assert model.complexity().trainable_params == expected
    # same prompt budget for VPT-deep: a count of P prompts per block
    assert build("vpt_deep", num_prompts=p).backbone.prompts.numel() == model.backbone.prompts.numel()


def test_prompt_flops_grow_with_prompts():
    base = build("linear_probe_vit").complexity().flops
    assert build("vpt_deep", num_prompts=8).complexity().flops > build("vpt_deep", num_prompts=2).complexity().flops > base


@pytest.mark.parametrize("branches", ["co", "dc", "both"])
def test_branches_ablation(branches):
    model = build("gvpt", branches=branches)
    n_branch = 2 if branches == "both" else 1
    assert model.backbone.num_prompts == n_branch * 3 * 2
    out = model(images())
    assert len(out["loss_logits"]) == n_branch
    expected = GROUPS.co_assignment if branches in ("co", "both") else GROUPS.dc_assignment
    assert model.head.assignments[0].tolist() == expected.tolist()


def test_factories_fix_their_variant():
    with pytest.raises(TypeError, match="deep"):
        build("vpt_deep", deep=False)
    with pytest.raises(TypeError, match="moe"):
        build("gvpt", moe=True)
    with pytest.raises(ValueError, match="groups are required"):
        create_model("mlvpt", num_classes=6, **BK)
    with pytest.raises(ValueError, match="num_classes=7"):
        create_model("mlvpt", num_classes=7, groups=GROUPS, **BK)
    with pytest.raises(ValueError, match="not a timm VisionTransformer"):
        create_model("vpt_deep", num_classes=3, backbone="test_resnet")


def test_groups_from_files_and_checkpoint_carries_assignment(tmp_path):
    path = GROUPS.save(tmp_path / "groups.json")
    model = build("mlvpt", groups=str(path))
    assert model.head.assignments.tolist() == [GROUPS.co_assignment.tolist(), GROUPS.dc_assignment.tolist()]
    GROUPS.save_published(tmp_path / "co.json", tmp_path / "cl.json")
    same = build("mlvpt", groups=[str(tmp_path / "co.json"), str(tmp_path / "cl.json")])
    assert torch.equal(same.head.assignments, model.head.assignments)
    # a model built with another grouping gets this one back from the state dict
    other = build("mlvpt", groups={"co": [[5, 4], [3, 2], [1, 0]], "dc": [[0, 1], [2, 3], [4, 5]]})
    other.load_state_dict(model.state_dict())
    assert torch.equal(other.head.assignments, model.head.assignments)
    x = images()
    torch.testing.assert_close(other.eval()(x)["logits"], model.eval()(x)["logits"])


def test_backbone_weights_from_a_labelwise_checkpoint(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    donor = create_model("ofml", num_classes=80, **BK)  # e.g. pretrained on multidigits80
    path = tmp_path / "best.safetensors"
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(path))
    model = build("mlvpt", weights=str(path))
    for k, v in model.backbone.model.state_dict().items():
        torch.testing.assert_close(v, donor.backbone.model.state_dict()[k])


# -- the MoE head ------------------------------------------------------------------------------------------
def moe_head(**kw):
    torch.manual_seed(0)
    return GroupMoEHead(16, 6, assignments=[GROUPS.co_assignment.tolist(), GROUPS.dc_assignment.tolist()],
                        n_groups=3, experts_per_group=4, **kw)


def test_gate_weights_sum_to_one_and_follow_the_formula():
    head = moe_head()
    with torch.no_grad():
        head.gate_bias.normal_()
    z = torch.randn(5, 24, 16)
    out = head(z)
    w = out["gate_weights"]
    assert w.shape == (5, 2, 6, 4) and (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(5, 2, 6))
    # class 3 of the DC branch (branch 1) lives in DC group 0: tokens 12 + 0*4 .. 12 + 0*4 + 3
    grid = z.reshape(5, 2, 3, 4, 16)
    zc = grid[:, 1, GROUPS.dc_assignment[3]]  # [5, 4, 16]
    g = (zc * head.gate_weight[1, 3]).sum(-1) + head.gate_bias[1, 3]
    torch.testing.assert_close(w[:, 1, 3], g.softmax(-1))
    experts = head.experts(z).reshape(5, 2, 3, 4, 16)[:, 1, GROUPS.dc_assignment[3]]
    h = torch.nn.functional.gelu(zc[:, 0] @ head.expert_down[12] + head.expert_down_bias[12])
    torch.testing.assert_close(experts[:, 0], zc[:, 0] + h @ head.expert_up[12] + head.expert_up_bias[12])
    c = (g.softmax(-1)[..., None] * experts).sum(1)
    torch.testing.assert_close(out["label_features"][:, 1, 3], c)
    torch.testing.assert_close(out["branch_logits"][:, 1, 3], c @ head.fc_weight[1, 3] + head.fc_bias[1, 3])


def test_mean_prob_combination_is_mean_of_sigmoids():
    out = moe_head()(torch.randn(5, 24, 16) * 10)
    s = out["branch_logits"]
    torch.testing.assert_close(torch.sigmoid(out["logits"]), (torch.sigmoid(s[:, 0]) + torch.sigmoid(s[:, 1])) / 2)
    extreme = torch.tensor([[[60.0, -60.0, 200.0, -200.0]], [[-60.0, -60.0, 0.0, -200.0]]]).permute(1, 0, 2)
    lg = mean_probability_logit(extreme, dim=1)
    assert torch.isfinite(lg).all()
    torch.testing.assert_close(torch.sigmoid(lg), torch.sigmoid(extreme).mean(1))


def test_mean_logit_and_self_gated_variants():
    z = torch.randn(3, 24, 16)
    out = moe_head(combine="mean_logit")(z)
    torch.testing.assert_close(out["logits"], out["branch_logits"].mean(1))
    gated = moe_head(gate="self_gated", gate_bias=False)
    out = gated(z)
    assert len(out["loss_logits"]) == 4
    g = torch.einsum("brcmd,rcmd->brcm", z.reshape(3, 2, 3, 4, 16)[:, torch.arange(2)[:, None], gated.assignments],
                     gated.gate_weight)
    torch.testing.assert_close(out["gate_logits"], (g.softmax(-1) * g).sum(-1))
    with pytest.raises(ValueError, match="self_gated"):
        moe_head(gate="self_gated", moe=False)


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"activation": "tanh"}, "activation"), ({"combine": "max"}, "combine"), ({"gate": "top1"}, "gate")],
)
def test_head_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        moe_head(**kw)


def test_head_rejects_wrong_prompt_count():
    with pytest.raises(ValueError, match=r"\[B, 24, 16\]"):
        moe_head()(torch.randn(2, 23, 16))


def test_trains_with_the_trainer_and_asl():
    from labelwise.data.base import ArrayDataset
    from labelwise.engine import Trainer
    from labelwise.losses import create_loss

    g = torch.Generator().manual_seed(0)
    y = (torch.rand(32, 6, generator=g) < 0.4).to(torch.uint8)
    x = (torch.rand(32, 3, IMG, IMG, generator=g) * 255).to(torch.uint8)
    ds = ArrayDataset(x, y, [str(i) for i in range(6)], transform=lambda im: im.float() / 255.0)
    model = build("mlvpt")
    frozen = {k: v.clone() for k, v in model.backbone.model.state_dict().items()}
    trainer = Trainer(max_epochs=1, batch_size=16, optimizer="adamw", lr=5e-4, weight_decay=1e-2,
                      schedule="onecycle", ema_decay=0.9997, accelerator="cpu", seed=0)
    trainer.fit(model, create_loss("asl", gamma_neg=2, gamma_pos=0, clip=0), ds, ds)
    assert math.isfinite(trainer.history[-1]["train_loss"])
    for k, v in model.backbone.model.state_dict().items():
        assert torch.equal(v, frozen[k]), k


def test_pretrain_with_train_backbone_then_load_frozen(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(2)
    pre = create_model("linear_probe_vit", num_classes=80, train_backbone=True, **BK)
    groups = pre.param_groups()
    assert len(groups["backbone"]) == len(list(pre.backbone.model.parameters())) and len(groups["head"]) == 2
    pre.train()
    assert pre.backbone.model.training  # trained backbone: its own train/eval mode
    path = tmp_path / "best.safetensors"  # a checkpoint of the pretraining run: keys backbone.model.* and fc.*
    save_file({k: v.contiguous() for k, v in pre.state_dict().items()}, str(path))
    for name in NAMES:
        model = build(name, weights=str(path))
        assert model.backbone.load_result.missing == []
        for k, v in model.backbone.model.state_dict().items():
            assert torch.equal(v, pre.backbone.model.state_dict()[k]), (name, k)
