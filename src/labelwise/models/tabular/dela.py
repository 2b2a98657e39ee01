"""DELA: stable label-specific features by learned perturbation (Hang and Zhang, "Dual perspective of
label-specific feature learning for multi-label classification", ICML 2022).

Examples
--------
>>> import torch
>>> from labelwise.models import create_model
>>> m = create_model("dela", num_classes=5, in_features=12, latent_dim=4, hidden=16)
>>> x, y = torch.randn(8, 12), (torch.rand(8, 5) > 0.5).float()
>>> out = m(x)
>>> out["logits"].shape, m.loss(out, {"input": x, "target": y}, None).shape
(torch.Size([8, 5]), torch.Size([8]))
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..registry import register_model
from ._deep_common import DeepMLCModel, check_init, check_positive_int, kaiming_init_, mlp

__all__ = ["DELA"]


@register_model("dela")
class DELA(DeepMLCModel):
    r"""DELA: for each label, a learned perturbation of the embedding marks the features that are
    non-informative for that label; the classifier is trained to be stable under it.

    Equations implemented (probabilistically relaxed expected risk):

    * embedding :math:`z = \mu(x)` and noise scale :math:`\sigma(x) = \exp(\tfrac12 \mathrm{logvar}(x))`
      (shared encoder);
    * binary Concrete gates per (label, latent dimension): :math:`s_{jk} = \mathrm{GumbelSigmoid}(W
      \theta_j + b, \tau)` with a hard straight-through sample in training;
      :math:`s_{jk} = 1` marks dimension :math:`k` as non-informative for label :math:`j`;
    * perturbed label-specific embedding :math:`\tilde z_j = z + s_j \odot \sigma(x) \odot \varepsilon`,
      :math:`\varepsilon \sim N(0, I)`; classifier :math:`f_j([x, \tilde z_j])` (shared MLP + one linear
      unit per label);
    * objective per sample: :math:`\sum_j \mathrm{BCE}(f_j, y_j) + \beta\, \frac1C \sum_j
      KL\big(N(z, \mathrm{diag}(s_j \sigma)^2) \,\|\, N(0, I)\big)` - the KL term rewards large
      perturbations (an information-bottleneck constraint), so only the dimensions the label needs stay
      unperturbed.

    Prediction: no noise (:math:`\tilde z_j = z`), so every label shares one embedding and the
    classifier is evaluated once per sample; targets are never used.

    Parameters
    ----------
    in_features, num_classes : int
    latent_dim : int, optional
        Size of :math:`z`; default ``ceil(D / 2)`` (the study's configuration), capped at 512.
    hidden : int
        Encoder widths (256-512-256 for ``hidden=256``) and classifier MLP (``D + latent -> 256 -> 512``).
    beta : float
        KL weight (1e-4).
    tau : float
        Concrete temperature (2/3).
    dropout : float
        Encoder dropout (0.2).
    init : {"kaiming", "torch"}
        The published initialisation of the MLPs (default: Kaiming-uniform weights for ReLU, biases
        ``U(0, 0.1)``) or torch's defaults (docs/tabular_models.md: at lr 1e-4 these models then start on a
        long plateau).

    Notes
    -----
    Choices where the paper leaves a detail open:

    * The KL of a switched-off gate (:math:`s_{jk} = 0`) is infinite in theory; as in the published code
      the gate enters the log through ``log(s + 1e-6)``.
    * The first input of the classifier MLP is split as :math:`W_x x + W_z \tilde z_j`, so :math:`W_x x`
      is computed once per sample instead of once per (sample, label) - the same function, cheaper.
    * The published code trains the gate parameters with 0.8 x the learning rate; here every parameter
      shares the optimiser's learning rate (``fit_tabular`` and the trainer's "head" group).
    * The classification term uses the criterion passed to :meth:`loss` (BCE by default), summed over
      labels. With ``selection_loss="bce"`` the samplers rank samples by the BCE of the *perturbed*
      training-mode ``logits`` (the published code's ``out_index=-1``).

    Examples
    --------
    >>> import torch
    >>> m = DELA(in_features=6, num_classes=3, latent_dim=2, hidden=8).eval()
    >>> m(torch.randn(2, 6))["logits"].shape
    torch.Size([2, 3])
    """

    needs_targets = False

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        latent_dim: int | None = None,
        hidden: int = 256,
        beta: float = 1e-4,
        tau: float = 2.0 / 3.0,
        dropout: float = 0.2,
        init: str = "kaiming",
    ) -> None:
        super().__init__(in_features=in_features, num_classes=num_classes)
        hidden = check_positive_int("hidden", hidden)
        check_init("DELA", init)
        k = (
            min(math.ceil(self.in_features / 2), 512)
            if latent_dim is None
            else check_positive_int("latent_dim", latent_dim)
        )
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.latent_dim, self.beta, self.tau = k, float(beta), float(tau)
        d, c = self.in_features, self.num_classes
        self.encoder = mlp([d, hidden, 2 * hidden, hidden], dropout=dropout, last_activation=True)
        self.fc_mu = nn.Linear(hidden, k)
        self.fc_logvar = nn.Linear(hidden, k)
        self.gate_logits = nn.Parameter(torch.empty(c, k).uniform_(-10.0, 10.0))
        self.gate_scale = nn.Linear(k, k)
        nn.init.constant_(self.gate_scale.bias, 2.0)
        self.cls_x = nn.Linear(d, hidden)
        self.cls_z = nn.Linear(k, hidden, bias=False)
        self.cls_body = mlp([hidden, 2 * hidden], last_activation=True)
        self.cls_weight = nn.Parameter(
            torch.empty(c, 2 * hidden).uniform_(-1 / math.sqrt(2 * hidden), 1 / math.sqrt(2 * hidden))
        )
        self.cls_bias = nn.Parameter(torch.zeros(c))
        if init == "kaiming":  # the published MLPs: encoder and classifier body (first layer split in x, z)
            kaiming_init_(self.encoder)
            kaiming_init_(self.cls_body)
            kaiming_init_(self.cls_x, fan_in=d + k)
            kaiming_init_(self.cls_z, fan_in=d + k)

    def _gates(self) -> torch.Tensor:
        logit = self.gate_scale(self.gate_logits)  # [C, k]
        u = torch.rand_like(logit).clamp(1e-6, 1 - 1e-6)
        soft = torch.sigmoid((logit + torch.log(u) - torch.log1p(-u)) / self.tau)
        hard = (soft > 0.5).to(soft.dtype)
        return hard + soft - soft.detach()  # straight-through

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        self._check(x)
        h = self.encoder(x)
        z, logvar = self.fc_mu(h), self.fc_logvar(h)
        base = self.cls_x(x)  # [B, H]
        if self.training:
            gates = self._gates()  # [C, k]
            std = torch.exp(0.5 * logvar)
            eps = torch.randn_like(std)
            z_k = z.unsqueeze(1) + gates.unsqueeze(0) * (std * eps).unsqueeze(1)  # [B, C, k]
            f = self.cls_body(torch.relu(base.unsqueeze(1) + self.cls_z(z_k)))  # [B, C, 2H]
            logits = (f * self.cls_weight).sum(-1) + self.cls_bias
            return {"logits": logits, "features": z, "logvar": logvar, "gates": gates}
        f = self.cls_body(torch.relu(base + self.cls_z(z)))  # [B, 2H], shared by all labels
        return {"logits": f @ self.cls_weight.T + self.cls_bias, "features": z}

    def loss(self, outputs: dict[str, Any], batch: dict[str, Any], criterion: Any = None) -> torch.Tensor:
        """Per-sample DELA objective ``[B]``: summed classification loss + beta x mean-over-labels KL."""
        cls = self.elementwise(criterion, outputs["logits"].float(), batch["target"], batch.get("mask")).sum(
            dim=1
        )
        if "gates" not in outputs:  # evaluation-mode outputs: no perturbation, no KL
            return cls
        z, logvar, s = (
            outputs["features"].unsqueeze(1),
            outputs["logvar"].unsqueeze(1),
            outputs["gates"].unsqueeze(0),
        )
        kl = 0.5 * (-logvar - 2.0 * torch.log(s + 1e-6) - 1.0 + torch.exp(logvar) * s**2 + z**2).sum(-1)
        # clamp: log(s + 1e-6) makes the KL of an open gate at the prior about -2e-6 instead of 0
        return cls + self.beta * kl.mean(dim=1).clamp_min(0.0)
