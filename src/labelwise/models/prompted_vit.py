"""Visual prompt tuning of a frozen timm ViT: linear probe, VPT (shallow/deep), GVPT and ML-VPT.

:class:`PromptedViT` runs a timm :class:`~timm.models.vision_transformer.VisionTransformer` (ViT, DeiT,
DINOv2, ...; any model with ``patch_embed``, ``_pos_embed``, ``blocks`` and ``norm``) with its own weights
frozen and ``P`` learnable prompt tokens inserted after the prefix (class/register) tokens, after the
position embedding (prompts have no position)::

    [prefix, prompts, patches] -> block_1 -> ... -> block_L -> norm

* ``deep=True`` (VPT-deep, ML-VPT Eq. 8): every block gets its own prompts; the prompt outputs of block
  ``i`` are discarded and replaced by the prompts of block ``i + 1``; the outputs of the last block are the
  prompt features. ``deep=False`` (VPT-shallow): prompts enter the first block only and flow through.
* Attention mask (``isolation``), applied in every block through timm's ``Block(x, attn_mask=...)``
  (boolean, ``True`` = may attend; the same for the fused ``scaled_dot_product_attention`` path and the
  explicit one): class and patch tokens attend to every token; a prompt token attends to the class and patch
  tokens and to

  - ``"group"``: the prompts of its own group (ML-VPT section 4.2: no information exchange across groups);
  - ``"none"``: itself only (the published ML-VPT code);
  - ``"off"``: every prompt (no mask; plain VPT).

  The mask stops the *direct* exchange between prompts inside a block. Because class and patch tokens attend
  to all prompts (as in the paper and the published code), deep prompts of block ``i`` still reach other
  groups through the patch tokens they update, from block ``i + 1`` on; the final prompt outputs of a group do
  not depend on the last block's prompts of any other group.

* Prompt initialisation: uniform in ``+-sqrt(6 / (fan_in + D))`` (VPT's Xavier-uniform), ``fan_in`` the
  patch embedding's: ``3 * patch_h * patch_w`` for pixel patches, the CNN's channels for a hybrid ViT
  (:mod:`labelwise.models.hybrid_vit`, 1x1 patches of a feature map).

Frozen backbone
---------------
Every timm parameter has ``requires_grad=False`` and the backbone stays in ``eval()`` mode even when the
model is put in training mode (``train()`` is overridden): dropout, attention dropout, drop-path and
patch-dropout of the pretrained network are off and any normalisation statistics are fixed, exactly as at
inference (the published code calls ``eval()`` on its encoder too). Only the prompts (with their own
``prompt_dropout``) and the head are trained; :meth:`PromptTuningModel.param_groups` lists only them.

Registered models (``create_model(name, num_classes=C, **options)``)
--------------------------------------------------------------------
All share ``backbone="vit_base_patch16_224"``, ``pretrained=False``, ``weights=None`` (local safetensors /
state dict; a whole labelwise checkpoint works: its ``backbone.`` prefix is stripped), ``weights_strict=True``
and ``backbone_kwargs={}`` (to ``timm.create_model``, e.g. ``{"img_size": 448}``).

``linear_probe_vit``
    No prompt; a linear classifier on the class token (mean of the patch tokens for models without one).
    ``train_backbone=True``: full fine-tuning (the ViT is trained too).
``vpt_shallow`` / ``vpt_deep``
    ``num_prompts=30`` prompts (the ML-VPT budget 2 x 5 groups x 3), no mask, linear classifier on the class
    token (the paper's baselines); ``prompt_dropout=0.0``.
``gvpt``
    Group prompts (``experts_per_group=3`` tokens per group) with the mask, per-class readout of the group's
    mean output, two classifiers (CO, DC); no MoE. ``branches="both" | "co" | "dc"`` gives GVPT / VPT-CO /
    VPT-DC of Fig. 4.
``mlvpt``
    Group prompts + :class:`~labelwise.models.heads.group_moe.GroupMoEHead` (``hidden_dim=5``,
    ``activation="gelu"``, ``gate="softmax" | "self_gated"``, ``gate_bias=True``,
    ``combine="mean_prob" | "mean_logit"``).

``gvpt`` and ``mlvpt`` need ``groups``: a :class:`~labelwise.analysis.grouping.LabelGroups`, a labelwise
groups JSON path, a mapping ``{"co": [[...], ...], "dc": [[...], ...]}``, or ``[co_file, cluster_file]``
(the published ML-VPT pair). ``n_groups`` follows the groups; ``isolation="group"`` by default.
Compute groups from training labels with :func:`~labelwise.analysis.grouping.group_labels` or
``labelwise analyze groups DATASET --out groups.json``. The class-to-group assignment is a
buffer of the head, so checkpoints carry it.

Examples
--------
>>> import torch
>>> from labelwise.models import create_model
>>> from labelwise.analysis.grouping import LabelGroups
>>> groups = LabelGroups(co=[[0, 1], [2, 3]], dc=[[0, 2], [1, 3]], num_classes=4)
>>> model = create_model("mlvpt", num_classes=4, backbone="test_vit", groups=groups, experts_per_group=2,
...                      backbone_kwargs={"img_size": 32})
>>> out = model(torch.randn(2, 3, 32, 32))
>>> out["logits"].shape, out["prompt_features"].shape
(torch.Size([2, 4]), torch.Size([2, 8, 64]))
>>> all(not p.requires_grad for p in model.backbone.model.parameters())
True
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from ..data.label_groups import LabelGroups
from .backbone import Backbone
from .complexity import Complexity, model_complexity
from .heads.group_moe import GroupMoEHead
from .registry import register_model

__all__ = [
    "PromptedViT",
    "PromptTuningModel",
    "ClassTokenClassifier",
    "LinearProbeViT",
    "VPTClassifier",
    "GroupPromptClassifier",
    "resolve_groups",
    "prompt_attention_mask",
    "block_forward",
]

Isolation = Literal["group", "none", "off"]


def prompt_attention_mask(
    num_prefix: int, prompt_groups: Sequence[int] | torch.Tensor, num_patches: int, *, isolation: Isolation = "group",
    device: torch.device | None = None,
) -> torch.Tensor | None:
    """Boolean attention mask ``[L, L]`` (``True`` = may attend) for ``[prefix, prompts, patches]``.

    Rows are queries. Prefix and patch queries attend to everything; a prompt query attends to the prefix and
    patch keys and, depending on ``isolation``, to the prompts of its group (``"group"``), to itself only
    (``"none"``). ``"off"`` returns ``None`` (no mask).

    Examples
    --------
    >>> prompt_attention_mask(1, [0, 0, 1], 1).int().tolist()
    [[1, 1, 1, 1, 1], [1, 1, 1, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 1, 1], [1, 1, 1, 1, 1]]
    >>> prompt_attention_mask(1, [0, 0, 1], 1, isolation="none")[1:4, 1:4].int().tolist()
    [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    """
    if isolation == "off":
        return None
    groups = torch.as_tensor(prompt_groups, dtype=torch.long, device=device)
    p = groups.numel()
    total = num_prefix + p + num_patches
    mask = torch.ones(total, total, dtype=torch.bool, device=device)
    if p == 0:
        return mask
    block = slice(num_prefix, num_prefix + p)
    if isolation == "group":
        mask[block, block] = groups[:, None] == groups[None, :]
    elif isolation == "none":
        mask[block, block] = torch.eye(p, dtype=torch.bool, device=device)
    else:
        raise ValueError(f"isolation must be 'group', 'none' or 'off', got {isolation!r}")
    return mask


def block_forward(
    block: nn.Module,
    x: torch.Tensor,
    *,
    attn_mask: torch.Tensor | None = None,
    temperature: torch.Tensor | float | None = None,
    kv_prompts: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """A timm ViT ``Block`` forward with two extras of the prompt-tuning variants.

    ``temperature`` divides the attention logits (GateVPT's attention shaping); ``kv_prompts`` = ``(P_K, P_V)``,
    each ``[heads, M, head_dim]``, are appended to the keys and values of every head after their projection
    (E2VPT), so ``softmax(q [K; P_K]^T / sqrt(d)) [V; P_V]``. ``attn_mask`` (boolean ``[N, N]``, ``True`` = may
    attend) lets every query attend to the key-value prompts. Without extras this is ``block(x, attn_mask)``.

    Examples
    --------
    >>> import timm, torch
    >>> vit = timm.create_model("test_vit", img_size=32)
    >>> x = torch.randn(2, 5, 64)
    >>> torch.allclose(block_forward(vit.blocks[0], x, temperature=1.0), vit.blocks[0](x), atol=1e-5)
    True
    """
    if temperature is None and kv_prompts is None:
        return block(x, attn_mask=attn_mask) if attn_mask is not None else block(x)
    attn = block.attn
    h = block.norm1(x)
    b, n, c = h.shape
    gate = attn.gate(h).sigmoid() if getattr(attn, "gate", None) is not None else None
    qkv = attn.qkv(h).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    if kv_prompts is not None:
        pk, pv = kv_prompts
        k = torch.cat([k, pk.to(k.dtype).unsqueeze(0).expand(b, -1, -1, -1)], dim=2)
        v = torch.cat([v, pv.to(v.dtype).unsqueeze(0).expand(b, -1, -1, -1)], dim=2)
    logits = (q * attn.scale) @ k.transpose(-2, -1)
    if temperature is not None:
        logits = logits / temperature
    if attn_mask is not None:
        extra = k.shape[2] - n
        if extra:
            attn_mask = torch.cat([attn_mask, attn_mask.new_ones(n, extra)], dim=1)
        logits = logits.masked_fill(~attn_mask, float("-inf"))
    out = attn.attn_drop(logits.softmax(dim=-1)) @ v
    out = out.transpose(1, 2).reshape(b, n, getattr(attn, "attn_dim", c))
    out = attn.norm(out) if hasattr(attn, "norm") else out
    if gate is not None:
        out = out * gate
    out = attn.proj_drop(attn.proj(out))
    x = x + block.drop_path1(block.ls1(out))
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))


class PromptedViT(nn.Module):
    """A frozen timm ViT with learnable (deep or shallow) prompt tokens and an optional group mask.

    Parameters
    ----------
    backbone : str
        timm ViT name (``"vit_base_patch16_224"``, ``"vit_base_patch14_dinov2"``, ``"vit_tiny_patch16_224"``).
    pretrained, weights, weights_strict, backbone_kwargs
        As for :class:`~labelwise.models.Backbone` (local weights: a timm state dict or a labelwise model).
    num_prompts : int
        ``P`` prompt tokens (0: the plain frozen ViT).
    deep : bool
        A new set of prompts in every block (True) or in the first only.
    prompt_groups : sequence of int, optional
        Group id of each prompt (default: all in group 0); used by ``isolation="group"``.
    isolation : {"group", "none", "off"}
        Prompt-to-prompt attention (see the module documentation).
    prompt_dropout : float
        Dropout on the prompt embeddings while training.
    freeze : bool, default True
        Freeze the ViT (``requires_grad=False``, always in eval mode). ``False`` trains it (full fine-tuning,
        e.g. to pretrain a backbone with :class:`LinearProbeViT`).

    Examples
    --------
    >>> import torch
    >>> enc = PromptedViT("test_vit", num_prompts=3, backbone_kwargs={"img_size": 32})
    >>> tokens = enc(torch.randn(2, 3, 32, 32))
    >>> tokens["prefix"].shape, tokens["prompts"].shape, tokens["patches"].shape
    (torch.Size([2, 1, 64]), torch.Size([2, 3, 64]), torch.Size([2, 4, 64]))
    """

    def __init__(
        self,
        backbone: str = "vit_base_patch16_224",
        *,
        pretrained: bool = False,
        weights: str | os.PathLike[str] | None = None,
        weights_strict: bool = True,
        backbone_kwargs: Mapping[str, Any] | None = None,
        num_prompts: int = 0,
        deep: bool = True,
        prompt_groups: Sequence[int] | None = None,
        isolation: Isolation = "off",
        prompt_dropout: float = 0.0,
        freeze: bool = True,
    ) -> None:
        super().__init__()
        if isolation not in ("group", "none", "off"):
            raise ValueError(f"isolation must be 'group', 'none' or 'off', got {isolation!r}")
        if isinstance(num_prompts, bool) or not isinstance(num_prompts, int) or num_prompts < 0:
            raise ValueError(f"num_prompts must be a non-negative int, got {num_prompts!r}")
        if not 0.0 <= prompt_dropout < 1.0:
            raise ValueError(f"prompt_dropout must be in [0, 1), got {prompt_dropout!r}")
        body = Backbone(backbone, pretrained=pretrained, weights=weights, strict=weights_strict, **dict(backbone_kwargs or {}))
        vit = body.model
        missing = [a for a in ("patch_embed", "_pos_embed", "blocks", "norm") if not hasattr(vit, a)]
        if missing:
            raise ValueError(f"backbone {backbone!r} ({type(vit).__name__}) is not a timm VisionTransformer "
                             f"(no {', '.join(missing)}); prompt tuning needs one")
        if "attn_mask" not in inspect.signature(vit.blocks[0].forward).parameters:
            raise ValueError(f"backbone {backbone!r}: its blocks take no attn_mask; timm >= 1.0.20 is required "
                             f"for the prompt mask")
        self.name = backbone
        self.model = vit
        self.load_result = body.load_result
        self.pretrained_cfg = body.pretrained_cfg
        self._data_config = body.data_config
        self.freeze = bool(freeze)
        if self.freeze:
            for p in self.model.parameters():
                p.requires_grad_(False)
            self.model.eval()
        self.embed_dim = int(vit.embed_dim)
        self.num_prefix_tokens = int(vit.num_prefix_tokens)
        self.has_class_token = bool(getattr(vit, "has_class_token", getattr(vit, "cls_token", None) is not None))
        self.num_prompts, self.deep, self.isolation = num_prompts, bool(deep), isolation
        groups = torch.zeros(num_prompts, dtype=torch.long) if prompt_groups is None else torch.as_tensor(prompt_groups, dtype=torch.long)
        if groups.shape != (num_prompts,):
            raise ValueError(f"prompt_groups must give one group id per prompt ({num_prompts}), got shape {tuple(groups.shape)}")
        self.register_buffer("prompt_groups", groups, persistent=False)
        self.prompt_dropout = float(prompt_dropout)
        depth = len(vit.blocks) if deep else 1
        if num_prompts:
            bound = math.sqrt(6.0 / float(patch_fan_in(vit.patch_embed) + self.embed_dim))
            self.prompts = nn.Parameter(torch.empty(depth, num_prompts, self.embed_dim).uniform_(-bound, bound))
        else:
            self.register_parameter("prompts", None)
        self._mask_cache: dict[tuple[int, str], torch.Tensor | None] = {}

    @property
    def data_config(self) -> dict[str, Any]:
        """Preprocessing of the backbone (``input_size``, ``mean``, ``std``, ...)."""
        return dict(self._data_config)

    def train(self, mode: bool = True) -> PromptedViT:
        """Set training mode for the prompts; the frozen ViT always stays in eval mode."""
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    def attention_mask(self, num_patches: int, device: torch.device) -> torch.Tensor | None:
        """The ``[L, L]`` mask for ``num_patches`` patch tokens (cached per size and device)."""
        key = (num_patches, str(device))
        if key not in self._mask_cache:
            self._mask_cache[key] = prompt_attention_mask(
                self.num_prefix_tokens, self.prompt_groups.cpu(), num_patches, isolation=self.isolation
            ) if self.num_prompts else None
            if self._mask_cache[key] is not None:
                self._mask_cache[key] = self._mask_cache[key].to(device)
        return self._mask_cache[key]

    def _layer_prompts(self, i: int, batch: int) -> torch.Tensor:
        # functional dropout: a module call on a parameter slice upsets torch's module tracker (FLOP counting)
        prompts = nn.functional.dropout(self.prompts[i], self.prompt_dropout, self.training)
        return prompts.unsqueeze(0).expand(batch, -1, -1)

    def forward(self, x: torch.Tensor, prompts: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Token outputs after the final norm: ``"prefix"`` ``[B, n_prefix, D]``, ``"prompts"`` ``[B, P, D]``,
        ``"patches"`` ``[B, N, D]``.

        ``prompts`` (``[B, P, D]``, only for an encoder built with ``num_prompts=0``) are per-sample prompts
        chosen outside (L2P's prompt pool): they enter the first block (shallow, no mask) and flow through.
        """
        vit, n_pre, p = self.model, self.num_prefix_tokens, self.num_prompts
        tokens = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x))))
        b = tokens.shape[0]
        num_patches = tokens.shape[1] - n_pre
        if prompts is not None:
            if p:
                raise ValueError("per-sample prompts need a PromptedViT built with num_prompts=0")
            if prompts.ndim != 3 or prompts.shape[0] != b or prompts.shape[2] != self.embed_dim:
                raise ValueError(f"prompts must be [B={b}, P, D={self.embed_dim}], got {tuple(prompts.shape)}")
            p = prompts.shape[1]
            tokens = torch.cat([tokens[:, :n_pre], prompts.to(tokens.dtype), tokens[:, n_pre:]], dim=1)
            mask = None
        else:
            mask = self.attention_mask(num_patches, tokens.device)
        if self.num_prompts:
            tokens = torch.cat([tokens[:, :n_pre], self._layer_prompts(0, b).to(tokens.dtype), tokens[:, n_pre:]], dim=1)
        for i, block in enumerate(vit.blocks):
            if self.num_prompts and self.deep and i > 0:
                tokens = torch.cat(
                    [tokens[:, :n_pre], self._layer_prompts(i, b).to(tokens.dtype), tokens[:, n_pre + p:]], dim=1
                )
            tokens = block(tokens, attn_mask=mask) if mask is not None else block(tokens)
        tokens = vit.norm(tokens)
        return {"prefix": tokens[:, :n_pre], "prompts": tokens[:, n_pre:n_pre + p], "patches": tokens[:, n_pre + p:]}

    def pooled(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Image feature ``[B, D]``: the class token, or the mean patch token for models without one."""
        return tokens["prefix"][:, 0] if self.has_class_token else tokens["patches"].mean(dim=1)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, num_prompts={self.num_prompts}, deep={self.deep}, isolation={self.isolation!r}"


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def patch_fan_in(patch_embed: nn.Module) -> int:
    """Fan-in of a ViT's patch embedding: ``in_chans * patch_h * patch_w`` of its projection.

    ``3 * 16 * 16`` for 16-pixel RGB patches; the CNN's channels for a hybrid ViT (1x1 patches of a feature
    map). Used for VPT's Xavier-uniform prompt initialisation.

    Examples
    --------
    >>> from labelwise.models import Backbone
    >>> patch_fan_in(Backbone("test_vit", img_size=32).model.patch_embed)
    768
    """
    weight = getattr(getattr(patch_embed, "proj", None), "weight", None)
    if isinstance(weight, torch.Tensor) and weight.ndim >= 2:
        return int(weight[0].numel())
    ph, pw = _pair(getattr(patch_embed, "patch_size", (16, 16)))
    return 3 * ph * pw


class PromptTuningModel(nn.Module):
    """Base of the prompt-tuning models: a :class:`PromptedViT` ``backbone`` and a trainable head.

    The timm model is ``backbone.model``, so state-dict keys read ``backbone.model.blocks.0...`` as in every
    labelwise image model: a checkpoint of any of them (e.g. an ``ofml`` or ``linear_probe_vit`` run) loads as
    ``weights=`` of another (the ``backbone.`` and ``model.`` prefixes are stripped, prompts and heads ignored).

    ``param_groups()`` returns ``{"backbone": [], "head": [prompts and head parameters]}`` (only learnable
    parameters); :meth:`complexity` gives the Table 4 numbers.
    """

    backbone: PromptedViT

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Learnable parameters only: prompts + head under ``"head"``; the ViT under ``"backbone"`` only when it
        is trained (``train_backbone=True`` of :class:`LinearProbeViT`), otherwise it is not listed."""
        vit = [p for p in self.backbone.model.parameters() if p.requires_grad]
        vit_ids = {id(p) for p in vit}
        return {"backbone": vit, "head": [p for p in self.parameters() if p.requires_grad and id(p) not in vit_ids]}

    @property
    def data_config(self) -> dict[str, Any]:
        return self.backbone.data_config

    def complexity(self, batch_size: int = 1) -> Complexity:
        """Parameters (total / learnable) and FLOPs of one forward pass at the backbone's input size.

        Examples
        --------
        >>> from labelwise.models import create_model
        >>> m = create_model("vpt_deep", num_classes=3, backbone="test_vit", num_prompts=2,
        ...                  backbone_kwargs={"img_size": 32})
        >>> c = m.complexity()
        >>> c.trainable_params == 6 * 2 * 64 + 64 * 3 + 3, c.flops > 0
        (True, True)
        """
        size = tuple(self.data_config.get("input_size", (3, 224, 224)))
        param = next(self.parameters())
        was_training = self.training
        self.eval()
        try:
            return model_complexity(self, torch.zeros(batch_size, *size, dtype=param.dtype, device=param.device))
        finally:
            self.train(was_training)


class ClassTokenClassifier(PromptTuningModel):
    """A prompted ViT encoder + a linear classifier on its class token: the readout every compared method shares.

    The ML-VPT paper reads every compared prompt method (VPT, GateVPT, E2VPT) and the linear probe from the
    class token (the mean patch token for ViTs without one); the methods differ only in their encoder. Outputs
    ``logits`` and ``features`` (the pooled token), and ``prompt_features`` when the encoder has prompts.

    Parameters
    ----------
    encoder : PromptedViT
        The (frozen) ViT with its prompts; becomes ``self.backbone``.
    num_classes : int
        Width of the linear classifier ``fc``.

    Examples
    --------
    >>> import torch
    >>> m = ClassTokenClassifier(PromptedViT("test_vit", num_prompts=2, backbone_kwargs={"img_size": 32}), 5)
    >>> out = m(torch.randn(2, 3, 32, 32))
    >>> out["logits"].shape, out["prompt_features"].shape
    (torch.Size([2, 5]), torch.Size([2, 2, 64]))
    """

    def __init__(self, encoder: PromptedViT, num_classes: int) -> None:
        super().__init__()
        self.backbone = encoder
        self.fc = nn.Linear(encoder.embed_dim, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.backbone(x)
        features = self.backbone.pooled(tokens)
        out = {"logits": self.fc(features), "features": features}
        if self.backbone.num_prompts:
            out["prompt_features"] = tokens["prompts"]
        return out


class LinearProbeViT(ClassTokenClassifier):
    """Frozen ViT + linear classifier on the class token (``linear_probe_vit``).

    ``train_backbone=True`` trains the whole ViT with the same class-token classifier (full fine-tuning, or
    pretraining a backbone for later prompt tuning: its checkpoint loads as ``weights=`` of every prompt model).

    Examples
    --------
    >>> import torch
    >>> m = LinearProbeViT(5, backbone="test_vit", backbone_kwargs={"img_size": 32})
    >>> m(torch.randn(2, 3, 32, 32))["logits"].shape, sum(p.numel() for p in m.param_groups()["head"])
    (torch.Size([2, 5]), 325)
    """

    def __init__(self, num_classes: int, *, train_backbone: bool = False, backbone: str = "vit_base_patch16_224",
                 pretrained: bool = False, weights: str | os.PathLike[str] | None = None, weights_strict: bool = True,
                 backbone_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__(PromptedViT(backbone, pretrained=pretrained, weights=weights, weights_strict=weights_strict,
                                     backbone_kwargs=backbone_kwargs, num_prompts=0, freeze=not train_backbone),
                         num_classes)


class VPTClassifier(ClassTokenClassifier):
    """VPT (Jia et al.): prompts in the frozen ViT, linear classifier on the class token (``vpt_shallow``/``vpt_deep``).

    Examples
    --------
    >>> import torch
    >>> m = VPTClassifier(5, num_prompts=4, deep=True, backbone="test_vit", backbone_kwargs={"img_size": 32})
    >>> m(torch.randn(2, 3, 32, 32))["logits"].shape, tuple(m.backbone.prompts.shape)
    (torch.Size([2, 5]), (6, 4, 64))
    """

    def __init__(self, num_classes: int, *, num_prompts: int = 30, deep: bool = True, prompt_dropout: float = 0.0,
                 backbone: str = "vit_base_patch16_224", pretrained: bool = False,
                 weights: str | os.PathLike[str] | None = None, weights_strict: bool = True,
                 backbone_kwargs: Mapping[str, Any] | None = None) -> None:
        if num_prompts < 1:
            raise ValueError(f"VPT needs num_prompts >= 1, got {num_prompts}")
        super().__init__(PromptedViT(backbone, pretrained=pretrained, weights=weights, weights_strict=weights_strict,
                                     backbone_kwargs=backbone_kwargs, num_prompts=num_prompts, deep=deep,
                                     isolation="off", prompt_dropout=prompt_dropout),
                         num_classes)


def resolve_groups(groups: Any, num_classes: int):
    """Turn the ``groups`` option into a :class:`~labelwise.analysis.grouping.LabelGroups` for ``num_classes``.

    Accepts a ``LabelGroups``, a labelwise JSON path, a ``{"co": ..., "dc": ...}`` mapping of index lists,
    or a ``[co_file, cluster_file]`` pair in the published ML-VPT layout.

    Examples
    --------
    >>> resolve_groups({"co": [[0], [1, 2]], "dc": [[0, 1], [2]]}, 3).co_assignment.tolist()
    [0, 1, 1]
    """
    if groups is None:
        raise ValueError(
            "groups are required: compute them from the training labels with "
            "labelwise.analysis.grouping.group_labels(targets, n_groups=5) or "
            "`labelwise analyze groups DATASET --out groups.json`, then pass groups=<path>"
        )
    if isinstance(groups, LabelGroups):
        out = groups
    elif isinstance(groups, str | os.PathLike):
        out = LabelGroups.load(groups, num_classes=num_classes)
    elif isinstance(groups, Mapping):
        out = LabelGroups.from_dict({"num_classes": num_classes, **groups}, where="model option 'groups'")
    elif isinstance(groups, Sequence) and len(groups) == 2 and all(isinstance(g, str | os.PathLike) for g in groups):
        out = LabelGroups.load(groups[0], dc=groups[1], num_classes=num_classes)
    else:
        raise ValueError(f"groups: expected LabelGroups, a JSON path, a {{'co', 'dc'}} mapping or "
                         f"[co_file, cluster_file], got {type(groups).__name__}")
    if out.num_classes != num_classes:
        raise ValueError(f"groups cover {out.num_classes} classes but the model has num_classes={num_classes}")
    return out


class GroupPromptClassifier(PromptTuningModel):
    """Group prompts in a frozen ViT with a group-aware head: ML-VPT (``moe=True``) or GVPT (``moe=False``).

    Parameters
    ----------
    num_classes : int
    groups : LabelGroups, path, mapping or (co_file, cluster_file)
        The label grouping (see :func:`resolve_groups`).
    experts_per_group : int, default 3
        ``N_m`` prompt tokens per group.
    branches : {"both", "co", "dc"}
        Which groupings get prompts and a classifier (Fig. 4: VPT-CO, VPT-DC, both).
    isolation : {"group", "none", "off"}
        Prompt mask (paper: "group"; published code: "none").
    moe : bool
        Group-aware MoE head (ML-VPT) or group mean readout (GVPT).
    deep, prompt_dropout
        As for :class:`PromptedViT`.
    **head_options
        ``hidden_dim``, ``activation``, ``gate``, ``gate_bias``, ``combine`` of
        :class:`~labelwise.models.heads.group_moe.GroupMoEHead`.
    backbone, pretrained, weights, weights_strict, backbone_kwargs
        The frozen ViT.

    Examples
    --------
    >>> import torch
    >>> m = GroupPromptClassifier(4, groups={"co": [[0, 1], [2, 3]], "dc": [[0, 2], [1, 3]]}, branches="co",
    ...                           backbone="test_vit", backbone_kwargs={"img_size": 32})
    >>> m.backbone.prompt_groups.tolist()
    [0, 0, 0, 1, 1, 1]
    """

    def __init__(
        self,
        num_classes: int,
        *,
        groups: Any = None,
        experts_per_group: int = 3,
        branches: Literal["both", "co", "dc"] = "both",
        isolation: Isolation = "group",
        moe: bool = True,
        deep: bool = True,
        prompt_dropout: float = 0.0,
        hidden_dim: int = 5,
        activation: Literal["gelu", "relu"] = "gelu",
        gate: Literal["softmax", "self_gated"] = "softmax",
        gate_bias: bool = True,
        combine: Literal["mean_prob", "mean_logit"] = "mean_prob",
        backbone: str = "vit_base_patch16_224",
        pretrained: bool = False,
        weights: str | os.PathLike[str] | None = None,
        weights_strict: bool = True,
        backbone_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if branches not in ("both", "co", "dc"):
            raise ValueError(f"branches must be 'both', 'co' or 'dc', got {branches!r}")
        if isinstance(experts_per_group, bool) or not isinstance(experts_per_group, int) or experts_per_group < 1:
            raise ValueError(f"experts_per_group must be a positive int, got {experts_per_group!r}")
        self.groups = resolve_groups(groups, num_classes)
        names = ("co", "dc") if branches == "both" else (branches,)
        assignments = [getattr(self.groups, f"{n}_assignment").tolist() for n in names]
        n_groups = self.groups.n_groups
        prompt_groups = torch.arange(len(names) * n_groups).repeat_interleave(experts_per_group)
        self.branches = names
        self.backbone = PromptedViT(
            backbone, pretrained=pretrained, weights=weights, weights_strict=weights_strict,
            backbone_kwargs=backbone_kwargs, num_prompts=int(prompt_groups.numel()), deep=deep,
            prompt_groups=prompt_groups.tolist(), isolation=isolation, prompt_dropout=prompt_dropout,
        )
        self.head = GroupMoEHead(
            self.backbone.embed_dim, num_classes, assignments=assignments, n_groups=n_groups,
            experts_per_group=experts_per_group, moe=moe, hidden_dim=hidden_dim, activation=activation,
            gate=gate, gate_bias=gate_bias, combine=combine,
        )

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        tokens = self.backbone(x)
        out = self.head(tokens["prompts"])
        out["features"] = self.backbone.pooled(tokens)
        out["prompt_features"] = tokens["prompts"]
        return out


# -- registration -------------------------------------------------------------------------------------------
def _signature_of(cls: type, fixed: tuple[str, ...] = ()):
    """Give a ``(*, num_classes, **options)`` factory the explicit signature of ``cls`` (minus ``fixed``), so
    configuration checks name unknown options."""

    def deco(factory):
        params = [p for name, p in inspect.signature(cls).parameters.items() if name not in fixed]
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
        factory.__signature__ = inspect.Signature(params)
        return factory

    return deco


@register_model("linear_probe_vit")
@_signature_of(LinearProbeViT)
def create_linear_probe_vit(*, num_classes: int, **options: Any) -> LinearProbeViT:
    """Frozen ViT + linear probe on the class token (see :mod:`labelwise.models.prompted_vit`)."""
    return LinearProbeViT(num_classes, **options)


@register_model("vpt_shallow")
@_signature_of(VPTClassifier, ("deep",))
def create_vpt_shallow(*, num_classes: int, **options: Any) -> VPTClassifier:
    """VPT-shallow: prompts in the first block only (see :mod:`labelwise.models.prompted_vit`)."""
    if "deep" in options:
        raise TypeError("model 'vpt_shallow': 'deep' is fixed to False (use 'vpt_deep')")
    return VPTClassifier(num_classes, deep=False, **options)


@register_model("vpt_deep")
@_signature_of(VPTClassifier, ("deep",))
def create_vpt_deep(*, num_classes: int, **options: Any) -> VPTClassifier:
    """VPT-deep: prompts in every block (see :mod:`labelwise.models.prompted_vit`)."""
    if "deep" in options:
        raise TypeError("model 'vpt_deep': 'deep' is fixed to True (use 'vpt_shallow')")
    return VPTClassifier(num_classes, deep=True, **options)


@register_model("gvpt")
@_signature_of(GroupPromptClassifier, ("moe",))
def create_gvpt(*, num_classes: int, **options: Any) -> GroupPromptClassifier:
    """GVPT: group prompts with the mask, per-class readout, no MoE (see :mod:`labelwise.models.prompted_vit`)."""
    if "moe" in options:
        raise TypeError("model 'gvpt': 'moe' is fixed to False (use 'mlvpt')")
    return GroupPromptClassifier(num_classes, moe=False, **options)


@register_model("mlvpt")
@_signature_of(GroupPromptClassifier, ("moe",))
def create_mlvpt(*, num_classes: int, **options: Any) -> GroupPromptClassifier:
    """ML-VPT: group prompts + group-aware MoE (see :mod:`labelwise.models.prompted_vit`)."""
    if "moe" in options:
        raise TypeError("model 'mlvpt': 'moe' is fixed to True (use 'gvpt')")
    return GroupPromptClassifier(num_classes, moe=True, **options)
