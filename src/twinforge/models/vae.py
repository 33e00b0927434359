"""Conditional VAE, the Geant4 Par04 baseline family: MLP encoder and decoder, conditioned on
the incident energy (and particle, angles) by concatenation."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import nn

from twinforge.models.base import GenerativeModel

__all__ = ["ConditionalVAE"]

DEFAULTS: dict[str, Any] = {"latent_dim": 10, "hidden": [256, 128, 64], "beta": 1.0}


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(b), nn.SiLU()]
    return nn.Sequential(*layers)


class ConditionalVAE(GenerativeModel):
    """``q(z | x, c)`` and ``p(x | z, c)`` as MLPs; Gaussian likelihood in feature space.

    Config: ``latent_dim`` (default 10, as Par04), ``hidden`` encoder widths (decoder mirrored),
    ``beta`` weight of the KL term.
    """

    family: ClassVar[str] = "vae"

    def __init__(self, config: dict[str, Any], n_voxels: int, n_conditions: int) -> None:
        unknown = set(config) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown VAE option(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        super().__init__({**DEFAULTS, **config}, n_voxels, n_conditions)
        hidden = list(self.config["hidden"])
        latent = int(self.config["latent_dim"])
        self.encoder = _mlp([n_voxels + n_conditions, *hidden, 2 * latent])
        self.decoder = _mlp([latent + n_conditions, *hidden[::-1], n_voxels])

    def loss(self, x: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, log_var = self.encoder(torch.cat([x, c], dim=1)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        x_hat = self.decoder(torch.cat([z, c], dim=1))
        reconstruction = ((x_hat - x) ** 2).sum(dim=1).mean()
        kl = (-0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(dim=1)).mean()
        return {
            "loss": reconstruction + self.config["beta"] * kl,
            "reconstruction": reconstruction,
            "kl": kl,
        }

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, int(self.config["latent_dim"]), generator=generator)

    def decode(self, noise: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([noise, c], dim=1))
