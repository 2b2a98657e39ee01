"""Loss terms of the multi-label class-incremental strategies (RebLL, AAAI 2025, Eq. 1-9; LwF; DER++; PODNet).

All functions take raw logits and return the loss **summed over the selected classes and averaged over
samples** (the paper's equations sum over classes; the batch mean is the usual estimator of the expectation),
unless ``reduction="none"`` (element-wise ``[B, C]``, zero outside ``mask``).

Asymmetric binary cross-entropy (Eq. 3-8 in one form)
-----------------------------------------------------
With ``p = sigmoid(z)`` and a (possibly soft) target ``y``::

    l = - y (1 - p)^gamma_pos log(p) - (1 - y) p^gamma_neg log(1 - p)

* ``gamma_pos = gamma_neg = 0``: binary cross-entropy (Eq. 1), or binary KD when ``y`` is the old model's
  probability (Eq. 2).
* ``gamma_pos = alpha log|C^{1:t}|, gamma_neg = 0``: ``L_cls`` (Eq. 3-4) with hard targets and ``L_akd``
  (Eq. 5-6) with the old model's probabilities as targets. Each part is weighted on its own, exactly as
  written in the paper; for hard 0/1 targets this equals ASL with ``gamma_neg=0, clip=0`` (timm's
  ``AsymmetricLossMultiLabel``), but *not* for soft targets, where ASL interpolates the exponent.
* ``gamma_pos = 0, gamma_neg = beta log|C^{1:t}|``: ``L_er`` (Eq. 7-8).

The focusing weights are differentiated through (as in focal loss and ASL's default). ``log`` is the natural
logarithm (the paper writes ``log`` without a base).

Examples
--------
>>> import torch
>>> z, y = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]])
>>> bce = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="sum")
>>> bool(torch.isclose(asymmetric_bce(z, y), bce))
True
>>> round(decay_exponent(1.2, 20), 4)
3.5949
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "asymmetric_bce",
    "decay_exponent",
    "binary_kd",
    "temperature_kd",
    "pod_spatial",
    "pod_flat",
    "max_entropy",
    "token_distillation",
]


def decay_exponent(factor: float, num_seen_classes: int, *, adaptive: bool = True) -> float:
    """RebLL's exponential decay factor: ``factor * ln|C^{1:t}|`` (adaptive) or ``factor`` (fixed, Table 6).

    Examples
    --------
    >>> decay_exponent(1.2, 4), decay_exponent(2.0, 4, adaptive=False), decay_exponent(0.7, 1)
    (1.6635532333438687, 2.0, 0.0)
    """
    if factor < 0:
        raise ValueError(f"the decay factor must be >= 0, got {factor}")
    if num_seen_classes < 1:
        raise ValueError(f"num_seen_classes must be >= 1, got {num_seen_classes}")
    return float(factor) * math.log(num_seen_classes) if adaptive else float(factor)


def _reduce(elem: Tensor, mask: Tensor | None, reduction: str) -> Tensor:
    if mask is not None:
        elem = elem * mask.to(elem.dtype)
    if reduction == "none":
        return elem
    if reduction == "batchmean":
        return elem.sum() / max(elem.shape[0], 1)
    if reduction == "sum":
        return elem.sum()
    if reduction == "mean":
        n = mask.sum() if mask is not None else torch.tensor(elem.numel(), device=elem.device)
        return elem.sum() / n.clamp(min=1)
    raise ValueError(f"reduction must be 'batchmean', 'sum', 'mean' or 'none', got {reduction!r}")


def _pow(base: Tensor, gamma: float) -> Tensor:
    if gamma == 0:
        return torch.ones_like(base)
    return base.clamp(min=0).pow(gamma)


def asymmetric_bce(
    logits: Tensor,
    targets: Tensor,
    mask: Tensor | None = None,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 0.0,
    reduction: str = "batchmean",
) -> Tensor:
    """``- y (1-p)^gamma_pos log p - (1-y) p^gamma_neg log(1-p)`` over ``mask`` (module documentation).

    Parameters
    ----------
    logits : Tensor [B, C]
    targets : Tensor [B, C]
        Hard (0/1) or soft targets in [0, 1].
    mask : bool Tensor [B, C] or broadcastable, optional
        Entries that count (e.g. ``C^t`` for ``L_cls``, ``C^{1:t-1}`` for ``L_akd``).
    gamma_pos, gamma_neg : float
        Focusing exponents of the positive and negative parts.
    reduction : {"batchmean", "sum", "mean", "none"}
        ``batchmean`` (default): sum over entries / batch size.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[0.0]]); y = torch.tensor([[1.0]])
    >>> round(float(asymmetric_bce(z, y, gamma_pos=1.0)), 6)    # 0.5 * ln 2
    0.346574
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    z = logits.float()
    y = targets.to(z.dtype)
    log_p = F.logsigmoid(z)
    log_1mp = F.logsigmoid(-z)
    p = torch.sigmoid(z)
    pos = y * _pow(1 - p, gamma_pos) * log_p
    neg = (1 - y) * _pow(p, gamma_neg) * log_1mp
    return _reduce(-(pos + neg), mask, reduction)


def binary_kd(logits: Tensor, teacher_logits: Tensor, mask: Tensor | None = None, *, gamma_pos: float = 0.0,
              reduction: str = "batchmean") -> Tensor:
    """KD with the teacher's probabilities as soft targets: ``L_kd`` (Eq. 2) or ``L_akd`` (Eq. 5-6, ``gamma_pos > 0``).

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[0.3, -0.2]])
    >>> round(float(binary_kd(z, z)), 4) == round(float(asymmetric_bce(z, torch.sigmoid(z))), 4)
    True
    """
    with torch.no_grad():
        soft = torch.sigmoid(teacher_logits.float())
    return asymmetric_bce(logits, soft, mask, gamma_pos=gamma_pos, reduction=reduction)


def temperature_kd(logits: Tensor, teacher_logits: Tensor, mask: Tensor | None = None, *, temperature: float = 2.0,
                   reduction: str = "batchmean") -> Tensor:
    """LwF distillation for sigmoid outputs: BCE between ``sigmoid(z_old / T)`` and ``sigmoid(z / T)``, times ``T^2``.

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(1, 2)
    >>> round(float(temperature_kd(z, z, temperature=1.0)), 4)     # 2 ln 2
    1.3863
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    t = float(temperature)
    with torch.no_grad():
        soft = torch.sigmoid(teacher_logits.float() / t)
    return asymmetric_bce(logits.float() / t, soft, mask, reduction=reduction) * (t * t)


def pod_spatial(feature_map: Tensor, old_feature_map: Tensor) -> Tensor:
    """PODNet's POD-spatial distillation of one feature map (Douillard et al. 2020, Eq. 2-4).

    The squared activations are summed along the width and along the height, the two pooled vectors are
    concatenated and L2-normalised per sample, and the Euclidean distance between new and old is averaged
    over the batch.

    Examples
    --------
    >>> import torch
    >>> a = torch.randn(2, 3, 4, 4)
    >>> float(pod_spatial(a, a))
    0.0
    """
    if feature_map.shape != old_feature_map.shape or feature_map.ndim != 4:
        raise ValueError(f"feature maps must both be [B, D, H, W], got {tuple(feature_map.shape)} and "
                         f"{tuple(old_feature_map.shape)}")

    def pooled(a: Tensor) -> Tensor:
        a = a.float().pow(2)
        b = a.shape[0]
        return F.normalize(torch.cat([a.sum(dim=3).reshape(b, -1), a.sum(dim=2).reshape(b, -1)], dim=1), dim=1)

    return torch.linalg.vector_norm(pooled(feature_map) - pooled(old_feature_map), dim=1).mean()


def pod_flat(features: Tensor, old_features: Tensor) -> Tensor:
    """PODNet's POD-flat: distance between L2-normalised pooled features, averaged over the batch.

    Examples
    --------
    >>> import torch
    >>> float(pod_flat(torch.ones(2, 3), 2 * torch.ones(2, 3)))
    0.0
    """
    return torch.linalg.vector_norm(F.normalize(features.float(), dim=1) - F.normalize(old_features.float(), dim=1),
                                    dim=1).mean()


def max_entropy(logits: Tensor, mask: Tensor | None = None, *, form: str = "partial", eps: float = 1e-5) -> Tensor:
    """CSC's max-entropy regulariser: the negative entropy of the sigmoid outputs, summed over the ``mask``
    classes and averaged over samples (adding it to the loss *raises* the entropy, i.e. penalises confident
    outputs).

    ``form="partial"`` (the public CSC code): ``sum_c p_c log(p_c + eps)`` (``eps = 1e-5``), i.e. ``-sum_c
    H_c`` with ``H_c = -p_c log p_c``; ``form="binary"``: the full binary entropy,
    ``sum_c [p log p + (1 - p) log(1 - p)]``. Multiply by ``lambda_entropy`` (CSC: 0.04, the code's
    ``-beta`` with ``beta = -0.04``).

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(2, 3)                        # p = 0.5 everywhere
    >>> round(float(max_entropy(z)), 4)              # 3 * 0.5 * ln(0.5 + 1e-5)
    -1.0397
    >>> round(float(max_entropy(z, form="binary")), 4)   # -3 ln 2
    -2.0794
    """
    if form not in ("partial", "binary"):
        raise ValueError(f"form must be 'partial' or 'binary', got {form!r}")
    z = logits.float()
    p = torch.sigmoid(z)
    if form == "partial":
        neg_h = p * torch.log(p + eps)
    else:
        neg_h = p * F.logsigmoid(z) + (1 - p) * F.logsigmoid(-z)
    return _reduce(neg_h, mask, "batchmean")


def token_distillation(features: Tensor, old_features: Tensor, mask: Tensor | None = None) -> Tensor:
    """Cosine distance between the new and the old model's label-specific features (tokens), summed over the
    ``mask`` classes and averaged over samples: ``mean_b sum_c (1 - cos(f_bc, f_bc^old))``.

    Parameters
    ----------
    features, old_features : Tensor [B, C, E]
    mask : bool Tensor [C] or [B, C], optional

    Examples
    --------
    >>> import torch
    >>> a = torch.randn(2, 3, 4)
    >>> float(token_distillation(a, 2 * a))
    0.0
    >>> round(float(token_distillation(a, -a, torch.tensor([True, False, False]))), 4)
    2.0
    """
    if features.shape != old_features.shape or features.ndim != 3:
        raise ValueError(f"features must both be [B, C, E], got {tuple(features.shape)} and {tuple(old_features.shape)}")
    cos = F.cosine_similarity(features.float(), old_features.float().detach(), dim=-1)
    return _reduce(1 - cos, mask, "batchmean")
