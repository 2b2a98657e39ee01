"""GateVPT's gates and temperatures; E2VPT's key-value prompts (against a manual attention) and pruning."""

from __future__ import annotations

import pytest
import torch

from labelwise.models import create_model
from labelwise.models.prompted_vit import PromptedViT, block_forward

KW = {"backbone": "test_vit", "backbone_kwargs": {"img_size": 32}}


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(0)
    return torch.randn(2, 3, 32, 32)


def test_block_forward_without_extras_matches_timm_block():
    enc = PromptedViT("test_vit", backbone_kwargs={"img_size": 32})
    block = enc.model.blocks[0]
    x = torch.randn(2, 7, enc.embed_dim)
    mask = torch.rand(7, 7) > 0.3
    mask |= torch.eye(7, dtype=torch.bool)
    torch.testing.assert_close(block_forward(block, x, temperature=1.0), block(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        block_forward(block, x, attn_mask=mask, temperature=1.0), block(x, attn_mask=mask), atol=1e-5, rtol=1e-5
    )


# -- GateVPT ------------------------------------------------------------------------------------------------
def _gatevpt(gate_logit: float):
    m = create_model("gatevpt", num_classes=3, num_prompts=5, prompt_dropout=0.0, **KW).eval()
    with torch.no_grad():
        m.backbone.gate_logits.fill_(gate_logit)
    return m


def test_gatevpt_gate_one_is_plain_vpt_shallow(images):
    m = _gatevpt(60.0)  # sigmoid = 1: blocks update the prompts as in VPT-shallow (temperatures start at 1)
    shallow = PromptedViT("test_vit", num_prompts=5, deep=False, backbone_kwargs={"img_size": 32})
    shallow.model.load_state_dict(m.backbone.model.state_dict())
    with torch.no_grad():
        shallow.prompts.copy_(m.backbone.prompts)
    torch.testing.assert_close(m.backbone(images)["prefix"], shallow(images)["prefix"], atol=1e-5, rtol=1e-5)


def test_gatevpt_gate_zero_leaves_prompts_unchanged_by_the_blocks(images):
    m = _gatevpt(-60.0)  # sigmoid = 0: every gated block passes its input prompts on unchanged
    depth = len(m.backbone.model.blocks)
    # ... which is VPT-deep with the same prompt embeddings fed to every block
    deep = PromptedViT("test_vit", num_prompts=5, deep=True, backbone_kwargs={"img_size": 32})
    deep.model.load_state_dict(m.backbone.model.state_dict())
    with torch.no_grad():
        deep.prompts.copy_(m.backbone.prompts.expand(depth, -1, -1))
    torch.testing.assert_close(m.backbone(images)["prefix"], deep(images)["prefix"], atol=1e-5, rtol=1e-5)
    # and it differs from the ungated model
    assert not torch.allclose(m.backbone(images)["prefix"], _gatevpt(60.0).backbone(images)["prefix"], atol=1e-4)


def test_gatevpt_gradients_reach_gates_and_temperatures(images):
    m = create_model("gatevpt", num_classes=3, gate_init=0.0, **KW)
    m.train()
    m(images)["logits"].sum().backward()
    assert m.backbone.gate_logits.grad is not None and m.backbone.gate_logits.grad.abs().sum() > 0
    assert m.backbone.temperature.grad is not None and m.backbone.temperature.grad.abs().sum() > 0
    learnable = {id(p) for p in m.param_groups()["head"]}
    assert id(m.backbone.gate_logits) in learnable and id(m.backbone.prompts) in learnable
    assert all(not p.requires_grad for p in m.backbone.model.parameters())
    # default: gate logits start at -5 (the public README's run command), one per block but the last
    d = create_model("gatevpt", num_classes=3, **KW)
    assert d.backbone.gate_logits.tolist() == [-5.0] * (len(d.backbone.model.blocks) - 1)
    assert d.backbone.num_prompts == 100


# -- E2VPT --------------------------------------------------------------------------------------------------
def test_kv_prompts_follow_the_attention_formula():
    enc = PromptedViT("test_vit", backbone_kwargs={"img_size": 32})
    block = enc.model.blocks[0]
    attn = block.attn
    torch.manual_seed(1)
    x = torch.randn(2, 7, enc.embed_dim)
    heads, hd = attn.num_heads, attn.head_dim
    pk, pv = torch.randn(heads, 3, hd), torch.randn(heads, 3, hd)
    # manual: softmax(q [K; P_K]^T / sqrt(d)) [V; P_V] per head, then proj, residual, MLP
    h = block.norm1(x)
    q, k, v = attn.qkv(h).reshape(2, 7, 3, heads, hd).permute(2, 0, 3, 1, 4)
    k = torch.cat([k, pk.expand(2, -1, -1, -1)], dim=2)
    v = torch.cat([v, pv.expand(2, -1, -1, -1)], dim=2)
    a = torch.softmax(q @ k.transpose(-1, -2) / hd**0.5, dim=-1)
    out = attn.proj((a @ v).transpose(1, 2).reshape(2, 7, heads * hd))
    y = x + block.ls1(out)
    y = y + block.ls2(block.mlp(block.norm2(y)))
    torch.testing.assert_close(block_forward(block, x, kv_prompts=(pk, pv)), y, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(block_forward(block, x, kv_prompts=(pk, pv)), block(x), atol=1e-3)


def test_e2vpt_kv_prompts_change_the_output_and_get_gradients(images):
    m = create_model("e2vpt", num_classes=3, prompt_dropout=0.0, **KW)
    m.train()
    out = m(images)["logits"]
    out.sum().backward()
    assert m.backbone.kv_keys.grad.abs().sum() > 0 and m.backbone.kv_values.grad.abs().sum() > 0
    m.eval()
    ref = m(images)["logits"]
    with torch.no_grad():
        m.backbone.kv_values.add_(1.0)
    assert not torch.allclose(m(images)["logits"], ref, atol=1e-4)


def test_e2vpt_token_and_segment_pruning(images):
    m = create_model("e2vpt", num_classes=3, prompt_dropout=0.0, **KW).eval()
    enc = m.backbone
    # importance from mask gradients
    enc.start_scoring()
    m(images)["logits"].pow(2).sum().backward()
    enc.accumulate_scores()
    assert enc.token_scores.sum() > 0 and enc.segment_scores.sum() > 0
    # prune the 3 least important tokens (set the scores so the choice is known)
    with torch.no_grad():
        enc.token_scores.copy_(torch.arange(10, 0, -1, dtype=torch.float))  # tokens 7, 8, 9 least important
    enc.prune(tokens=3)
    assert enc.kept_tokens().tolist() == list(range(7))
    assert not enc.token_mask.requires_grad
    tokens = enc(images)
    assert tokens["prompts"].shape[1] == 7  # removed from the sequence
    ref = m(images)["logits"]
    with torch.no_grad():
        enc.prompts[:, 7:] += 5.0  # pruned prompts no longer matter
    torch.testing.assert_close(m(images)["logits"], ref)
    # segment-wise: prune the 2 least important pieces of the kept tokens
    with torch.no_grad():
        enc.segment_scores.fill_(1.0)
        enc.segment_scores[0, 3] = 0.0
        enc.segment_scores[2, 15] = 0.0
    enc.prune(segments=2)
    assert enc.segment_mask[0, 3] == 0 and enc.segment_mask[2, 15] == 0 and enc.segment_mask.sum() == 10 * 16 - 2
    ref = m(images)["logits"]
    width = enc.embed_dim // enc.segments
    with torch.no_grad():
        enc.prompts[:, 0, 3 * width : 4 * width] += 5.0  # inside a pruned segment: no effect
    torch.testing.assert_close(m(images)["logits"], ref)
    with torch.no_grad():
        enc.prompts[:, 0, 0:width] += 5.0  # a kept segment: changes the output
    assert not torch.allclose(m(images)["logits"], ref, atol=1e-4)
    # rewinding restores the initial prompt values, masks kept
    enc.rewind()
    torch.testing.assert_close(enc.prompts, enc.initial_prompts)
    assert enc.kept_tokens().tolist() == list(range(7))
    with pytest.raises(ValueError, match="cannot prune"):
        enc.prune(tokens=7)
