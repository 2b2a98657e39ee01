"""GCN classifier head (ML-GCN style) of AGCN (Du et al., ICME 2022): a label graph turns label embeddings
into the classifiers.

``W = A LReLU(A X H1) H2`` ``[C, D]`` with ``X`` ``[C, d]`` the label embeddings (node inputs), ``A`` ``[C, C]``
the (normalised) correlation matrix and ``H1`` ``[d, hidden]``, ``H2`` ``[hidden, D]`` the two GCN layers
(no bias, LeakyReLU 0.2, as AGCN's ``gnn``); the logits are ``z = f W^T`` with ``f`` the pooled image feature.

* ``adjacency`` is a buffer, set from outside with :meth:`set_adjacency`; AGCN's strategy writes its augmented
  correlation matrix (:func:`labelwise.continual.label_graph.augmented_correlation_matrix`) there before each
  task. It defaults to the identity (every classifier from its own embedding only).
* Label embeddings: AGCN feeds 300-d GloVe vectors of the class names. labelwise downloads nothing, so
  ``label_embeddings`` is a path to a ``.npy`` ``[C, d]`` array (e.g. GloVe vectors you saved) or None: fixed
  random Gaussian vectors (seeded by ``embedding_seed``, a buffer, not trained) that make every class a distinct
  graph input.

Outputs: ``"logits"``, ``"classifiers"`` ``[C, D]`` (the GCN outputs, AGCN's relationship-preserving
distillation compares them between the old and the new model), ``"features"`` ``[B, D]``.

Examples
--------
>>> import torch
>>> from labelwise.models import create_model
>>> m = create_model("agcn", num_classes=4, backbone="test_resnet", hidden_dim=32, embedding_dim=8)
>>> out = m(torch.randn(2, 3, 64, 64))
>>> out["logits"].shape, out["classifiers"].shape
(torch.Size([2, 4]), torch.Size([4, 96]))
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_head, register_image_model
from .pooling import global_pool, pooled_dim

__all__ = ["GCNClassifierHead"]


class GCNClassifierHead(nn.Module):
    """Two-layer GCN over label embeddings that outputs one classifier per class.

    Parameters
    ----------
    in_features : int
        Channels ``D`` of the feature map (= classifier width).
    num_classes : int
    hidden_dim : int, default 1024
        Width of the first GCN layer (AGCN's).
    embedding_dim : int, default 300
        Width ``d`` of the random label embeddings (GloVe's 300); ignored with ``label_embeddings``.
    label_embeddings : str, optional
        ``.npy`` file with a ``[num_classes, d]`` float array of label embeddings.
    embedding_seed : int, default 0
        Seed of the random embeddings.
    pooling : str, default "max"
        Global pooling of the feature map (ML-GCN max-pools).
    negative_slope : float, default 0.2
    """

    def __init__(self, in_features: int, num_classes: int, *, hidden_dim: int = 1024, embedding_dim: int = 300,
                 label_embeddings: str | os.PathLike[str] | None = None, embedding_seed: int = 0,
                 pooling: str = "max", negative_slope: float = 0.2) -> None:
        super().__init__()
        c = int(num_classes)
        if label_embeddings is not None:
            path = os.fspath(label_embeddings)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"label_embeddings file {path} does not exist")
            emb = np.load(path, allow_pickle=False)
            if emb.ndim != 2 or emb.shape[0] != c:
                raise ValueError(f"label_embeddings {path}: expected an array [{c}, d], got shape {emb.shape}")
            x = torch.as_tensor(emb, dtype=torch.float32)
        else:
            if embedding_dim < 1:
                raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
            x = torch.randn(c, int(embedding_dim), generator=torch.Generator().manual_seed(int(embedding_seed)))
        self.num_classes = c
        self.pooling = pooling
        self.slope = float(negative_slope)
        self.register_buffer("embeddings", x)
        self.register_buffer("adjacency", torch.eye(c))
        self.gc1 = nn.Parameter(torch.empty(x.shape[1], hidden_dim))
        self.gc2 = nn.Parameter(torch.empty(hidden_dim, pooled_dim(pooling, in_features)))
        for w in (self.gc1, self.gc2):  # AGCN's GraphConvolution initialisation
            bound = 1.0 / math.sqrt(w.shape[1])
            nn.init.uniform_(w, -bound, bound)

    def set_adjacency(self, adjacency: np.ndarray | torch.Tensor) -> None:
        """Use ``adjacency`` ``[C, C]`` (already normalised) as the label graph."""
        a = torch.as_tensor(np.asarray(adjacency, dtype=np.float32) if not torch.is_tensor(adjacency) else adjacency,
                            dtype=torch.float32)
        if a.shape != (self.num_classes, self.num_classes):
            raise ValueError(f"adjacency must be [{self.num_classes}, {self.num_classes}], got {tuple(a.shape)}")
        if not torch.isfinite(a).all():
            raise ValueError("adjacency holds non-finite values")
        self.adjacency.copy_(a.to(self.adjacency.device))

    def classifiers(self) -> torch.Tensor:
        """The GCN output ``[C, D]``: one classifier per class."""
        a = self.adjacency
        h = F.leaky_relu(a @ (self.embeddings @ self.gc1), self.slope)
        return a @ (h @ self.gc2)

    def forward(self, feature_map: torch.Tensor) -> dict[str, torch.Tensor]:
        f = global_pool(feature_map, self.pooling)
        w = self.classifiers()
        return {"logits": f @ w.t().to(f.dtype), "classifiers": w, "features": f}


register_head("gcn_classifier")(GCNClassifierHead)
register_image_model("agcn", GCNClassifierHead)
