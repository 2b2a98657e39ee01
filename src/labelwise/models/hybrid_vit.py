"""Hybrid ViT: a CNN feature map as the patch embedding of a timm VisionTransformer (``hybrid_stem``).

Dosovitskiy et al. (2021, section 3.1 "Hybrid Architecture"): instead of cutting the image into pixel patches,
the input sequence is formed from the feature map of a CNN; with 1x1 "patches" every feature-map cell becomes
one token, projected to the transformer width. labelwise builds it from backbone options, so it is
YAML-expressible and can be shipped by name::

    backbone: vit_tiny_patch16_224
    backbone_kwargs:
      img_size: 128
      embed_dim: 128
      depth: 6
      num_heads: 4
      hybrid_stem: {backbone: resnet10t, weights: md-resnet10t, backbone_kwargs: {output_stride: 16}}

``hybrid_stem`` (a mapping) takes

``backbone``
    timm name of the CNN (required); its final feature map (a :class:`~labelwise.models.Backbone`) feeds
    timm's :class:`~timm.layers.HybridEmbed`.
``backbone_kwargs``
    Options of the CNN (``output_stride``, ``channels``, ...; ``in_chans`` follows the ViT's).
``weights``
    The CNN's initial weights: a shipped name (its card's architecture becomes the default of
    ``backbone_kwargs``) or a local file. Weights loaded into the whole hybrid afterwards replace them.
``frozen``
    ``True``: the CNN's parameters get ``requires_grad=False``, it runs without autograd and stays in
    ``eval()`` mode (fixed normalisation statistics) even in training mode; only the projection and the
    transformer learn (default ``False``).

The ViT's ``patch_size`` applies to the CNN feature map and defaults to 1 (one token per cell); it must
divide the map. The token grid is the CNN's map: a stride-16 CNN gives an 8x8 grid at 128 px.
:func:`hybrid_architecture` reduces the options to the shape-defining ones written on a model card.

Examples
--------
>>> import torch
>>> from labelwise.models import Backbone
>>> vit = Backbone("vit_tiny_patch16_224", img_size=64, embed_dim=32, depth=1, num_heads=2,
...                hybrid_stem={"backbone": "test_resnet"})
>>> vit(torch.randn(1, 3, 64, 64)).shape  # test_resnet has stride 32: a 2x2 token grid
torch.Size([1, 32, 2, 2])
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["HybridStem", "hybrid_architecture", "hybrid_embed_layer", "parse_hybrid_stem"]

_KEYS = ("backbone", "backbone_kwargs", "weights", "frozen")


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def parse_hybrid_stem(options: Any) -> dict[str, Any]:
    """Check the ``hybrid_stem`` options and return them normalised (lists as tuples, defaults filled in).

    Raises
    ------
    ValueError
        Not a mapping, an unknown key, no ``backbone``, ``backbone_kwargs`` not a mapping or itself hybrid,
        ``frozen`` not a boolean, or options ``Backbone`` fixes.

    Examples
    --------
    >>> parse_hybrid_stem({"backbone": "resnet10t", "frozen": True})["frozen"]
    True
    >>> parse_hybrid_stem({"backbone": "resnet10t", "freeze": True})
    Traceback (most recent call last):
    ...
    ValueError: hybrid_stem: unknown key(s) 'freeze' (allowed: backbone, backbone_kwargs, weights, frozen)
    """
    if not isinstance(options, Mapping):
        raise ValueError(f"hybrid_stem must be a mapping with 'backbone' (a timm CNN name), got "
                         f"{type(options).__name__} {options!r}")
    unknown = [k for k in options if k not in _KEYS]
    if unknown:
        raise ValueError(f"hybrid_stem: unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(_KEYS)})")
    name = options.get("backbone")
    if not isinstance(name, str) or not name:
        raise ValueError(f"hybrid_stem.backbone must be a timm model name (e.g. resnet10t), got {name!r}")
    kwargs = options.get("backbone_kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"hybrid_stem.backbone_kwargs must be a mapping, got {type(kwargs).__name__} {kwargs!r}")
    if "hybrid_stem" in kwargs:
        raise ValueError("hybrid_stem.backbone_kwargs: a hybrid stem cannot itself have a hybrid_stem")
    frozen = options.get("frozen", False)
    if not isinstance(frozen, bool):
        raise ValueError(f"hybrid_stem.frozen must be true or false, got {frozen!r}")
    weights = options.get("weights")
    if weights is not None and not isinstance(weights, str):
        raise ValueError(f"hybrid_stem.weights must be a shipped weights name or a file path, got {weights!r}")
    return {"backbone": name, "backbone_kwargs": _tuples(dict(kwargs)), "weights": weights, "frozen": frozen}


def hybrid_architecture(backbone_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The shape-defining form of backbone options with a ``hybrid_stem``: what a model card records.

    The stem's ``weights`` (only its initialisation: the hybrid's own file holds the stem) and ``frozen`` (a
    training choice) are dropped; a shipped stem name's architecture (its card's ``backbone_kwargs``) is written
    out, so the card loads without the stem's weights. Options without ``hybrid_stem`` are returned unchanged.

    Examples
    --------
    >>> hybrid_architecture({"depth": 2, "hybrid_stem": {"backbone": "resnet10t", "frozen": True,
    ...                      "backbone_kwargs": {"output_stride": 16}}})
    {'depth': 2, 'hybrid_stem': {'backbone': 'resnet10t', 'backbone_kwargs': {'output_stride': 16}}}
    """
    out = dict(backbone_kwargs)
    if out.get("hybrid_stem") is None:
        return out
    stem = parse_hybrid_stem(out["hybrid_stem"])
    kwargs = dict(stem["backbone_kwargs"])
    weights = stem["weights"]
    if weights is not None:
        from .shipped import is_weights_name, list_shipped, resolve_shipped

        if is_weights_name(weights) and weights in list_shipped():
            kwargs = {**resolve_shipped(weights, verify=False).backbone_kwargs, **kwargs}
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    out["hybrid_stem"] = {"backbone": stem["backbone"], "backbone_kwargs": kwargs}
    return out


class HybridStem(nn.Module):
    """The CNN of a hybrid ViT: a :class:`~labelwise.models.Backbone` returning its final feature map.

    Parameters
    ----------
    body : nn.Module
        The CNN (a :class:`~labelwise.models.Backbone`), mapping images to ``[B, C, H, W]``, with
        ``num_features``.
    frozen : bool
        Freeze the CNN: no gradients, no autograd graph, always in ``eval()`` mode.
    keep_weights : bool
        Keep a copy of the CNN's current (loaded) weights for :meth:`restore_weights`.

    Examples
    --------
    >>> import torch
    >>> from labelwise.models import Backbone
    >>> stem = HybridStem(Backbone("test_resnet"), frozen=True)
    >>> stem.train().body.training, stem(torch.randn(1, 3, 64, 64)).shape
    (False, torch.Size([1, 96, 2, 2]))
    """

    def __init__(self, body: nn.Module, *, frozen: bool = False, keep_weights: bool = False) -> None:
        super().__init__()
        self.body = body
        self.num_features = int(body.num_features)
        # timm's ViT initialisation visits every submodule (a timm CNN's init_weights included): keep the loaded
        # weights to put back once the ViT is built (restore_weights)
        self._loaded = ({k: v.detach().clone() for k, v in self.body.state_dict().items()}
                        if keep_weights else None)
        self.frozen = bool(frozen)
        if self.frozen:
            for p in self.body.parameters():
                p.requires_grad_(False)
            self.body.eval()

    def restore_weights(self) -> None:
        """Put back the ``weights`` loaded at construction (after the ViT's initialisation overwrote them)."""
        if self._loaded is not None:
            self.body.load_state_dict(self._loaded)
            self._loaded = None

    def train(self, mode: bool = True) -> HybridStem:
        """Set the training mode; a frozen CNN stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.body.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The CNN feature map ``[B, C, H, W]``."""
        if self.frozen:
            with torch.no_grad():
                return self.body(x)
        return self.body(x)

    def extra_repr(self) -> str:
        return f"frozen={self.frozen}"


def hybrid_embed_layer(options: Any, vit_kwargs: dict[str, Any], *, make_backbone: Callable[..., nn.Module],
                       vit_name: str = "vit") -> tuple[Any, dict[str, Any]]:
    """Build the stem of ``options`` (``hybrid_stem``) and the ViT options that use it.

    Parameters
    ----------
    options : Mapping
        The ``hybrid_stem`` options (module docstring).
    vit_kwargs : dict
        The ViT's other ``timm.create_model`` options (``img_size``, ``patch_size``, ``in_chans``, ...).
    make_backbone : callable
        Builds the CNN: ``make_backbone(name, weights=..., **backbone_kwargs)`` (the caller passes
        :class:`~labelwise.models.Backbone`; injected so that this module does not import it back).
    vit_name : str
        The ViT's timm name (error messages).

    Returns
    -------
    (embed_layer, vit_kwargs)
        A ``functools.partial`` of timm's ``HybridEmbed`` around the stem, to pass as ``embed_layer``, and the
        ViT options with ``patch_size`` defaulted to 1.

    Raises
    ------
    ValueError
        Bad ``hybrid_stem`` options (:func:`parse_hybrid_stem`), ``embed_layer`` also given, a stem without a
        4-D feature map, or a ``patch_size`` that does not divide the stem's feature map.

    Examples
    --------
    >>> from labelwise.models import Backbone
    >>> layer, kw = hybrid_embed_layer({"backbone": "test_resnet"}, {"img_size": 64}, make_backbone=Backbone)
    >>> kw["patch_size"], layer.func.__name__
    (1, 'HybridEmbed')
    """
    from timm.layers import HybridEmbed

    stem_opts = parse_hybrid_stem(options)
    if "embed_layer" in vit_kwargs:
        raise ValueError(f"{vit_name}: pass either hybrid_stem or embed_layer, not both")
    kwargs = dict(vit_kwargs)
    stem_kwargs = dict(stem_opts["backbone_kwargs"])
    if "in_chans" in kwargs:
        if stem_kwargs.setdefault("in_chans", kwargs["in_chans"]) != kwargs["in_chans"]:
            raise ValueError(f"{vit_name}: in_chans {kwargs['in_chans']} differs from hybrid_stem.backbone_kwargs."
                             f"in_chans {stem_kwargs['in_chans']}")
    body = make_backbone(stem_opts["backbone"], weights=stem_opts["weights"], **stem_kwargs)
    stem = HybridStem(body, frozen=stem_opts["frozen"], keep_weights=stem_opts["weights"] is not None)
    kwargs.setdefault("patch_size", 1)
    img = kwargs.get("img_size", 224)
    img_hw = (int(img), int(img)) if isinstance(img, int) else (int(img[0]), int(img[1]))
    patch = kwargs["patch_size"]
    patch_hw = (int(patch), int(patch)) if isinstance(patch, int) else (int(patch[0]), int(patch[1]))
    was_training = stem.training
    stem.eval()
    with torch.no_grad():
        fmap = stem(torch.zeros(1, int(stem_kwargs.get("in_chans", 3)), *img_hw))
    stem.train(was_training)
    if fmap.ndim != 4 or fmap.shape[-1] == 0 or fmap.shape[-2] == 0:
        raise ValueError(f"hybrid_stem {stem_opts['backbone']!r} gives no usable feature map at img_size {img_hw} "
                         f"(shape {tuple(fmap.shape)})")
    fh, fw = int(fmap.shape[-2]), int(fmap.shape[-1])
    if fh % patch_hw[0] or fw % patch_hw[1]:
        raise ValueError(
            f"{vit_name}: patch_size {patch} applies to the {fh}x{fw} feature map of hybrid_stem "
            f"{stem_opts['backbone']!r} at img_size {img_hw} and must divide it; use patch_size 1 (one token per "
            f"feature-map cell, the hybrid ViT of Dosovitskiy et al.)")
    return functools.partial(HybridEmbed, backbone=stem), kwargs
