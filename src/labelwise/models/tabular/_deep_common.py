"""Shared pieces of the deep multi-label tabular models (C2AE, MPVAE, PACA, CLIF, DELA).

* :class:`DeepMLCModel`: input checking, ``param_groups`` and the element-wise classification loss that
  honours the criterion handed to ``loss(outputs, batch, criterion)`` (BCE by default) and the known-label
  mask;
* :func:`mlp`: ``Linear -> activation -> Dropout`` stacks;
* :func:`gaussian_kl`: KL divergence between diagonal Gaussians, per sample.

Contract of every model built on this (see ``docs/tabular_models.md``):

* ``forward(x, targets=None)``: ``{"logits": [B, C], ...}``. ``"logits"`` is always the *prediction path*
  (features only); in training mode it is computed in the same forward pass as the model's own terms, so
  the batch-selection samplers read their per-sample BCE from it (``selection_loss="bce"``, the paper's
  section 3.2 choice). Targets are used only by the training-only branches (label encoders) and never
  reach ``"logits"``.
* ``loss(outputs, batch, criterion) -> [B]``: the model's objective per sample; batch-level terms
  (orthogonality constraints, graph reconstruction) are added to every sample, so the mean over the batch
  equals the published objective of the mini-batch. This is the sampler's quantity only with
  ``selection_loss="model"``.

Examples
--------
>>> import torch
>>> net = mlp([4, 8, 2], activation="relu", dropout=0.0)
>>> net(torch.zeros(3, 4)).shape
torch.Size([3, 2])
>>> float(gaussian_kl(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2))[0])
0.0
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DeepMLCModel", "mlp", "gaussian_kl", "check_positive_int", "check_init", "kaiming_init_", "ACTIVATIONS", "INITS"]

#: Weight initialisations of the deep tabular models: ``"kaiming"`` is the published code's (CLIF, DELA and
#: PACA in MLAdaBatch and their authors' code): Kaiming-uniform weights with the layer's nonlinearity and
#: biases ``U(0, 0.1)`` in every MLP; ``"torch"`` keeps PyTorch's defaults (about 2.5x smaller weights, which
#: leave these models on their initial plateau for tens of epochs at the published learning rate 1e-4).
INITS = ("kaiming", "torch")

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "tanh": lambda: nn.Tanh(),
    "gelu": lambda: nn.GELU(),
}


def check_positive_int(name: str, value: Any) -> int:
    """``int(value)`` if it is a positive integer, else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def mlp(
    dims: Sequence[int],
    *,
    activation: str = "relu",
    dropout: float = 0.0,
    last_activation: bool = False,
    batchnorm: bool = False,
) -> nn.Sequential:
    """``[Linear -> (BatchNorm) -> activation -> Dropout]`` between consecutive ``dims``.

    The last layer is linear unless ``last_activation`` (then it gets the activation and dropout too).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    layers: list[nn.Module] = []
    n = len(dims) - 1
    for i in range(n):
        layers.append(nn.Linear(int(dims[i]), int(dims[i + 1])))
        if i < n - 1 or last_activation:
            if batchnorm:
                layers.append(nn.BatchNorm1d(int(dims[i + 1])))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def kaiming_init_(module: nn.Module, nonlinearity: str = "relu", slope: float = 0.1,
                  fan_in: int | None = None, bias: bool = True) -> nn.Module:
    """The published MLP initialisation, in place: every ``nn.Linear`` in ``module`` gets Kaiming-uniform
    weights for ``nonlinearity`` (``"relu"`` or ``"leaky_relu"`` with negative slope ``slope``) and, with
    ``bias``, biases ``U(0, 0.1)``. ``fan_in`` overrides the weight's own fan-in (for a layer split in two).

    Examples
    --------
    >>> lin = kaiming_init_(nn.Linear(100, 10))
    >>> bool(lin.bias.detach().min() >= 0), float(lin.weight.detach().abs().max()) <= (6 / 100) ** 0.5
    (True, True)
    """
    if nonlinearity not in ("relu", "leaky_relu"):
        raise ValueError(f"nonlinearity must be 'relu' or 'leaky_relu', got {nonlinearity!r}")
    gain = nn.init.calculate_gain(nonlinearity, slope if nonlinearity == "leaky_relu" else None)
    for m in module.modules():
        if isinstance(m, nn.Linear):
            n_in = int(fan_in) if fan_in is not None else m.weight.shape[1]
            bound = gain * (3.0 / n_in) ** 0.5
            with torch.no_grad():
                m.weight.uniform_(-bound, bound)
                if bias and m.bias is not None:
                    m.bias.uniform_(0.0, 0.1)
    return module


def check_init(owner: str, init: str) -> str:
    """``init`` if it is one of :data:`INITS`, else a ``ValueError`` naming ``owner``."""
    if init not in INITS:
        raise ValueError(f"{owner} init must be one of {INITS}, got {init!r}")
    return init


def gaussian_kl(
    mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
) -> torch.Tensor:
    """``KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p)))`` summed over the last dimension -> ``[B]``."""
    return 0.5 * (
        logvar_p - logvar_q - 1.0 + torch.exp(logvar_q - logvar_p) + (mu_q - mu_p) ** 2 * torch.exp(-logvar_p)
    ).sum(dim=-1)


@contextlib.contextmanager
def _no_reduction(criterion: Any) -> Iterator[None]:
    old = getattr(criterion, "reduction", None)
    if old is None or old == "none":
        yield
        return
    criterion.reduction = "none"
    try:
        yield
    finally:
        criterion.reduction = old


class DeepMLCModel(nn.Module):
    """Base class: input check, ``param_groups`` and the element-wise classification term.

    Subclasses set ``needs_targets`` and implement ``forward`` and ``loss``.
    """

    needs_targets = False

    def __init__(self, *, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.num_classes = check_positive_int("num_classes", num_classes)

    def _check(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> None:
        name = type(self).__name__
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{name} expects inputs [B, {self.in_features}], got {tuple(x.shape)}")
        if targets is not None and (targets.ndim != 2 or targets.shape != (x.shape[0], self.num_classes)):
            raise ValueError(
                f"{name} expects targets [{x.shape[0]}, {self.num_classes}], got {tuple(targets.shape)}"
            )

    def _need(self, outputs: dict[str, Any], key: str) -> Any:
        if key not in outputs:
            raise KeyError(
                f"{type(self).__name__}.loss needs outputs[{key!r}], produced by forward(x, targets=y) in training "
                f"mode; got keys {sorted(outputs)}"
            )
        return outputs[key]

    @staticmethod
    def elementwise(
        criterion: Any, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Element-wise ``[B, C]`` classification loss: ``criterion`` with reduction "none", or BCE.

        Unknown entries (``mask == False``) are zero.
        """
        target = target.to(logits.dtype)
        if criterion is None:
            out = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        else:
            with _no_reduction(criterion):
                out = criterion(logits, target, mask) if mask is not None else criterion(logits, target)
            if out.shape != logits.shape:
                raise ValueError(
                    f"criterion {type(criterion).__name__} returned shape {tuple(out.shape)}; expected "
                    f"the element-wise loss {tuple(logits.shape)}"
                )
        if mask is not None:
            out = out * mask.to(out.dtype)
        return out

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """``{"backbone": [], "head": all parameters}``: nothing here is a pretrained feature extractor."""
        return {"backbone": [], "head": [p for p in self.parameters() if p.requires_grad]}
