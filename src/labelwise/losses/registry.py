"""The loss registry: ``create_loss(name, **kwargs)`` and ``list_losses()``."""

from __future__ import annotations

from ..registry import Registry
from .asymmetric import AsymmetricLoss
from .base import MultiLabelLoss
from .bce import BCELoss
from .focal import FocalLoss
from .polynomial import AsymmetricPolynomialLoss
from .positive_ratio import WeightedBCELoss

LOSSES = Registry("loss")
"""Registry of loss factories; register new ones with ``@LOSSES.register("name")``."""

LOSSES.register("bce")(BCELoss)
LOSSES.register("weighted_bce")(WeightedBCELoss)
LOSSES.register("focal")(FocalLoss)
LOSSES.register("asl")(AsymmetricLoss)
LOSSES.register("apl")(AsymmetricPolynomialLoss)


def create_loss(name: str, **kwargs) -> MultiLabelLoss:
    """Build the loss registered as ``name`` with keyword settings.

    Parameters
    ----------
    name : str
        One of :func:`list_losses` (case-insensitive): ``"bce"``, ``"weighted_bce"``, ``"focal"``,
        ``"asl"``, ``"apl"``.
    **kwargs
        Settings of the loss class (e.g. ``gamma_neg=4, clip=0.05, reduction="sum"``).

    Raises
    ------
    KeyError
        Unknown ``name`` (the message lists close matches and the registered names).
    labelwise.registry.OptionError
        A keyword the loss does not accept (a ``ValueError``; the message names it, suggests a close match
        and lists the accepted ones).

    Examples
    --------
    >>> from labelwise.losses import create_loss
    >>> create_loss("asl", gamma_neg=4, gamma_pos=0, clip=0.05)
    AsymmetricLoss(gamma_neg=4.0, gamma_pos=0.0, clip=0.05, eps=1e-08, disable_torch_grad_focal_loss=False, reduction='sum')
    """
    return LOSSES.create(name, **kwargs)


def list_losses() -> list[str]:
    """Sorted names of the registered losses.

    Examples
    --------
    >>> from labelwise.losses import list_losses
    >>> list_losses()
    ['apl', 'asl', 'bce', 'focal', 'weighted_bce']
    """
    return LOSSES.names()
