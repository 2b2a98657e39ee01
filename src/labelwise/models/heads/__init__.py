"""Heads: modules mapping a feature map ``[B, D, H, W]`` to ``{"logits": [B, C], ...}``.

One module per head; each registers itself with :func:`~labelwise.models.register_head` and, when it makes an
image model on its own, with :func:`~labelwise.models.register_image_model`.

Examples
--------
>>> from labelwise.models import list_heads
>>> "linear" in list_heads()
True
"""

from .ci_gcn import CIGCNHead
from .class_tokens import ClassTokenAttentionHead
from .cosine import CosineHead, CosineLinear
from .gcn_classifier import GCNClassifierHead
from .group_moe import GroupMoEHead
from .linear import LinearHead
from .pooling import POOLINGS, GlobalPool, global_pool, pooled_dim
from .ssca import SSCAHead, SSCAModule
from .two_stage import LabelwiseLinear, TwoStageTransformerHead

__all__ = [
    "LinearHead",
    "CosineHead",
    "CosineLinear",
    "SSCAHead",
    "SSCAModule",
    "TwoStageTransformerHead",
    "LabelwiseLinear",
    "GroupMoEHead",
    "ClassTokenAttentionHead",
    "CIGCNHead",
    "GCNClassifierHead",
    "GlobalPool",
    "global_pool",
    "pooled_dim",
    "POOLINGS",
]
