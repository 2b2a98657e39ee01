"""A timm model as a feature-map extractor: ``Backbone(name)(images) -> [B, C, H, W]``.

CNNs already produce ``[B, C, H, W]``; channels-last models (Swin, MambaOut: timm's ``output_fmt="NHWC"``)
are permuted; token models (ViT, DeiT, EVA, ...) drop their prefix tokens (class, distillation and register
tokens: ``num_prefix_tokens``) and fold the patch tokens back to the patch grid of the actual input size.

Weights come from one of three places: random initialisation (default), timm's hub (``pretrained=True``, for
users with internet access) or a local file (``weights=PATH``: safetensors, or a PyTorch state dict read with
the restricted unpickler; see :mod:`labelwise.models.weights`).

Examples
--------
>>> import torch
>>> from labelwise.models import Backbone
>>> body = Backbone("test_resnet")
>>> body(torch.randn(2, 3, 64, 64)).shape
torch.Size([2, 96, 2, 2])
>>> body.num_features, body.data_config["mean"]
(96, (0.5, 0.5, 0.5))
"""

from __future__ import annotations

import difflib
import os
from typing import Any

import timm
import torch
from torch import nn

from .heads.pooling import global_pool
from .weights import LoadResult, load_weights

__all__ = ["Backbone", "PretrainedUnavailableError"]


class PretrainedUnavailableError(RuntimeError):
    """``pretrained=True`` could not fetch the weights (no internet access, hub unreachable, no such tag)."""


def _classifier_prefixes(cfg: dict[str, Any]) -> tuple[str, ...]:
    names = cfg.get("classifier") or ()
    if isinstance(names, str):
        names = (names,)
    return tuple(f"{n}." for n in names)


class Backbone(nn.Module):
    """Any timm model, returning its final feature map ``[B, C, H, W]``.

    Parameters
    ----------
    name : str
        A timm model name (``timm.list_models()``), optionally with a pretrained tag (``"resnet50.a1_in1k"``).
    pretrained : bool
        Download ImageNet weights through timm's hub. Needs internet access; otherwise pass ``weights``.
    weights : str or os.PathLike, optional
        The name of shipped weights (``"md-resnet18"``, see :mod:`labelwise.models.shipped`: checksum-verified,
        its architecture options become defaults of ``timm_kwargs``), looked up first; else a local weights file (``.safetensors``, or ``.pth``/``.pt``/``.bin`` state dict; never unpickled):
        a timm/torch state dict of this architecture (possibly nested under ``state_dict``/``model``/
        ``state_dict_ema`` and prefixed with ``module.``), or a whole labelwise model whose keys start with
        ``backbone.``. The pretrained classifier is dropped.
    strict : bool
        With ``weights``: raise on backbone keys missing from the file (and on shape mismatches); with
        ``strict=False`` they are reported by a warning and in :attr:`load_result`.
    **timm_kwargs
        Passed to ``timm.create_model`` (``img_size``, ``dynamic_img_size``, ``drop_path_rate``, ``in_chans``,
        ...). ``num_classes`` and ``global_pool`` are fixed to ``0`` and ``""``. ``hybrid_stem`` (a mapping, for a
        timm VisionTransformer) makes a hybrid ViT whose tokens are a CNN's feature map cells
        (:mod:`labelwise.models.hybrid_vit`).

    Attributes
    ----------
    model : nn.Module
        The timm model (classifier and pooling removed).
    num_features : int
        Channels ``C`` of the feature map.
    pretrained_cfg : dict
        timm's pretrained configuration (``mean``, ``std``, ``input_size``, ``classifier``, ...).
    load_result : LoadResult or None
        What loading ``weights`` did.

    Examples
    --------
    >>> import torch
    >>> vit = Backbone("test_vit", dynamic_img_size=True)
    >>> vit(torch.randn(1, 3, 64, 96)).shape  # 16-pixel patches, class token dropped
    torch.Size([1, 64, 4, 6])
    >>> vit.pooled_features(torch.randn(1, 3, 64, 64)).shape
    torch.Size([1, 64])
    """

    def __init__(
        self,
        name: str,
        *,
        pretrained: bool = False,
        weights: str | os.PathLike[str] | None = None,
        strict: bool = True,
        **timm_kwargs: Any,
    ) -> None:
        super().__init__()
        if not timm.is_model(name):
            close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(f"unknown timm backbone {name!r}{hint} (see timm.list_models())")
        if pretrained and weights is not None:
            raise ValueError(
                "pass either pretrained=True (hub download) or weights=PATH (local file), not both"
            )
        for fixed in ("num_classes", "global_pool", "pretrained"):
            if fixed in timm_kwargs:
                raise ValueError(f"Backbone fixes timm's {fixed!r}; remove it from the backbone options")
        self.shipped = None
        if weights is not None:
            weights, timm_kwargs = self._resolve_shipped(name, weights, timm_kwargs)
        self.name = name
        hybrid = timm_kwargs.get("hybrid_stem") is not None
        if hybrid:
            from .hybrid_vit import hybrid_embed_layer

            embed_layer, timm_kwargs = hybrid_embed_layer(
                timm_kwargs.pop("hybrid_stem"), dict(timm_kwargs), make_backbone=Backbone, vit_name=name)
            timm_kwargs["embed_layer"] = embed_layer
        else:
            timm_kwargs.pop("hybrid_stem", None)
        self.model = self._create(name, pretrained, timm_kwargs)
        if hybrid:  # timm's ViT initialisation re-initialised the stem: put its loaded weights back
            self.model.patch_embed.backbone.restore_weights()
        self.num_features = int(self.model.num_features)
        self.pretrained_cfg: dict[str, Any] = dict(getattr(self.model, "pretrained_cfg", {}) or {})
        self.output_fmt = str(getattr(self.model, "output_fmt", "NCHW"))
        self.num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 0) or 0)
        self.load_result: LoadResult | None = None
        if weights is not None:
            self.load_result = self.load_weights(weights, strict=strict)

    def _resolve_shipped(self, name: str, weights: Any, timm_kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """A shipped weights name (:mod:`labelwise.models.shipped`) -> its verified file; fill in its architecture."""
        from .shipped import is_weights_name, list_shipped, resolve_shipped

        if not is_weights_name(weights) or (weights not in list_shipped() and os.path.isfile(weights)):
            return weights, timm_kwargs
        shipped = resolve_shipped(weights)
        if shipped.backbone != name.split(".")[0]:
            raise ValueError(f"weights {weights!r} are for backbone {shipped.backbone!r}, not {name!r}; set "
                             f"model.backbone: {shipped.backbone}")
        self.shipped = shipped
        return str(shipped.path), {**shipped.backbone_kwargs, **timm_kwargs}

    @staticmethod
    def _create(name: str, pretrained: bool, timm_kwargs: dict[str, Any]) -> nn.Module:
        def build(pretrained: bool) -> nn.Module:
            if "embed_layer" in timm_kwargs:  # a hybrid ViT: no fallback, the model must take the layer
                try:
                    return timm.create_model(
                        name, pretrained=pretrained, num_classes=0, global_pool="", **timm_kwargs)
                except TypeError as err:
                    if "unexpected keyword argument" not in str(err):
                        raise
                    raise ValueError(f"hybrid_stem needs a timm VisionTransformer backbone (one that takes an "
                                     f"embed_layer); {name!r} does not ({err})") from None
            try:
                return timm.create_model(
                    name, pretrained=pretrained, num_classes=0, global_pool="", **timm_kwargs
                )
            except (AssertionError, ValueError, TypeError):
                # a few models need their pooling (e.g. distilled DeiT reads two tokens); the feature map does not
                # use it, so build with the model's default pooling instead
                return timm.create_model(name, pretrained=pretrained, num_classes=0, **timm_kwargs)

        if not pretrained:
            return build(False)
        try:
            return build(True)
        except (TypeError, ValueError, KeyError):
            raise  # bad options, not a download problem
        except Exception as err:  # network, hub and cache errors come in many types
            raise PretrainedUnavailableError(
                f"could not download pretrained weights for {name!r} through timm's hub "
                f"({type(err).__name__}: {err}). Without internet access, download the weights elsewhere and "
                f"pass weights=PATH (a .safetensors or .pth state dict) with pretrained=False."
            ) from err

    def load_weights(
        self, path: str | os.PathLike[str], *, strict: bool = True, **options: Any
    ) -> LoadResult:
        """Load a local weights file into the backbone (see :func:`labelwise.models.weights.load_weights`).

        The pretrained classifier (timm's ``pretrained_cfg["classifier"]``) and, for a whole labelwise model,
        the head are dropped; a first convolution with another number of input channels is adapted.

        Examples
        --------
        >>> import tempfile, os, torch
        >>> from safetensors.torch import save_file
        >>> src, dst = Backbone("test_resnet"), Backbone("test_resnet")
        >>> path = os.path.join(tempfile.mkdtemp(), "resnet.safetensors")
        >>> save_file(src.model.state_dict(), path)
        >>> result = dst.load_weights(path)
        >>> torch.equal(src.model.conv1[0].weight, dst.model.conv1[0].weight)
        True
        """
        options.setdefault("drop_prefixes", _classifier_prefixes(self.pretrained_cfg))
        options.setdefault("first_conv", self.pretrained_cfg.get("first_conv"))
        return load_weights(self.model, path, strict=strict, **options)

    @property
    def default_cfg(self) -> dict[str, Any]:
        """Alias of :attr:`pretrained_cfg` (timm's older name)."""
        return self.pretrained_cfg

    @property
    def data_config(self) -> dict[str, Any]:
        """Preprocessing the weights expect: ``input_size``, ``mean``, ``std``, ``interpolation``, ``crop_pct``.

        ``input_size`` follows the model actually built (e.g. a ViT created with ``img_size=448``).

        Examples
        --------
        >>> Backbone("test_vit", img_size=64).data_config["input_size"]
        (3, 64, 64)
        """
        cfg = dict(timm.data.resolve_model_data_config(self.model))
        patch_embed = getattr(self.model, "patch_embed", None)
        img_size = getattr(patch_embed, "img_size", None)
        if img_size is not None and len(tuple(img_size)) == 2:
            cfg["input_size"] = (cfg["input_size"][0], *map(int, img_size))
        return cfg

    def _tokens_to_map(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        patch = tokens[:, self.num_prefix_tokens :]
        patch_embed = getattr(self.model, "patch_embed", None)
        if patch_embed is not None and hasattr(patch_embed, "dynamic_feat_size"):
            grid = patch_embed.dynamic_feat_size((height, width))
        elif patch_embed is not None and getattr(patch_embed, "grid_size", None) is not None:
            grid = patch_embed.grid_size
        else:
            raise ValueError(f"{self.name}: token output without a patch embedding; cannot recover the grid")
        gh, gw = int(grid[0]), int(grid[1])
        if patch.shape[1] != gh * gw:
            raise ValueError(
                f"{self.name}: {patch.shape[1]} patch tokens do not fill the {gh}x{gw} patch grid of a "
                f"{height}x{width} input (prefix tokens: {self.num_prefix_tokens})"
            )
        return patch.reshape(patch.shape[0], gh, gw, patch.shape[2]).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map ``[B, C, H, W]`` of images ``x`` ``[B, in_chans, H_in, W_in]``."""
        out = self.model.forward_features(x)
        if out.ndim == 3:
            return self._tokens_to_map(out, x.shape[-2], x.shape[-1])
        if out.ndim != 4:
            raise ValueError(f"{self.name}: unsupported feature output of shape {tuple(out.shape)}")
        if self.output_fmt == "NHWC":
            out = out.permute(0, 3, 1, 2)
        return out

    def pooled_features(self, x: torch.Tensor, pooling: str = "avg") -> torch.Tensor:
        """Globally pooled features ``[B, C]`` (see :func:`labelwise.models.heads.pooling.global_pool`).

        Examples
        --------
        >>> import torch
        >>> Backbone("test_resnet").pooled_features(torch.randn(2, 3, 32, 32), "max").shape
        torch.Size([2, 96])
        """
        return global_pool(self(x), pooling)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, num_features={self.num_features}, output_fmt={self.output_fmt!r}"
