"""Conditional flow matching, the CaloDREAM / CaloDiffusion family.

A velocity network ``v(x_t, t, c)`` learns the straight path from Gaussian noise ``z`` to the
features ``x`` (rectified flow / OT conditional flow matching, Lipman et al. 2023, Liu et al.
2023): ``x_t = (1 - (1 - sigma_min) t) z + t x`` with target velocity
``x - (1 - sigma_min) z`` and ``t ~ U(0, 1)``. Sampling integrates ``dx/dt = v(x, t, c)`` from
``t = 0`` (noise) to ``t = 1`` (features) with a fixed-step solver (Euler, midpoint or RK4),
written as a plain Python loop over torch operations, so tracing unrolls it into an ONNX graph.

With ``energy_network: true`` (on the ``layers`` transform) the model is two-stage, as
CaloDREAM: a small velocity network generates the ``n_layers`` layer-energy features given the
conditions, and the large one generates the shape features given the conditions and those layer
energies. Each stage has its own loss term (mean squared error per feature), so the few layer
energies, which fix the shower's energy response, are not drowned by thousands of voxels.

Shapes: ``V`` voxels (features), ``C`` condition columns, batch ``B`` / ``N``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, NonNegativeInt, PositiveInt, StrictBool, field_validator
from torch import nn

from twinforge.errors import ConfigError
from twinforge.models.base import DataFacts, FamilyConfig, GenerativeModel, with_layer_count

__all__ = ["SOLVERS", "FlowMatching", "FlowMatchingConfig", "VelocityNet"]

SOLVERS = ("euler", "midpoint", "rk4")


class FlowMatchingConfig(FamilyConfig):
    """Options of the ``flow-matching`` family."""

    hidden: PositiveInt = Field(512, description="width of the residual MLP")
    blocks: NonNegativeInt = Field(4, description="residual blocks")
    time_dim: PositiveInt = Field(64, description="sinusoidal time features (even)")
    embed_dim: PositiveInt = Field(
        128, description="width of the (time, conditions) embedding that modulates every block"
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    sigma_min: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="0: rectified flow; > 0: OT-CFM with a Gaussian of this width at t = 1",
    )  # fmt: skip
    steps: PositiveInt = Field(20, description="fixed ODE steps at sampling time")
    solver: Literal["euler", "midpoint", "rk4"] = Field(
        "midpoint", description="1, 2 or 4 network calls per step"
    )
    energy_network: StrictBool = Field(
        False, description="two stages: layer energies first (needs the 'layers' transform)"
    )
    n_layers: PositiveInt | None = Field(
        None, description="layer-energy features; filled by training when energy_network is set"
    )
    energy_hidden: PositiveInt = Field(256, description="width of the layer-energy network")
    energy_blocks: NonNegativeInt = Field(3, description="its residual blocks")

    @field_validator("time_dim")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("time_dim must be even")
        return value


class _Block(nn.Module):
    """Pre-norm residual block, FiLM-modulated by the embedding: ``(B, H), (B|1, E) -> (B, H)``."""

    def __init__(self, hidden: int, embed: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.film = nn.Linear(embed, 2 * hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.fc2.weight)  # every block starts as the identity
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb).chunk(2, dim=-1)
        y = self.norm(h) * (1 + scale) + shift
        y = self.fc2(self.dropout(nn.functional.silu(self.fc1(nn.functional.silu(y)))))
        return h + y


class VelocityNet(nn.Module):
    """``v(x, t, c)``: features ``(B, V)``, time ``(B, 1)`` or ``(1, 1)``, conditions ``(B, C)``.

    The time and the conditions are embedded separately, summed, and modulate every residual
    block (FiLM); the input is also concatenated with the conditions. The time embedding is
    sinusoidal with geometric frequencies from 1 to 1000 (times pi), as in diffusion models.
    """

    def __init__(
        self,
        n_voxels: int,
        n_conditions: int,
        *,
        hidden: int,
        blocks: int,
        time_dim: int,
        embed_dim: int,
        dropout: float,
    ) -> None:
        super().__init__()
        half = time_dim // 2
        freqs = math.pi * torch.exp(torch.linspace(0.0, math.log(1000.0), half))
        self.register_buffer("freqs", freqs[None, :], persistent=False)  # (1, time_dim / 2)
        self.time_mlp = nn.Sequential(
            nn.Linear(time_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.cond_mlp = nn.Sequential(
            nn.Linear(n_conditions, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.inp = nn.Linear(n_voxels + n_conditions, hidden)
        self.blocks = nn.ModuleList(_Block(hidden, embed_dim, dropout) for _ in range(blocks))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, n_voxels)

    def embed_time(self, t: torch.Tensor) -> torch.Tensor:
        """``(B, 1)`` times in [0, 1] -> ``(B, embed_dim)``."""
        args = t * self.freqs
        return self.time_mlp(torch.cat([torch.sin(args), torch.cos(args)], dim=-1))

    def embed_conditions(self, c: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` -> ``(B, embed_dim)``."""
        return self.cond_mlp(c)

    def velocity(
        self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor, c_emb: torch.Tensor
    ) -> torch.Tensor:
        """``(B, V)`` velocity; ``c_emb`` is :meth:`embed_conditions` of ``c`` (reused per step)."""
        emb = nn.functional.silu(self.embed_time(t) + c_emb)
        h = self.inp(torch.cat([x, c], dim=1))
        for block in self.blocks:
            h = block(h, emb)
        return self.out(nn.functional.silu(self.out_norm(h)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.velocity(x, t, c, self.embed_conditions(c))


class FlowMatching(GenerativeModel):
    """Conditional flow matching on the transformed features.

    Options: :class:`FlowMatchingConfig`: ``hidden`` (512) and ``blocks`` (4) of the residual
    velocity MLP, ``time_dim`` (64, even) sinusoidal time features, ``embed_dim`` (128) of the
    time/condition embedding, ``dropout`` (0), ``sigma_min`` (0: rectified flow), and the
    sampler: ``steps`` (20) fixed steps of ``solver`` ``"euler"``, ``"midpoint"`` (default) or
    ``"rk4"`` (1, 2 and 4 network evaluations per step).
    """

    family: ClassVar[str] = "flow-matching"
    Config = FlowMatchingConfig
    options: FlowMatchingConfig

    @classmethod
    def required_transform(cls, options: FamilyConfig) -> str | None:
        """``layers`` with ``energy_network`` (it models the layer energies first)."""
        assert isinstance(options, FlowMatchingConfig)
        return "layers" if options.energy_network else None

    @classmethod
    def complete_config(cls, options: FamilyConfig, data: DataFacts) -> FamilyConfig:
        """Fill ``n_layers`` from the transform when ``energy_network`` is set."""
        assert isinstance(options, FlowMatchingConfig)
        return with_layer_count(options, data) if options.energy_network else options

    def __init__(
        self, config: dict[str, Any] | FlowMatchingConfig, n_voxels: int, n_conditions: int
    ) -> None:
        super().__init__(config, n_voxels, n_conditions)
        cfg = self.config
        common = {"time_dim": cfg["time_dim"], "embed_dim": cfg["embed_dim"],
                  "dropout": float(cfg["dropout"])}  # fmt: skip
        self.n_layers = 0
        if cfg["energy_network"]:
            n_layers = cfg["n_layers"]
            if not isinstance(n_layers, int) or not 1 <= n_layers < n_voxels:
                raise ConfigError(
                    "flow-matching model config: energy_network needs n_layers in [1, features) "
                    "(training fills it from the 'layers' transform)"
                )
            self.n_layers = n_layers
            self.energy_net = VelocityNet(
                n_layers, n_conditions, hidden=int(cfg["energy_hidden"]),
                blocks=int(cfg["energy_blocks"]), **common,
            )  # fmt: skip
        self.net = VelocityNet(
            n_voxels - self.n_layers,
            n_conditions + self.n_layers,
            hidden=cfg["hidden"],
            blocks=cfg["blocks"],
            **common,
        )

    # ------------------------------------------------------------------ training
    def loss(self, x: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        """Flow-matching loss: mean squared velocity error per feature. ``x (B, V)``, ``c (B, C)``.

        Uses the global torch RNG for ``t`` and ``z`` (Lightning seeds it).
        """
        if not self.n_layers:
            return {"loss": self._mse(self.net, x, c)}
        energy, shape = x[:, : self.n_layers], x[:, self.n_layers :]
        mse_energy = self._mse(self.energy_net, energy, c)
        mse_shape = self._mse(self.net, shape, torch.cat([c, energy], dim=1))
        return {"loss": mse_energy + mse_shape, "energy": mse_energy, "shape": mse_shape}

    def _mse(self, net: VelocityNet, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        sigma = float(self.config["sigma_min"])
        z = torch.randn_like(x)
        t = torch.rand(x.shape[0], 1, dtype=x.dtype, device=x.device)
        x_t = (1 - (1 - sigma) * t) * z + t * x
        target = x - (1 - sigma) * z
        return ((net(x_t, t, c) - target) ** 2).mean()

    # ------------------------------------------------------------------ sampling
    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, V)`` standard normal: the ODE's state at ``t = 0``."""
        return torch.randn(n, self.n_voxels, generator=generator)

    def decode(
        self,
        noise: torch.Tensor,
        c: torch.Tensor,
        *,
        steps: int | None = None,
        solver: str | None = None,
    ) -> torch.Tensor:
        """Integrate the ODE from ``noise (N, V)`` at t = 0 to features ``(N, V)`` at t = 1.

        ``c`` is ``(N, C)``. ``steps`` and ``solver`` override the configured sampler. The
        loop is plain Python over torch operations: tracing unrolls it (``steps`` times the
        solver's network evaluations) into a fixed-step ONNX graph with a dynamic batch.
        """
        steps = int(self.config["steps"] if steps is None else steps)
        solver = str(self.config["solver"] if solver is None else solver)
        _check_sampler(steps, solver)
        if not self.n_layers:
            return _integrate(self.net, noise, c, steps, solver)
        energy = _integrate(self.energy_net, noise[:, : self.n_layers], c, steps, solver)
        context = torch.cat([c, energy], dim=1)
        shape = _integrate(self.net, noise[:, self.n_layers :], context, steps, solver)
        return torch.cat([energy, shape], dim=1)


def _integrate(
    net: VelocityNet, noise: torch.Tensor, c: torch.Tensor, steps: int, solver: str
) -> torch.Tensor:
    """Fixed-step solution of ``dx/dt = net(x, t, c)`` from ``noise`` at t = 0 to t = 1."""
    c_emb = net.embed_conditions(c)  # independent of t: once per sample, not per step
    dt = 1.0 / steps

    def v(x: torch.Tensor, t: float) -> torch.Tensor:
        # a (1, 1) constant, broadcast over the batch (keeps the batch axis dynamic in ONNX)
        t_col = torch.full((1, 1), t, dtype=x.dtype, device=x.device)
        return net.velocity(x, t_col, c, c_emb)

    x = noise
    for i in range(steps):
        t = i * dt
        if solver == "euler":
            x = x + dt * v(x, t)
        elif solver == "midpoint":
            x = x + dt * v(x + 0.5 * dt * v(x, t), t + 0.5 * dt)
        else:  # rk4
            k1 = v(x, t)
            k2 = v(x + 0.5 * dt * k1, t + 0.5 * dt)
            k3 = v(x + 0.5 * dt * k2, t + 0.5 * dt)
            k4 = v(x + dt * k3, t + dt)
            x = x + (dt / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def _check_sampler(steps: Any, solver: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"flow-matching 'steps' must be a positive integer, not {steps!r}")
    if solver not in SOLVERS:
        raise ValueError(f"flow-matching 'solver' must be one of {list(SOLVERS)}, not {solver!r}")
