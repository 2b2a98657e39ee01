"""GateVPT (Yoo et al., ICML 2023, "Improving Visual Prompt Tuning for Self-supervised Vision Transformers").

Prompt tokens enter the first block only (VPT-shallow) and flow through the frozen ViT, but each block ``i``
has a learnable gate ``g_i = sigmoid(gamma_i)`` that decides how much the block may change them::

    P_{i+1} = g_i * Block_i(P_i) + (1 - g_i) * P_i

(``g_i = 0``: the block leaves the prompts as they came in, so later blocks see the earlier representation;
``g_i = 1``: plain VPT-shallow). Class and patch tokens are processed as usual and attend to the prompts in
every block. GateVPT also learns a per-block attention temperature ``tau_i`` (attention logits divided by
``tau_i``, clamped to ``[0.01, 10]``), its "attention shaping".

Where this follows the paper and the public code (``ryongithub/GatedPromptTuning``)
------------------------------------------------------------------------------------
* Gates on the first ``depth - 1`` blocks (the last block's prompt outputs are not read), logits initialised to
  ``-gate_init``, so training starts with the prompts passing almost unchanged. ``num_prompts = 100`` and
  ``gate_init = 5``: the README's run command (CUB); the run script takes both per dataset and overrides the
  config defaults (5 tokens, 10). ``prompt_dropout = 0.1`` (run script). A learnable temperature per block
  initialised to 1 and clamped to ``[0.01, 10]`` (the code clamps the stored value in place; here the clamp is
  applied in the forward pass).
* Readout: the class token into a linear classifier, as the ML-VPT paper uses for every compared method (the
  public code pools the patch and prompt tokens for its self-supervised backbones).

Examples
--------
>>> import torch
>>> from labelwise.models import create_model
>>> m = create_model("gatevpt", num_classes=3, backbone="test_vit", backbone_kwargs={"img_size": 32})
>>> m(torch.randn(2, 3, 32, 32))["logits"].shape, tuple(m.backbone.gate_logits.shape)
(torch.Size([2, 3]), (5,))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .prompted_vit import ClassTokenClassifier, PromptedViT, _signature_of, block_forward
from .registry import register_model

__all__ = ["GatedPromptViT", "GateVPTClassifier"]


class GatedPromptViT(PromptedViT):
    """Shallow prompts with a sigmoid gate per block and learnable attention temperatures (module docs).

    Parameters
    ----------
    num_prompts : int, default 100
    gate_init : float, default 5
        Gate logits start at ``-gate_init``.
    learn_temperature : bool, default True
    temperature_range : (float, float), default (0.01, 10)
    **options
        ``backbone``, ``pretrained``, ``weights``, ``weights_strict``, ``backbone_kwargs``, ``prompt_dropout``
        of :class:`~labelwise.models.prompted_vit.PromptedViT`.
    """

    def __init__(
        self,
        backbone: str = "vit_base_patch16_224",
        *,
        num_prompts: int = 100,
        gate_init: float = 5.0,
        learn_temperature: bool = True,
        temperature_range: tuple[float, float] = (0.01, 10.0),
        **options: Any,
    ) -> None:
        if num_prompts < 1:
            raise ValueError(f"GateVPT needs num_prompts >= 1, got {num_prompts}")
        super().__init__(backbone, num_prompts=num_prompts, deep=False, isolation="off", **options)
        depth = len(self.model.blocks)
        self.gate_logits = nn.Parameter(torch.full((max(depth - 1, 0),), -float(gate_init)))
        lo, hi = (float(v) for v in temperature_range)
        if not 0 < lo <= 1.0 <= hi:
            raise ValueError(f"temperature_range must satisfy 0 < low <= 1 <= high, got {temperature_range}")
        self.temperature_range = (lo, hi)
        if learn_temperature:
            self.temperature = nn.Parameter(torch.ones(depth))
        else:
            self.register_parameter("temperature", None)

    def gates(self) -> torch.Tensor:
        """``sigmoid(gamma_i)`` of the gated blocks."""
        return self.gate_logits.sigmoid()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        vit, n_pre, p = self.model, self.num_prefix_tokens, self.num_prompts
        tokens = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x))))
        b = tokens.shape[0]
        tokens = torch.cat([tokens[:, :n_pre], self._layer_prompts(0, b).to(tokens.dtype), tokens[:, n_pre:]], dim=1)
        gates = self.gates()
        for i, block in enumerate(vit.blocks):
            prompt_in = tokens[:, n_pre:n_pre + p]
            temp = None if self.temperature is None else self.temperature[i].clamp(*self.temperature_range)
            tokens = block_forward(block, tokens, temperature=temp)
            if i < len(gates):
                g = gates[i].to(tokens.dtype)
                mixed = g * tokens[:, n_pre:n_pre + p] + (1 - g) * prompt_in
                tokens = torch.cat([tokens[:, :n_pre], mixed, tokens[:, n_pre + p:]], dim=1)
        tokens = vit.norm(tokens)
        return {"prefix": tokens[:, :n_pre], "prompts": tokens[:, n_pre:n_pre + p], "patches": tokens[:, n_pre + p:]}


class GateVPTClassifier(ClassTokenClassifier):
    """GateVPT: :class:`GatedPromptViT` + a linear classifier on the class token (``gatevpt``)."""

    def __init__(
        self,
        num_classes: int,
        *,
        num_prompts: int = 100,
        gate_init: float = 5.0,
        learn_temperature: bool = True,
        prompt_dropout: float = 0.1,
        backbone: str = "vit_base_patch16_224",
        pretrained: bool = False,
        weights: str | os.PathLike[str] | None = None,
        weights_strict: bool = True,
        backbone_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(GatedPromptViT(
            backbone, num_prompts=num_prompts, gate_init=gate_init, learn_temperature=learn_temperature,
            prompt_dropout=prompt_dropout, pretrained=pretrained, weights=weights, weights_strict=weights_strict,
            backbone_kwargs=backbone_kwargs,
        ), num_classes)


@register_model("gatevpt")
@_signature_of(GateVPTClassifier)
def create_gatevpt(*, num_classes: int, **options: Any) -> GateVPTClassifier:
    """GateVPT: gated shallow prompts (see :mod:`labelwise.models.gated_prompt_vit`)."""
    return GateVPTClassifier(num_classes, **options)
