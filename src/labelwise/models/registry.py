"""Model and head registries: ``create_model(name, num_classes=C, **kwargs)`` and ``list_models()``.

Two registries live here:

- ``MODELS`` maps a model name to a factory ``f(*, num_classes, **kwargs) -> nn.Module``;
- ``HEADS`` maps a head name to a head class ``Head(in_features, num_classes, **options)`` whose
  ``forward(feature_map [B, D, H, W])`` returns a dict with at least ``"logits"``.

:func:`register_image_model` turns a head into an image model (timm backbone + that head), so a new head is
one module with two decorators' worth of registration.

Examples
--------
>>> from labelwise.models import create_model, list_models
>>> "ofml" in list_models() and "mlp" in list_models()
True
>>> model = create_model("mlp", num_classes=3, in_features=5, hidden=(8,))
>>> model.create_args["name"], model.create_args["num_classes"]
('mlp', 3)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from ..registry import OptionError, Registry, signature_options

__all__ = [
    "MODELS",
    "HEADS",
    "register_model",
    "register_head",
    "register_image_model",
    "create_model",
    "list_models",
    "list_heads",
]

MODELS = Registry("model", supplied=("num_classes",))
HEADS = Registry("head", supplied=("in_features", "num_classes"))
register_model = MODELS.register
register_head = HEADS.register


def register_image_model(name: str, head: str | type[nn.Module], **defaults: Any) -> Callable[..., nn.Module]:
    """Register an image model ``name`` = :class:`~labelwise.models.Backbone` + ``head``.

    The registered factory has the signature::

        f(*, num_classes, backbone="resnet18", pretrained=False, weights=None, weights_strict=True,
          backbone_kwargs=None, **head_options) -> ImageClassifier

    ``backbone_kwargs`` go to ``timm.create_model`` (e.g. ``{"img_size": 448}``, ``{"drop_path_rate": 0.1}``);
    ``head_options`` (merged over ``defaults``) go to the head's constructor.

    Parameters
    ----------
    name : str
        Model name for :func:`create_model`.
    head : str or type
        A head class, or the name of a head registered with :func:`register_head`.
    **defaults
        Default head options for this model name (e.g. ``pooling="max"``).

    Returns
    -------
    callable
        The factory (already registered).

    Examples
    --------
    >>> from labelwise.models import register_image_model, create_model
    >>> from labelwise.models.heads import LinearHead
    >>> _ = register_image_model("doc_maxpool_linear", LinearHead, pooling="max")
    >>> model = create_model("doc_maxpool_linear", num_classes=4, backbone="test_resnet")
    >>> model.head.pool.pooling
    'max'
    """
    head_cls = HEADS.get(head) if isinstance(head, str) else head
    head_keys = signature_options(head_cls, skip=HEADS.supplied)  # in_features, num_classes: given here
    if head_keys is not None and any(key not in head_keys for key in defaults):
        raise OptionError("model", name, [key for key in defaults if key not in head_keys], head_keys)

    def factory(
        *,
        num_classes: int,
        backbone: str = "resnet18",
        pretrained: bool = False,
        weights: str | None = None,
        weights_strict: bool = True,
        backbone_kwargs: dict[str, Any] | None = None,
        **head_options: Any,
    ) -> nn.Module:
        from .backbone import Backbone
        from .classifier import ImageClassifier

        options = {**defaults, **head_options}
        body = Backbone(
            backbone, pretrained=pretrained, weights=weights, strict=weights_strict, **(backbone_kwargs or {})
        )
        return ImageClassifier(body, head_cls(body.num_features, num_classes, **options))

    factory.__name__ = f"create_{name}"
    factory.__doc__ = (
        f"Image model {name!r}: a timm backbone and the {head_cls.__name__} head "
        f"(head defaults: {defaults or 'none'}). See :func:`labelwise.models.register_image_model`."
    )
    factory.head_class = head_cls  # type: ignore[attr-defined]
    if head_keys is not None:  # what MODELS.create accepts: the factory's named options and the head's
        own = [n for n, p in inspect.signature(factory).parameters.items() if p.kind is p.KEYWORD_ONLY]
        factory.accepted_options = (*own, *head_keys)  # type: ignore[attr-defined]
    MODELS.register(name)(factory)
    return factory


def create_model(name: str, *, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`, e.g. ``"ofml"``, ``"ofml_cosine"``, ``"mlp"``.
    num_classes : int
        Number of labels ``C``; the model's ``"logits"`` are ``[B, C]``.
    **kwargs
        Model options. Image models: ``backbone`` (any timm name), ``pretrained``, ``weights`` (local file),
        ``weights_strict``, ``backbone_kwargs`` and the head's options. Tabular models: ``in_features`` and
        their own options.

    Returns
    -------
    nn.Module
        The model, with ``create_args`` (``{"name", "num_classes", **kwargs}``) recorded so checkpoints can
        rebuild it.

    Raises
    ------
    KeyError
        Unknown name (the message lists close matches).
    labelwise.registry.OptionError
        Unknown option for that model (a ``ValueError``; see :meth:`labelwise.registry.Registry.create`).
    ValueError
        Invalid option value (e.g. ``num_classes < 1``).

    Examples
    --------
    >>> from labelwise.models import create_model
    >>> model = create_model("ofml", num_classes=20, backbone="test_resnet", pooling="avgmax")
    >>> import torch
    >>> model(torch.randn(2, 3, 64, 64))["logits"].shape
    torch.Size([2, 20])
    """
    MODELS.check_options(name, kwargs)  # unknown name or option: before num_classes is looked at
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"model {name!r}: num_classes must be a positive int, got {num_classes!r}")
    model = MODELS.create(name, num_classes=num_classes, **kwargs)
    model.create_args = {"name": name, "num_classes": num_classes, **kwargs}
    return model


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`.

    Examples
    --------
    >>> from labelwise.models import list_models
    >>> {"ofml", "ofml_cosine", "mlp"} <= set(list_models())
    True
    """
    return MODELS.names()


def list_heads() -> list[str]:
    """Names of the registered heads (usable with :func:`register_image_model`).

    Examples
    --------
    >>> from labelwise.models import list_heads
    >>> {"linear", "cosine"} <= set(list_heads())
    True
    """
    return HEADS.names()
