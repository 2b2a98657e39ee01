"""E2VPT (Han et al., ICCV 2023, "E^2VPT: An Effective and Efficient Approach for Visual Prompt Tuning").

Two kinds of prompts on a frozen ViT:

* **visual prompts**: ``P`` tokens inserted after the class token of every block (VPT-deep);
* **key-value prompts**: in every block, ``M`` learnable vectors per attention head appended to the keys and
  values *after* their projection, so each head computes ``softmax(q [K; P_K]^T / sqrt(d)) [V; P_V]``
  (:func:`~labelwise.models.prompted_vit.block_forward`). They change the attention of every token without
  adding output tokens.

**Prompt pruning.** A token mask ``[P]`` (shared by the blocks) and a segment mask ``[P, S]`` (each prompt split
into ``S = 16`` pieces of ``D / S`` channels) multiply the visual prompts. Their importance is the accumulated
``|dL / d mask|`` (:meth:`KVPromptViT.start_scoring`, :meth:`KVPromptViT.accumulate_scores`); :meth:`prune`
zeroes the least important tokens / segments, and a pruned token is **removed** from the sequence (shorter
sequence, less compute); :meth:`rewind` resets the remaining prompts to their initial values (the
lottery-ticket rewinding of the paper) before retraining.

Where this follows the paper and the public code (``ChengHan111/E2VPT``)
------------------------------------------------------------------------
* Key-value prompts per layer and head, appended after the projection, not shared between K and V (code,
  ``SHARE_PARAM_KV=False``); masks on the visual prompts only, one token mask for all blocks and
  ``S = 16`` pieces (code); importance from mask gradients and rewinding (paper).
* Defaults: ``num_prompts = 10`` visual and ``num_kv_prompts = 5`` key-value prompts per block (inside the
  ranges the paper searches per dataset; it has no single default), ``prompt_dropout = 0.1``; key-value prompts
  initialised uniformly in ``+-sqrt(6 / (fan_in + head_dim))`` (``fan_in`` of the patch embedding, ``3 * patch_h * patch_w``
  for pixel patches).
* The public code zeroes pruned prompts; here pruned tokens are dropped (the paper's efficiency argument);
  the outputs agree up to the attention mass a zero token still receives.
* Readout: the class token into a linear classifier (as the ML-VPT paper does for every compared method).

Examples
--------
>>> import torch
>>> from labelwise.models import create_model
>>> m = create_model("e2vpt", num_classes=3, backbone="test_vit", backbone_kwargs={"img_size": 32})
>>> m(torch.randn(2, 3, 32, 32))["logits"].shape, tuple(m.backbone.kv_keys.shape)
(torch.Size([2, 3]), (6, 2, 5, 32))
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .prompted_vit import ClassTokenClassifier, PromptedViT, _signature_of, block_forward, patch_fan_in
from .registry import register_model

__all__ = ["KVPromptViT", "E2VPTClassifier"]


class KVPromptViT(PromptedViT):
    """Deep visual prompts + per-block key-value prompts + prunable prompt masks (module documentation).

    Parameters
    ----------
    num_prompts : int, default 10
    num_kv_prompts : int, default 5
    segments : int, default 16
        Pieces per prompt for segment-wise pruning (must divide the embedding width; 1 disables).
    **options
        ``backbone``, ``pretrained``, ``weights``, ``weights_strict``, ``backbone_kwargs``, ``prompt_dropout``.
    """

    def __init__(
        self,
        backbone: str = "vit_base_patch16_224",
        *,
        num_prompts: int = 10,
        num_kv_prompts: int = 5,
        segments: int = 16,
        **options: Any,
    ) -> None:
        super().__init__(backbone, num_prompts=num_prompts, deep=True, isolation="off", **options)
        if num_kv_prompts < 0:
            raise ValueError(f"num_kv_prompts must be >= 0, got {num_kv_prompts}")
        if segments < 1 or self.embed_dim % segments:
            raise ValueError(f"segments ({segments}) must divide the embedding width {self.embed_dim}")
        attn = self.model.blocks[0].attn
        heads, head_dim = int(attn.num_heads), int(attn.head_dim)
        depth = len(self.model.blocks)
        bound = math.sqrt(6.0 / float(patch_fan_in(self.model.patch_embed) + head_dim))
        self.num_kv_prompts = int(num_kv_prompts)
        self.kv_keys = nn.Parameter(torch.empty(depth, heads, num_kv_prompts, head_dim).uniform_(-bound, bound))
        self.kv_values = nn.Parameter(torch.empty(depth, heads, num_kv_prompts, head_dim).uniform_(-bound, bound))
        self.segments = int(segments)
        self.token_mask = nn.Parameter(torch.ones(num_prompts), requires_grad=False)
        self.segment_mask = nn.Parameter(torch.ones(num_prompts, segments), requires_grad=False)
        self.register_buffer("token_scores", torch.zeros(num_prompts), persistent=False)
        self.register_buffer("segment_scores", torch.zeros(num_prompts, segments), persistent=False)
        self.register_buffer("initial_prompts", self.prompts.detach().clone() if self.prompts is not None else None)
        self.register_buffer("initial_kv", torch.stack([self.kv_keys.detach(), self.kv_values.detach()]).clone())

    # -- pruning --------------------------------------------------------------------------------------------
    def kept_tokens(self) -> torch.Tensor:
        """Indices of the visual prompts not pruned."""
        return torch.nonzero(self.token_mask > 0).flatten()

    def start_scoring(self) -> None:
        """Make the masks differentiable and reset the importance accumulators."""
        self.token_scores.zero_()
        self.segment_scores.zero_()
        self.token_mask.requires_grad_(True)
        self.segment_mask.requires_grad_(True)

    def accumulate_scores(self) -> None:
        """Add ``|grad|`` of the masks (after ``loss.backward()``) to the importance scores and clear the grads."""
        for mask, acc in ((self.token_mask, self.token_scores), (self.segment_mask, self.segment_scores)):
            if mask.grad is not None:
                acc += mask.grad.detach().abs()
                mask.grad = None

    def prune(self, *, tokens: int = 0, segments: int = 0) -> None:
        """Mask the ``tokens`` least important prompts, then the ``segments`` least important pieces of the kept
        ones; the masks stop being differentiable."""
        kept = self.kept_tokens()
        if tokens >= len(kept):
            raise ValueError(f"cannot prune {tokens} of the {len(kept)} remaining prompts")
        with torch.no_grad():
            if tokens:
                order = kept[torch.argsort(self.token_scores[kept])]
                self.token_mask[order[:tokens]] = 0.0
            if segments:
                kept = self.kept_tokens()
                scores = self.segment_scores[kept].clone()
                scores[self.segment_mask[kept] == 0] = float("inf")
                flat = torch.argsort(scores.flatten())[:segments]
                rows, cols = kept[flat // self.segments], flat % self.segments
                self.segment_mask[rows, cols] = 0.0
        self.token_mask.requires_grad_(False)
        self.segment_mask.requires_grad_(False)

    def rewind(self) -> None:
        """Reset the visual and key-value prompts to their initial values (masks kept)."""
        with torch.no_grad():
            self.prompts.copy_(self.initial_prompts)
            self.kv_keys.copy_(self.initial_kv[0])
            self.kv_values.copy_(self.initial_kv[1])

    def _masked_prompts(self, i: int, batch: int) -> torch.Tensor:
        keep = self.kept_tokens()
        prompts = nn.functional.dropout(self.prompts[i], self.prompt_dropout, self.training)
        seg = self.segment_mask.repeat_interleave(self.embed_dim // self.segments, dim=1)
        prompts = prompts * self.token_mask[:, None] * seg
        return prompts[keep].unsqueeze(0).expand(batch, -1, -1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        vit, n_pre = self.model, self.num_prefix_tokens
        tokens = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x))))
        b = tokens.shape[0]
        p = int(self.kept_tokens().numel())
        for i, block in enumerate(vit.blocks):
            prompts = self._masked_prompts(i, b).to(tokens.dtype)
            rest = tokens[:, n_pre:] if i == 0 else tokens[:, n_pre + p:]
            tokens = torch.cat([tokens[:, :n_pre], prompts, rest], dim=1)
            kv = (self.kv_keys[i], self.kv_values[i]) if self.num_kv_prompts else None
            tokens = block_forward(block, tokens, kv_prompts=kv)
        tokens = vit.norm(tokens)
        return {"prefix": tokens[:, :n_pre], "prompts": tokens[:, n_pre:n_pre + p], "patches": tokens[:, n_pre + p:]}


class E2VPTClassifier(ClassTokenClassifier):
    """E2VPT: :class:`KVPromptViT` + a linear classifier on the class token (``e2vpt``)."""

    def __init__(
        self,
        num_classes: int,
        *,
        num_prompts: int = 10,
        num_kv_prompts: int = 5,
        segments: int = 16,
        prompt_dropout: float = 0.1,
        backbone: str = "vit_base_patch16_224",
        pretrained: bool = False,
        weights: str | os.PathLike[str] | None = None,
        weights_strict: bool = True,
        backbone_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(KVPromptViT(
            backbone, num_prompts=num_prompts, num_kv_prompts=num_kv_prompts, segments=segments,
            prompt_dropout=prompt_dropout, pretrained=pretrained, weights=weights, weights_strict=weights_strict,
            backbone_kwargs=backbone_kwargs,
        ), num_classes)


@register_model("e2vpt")
@_signature_of(E2VPTClassifier)
def create_e2vpt(*, num_classes: int, **options: Any) -> E2VPTClassifier:
    """E2VPT: visual + key-value prompts with pruning (see :mod:`labelwise.models.kv_prompt_vit`)."""
    return E2VPTClassifier(num_classes, **options)
