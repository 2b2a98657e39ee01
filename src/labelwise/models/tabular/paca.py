"""PACA: probabilistic label-specific features with per-label prototypes (Hang, Zhang, Feng, Song,
"End-to-end probabilistic label-specific feature learning for multi-label classification", AAAI 2022).

Examples
--------
>>> import torch
>>> from labelwise.models import create_model
>>> m = create_model("paca", num_classes=5, in_features=12, latent_dim=4, hidden=16)
>>> x, y = torch.randn(8, 12), (torch.rand(8, 5) > 0.5).float()
>>> out = m(x, targets=y)
>>> out["logits"].shape, m.loss(out, {"input": x, "target": y}, None).shape
(torch.Size([8, 5]), torch.Size([8]))
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..registry import register_model
from ._deep_common import DeepMLCModel, check_init, check_positive_int, gaussian_kl, kaiming_init_, mlp

__all__ = ["PACA"]


@register_model("paca")
class PACA(DeepMLCModel):
    r"""PACA: a probabilistic instance embedding scored against a positive and a negative prototype per label.

    Equations implemented:

    * instance encoder :math:`q(z|x) = N(\mu_x, \mathrm{diag}\,\sigma_x^2)` and label encoder
      :math:`q(z|y) = N(\mu_y, \mathrm{diag}\,\sigma_y^2)`; the latent space is regulated by label
      correlation through :math:`KL(q(z|x)\,\|\,q(z|y))` and a label decoder :math:`h(z_y)` trained with
      BCE (the label autoencoder sees the whole label vector, hence the correlations);
    * instance-conditional mapping :math:`u = m([x, z_x])` and a feature reconstruction
      :math:`\hat x = \mathrm{dec}(u)`, loss :math:`\lVert \sigma(\hat x) - x \rVert^2` (inputs scaled to
      [0, 1] by the MULAN pipeline);
    * per-label prototypes :math:`p(u|P^j) = N(c_j^+, \mathrm{diag}\,s_j^{+2})`, :math:`p(u|N^j) =
      N(c_j^-, \mathrm{diag}\,s_j^{-2})` in the latent metric space (a learned diagonal metric per
      prototype); the label-specific feature of :math:`x` for label :math:`j` is the pair of log
      densities, and the parameter-free classifier is
      :math:`P(y_j = 1|x) = \mathrm{softmax}(\log p(u|N^j), \log p(u|P^j))_2`, i.e.
      ``logits_j = log p(u|P^j) - log p(u|N^j)``; its two-class cross-entropy is the BCE of these logits;
    * objective per sample: :math:`L_{rec} + \gamma\,(KL + L_{BCE}(h(z_y), y)) + \alpha\, L_{cls}`, with
      the BCE terms summed over labels.

    Prediction: :math:`z_x = \mu_x`, ``logits`` as above; targets are never used.

    Parameters
    ----------
    in_features, num_classes : int
    latent_dim : int, optional
        Latent size; default ``ceil(D / 2)`` (the batch-selection study's configuration), capped at 512.
    hidden : int
        Hidden width of the encoders, decoders and mapping (256; the encoder is 256-512-256 as published).
    alpha, gamma : float
        Weights of the classification loss (2) and of the latent regularisation (10) - the published
        configuration.
    dropout : float
        Encoder dropout (0.1).
    init : {"torch", "kaiming"}
        torch's default initialisation (default) or the published one of the MLPs (Kaiming-uniform weights
        for ReLU, biases ``U(0, 0.1)``). Unlike CLIF, this PACA (diagonal Gaussian prototypes instead of the
        published flows) trains worse with the published initialisation at lr 1e-4 (docs/tabular_models.md).

    Notes
    -----
    Choices where the paper leaves a detail open or that we simplified:

    * The published code models each prototype with a class-conditional normalizing flow (a neural
      autoregressive flow followed by an affine flow initialised at the identity). We keep only the
      affine part, i.e. a diagonal Gaussian per prototype - the flow at initialisation - to keep the
      ``[B, C, latent]`` density evaluation a pair of matrix products on CPU.
    * The latent size is capped at 512 (``ceil(D/2)`` is 918 on bibtex).
    * The classification and label-decoder terms use the criterion passed to :meth:`loss` (BCE by
      default), summed over labels. With ``selection_loss="bce"`` the samplers rank samples by the BCE of
      ``logits`` (the prototype classifier of the training forward pass). The study's published code
      ranks PACA's samples by its *label-branch* output instead (``out_index=-2``); we use the prediction
      path, which is what section 3.2 describes.
    * The KL direction ``KL(q(z|x) || q(z|y))`` follows the published code.

    Examples
    --------
    >>> import torch
    >>> m = PACA(in_features=6, num_classes=3, latent_dim=2, hidden=8).eval()
    >>> m(torch.randn(2, 6))["logits"].shape
    torch.Size([2, 3])
    """

    needs_targets = True

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        latent_dim: int | None = None,
        hidden: int = 256,
        alpha: float = 2.0,
        gamma: float = 10.0,
        dropout: float = 0.1,
        init: str = "torch",
    ) -> None:
        super().__init__(in_features=in_features, num_classes=num_classes)
        hidden = check_positive_int("hidden", hidden)
        check_init("PACA", init)
        k = (
            min(math.ceil(self.in_features / 2), 512)
            if latent_dim is None
            else check_positive_int("latent_dim", latent_dim)
        )
        self.latent_dim, self.alpha, self.gamma = k, float(alpha), float(gamma)
        d, c = self.in_features, self.num_classes
        self.encoder = mlp([d, hidden, 2 * hidden, hidden], dropout=dropout, last_activation=True)
        self.enc_head = nn.Linear(hidden, 2 * k)
        self.label_encoder = mlp([c, 2 * hidden, hidden], dropout=dropout, last_activation=True)
        self.label_head = nn.Linear(hidden, 2 * k)
        self.label_decoder = mlp([k, 2 * hidden, hidden, c])
        self.mapping = mlp([d + k, hidden, hidden, k])
        self.decoder = mlp([k, hidden, 2 * hidden, hidden, d])
        # prototypes [2, C, k]: index 0 negative, 1 positive
        self.proto_mean = nn.Parameter(torch.randn(2, c, k) * 0.1)
        self.proto_logscale = nn.Parameter(torch.zeros(2, c, k))
        if init == "kaiming":  # the published MLPs (every Linear of each MLP, including its last layer)
            for part in (self.encoder, self.label_encoder, self.label_decoder, self.mapping, self.decoder):
                kaiming_init_(part)

    def _log_density(self, u: torch.Tensor) -> torch.Tensor:
        """``[B, 2, C]`` log densities of ``u`` ``[B, k]`` under every prototype (diagonal Gaussians)."""
        inv_var = torch.exp(-2.0 * self.proto_logscale)  # [2, C, k]
        quad = (u**2) @ inv_var.reshape(-1, u.shape[1]).T - 2.0 * u @ (self.proto_mean * inv_var).reshape(
            -1, u.shape[1]
        ).T
        const = (self.proto_mean**2 * inv_var).sum(-1) + 2.0 * self.proto_logscale.sum(-1)  # [2, C]
        logp = -0.5 * (quad.reshape(u.shape[0], 2, -1) + const + u.shape[1] * math.log(2 * math.pi))
        return logp

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        self._check(x, targets)
        mu_x, logvar_x = self.enc_head(self.encoder(x)).chunk(2, dim=1)
        z_x = mu_x + torch.randn_like(mu_x) * torch.exp(0.5 * logvar_x) if self.training else mu_x
        u = self.mapping(torch.cat([x, z_x], dim=1))
        logp = self._log_density(u)
        out = {"logits": logp[:, 1] - logp[:, 0], "features": u, "mu_x": mu_x, "logvar_x": logvar_x}
        if targets is not None and self.training:
            mu_y, logvar_y = self.label_head(self.label_encoder(targets.to(x.dtype))).chunk(2, dim=1)
            z_y = mu_y + torch.randn_like(mu_y) * torch.exp(0.5 * logvar_y)
            out.update(
                mu_y=mu_y,
                logvar_y=logvar_y,
                label_logits=self.label_decoder(z_y),
                reconstruction=self.decoder(u),
            )
        return out

    def loss(self, outputs: dict[str, Any], batch: dict[str, Any], criterion: Any = None) -> torch.Tensor:
        """Per-sample PACA objective ``[B]`` (see the class docstring)."""
        x, y, mask = batch["input"], batch["target"], batch.get("mask")
        rec = ((torch.sigmoid(self._need(outputs, "reconstruction").float()) - x.float()) ** 2).sum(dim=1)
        kl = gaussian_kl(outputs["mu_x"], outputs["logvar_x"], outputs["mu_y"], outputs["logvar_y"])
        label_bce = self.elementwise(criterion, outputs["label_logits"].float(), y, mask).sum(dim=1)
        cls = self.elementwise(criterion, outputs["logits"].float(), y, mask).sum(dim=1)
        return rec + self.gamma * (kl + label_bce) + self.alpha * cls
