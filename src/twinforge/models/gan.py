"""Conditional GAN in the spirit of 3DGAN: 3D convolutions over the ``(z, alpha, r)`` readout
grid, an auxiliary incident-energy regression in the discriminator.

Generator
    ``[noise, c]`` -> MLP -> a coarse ``(C, z', alpha', r')`` volume -> ``stages`` blocks of
    (transposed convolution with kernel = stride = 2 along z and r, and along alpha when its size
    is even; crop to the finer grid; FiLM conditioning on ``c``; 3x3x3 convolution) -> a 3x3x3
    convolution to one channel, plus a learned per-voxel bias -> features ``(N, V)`` in the
    voxel order of the readout (z, alpha, r; r fastest). Only Linear, ConvTranspose3d, Conv3d,
    slicing, concatenation and elementwise ops: :meth:`ConditionalGAN.decode` exports to ONNX
    (opset 17, legacy exporter).

Critic
    The mirror image with spectral-normalised convolutions (3x3x3, then a kernel = stride = 2
    downsampling), a minibatch-standard-deviation feature against mode collapse (3DGAN used
    minibatch discrimination), a spectral-normalised MLP head and

    - the adversarial score ``psi(h) + <embed(c), h>``: conditioning by *projection*
      (Miyato & Koyama 2018);
    - an auxiliary head regressing the encoded incident energy ``c[:, 0]`` (log E / E_ref). It
      is trained on real showers only (critic loss), and the generator pays
      ``aux_weight * MSE`` of the critic's regression of its fakes against the energies it was
      asked for (the 3DGAN energy constraint; training the head on fakes as well would let it
      learn the generator's mistakes).

Periodic azimuth
    alpha is an angle, so every 3x3x3 convolution pads alpha *circularly* (the neighbours of the
    last bin are the first bins) and zero-pads z and r (:class:`CircularAlphaConv3d`). Downsampling
    and upsampling touch alpha only when its size is even, so bins never straddle the seam.

Objective: hinge loss with spectral normalisation, not WGAN-GP
    SN-GAN / SAGAN / BigGAN practice. Spectral norm makes the critic Lipschitz by construction at
    the cost of one power iteration per layer and forward pass; a gradient penalty needs a
    double backward through the 3D convolutions at every critic step (two to three times the
    cost of a step on CPU) and usually 5 critic steps per generator step. Hinge + SN trains
    stably with one critic step per generator step (``n_critic``) and a two-time-scale learning
    rate (``lr_critic_factor``). The auxiliary energy head is deliberately *not* spectral
    normalised (a regression output must reach the range of the log energies).

Without a readout grid (irregular readouts such as CaloChallenge dataset 1), the model treats
the shower as a 1-D sequence, grid ``(1, 1, V)``: the same code is then a 1-D convolutional GAN.
:func:`twinforge.training.train.run_training` fills ``grid`` from the training files.

Training uses two optimisers (``adversarial = True``, see
:class:`twinforge.training.module.SurrogateModule`); :meth:`ConditionalGAN.loss` is a
critic-independent validation proxy (per-voxel 1-D Wasserstein distance between generated and
real feature distributions, the showers of a batch against generated showers for the same
conditions), so early stopping and checkpoint selection do not follow the ever-moving critic.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from twinforge.errors import ConfigError
from twinforge.models.base import DataFacts, FamilyConfig, GenerativeModel

__all__ = ["CircularAlphaConv3d", "ConditionalGAN", "GANConfig", "Updater", "grid_schedule"]


class GANConfig(FamilyConfig):
    """Options of the ``gan`` family."""

    grid: tuple[PositiveInt, PositiveInt, PositiveInt] | None = Field(
        None,
        description="[n_z, n_alpha, n_r]; training fills it from a regular readout; None: a 1-D "
        "sequence (1, 1, V)",
    )
    latent_dim: PositiveInt = 64
    hidden: PositiveInt = Field(256, description="generator MLP width")
    channels: PositiveInt = Field(
        32, description="generator channels at the coarse volume (halved per stage, >= 8)"
    )
    stages: NonNegativeInt = Field(2, description="x2 up/down-sampling stages")
    critic_channels: PositiveInt = Field(
        16, description="critic channels at full resolution (doubled per stage)"
    )
    critic_hidden: PositiveInt = 128
    minibatch_std: bool = True
    n_critic: PositiveInt = Field(1, description="critic updates per generator update")
    aux_weight: float = Field(1.0, ge=0.0, description="weight of the energy regression")
    lr_critic_factor: PositiveFloat = Field(
        2.0, description="two time-scale update rule: critic lr = factor * lr"
    )
    betas: tuple[float, float] = Field((0.0, 0.9), description="Adam betas")


_LEAK = 0.2


class Updater(Protocol):
    """What :meth:`ConditionalGAN.adversarial_step` receives for each optimiser."""

    def step(self, loss: torch.Tensor) -> None:
        """Zero the gradients, back-propagate ``loss``, clip, step the optimiser."""


def grid_schedule(
    grid: tuple[int, int, int], stages: int
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """Grid sizes from full (index 0) to coarsest (index ``stages``) and the strides between.

    z and r halve (rounding up) while larger than one; alpha halves only when its size is even
    (a periodic axis cannot be cropped).
    """
    sizes = [tuple(grid)]
    strides = []
    for _ in range(stages):
        current = sizes[-1]
        stride = tuple(
            2 if n > 1 and (axis != 1 or n % 2 == 0) else 1 for axis, n in enumerate(current)
        )
        sizes.append(tuple(-(-n // s) for n, s in zip(current, stride, strict=True)))
        strides.append(stride)
    return sizes, strides  # type: ignore[return-value]


def _circular_alpha(x: torch.Tensor, pad: int, n_alpha: int) -> torch.Tensor:
    """Pad dimension 3 (alpha, of static size ``n_alpha``) of ``(N, C, z, alpha, r)``
    circularly, with slices and a concatenation only (ONNX-friendly, no shape arithmetic)."""
    if pad == 0:
        return x
    if pad > n_alpha:  # grids narrower than the kernel: wrap as often as needed
        reps = -(-pad // n_alpha)
        start = reps * n_alpha - pad
        wide = torch.cat([x] * (2 * reps + 1), dim=3)
        return wide[:, :, :, start : start + n_alpha + 2 * pad]
    return torch.cat([x[:, :, :, -pad:], x, x[:, :, :, :pad]], dim=3)


class CircularAlphaConv3d(nn.Conv3d):
    """A 'same' 3D convolution over ``(z, alpha, r)``: circular along alpha, zeros along z, r."""

    def __init__(
        self, in_channels: int, out_channels: int, n_alpha: int, kernel_size: int = 3
    ) -> None:
        pad = kernel_size // 2
        super().__init__(in_channels, out_channels, kernel_size, padding=(pad, 0, pad))
        self.alpha_pad = pad
        self.n_alpha = n_alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_circular_alpha(x, self.alpha_pad, self.n_alpha))


class _FiLM(nn.Module):
    """Feature-wise affine conditioning: ``h * (1 + gamma(c)) + beta(c)`` per channel."""

    def __init__(self, n_conditions: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_conditions, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.linear(c)[:, :, None, None, None].chunk(2, dim=1)
        return h * (1 + gamma) + beta


class Generator(nn.Module):
    def __init__(self, config: dict[str, Any], grid: tuple[int, int, int], n_conditions: int):
        super().__init__()
        stages = int(config["stages"])
        self.sizes, self.strides = grid_schedule(grid, stages)
        widths = [max(8, int(config["channels"]) // 2**k) for k in range(stages + 1)]
        self.widths = widths  # widths[0] at the coarsest volume
        coarse = self.sizes[-1]
        hidden = int(config["hidden"])
        self.mlp = nn.Sequential(
            nn.Linear(int(config["latent_dim"]) + n_conditions, hidden),
            nn.LeakyReLU(_LEAK),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(_LEAK),
            nn.Linear(hidden, widths[0] * math.prod(coarse)),
        )
        self.up = nn.ModuleList()
        self.film = nn.ModuleList()
        self.conv = nn.ModuleList()
        for k in range(stages):
            stride = self.strides[stages - 1 - k]
            self.up.append(nn.ConvTranspose3d(widths[k], widths[k + 1], stride, stride=stride))
            self.film.append(_FiLM(n_conditions, widths[k + 1]))
            n_alpha = self.sizes[stages - 1 - k][1]
            self.conv.append(CircularAlphaConv3d(widths[k + 1], widths[k + 1], n_alpha))
        self.out = CircularAlphaConv3d(widths[-1], 1, grid[1])
        self.voxel_bias = nn.Parameter(torch.zeros(math.prod(grid)))

    def forward(self, noise: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.mlp(torch.cat([noise, c], dim=1))
        h = h.reshape(-1, self.widths[0], *self.sizes[-1])
        act = F.leaky_relu
        for k, (up, film, conv) in enumerate(zip(self.up, self.film, self.conv, strict=True)):
            n_z, _, n_r = self.sizes[len(self.up) - 1 - k]
            h = up(h)[:, :, :n_z, :, :n_r]  # alpha is never cropped (see grid_schedule)
            h = act(film(h, c), _LEAK)
            h = act(conv(h), _LEAK)
        return self.out(h).flatten(1) + self.voxel_bias


class Critic(nn.Module):
    def __init__(self, config: dict[str, Any], grid: tuple[int, int, int], n_conditions: int):
        super().__init__()
        stages = int(config["stages"])
        self.grid = tuple(grid)
        self.sizes, self.strides = grid_schedule(grid, stages)
        base = int(config["critic_channels"])
        widths = [base * 2**k for k in range(stages + 1)]
        self.conv = nn.ModuleList()
        self.down = nn.ModuleList()
        c_in = 1
        for k in range(stages):
            self.conv.append(spectral_norm(CircularAlphaConv3d(c_in, widths[k], self.sizes[k][1])))
            stride = self.strides[k]
            down = nn.Conv3d(widths[k], widths[k + 1], stride, stride=stride)
            self.down.append(spectral_norm(down))
            c_in = widths[k + 1]
        self.last = spectral_norm(CircularAlphaConv3d(c_in, c_in, self.sizes[-1][1]))
        self.minibatch_std = bool(config["minibatch_std"])
        flat = c_in * math.prod(self.sizes[-1]) + int(self.minibatch_std)
        hidden = int(config["critic_hidden"])
        self.head = spectral_norm(nn.Linear(flat, hidden))
        self.score = spectral_norm(nn.Linear(hidden, 1))
        self.embed = spectral_norm(nn.Linear(n_conditions, hidden, bias=False))
        self.aux = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Adversarial score ``(N,)`` and regressed encoded energy ``(N,)``."""
        act = F.leaky_relu
        h = x.reshape(-1, 1, *self.grid)
        for k, (conv, down) in enumerate(zip(self.conv, self.down, strict=True)):
            h = act(conv(h), _LEAK)
            s_z, _, s_r = self.strides[k]
            n_z, _, n_r = self.sizes[k]
            h = F.pad(h, (0, n_r % s_r, 0, 0, 0, n_z % s_z))  # odd z / r: one zero row
            h = act(down(h), _LEAK)
        h = act(self.last(h), _LEAK).flatten(1)
        if self.minibatch_std:
            spread = h.std(dim=0, unbiased=False).mean() if len(h) > 1 else h.new_zeros(())
            h = torch.cat([h, spread.expand(len(h), 1)], dim=1)
        h = act(self.head(h), _LEAK)
        score = self.score(h).squeeze(1) + (self.embed(c) * h).sum(dim=1)
        return score, self.aux(h).squeeze(1)


class ConditionalGAN(GenerativeModel):
    """3DGAN-style conditional GAN (see the module docstring).

    Options: :class:`GANConfig`. Training fills ``grid`` from a regular readout when it is
    not given (:meth:`complete_config`).
    """

    family: ClassVar[str] = "gan"
    Config = GANConfig
    options: GANConfig
    adversarial: ClassVar[bool] = True

    def __init__(
        self, config: dict[str, Any] | GANConfig, n_voxels: int, n_conditions: int
    ) -> None:
        super().__init__(config, n_voxels, n_conditions)
        grid = self.options.grid or (1, 1, n_voxels)
        if math.prod(grid) != n_voxels:
            raise ConfigError(
                f"gan model config: grid {list(grid)} does not hold {n_voxels} voxels as (z, a, r)"
            )
        self.grid = (grid[0], grid[1], grid[2])
        self.generator = Generator(self.config, self.grid, n_conditions)
        self.critic = Critic(self.config, self.grid, n_conditions)

    @classmethod
    def complete_config(cls, options: FamilyConfig, data: DataFacts) -> FamilyConfig:
        """Fill ``grid`` from a regular readout when not given (else a 1-D sequence)."""
        assert isinstance(options, GANConfig)
        if options.grid is not None or data.grid is None:
            return options
        return options.model_copy(update={"grid": data.grid})

    # ------------------------------------------------------------------ protocol
    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, int(self.config["latent_dim"]), generator=generator)

    def decode(self, noise: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.generator(noise, c)

    def loss(self, x: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        """Validation objective: ``"loss"`` is the mean over voxels of the 1-D Wasserstein
        distance between the batch's real features and features generated for the same
        conditions (fixed noise in eval mode); the generator and critic terms are reported too.
        """
        if self.training:
            z = torch.randn(len(x), int(self.config["latent_dim"]), device=x.device)
        else:
            fixed = torch.Generator(device=x.device).manual_seed(0)
            z = torch.randn(len(x), int(self.config["latent_dim"]), generator=fixed,
                            device=x.device)  # fmt: skip
        fake = self.generator(z, c)
        marginal = (fake.sort(dim=0).values - x.sort(dim=0).values).abs().mean()
        score_fake, energy_fake = self.critic(fake, c)
        score_real, energy_real = self.critic(x, c)
        aux_fake = F.mse_loss(energy_fake, c[:, 0])
        return {
            "loss": marginal,
            "generator": -score_fake.mean() + self.config["aux_weight"] * aux_fake,
            "aux_real": F.mse_loss(energy_real, c[:, 0]),
            "aux_fake": aux_fake,
            "wasserstein": score_real.mean() - score_fake.mean(),
        }

    # ------------------------------------------------------------------ adversarial training
    def configure_optimizers(self, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        """``[critic, generator]`` Adam(W) optimisers (the critic at ``lr_critic_factor * lr``)."""
        betas = tuple(float(b) for b in self.config["betas"])
        critic_lr = lr * float(self.config["lr_critic_factor"])
        return [
            torch.optim.AdamW(self.critic.parameters(), lr=critic_lr, betas=betas,
                              weight_decay=weight_decay),
            torch.optim.AdamW(self.generator.parameters(), lr=lr, betas=betas,
                              weight_decay=weight_decay),
        ]  # fmt: skip

    def adversarial_step(
        self, x: torch.Tensor, c: torch.Tensor, optimizers: list[Updater], step: int
    ) -> dict[str, torch.Tensor]:
        """One critic update on ``(x, c)``; a generator update every ``n_critic``-th step.

        ``optimizers`` are updaters for ``[critic, generator]`` (see :class:`Updater`).
        """
        critic_opt, generator_opt = optimizers
        target = c[:, 0]
        aux_weight = float(self.config["aux_weight"])
        z = torch.randn(len(x), int(self.config["latent_dim"]), device=x.device)
        with torch.no_grad():
            fake = self.generator(z, c)
        score_real, energy_real = self.critic(x, c)
        score_fake, _ = self.critic(fake, c)
        hinge = F.relu(1 - score_real).mean() + F.relu(1 + score_fake).mean()
        aux_real = F.mse_loss(energy_real, target)
        critic_loss = hinge + aux_weight * aux_real
        critic_opt.step(critic_loss)
        out = {
            "critic": critic_loss.detach(),
            "aux_real": aux_real.detach(),
            "wasserstein": (score_real.mean() - score_fake.mean()).detach(),
        }
        if (step + 1) % int(self.config["n_critic"]) == 0:
            self.critic.requires_grad_(False)  # no critic gradients from the generator loss
            try:
                z = torch.randn(len(x), int(self.config["latent_dim"]), device=x.device)
                score, energy = self.critic(self.generator(z, c), c)
                aux_fake = F.mse_loss(energy, target)
                generator_loss = -score.mean() + aux_weight * aux_fake
                generator_opt.step(generator_loss)
            finally:
                self.critic.requires_grad_(True)
            out |= {"generator": generator_loss.detach(), "aux_fake": aux_fake.detach()}
        return out
