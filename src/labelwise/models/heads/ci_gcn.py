"""CI-GCN: the class-incremental graph convolutional network head of CSC (Du et al., ECCV 2024).

From the backbone feature map ``F`` ``[B, D, H, W]``:

1. class activation maps ``M = W_fc * F`` (a 1x1 convolution, ``[B, C, H, W]``); the first prediction is each
   map's maximum, ``s1 = max_hw M``;
2. label-specific node features ``V0 = softmax_hw(M) (W_t * F)^T`` ``[B, C, E]`` (each class pools the
   transformed map with its own spatial attention);
3. **general (static) graph**: a learnable correlation matrix ``A_s`` ``[C, C]`` (no statistics needed: it is
   learnt by gradient descent, the "learnable label relationship graph"):
   ``X = V0 + LReLU(W_g (LReLU(A_s V0)))``;
4. **specific (dynamic) graph**: ``A_d = sigmoid(W_a [g(X); X])`` ``[B, C, C]`` built per image from the
   nodes and their global average ``g`` (1x1 conv + norm + LReLU), then
   ``V2 = V0 + LReLU(W_d (LReLU(X A_d)))``;
5. second prediction ``s2_c = <V2_c, w_c> + b_c`` (the diagonal of CSC's node classifier) and the output
   ``logits = (s1 + s2) / 2``.

Class-incremental graph
-----------------------
In CSC the graph grows with the label space: after each task the old ``A_s`` block is copied into a larger
matrix. labelwise models hold every class from the start, so the head keeps a boolean ``active`` buffer:
nodes of inactive classes are cut out of both graphs (their rows and columns of ``A_s`` and ``A_d`` are zero)
and out of the global average, which is exactly a graph over the seen classes only. A continual strategy
calls :meth:`set_active_classes` before each task; the frozen copy of the previous model keeps its own
(smaller) set. ``active`` is all classes by default (plain multi-label training).

Deviation: CSC's ``BatchNorm1d`` on the global node vector is a ``LayerNorm`` here (a batch of one image,
which the last mini-batch of a task can be, breaks batch statistics in training mode).

Examples
--------
>>> import torch
>>> from labelwise.models import create_model
>>> m = create_model("ci_gcn", num_classes=4, backbone="test_resnet", embed_dim=16)
>>> m.head.set_active_classes([0, 1])
>>> out = m(torch.randn(2, 3, 64, 64))
>>> out["logits"].shape, out["dynamic_adjacency"].shape, float(out["dynamic_adjacency"][:, 2:].detach().abs().sum())
(torch.Size([2, 4]), torch.Size([2, 4, 4]), 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_head, register_image_model
from .two_stage import LabelwiseLinear

__all__ = ["CIGCNHead", "node_mask"]


def node_mask(active: torch.Tensor) -> torch.Tensor:
    """``[C, C]`` float mask that keeps the edges between active nodes only.

    Examples
    --------
    >>> node_mask(torch.tensor([True, False, True])).tolist()
    [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]
    """
    a = active.float()
    return a[:, None] * a[None, :]


class CIGCNHead(nn.Module):
    """Class activation maps + label-specific nodes + a learnable static and a per-image dynamic label graph.

    Parameters
    ----------
    in_features : int
        Channels ``D`` of the feature map.
    num_classes : int
        ``C`` graph nodes / outputs.
    embed_dim : int, optional
        Node width ``E``; default ``D // 2`` (CSC: 1024 for TResNet-M's 2048 channels).
    negative_slope : float, default 0.2
        LeakyReLU slope (CSC's).
    """

    def __init__(self, in_features: int, num_classes: int, *, embed_dim: int | None = None,
                 negative_slope: float = 0.2) -> None:
        super().__init__()
        if embed_dim is None:
            embed_dim = max(1, in_features // 2)
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {embed_dim}")
        c, e = int(num_classes), int(embed_dim)
        self.num_classes = c
        self.slope = float(negative_slope)
        self.fc = nn.Conv2d(in_features, c, 1, bias=False)
        self.transform = nn.Conv2d(in_features, e, 1)
        bound = 1.0 / math.sqrt(c)  # nn.Conv1d(C, C, 1)'s default initialisation, as CSC's general adjacency
        self.static_adjacency = nn.Parameter(torch.empty(c, c).uniform_(-bound, bound))
        self.static_weight = nn.Conv1d(e, e, 1)
        self.global_conv = nn.Conv1d(e, e, 1)
        self.global_norm = nn.LayerNorm(e)
        self.dynamic_adjacency = nn.Conv1d(2 * e, c, 1)
        self.dynamic_weight = nn.Conv1d(e, e, 1, bias=False)
        self.fc_nodes = LabelwiseLinear(c, e)
        self.register_buffer("active", torch.ones(c, dtype=torch.bool))

    def set_active_classes(self, classes: Sequence[int] | torch.Tensor) -> None:
        """Make the graph span ``classes`` only (the seen classes of a class-incremental task)."""
        idx = torch.as_tensor(classes, dtype=torch.long).reshape(-1)
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.num_classes):
            raise IndexError(f"class index out of range [0, {self.num_classes}): {idx.tolist()}")
        active = torch.zeros(self.num_classes, dtype=torch.bool)
        active[idx] = True
        self.active.copy_(active.to(self.active.device))

    def _lrelu(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.slope)

    def forward(self, feature_map: torch.Tensor) -> dict[str, torch.Tensor]:
        cam = self.fc(feature_map).flatten(2)                                   # [B, C, HW]
        s1 = cam.max(dim=-1).values
        attention = cam.softmax(dim=-1)
        v0 = torch.bmm(self.transform(feature_map).flatten(2), attention.transpose(1, 2))  # [B, E, C]
        keep = node_mask(self.active).to(v0.dtype)
        a_s = self.static_adjacency * keep
        general = self._lrelu(self.static_weight(self._lrelu(torch.einsum("ij,bej->bei", a_s, v0))))
        x = v0 + general
        act = self.active.to(x.dtype)
        pooled = (x * act).sum(-1, keepdim=True) / act.sum().clamp(min=1)     # [B, E, 1]
        glb = self._lrelu(self.global_norm(self.global_conv(pooled).squeeze(-1))).unsqueeze(-1)
        a_d = torch.sigmoid(self.dynamic_adjacency(torch.cat([glb.expand_as(x), x], dim=1))) * keep  # [B, C, C]
        specific = self._lrelu(self.dynamic_weight(self._lrelu(torch.bmm(x, a_d))))
        v2 = (v0 + specific).transpose(1, 2)                                    # [B, C, E]
        s2 = self.fc_nodes(v2)
        return {"logits": (s1 + s2) / 2, "cam_logits": s1, "graph_logits": s2, "label_features": v2,
                "static_adjacency": a_s, "dynamic_adjacency": a_d, "features": feature_map.mean(dim=(2, 3))}


register_head("ci_gcn")(CIGCNHead)
register_image_model("ci_gcn", CIGCNHead)
