"""Conditional VAE, the Geant4 Par04 baseline family: MLP encoder and decoder, conditioned on
the incident energy (and particle, angles) by concatenation."""

from __future__ import annotations

import itertools
from typing import ClassVar

import torch
from pydantic import Field, PositiveInt
from torch import nn

from twinforge.models.base import FamilyConfig, GenerativeModel

__all__ = ["ConditionalVAE", "VAEConfig"]


class VAEConfig(FamilyConfig):
    """Options of the ``vae`` family."""

    latent_dim: PositiveInt = Field(10, description="latent dimensions (10, as Par04)")
    hidden: list[PositiveInt] = Field(
        [256, 128, 64], min_length=1, description="encoder widths; the decoder mirrors them"
    )
    beta: float = Field(1.0, ge=0.0, description="weight of the KL term")


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(b), nn.SiLU()]
    return nn.Sequential(*layers)


class ConditionalVAE(GenerativeModel):
    """``q(z | x, c)`` and ``p(x | z, c)`` as MLPs; Gaussian likelihood in feature space.

    Options: :class:`VAEConfig`.
    """

    family: ClassVar[str] = "vae"
    Config = VAEConfig
    options: VAEConfig

    def __init__(
        self, config: dict[str, object] | VAEConfig, n_voxels: int, n_conditions: int
    ) -> None:
        super().__init__(config, n_voxels, n_conditions)
        hidden = list(self.options.hidden)
        latent = self.options.latent_dim
        self.encoder = _mlp([n_voxels + n_conditions, *hidden, 2 * latent])
        self.decoder = _mlp([latent + n_conditions, *hidden[::-1], n_voxels])

    def loss(self, x: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, log_var = self.encoder(torch.cat([x, c], dim=1)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        x_hat = self.decoder(torch.cat([z, c], dim=1))
        reconstruction = ((x_hat - x) ** 2).sum(dim=1).mean()
        kl = (-0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(dim=1)).mean()
        return {
            "loss": reconstruction + self.options.beta * kl,
            "reconstruction": reconstruction,
            "kl": kl,
        }

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.options.latent_dim, generator=generator)

    def decode(self, noise: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([noise, c], dim=1))
