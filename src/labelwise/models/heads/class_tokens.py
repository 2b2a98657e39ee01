"""Class-token cross-attention head: KRT's incremental cross-attention (ICA) on a backbone feature map.

KRT (Dong et al., ICCV 2023) reads one label-specific feature per class out of the image's patch tokens with
cross-attention, the queries being learnable tokens:

* the feature map ``[B, D, H, W]`` is flattened into ``H*W`` patch tokens and linearly projected to the token
  width ``E`` (KRT's "linear projection to patch tokens ``X_P``");
* **knowledge-retention tokens**: one learnable token per class (``class_tokens`` ``[C, E]``). A class-
  incremental strategy *freezes* the tokens of the classes of finished tasks (:meth:`freeze_classes`): from
  then on the forward pass uses a snapshot of them, so neither gradients nor weight decay change them;
* **knowledge-transfer token**: one shared learnable token (``transfer_token`` ``[1, E]``), trained in every
  task. It is added to every class query and is also a key/value next to the patch tokens, so knowledge
  learned on new tasks reaches the (frozen) old-class queries through it;
* one pre-norm transformer decoder step: ``h = q + MHA(LN(q), LN(kv), LN(kv))``, ``h = h + FFN(LN(h))``;
* one linear classifier per class on its token output (Query2Label's group-wise linear,
  :class:`~labelwise.models.heads.two_stage.LabelwiseLinear`).

Outputs: ``"logits"`` ``[B, C]``, ``"label_features"`` ``[B, C, E]`` (the token outputs that KRT's token
distillation compares), ``"attention"`` ``[B, C, H, W]`` (head-averaged attention of each class token on the
patches) and ``"features"`` ``[B, D]`` (average-pooled feature map, e.g. for herding).

Where this departs from KRT: KRT groups its retention tokens by session (one set per task, each with the
task's classifier); here every class has its own token (the finest grouping, which also lets the head be
built once with all ``C`` outputs, as every labelwise model is). See ``docs/continual.md``.

Examples
--------
>>> import torch
>>> from labelwise.models import create_model
>>> m = create_model("krt", num_classes=5, backbone="test_resnet", embed_dim=32, num_heads=4)
>>> out = m(torch.randn(2, 3, 64, 64))
>>> out["logits"].shape, out["label_features"].shape, out["attention"].shape
(torch.Size([2, 5]), torch.Size([2, 5, 32]), torch.Size([2, 5, 2, 2]))
>>> m.head.freeze_classes([0, 1]); m.head.frozen.tolist()
[True, True, False, False, False]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..registry import register_head, register_image_model
from .two_stage import LabelwiseLinear

__all__ = ["ClassTokenAttentionHead"]


@register_head("class_token_attention")
class ClassTokenAttentionHead(nn.Module):
    """Per-class retention tokens + one shared transfer token cross-attending to the patch tokens (KRT's ICA).

    Parameters
    ----------
    in_features : int
        Channels ``D`` of the backbone feature map.
    num_classes : int
        ``C``: one retention token and one classifier per class.
    embed_dim : int, default 256
        Token width ``E``.
    num_heads : int, default 8
        Attention heads (``embed_dim`` must be divisible by it).
    ffn_ratio : float, default 2.0
        Hidden width of the feed-forward block, as a multiple of ``E``.
    dropout : float, default 0.1
        Dropout in attention and feed-forward.
    """

    def __init__(self, in_features: int, num_classes: int, *, embed_dim: int = 256, num_heads: int = 8,
                 ffn_ratio: float = 2.0, dropout: float = 0.1) -> None:
        super().__init__()
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a positive multiple of num_heads ({num_heads})")
        if ffn_ratio <= 0 or not 0 <= dropout < 1:
            raise ValueError(f"ffn_ratio must be > 0 and dropout in [0, 1), got {ffn_ratio}, {dropout}")
        e = int(embed_dim)
        self.num_classes = int(num_classes)
        self.proj = nn.Linear(in_features, e)
        self.class_tokens = nn.Parameter(torch.empty(num_classes, e))
        self.transfer_token = nn.Parameter(torch.empty(1, e))
        nn.init.trunc_normal_(self.class_tokens, std=0.02)
        nn.init.trunc_normal_(self.transfer_token, std=0.02)
        self.norm_q = nn.LayerNorm(e)
        self.norm_kv = nn.LayerNorm(e)
        self.attn = nn.MultiheadAttention(e, num_heads, dropout=dropout, batch_first=True)
        self.norm_ffn = nn.LayerNorm(e)
        hidden = max(1, int(round(ffn_ratio * e)))
        self.ffn = nn.Sequential(nn.Linear(e, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, e),
                                 nn.Dropout(dropout))
        self.fc = LabelwiseLinear(num_classes, e)
        self.register_buffer("frozen", torch.zeros(num_classes, dtype=torch.bool))
        self.register_buffer("frozen_tokens", torch.zeros(num_classes, e))

    def freeze_classes(self, classes: Sequence[int] | torch.Tensor) -> None:
        """Freeze the retention tokens of ``classes`` at their current values (tokens already frozen keep theirs)."""
        idx = torch.as_tensor(classes, dtype=torch.long, device=self.frozen.device).reshape(-1)
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.num_classes):
            raise IndexError(f"class index out of range [0, {self.num_classes}): {idx.tolist()}")
        new = idx[~self.frozen[idx]]
        with torch.no_grad():
            self.frozen_tokens[new] = self.class_tokens.detach()[new].to(self.frozen_tokens.dtype)
            self.frozen[new] = True

    def tokens(self) -> torch.Tensor:
        """The retention tokens in use ``[C, E]``: the frozen snapshot for frozen classes, the parameters otherwise."""
        return torch.where(self.frozen[:, None], self.frozen_tokens.to(self.class_tokens.dtype), self.class_tokens)

    def forward(self, feature_map: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, h, w = feature_map.shape
        patches = self.proj(feature_map.flatten(2).transpose(1, 2))             # [B, HW, E]
        kt = self.transfer_token.unsqueeze(0).expand(b, -1, -1)                 # [B, 1, E]
        q = (self.tokens() + self.transfer_token).unsqueeze(0).expand(b, -1, -1)  # [B, C, E]
        kv = self.norm_kv(torch.cat([kt, patches], dim=1))
        a, weights = self.attn(self.norm_q(q), kv, kv, need_weights=True, average_attn_weights=True)
        x = q + a
        x = x + self.ffn(self.norm_ffn(x))
        return {"logits": self.fc(x), "label_features": x, "attention": weights[:, :, 1:].reshape(b, -1, h, w),
                "features": feature_map.mean(dim=(2, 3))}


register_image_model("krt", ClassTokenAttentionHead)
