"""A trainable residual stage on a frozen backbone's feature map (the shared layer of head-only training).

With a frozen backbone and cached feature maps (:mod:`labelwise.models.feature_cache`) a model keeps only its
head. For a linear head every class has its own weights and nothing is shared between classes; continual
learning with task-level partial labels (the loss sees only the current task's classes) then cannot forget at
all, since no gradient reaches the weights of an old class. :class:`MapAdapter` is one trainable stage that
every class shares, put where the backbone was (``model.backbone = MapAdapter(D)``): a residual 1x1
convolution with batch norm,

``F' = ReLU(F + BN(W F))``  with  ``W`` a 1x1 convolution ``D -> D`` and the BN scale initialised to 0,

so the model starts exactly at the frozen map (``F`` is already non-negative after the backbone's last ReLU)
and what training moves is this stage and the head. The model's ``"feature_map"`` output is then ``F'``
(what PODNet's spatial distillation compares) and its pooled ``"features"`` come from ``F'``.

Examples
--------
>>> import torch
>>> adapter = MapAdapter(8)
>>> x = torch.rand(2, 8, 4, 4)
>>> bool(torch.allclose(adapter.eval()(x), x))  # identity at initialisation
True
>>> sum(p.numel() for p in adapter.parameters())
80
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MapAdapter"]


class MapAdapter(nn.Module):
    """Residual 1x1 convolution + batch norm (scale 0 at start) + ReLU on a ``[B, D, H, W]`` feature map.

    Parameters
    ----------
    channels : int
        ``D``, the channels of the feature map (kept).

    Examples
    --------
    >>> import torch
    >>> MapAdapter(4)(torch.rand(3, 4, 2, 2)).shape
    torch.Size([3, 4, 2, 2])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if int(channels) < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.num_features = int(channels)
        self.conv = nn.Conv2d(self.num_features, self.num_features, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(self.num_features)
        nn.init.zeros_(self.bn.weight)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        """``ReLU(F + BN(conv(F)))``."""
        if feature_map.ndim != 4 or feature_map.shape[1] != self.num_features:
            raise ValueError(f"MapAdapter({self.num_features}) expects [B, {self.num_features}, H, W], got "
                             f"{tuple(feature_map.shape)}")
        return torch.relu(feature_map + self.bn(self.conv(feature_map)))
