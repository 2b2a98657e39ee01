"""CLIF: collaborative learning of label semantics and deep label-specific features (Hang and Zhang,
"Collaborative learning of label semantics and deep label-specific features for multi-label
classification", TPAMI 2021).

Examples
--------
>>> import torch
>>> from labelwise.models import create_model
>>> m = create_model("clif", num_classes=5, in_features=12, hidden=16)
>>> x, y = torch.randn(8, 12), (torch.rand(8, 5) > 0.5).float()
>>> m.set_label_graph(y)
>>> out = m(x, targets=y)
>>> out["logits"].shape, m.loss(out, {"input": x, "target": y}, None).shape
(torch.Size([8, 5]), torch.Size([8]))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_model
from ._deep_common import INITS, DeepMLCModel, check_positive_int, kaiming_init_, mlp

__all__ = ["CLIF", "LABEL_GRAPHS", "GRAPH_LOSSES"]

#: Label graphs of the GIN aggregation: from the training targets, or none (identity; the published code).
LABEL_GRAPHS = ("cooccurrence", "identity")
#: Graph-autoencoder losses: BCE of ``(1 + cos) / 2`` or the squared error of the cosine (published code).
GRAPH_LOSSES = ("bce", "cosine_mse")


class _GINLayer(nn.Module):
    """``h' = MLP((1 + eps) h + A h)`` (+ ``h`` when the widths match)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(1))
        self.mlp = mlp(
            [in_dim, hidden, out_dim],
            activation="leaky_relu",
            dropout=dropout,
            last_activation=True,
            batchnorm=True,
        )
        self.residual = in_dim == out_dim

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        out = self.mlp((1.0 + self.eps) * h + adj @ h)
        return out + h if self.residual else out


@register_model("clif")
class CLIF(DeepMLCModel):
    r"""CLIF: a graph autoencoder over the label co-occurrence graph gives label embeddings that gate the
    instance embedding into label-specific features.

    Equations implemented:

    * label semantics: node features :math:`E^{(0)}` (fixed random Gaussian ``[C, C]``, as in the
      published code) pass through ``gin_layers`` GIN layers
      :math:`E^{(t+1)} = \mathrm{MLP}_t\big((1 + \epsilon_t) E^{(t)} + A E^{(t)}\big)` (+ residual);
      the graph autoencoder reconstructs the co-occurrence structure from the embeddings,
      :math:`L_{gae} = \mathrm{BCE}\big(\tfrac{1 + \cos(e_i, e_j)}{2}, \tilde A_{ij}\big)` averaged over all
      label pairs, with :math:`\tilde A = 1[\text{co-occurrence} > 0] + I`;
    * label-specific features: :math:`h = \phi(x)` (3-layer MLP), :math:`g_j = W_e e_j`,
      :math:`f_j = \psi(h \odot g_j)` (one shared layer), and a linear classifier per label,
      ``logits_j = w_j^T f_j + b_j``;
    * objective: :math:`\frac1C \sum_j \mathrm{BCE}_j + \lambda L_{gae}` with :math:`\lambda = 10^{-3}`.

    Prediction uses only the features and the stored label graph (a buffer of the model).

    Parameters
    ----------
    in_features, num_classes : int
    hidden : int
        Width of the instance embedding and label-specific features (768, the published value).
    embed_dim : int, optional
        Label embedding size (default ``C``); the GIN hidden width is ``ceil(embed_dim / 2)``.
    gin_layers : int
        Number of GIN layers (2).
    gae_weight : float
        :math:`\lambda` (1e-3).
    dropout : float
        Dropout (0.2).
    label_adjacency : array-like ``[C, C]``, optional
        Label co-occurrence counts; otherwise call :meth:`set_label_graph` with the training targets
        (``fit_tabular`` does so) or let the model accumulate them from its training batches (see Notes).
    label_graph : {"cooccurrence", "identity"}
        The GIN's graph: from the training targets (default), or the identity of the batch-selection study's
        published code (no edges between labels; nothing to prepare).
    graph_loss : {"bce", "cosine_mse"}
        BCE of ``(1 + cos) / 2`` against the reconstruction target (default), or the published squared
        error of the cosine similarity.
    init : {"kaiming", "torch"}
        The published initialisation (default: Kaiming-uniform weights for leaky ReLU, biases ``U(0, 0.1)``
        in the MLPs, ``U(±1/sqrt(hidden))`` classifier biases) or torch's defaults, with which the initial
        logits barely depend on the input and training at lr 1e-4 stays on a plateau for tens of epochs
        (docs/tabular_models.md).
    specific_dropout : bool
        Dropout after the label-specific layer (False, as published).

    Notes
    -----
    Choices where the paper leaves a detail open:

    * **Label graph** (``label_graph="cooccurrence"``). The edge weights of the GIN aggregation are the conditional co-occurrence
      frequencies :math:`A_{ij} = P(l_j | l_i)` (row-normalised counts, zero diagonal; bounded, so the sum
      aggregation stays stable with hundreds of labels); the reconstruction target is the binary
      co-occurrence plus self-loops. The batch-selection study's published code leaves the graph at the
      identity (no edges); we build it from the training targets. :meth:`set_label_graph` fixes it from the
      whole training set; if it is never called, every training forward with targets adds the batch's
      co-occurrence counts (a running estimate that over-counts the samples a non-uniform sampler picks
      more often).
    * The graph term is batch-level; it is added to every sample's loss. The classification term uses the
      criterion passed to :meth:`loss` (BCE by default), averaged over labels as in the published code
      (``MultiLabelSoftMarginLoss``).

    Examples
    --------
    >>> import torch
    >>> m = CLIF(in_features=6, num_classes=3, hidden=8).eval()
    >>> m(torch.randn(2, 6))["logits"].shape
    torch.Size([2, 3])
    """

    needs_targets = True

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        hidden: int = 768,
        embed_dim: int | None = None,
        gin_layers: int = 2,
        gae_weight: float = 1e-3,
        dropout: float = 0.2,
        label_adjacency: Any = None,
        label_graph: str = "cooccurrence",
        graph_loss: str = "bce",
        init: str = "kaiming",
        specific_dropout: bool = False,
    ) -> None:
        super().__init__(in_features=in_features, num_classes=num_classes)
        c = self.num_classes
        hidden = check_positive_int("hidden", hidden)
        emb = c if embed_dim is None else check_positive_int("embed_dim", embed_dim)
        gin_layers = check_positive_int("gin_layers", gin_layers)
        for name, value, allowed in (("label_graph", label_graph, LABEL_GRAPHS),
                                     ("graph_loss", graph_loss, GRAPH_LOSSES), ("init", init, INITS)):
            if value not in allowed:
                raise ValueError(f"CLIF {name} must be one of {allowed}, got {value!r}")
        if label_graph == "identity" and label_adjacency is not None:
            raise ValueError("CLIF label_adjacency needs label_graph='cooccurrence'")
        self.label_graph = label_graph
        self.graph_loss_kind = graph_loss
        self.gae_weight = float(gae_weight)
        self.register_buffer("node_features", torch.randn(c, c))
        self.register_buffer("cooccurrence", torch.zeros(c, c))
        self.register_buffer("graph_fixed", torch.zeros((), dtype=torch.bool))
        gin_hidden = max(1, math.ceil(emb / 2))
        self.gin = nn.ModuleList(
            [_GINLayer(c if i == 0 else emb, emb, gin_hidden, dropout) for i in range(gin_layers)]
        )
        self.instance = mlp(
            [self.in_features, hidden, hidden, hidden],
            activation="leaky_relu",
            dropout=dropout,
            last_activation=True,
        )
        self.label_proj = nn.Linear(emb, hidden)
        self.specific = mlp([hidden, hidden], activation="leaky_relu", dropout=dropout if specific_dropout else 0.0,
                            last_activation=True)
        self.cls_weight = nn.Parameter(
            torch.empty(c, hidden).uniform_(-1 / math.sqrt(hidden), 1 / math.sqrt(hidden))
        )
        self.cls_bias = nn.Parameter(torch.zeros(c))
        if init == "kaiming":
            for part in (*self.gin, self.instance, self.specific):
                kaiming_init_(part, "leaky_relu")
            nn.init.kaiming_uniform_(self.label_proj.weight, nonlinearity="sigmoid")  # gain 1
            nn.init.zeros_(self.label_proj.bias)
            nn.init.uniform_(self.cls_bias, -1 / math.sqrt(hidden), 1 / math.sqrt(hidden))
        if label_graph == "identity":
            self.graph_fixed.fill_(True)
        if label_adjacency is not None:
            self.set_label_graph(cooccurrence=label_adjacency)

    @torch.no_grad()
    def set_label_graph(self, targets: Any = None, *, cooccurrence: Any = None) -> None:
        """Fix the label graph from training ``targets`` ``[n, C]`` (0/1) or a co-occurrence matrix ``[C, C]``."""
        if self.label_graph == "identity":
            raise ValueError("CLIF with label_graph='identity' has no label graph to set")
        if (targets is None) == (cooccurrence is None):
            raise ValueError("give exactly one of targets or cooccurrence")
        if targets is not None:
            y = torch.as_tensor(np.asarray(targets, dtype=np.float32))
            if y.ndim != 2 or y.shape[1] != self.num_classes:
                raise ValueError(f"targets must be [n, {self.num_classes}], got {tuple(y.shape)}")
            m = y.T @ y
        else:
            m = torch.as_tensor(np.asarray(cooccurrence, dtype=np.float32))
            if m.shape != (self.num_classes, self.num_classes):
                raise ValueError(
                    f"cooccurrence must be [{self.num_classes}, {self.num_classes}], got {tuple(m.shape)}"
                )
        self.cooccurrence.copy_(m.to(self.cooccurrence))
        self.graph_fixed.fill_(True)

    def prepare(self, X: Any, Y: Any) -> None:
        """Data-dependent set-up before training (called by ``fit_tabular``): the label graph of ``Y``.

        With ``label_graph="identity"`` there is nothing to prepare.
        """
        if self.label_graph == "cooccurrence":
            self.set_label_graph(Y)

    def _graph(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(aggregation weights, reconstruction target)`` of the label graph, both ``[C, C]``."""
        m = self.cooccurrence
        if self.label_graph == "identity":
            eye = torch.eye(m.shape[0], dtype=m.dtype, device=m.device)
            return eye, eye  # the published code: edges = I, so each node aggregates itself once more
        diag = torch.diagonal(m)
        off = m - torch.diag_embed(diag)
        adj = off / diag.clamp_min(1.0).unsqueeze(1)
        target = (off > 0).to(m.dtype) + torch.eye(m.shape[0], dtype=m.dtype, device=m.device)
        return adj, target

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        self._check(x, targets)
        adj, _ = self._graph()
        e = self.node_features
        for layer in self.gin:
            e = layer(e, adj)
        h = self.instance(x)  # [B, H]
        g = self.label_proj(e)  # [C, H]
        f = self.specific(h.unsqueeze(1) * g.unsqueeze(0))  # [B, C, H]
        logits = (f * self.cls_weight).sum(-1) + self.cls_bias
        if targets is not None and self.training and not bool(self.graph_fixed):
            with torch.no_grad():  # after the logits: a batch's targets never reach its own predictions
                t = targets.to(self.cooccurrence.dtype)
                self.cooccurrence.add_(t.T @ t)
        return {"logits": logits, "features": h, "label_embeddings": e}

    def graph_loss(self, label_embeddings: torch.Tensor) -> torch.Tensor:
        """The graph-autoencoder loss :math:`L_{gae}` (scalar)."""
        _, target = self._graph()
        e = F.normalize(label_embeddings, dim=1)
        if self.graph_loss_kind == "cosine_mse":
            return ((e @ e.T - target) ** 2).mean()
        p = ((1.0 + e @ e.T) / 2.0).clamp(1e-6, 1 - 1e-6)
        return F.binary_cross_entropy(p, target)

    def loss(self, outputs: dict[str, Any], batch: dict[str, Any], criterion: Any = None) -> torch.Tensor:
        """Per-sample CLIF objective ``[B]``: mean-over-labels classification loss + lambda x graph loss."""
        y, mask = batch["target"], batch.get("mask")
        elem = self.elementwise(criterion, outputs["logits"].float(), y, mask)
        n_known = float(y.shape[1]) if mask is None else mask.sum(dim=1).clamp_min(1).to(elem.dtype)
        cls = elem.sum(dim=1) / n_known
        return cls + self.gae_weight * self.graph_loss(outputs["label_embeddings"].float())
