"""L2P (Learning to Prompt, Wang et al., CVPR 2022): a prompt pool with key-query matching on a frozen ViT.

* **Query**: the frozen pretrained ViT's class token on the image *without* prompts, ``q(x)`` ``[B, D]``.
* **Pool**: ``M`` prompts of ``L_p`` tokens each, ``P`` ``[M, L_p, D]``, each with a learnable key ``k_m`` ``[D]``.
* **Selection**: the ``N`` keys nearest to the query by cosine similarity, ``K_x = top-N_m cos(q(x), k_m)``;
  their prompts are concatenated (``[B, N L_p, D]``) and prepended to the patch tokens (after the prefix tokens)
  of a second pass through the frozen ViT (:class:`~labelwise.models.prompted_vit.PromptedViT` with
  per-sample prompts).
* **Head**: a linear classifier on the mean of the prompt tokens' outputs (L2P's ``head_type="prompt"``).
* **Surrogate loss** (for the strategy): ``sum_{m in K_x} (1 - cos(q(x), k_m))`` pulls the selected keys to
  the queries; the model returns the selected similarities as ``"key_similarity"`` ``[B, N]``.

Defaults are the paper's: ``pool_size=10`` (M), ``prompt_length=5`` (L_p), ``top_k=5`` (N); prompts and keys
initialised uniform in ``[-1, 1]`` (the public code's ``uniform`` initialisation). Deviations: the prompts get
no position embedding (labelwise's prompted ViT inserts prompts after the position embedding, as VPT does), and
neither the batch-wise prompt vote at test time nor the optional prompt-frequency penalty is implemented.

Examples
--------
>>> import torch
>>> from labelwise.models import create_model
>>> m = create_model("l2p", num_classes=4, backbone="test_vit", pool_size=6, prompt_length=2, top_k=3,
...                  backbone_kwargs={"img_size": 32})
>>> out = m(torch.randn(2, 3, 32, 32))
>>> out["logits"].shape, out["prompt_indices"].shape, out["key_similarity"].shape
(torch.Size([2, 4]), torch.Size([2, 3]), torch.Size([2, 3]))
>>> sorted(n for n, p in m.named_parameters() if p.requires_grad)
['fc.bias', 'fc.weight', 'pool.keys', 'pool.prompts']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .prompted_vit import PromptedViT, PromptTuningModel, _signature_of
from .registry import register_model

__all__ = ["PromptPool", "L2PClassifier"]


class PromptPool(nn.Module):
    """``M`` prompts of ``L_p`` tokens with one key each; :meth:`select` picks the ``N`` nearest keys per query.

    Examples
    --------
    >>> import torch
    >>> pool = PromptPool(4, 2, 2, embed_dim=3)
    >>> with torch.no_grad():
    ...     _ = pool.keys.copy_(torch.eye(4, 3))
    >>> prompts, idx, sim = pool.select(torch.tensor([[0.0, 1.0, 0.1]]))
    >>> idx.tolist(), prompts.shape
    ([[1, 2]], torch.Size([1, 4, 3]))
    """

    def __init__(self, pool_size: int = 10, prompt_length: int = 5, top_k: int = 5, *, embed_dim: int) -> None:
        super().__init__()
        for name, v in (("pool_size", pool_size), ("prompt_length", prompt_length), ("top_k", top_k)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if top_k > pool_size:
            raise ValueError(f"top_k ({top_k}) cannot exceed pool_size ({pool_size})")
        self.pool_size, self.prompt_length, self.top_k = pool_size, prompt_length, top_k
        self.prompts = nn.Parameter(torch.empty(pool_size, prompt_length, embed_dim).uniform_(-1, 1))
        self.keys = nn.Parameter(torch.empty(pool_size, embed_dim).uniform_(-1, 1))

    def similarity(self, query: torch.Tensor) -> torch.Tensor:
        """Cosine similarity ``[B, M]`` between the queries and every key."""
        return F.normalize(query, dim=-1) @ F.normalize(self.keys, dim=-1).t()

    def select(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(prompts ``[B, N L_p, D]``, indices ``[B, N]``, their similarities ``[B, N]``) of the ``N`` nearest keys."""
        sim = self.similarity(query)
        idx = sim.topk(self.top_k, dim=1).indices
        prompts = self.prompts[idx].reshape(query.shape[0], self.top_k * self.prompt_length, -1)
        return prompts, idx, sim.gather(1, idx)


class L2PClassifier(PromptTuningModel):
    """Frozen ViT + L2P prompt pool + linear head on the mean prompt output (``l2p``).

    Parameters
    ----------
    num_classes : int
    pool_size, prompt_length, top_k : int
        ``M``, ``L_p`` and ``N`` (paper: 10, 5, 5).
    backbone, pretrained, weights, weights_strict, backbone_kwargs
        The frozen ViT (see :class:`~labelwise.models.prompted_vit.PromptedViT`).
    """

    def __init__(self, num_classes: int, *, pool_size: int = 10, prompt_length: int = 5, top_k: int = 5,
                 backbone: str = "vit_base_patch16_224", pretrained: bool = False,
                 weights: str | os.PathLike[str] | None = None, weights_strict: bool = True,
                 backbone_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.backbone = PromptedViT(backbone, pretrained=pretrained, weights=weights, weights_strict=weights_strict,
                                    backbone_kwargs=backbone_kwargs, num_prompts=0)
        self.pool = PromptPool(pool_size, prompt_length, top_k, embed_dim=self.backbone.embed_dim)
        self.fc = nn.Linear(self.backbone.embed_dim, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            query = self.backbone.pooled(self.backbone(x))
        prompts, idx, sim = self.pool.select(query)
        tokens = self.backbone(x, prompts=prompts)
        features = tokens["prompts"].mean(dim=1)
        return {"logits": self.fc(features), "features": features, "query": query, "prompt_indices": idx,
                "key_similarity": sim}


@register_model("l2p")
@_signature_of(L2PClassifier)
def create_l2p(*, num_classes: int, **options: Any) -> L2PClassifier:
    """L2P: prompt pool with key-query selection on a frozen ViT (see :mod:`labelwise.models.prompt_pool`)."""
    return L2PClassifier(num_classes, **options)
