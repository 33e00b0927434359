"""Parameter spaces and samplers: which incident conditions a campaign simulates.

A :class:`ParameterSpace` has four dimensions (particle, energy, theta, phi). Each is either a
list of values or a continuous range with a distribution. A sampler turns the space into the
conditions of ``n`` events, deterministically in its seed:

- ``grid``: the Cartesian product of the values (ranges are cut into ``grid_points`` values,
  log-spaced for log-uniform ranges), events shared equally between points, point by point;
- ``random``: independent draws;
- ``sobol`` / ``lhs``: quasi-random points (``scipy.stats.qmc``) mapped through each dimension.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt, field_validator, model_validator
from scipy.stats import qmc

from twinforge.config import StrictModel, parse_energy
from twinforge.showers.conditions import Conditions

__all__ = [
    "PARTICLES",
    "AngleRange",
    "EnergyRange",
    "ParameterSpace",
    "SamplerConfig",
    "particle_pdg",
    "sample_conditions",
]

PARTICLES: dict[str, int] = {
    "e-": 11, "e+": -11, "gamma": 22, "mu-": 13, "mu+": -13,
    "pi+": 211, "pi-": -211, "proton": 2212, "neutron": 2112,
}  # fmt: skip


def particle_pdg(particle: str | int) -> int:
    """PDG id of a particle name (``"e-"``, ``"gamma"``) or of an integer id."""
    if isinstance(particle, int) and not isinstance(particle, bool):
        return particle
    text = str(particle).strip()
    if text in PARTICLES:
        return PARTICLES[text]
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"unknown particle {particle!r}; use a PDG id or one of {', '.join(PARTICLES)}"
        ) from None


class _Range(StrictModel):
    """A dimension given as a list of ``values`` or as a ``min``/``max`` range."""

    values: list[float] | None = None
    min: float | None = None
    max: float | None = None
    distribution: Literal["log-uniform", "uniform"] = "uniform"

    @model_validator(mode="after")
    def _check(self) -> _Range:
        if self.values is not None:
            if self.min is not None or self.max is not None:
                raise ValueError("give either 'values' or 'min'/'max', not both")
            if not self.values:
                raise ValueError("'values' is empty")
        elif self.min is None or self.max is None:
            raise ValueError("give 'values' or both 'min' and 'max'")
        elif self.max < self.min:
            raise ValueError(f"max ({self.max}) < min ({self.min})")
        return self

    def grid(self, points: int) -> np.ndarray:
        """The values, or ``points`` values spanning the range (log-spaced if log-uniform)."""
        if self.values is not None:
            return np.asarray(self.values, dtype=np.float64)
        assert self.min is not None and self.max is not None
        points = points if self.max > self.min else 1
        if self.distribution == "log-uniform":
            return np.geomspace(self.min, self.max, points)
        return np.linspace(self.min, self.max, points)

    def map_unit(self, u: np.ndarray) -> np.ndarray:
        """Map uniform numbers in [0, 1) onto the values or the range's distribution."""
        if self.values is not None:
            vals = np.asarray(self.values)
            return vals[np.minimum((u * len(vals)).astype(int), len(vals) - 1)]
        assert self.min is not None and self.max is not None
        if self.distribution == "log-uniform":
            return np.exp(np.log(self.min) + u * (np.log(self.max) - np.log(self.min)))
        return self.min + u * (self.max - self.min)


class EnergyRange(_Range):
    """Incident energy in MeV (text with units accepted): ``values`` or ``min``/``max`` with a
    ``log-uniform`` (default) or ``uniform`` distribution."""

    distribution: Literal["log-uniform", "uniform"] = "log-uniform"

    @field_validator("values", mode="before")
    @classmethod
    def _values(cls, value: object) -> object:
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        return [parse_energy(v) for v in items]

    @field_validator("min", "max", mode="before")
    @classmethod
    def _bound(cls, value: object) -> object:
        return None if value is None else parse_energy(value)  # type: ignore[arg-type]


class AngleRange(_Range):
    """An angle in rad: ``values`` or a ``min``/``max`` range (uniform by default)."""


class ParameterSpace(StrictModel):
    """The conditions a campaign may simulate."""

    particles: list[str | int] = Field(default_factory=lambda: ["e-"])
    energy: EnergyRange = Field(default_factory=lambda: EnergyRange(min=1e3, max=6.4e4))
    theta: AngleRange = Field(default_factory=lambda: AngleRange(values=[0.0]))
    phi: AngleRange = Field(default_factory=lambda: AngleRange(values=[0.0]))

    @field_validator("particles")
    @classmethod
    def _particles(cls, value: list[str | int]) -> list[str | int]:
        if not value:
            raise ValueError("at least one particle is needed")
        for p in value:
            particle_pdg(p)
        return value

    @property
    def pdgs(self) -> list[int]:
        return [particle_pdg(p) for p in self.particles]


class SamplerConfig(StrictModel):
    """How points are drawn from the space."""

    kind: Literal["grid", "random", "sobol", "lhs"] = "random"
    seed: int = Field(0, ge=0)
    grid_points: PositiveInt = Field(5, description="grid: points per continuous range")


def sample_conditions(space: ParameterSpace, sampler: SamplerConfig, n: int) -> Conditions:
    """The conditions of ``n`` events drawn from ``space`` by ``sampler`` (deterministic)."""
    if n < 1:
        raise ValueError(f"need at least one event, got {n}")
    pdgs = np.asarray(space.pdgs)
    if sampler.kind == "grid":
        points = list(
            itertools.product(
                pdgs,
                space.energy.grid(sampler.grid_points),
                space.theta.grid(sampler.grid_points),
                space.phi.grid(sampler.grid_points),
            )
        )
        per_point = math.ceil(n / len(points))
        table = np.repeat(np.asarray(points, dtype=np.float64), per_point, axis=0)[:n]
        return Conditions.make(table[:, 1], table[:, 0].astype(np.int32), table[:, 2], table[:, 3])
    if sampler.kind == "random":
        u = np.random.default_rng(sampler.seed).random((n, 4))
    else:
        engine = (
            qmc.Sobol(d=4, scramble=True, rng=sampler.seed)
            if sampler.kind == "sobol"
            else qmc.LatinHypercube(d=4, rng=sampler.seed)
        )
        with warnings.catch_warnings():  # Sobol prefers powers of 2; any n is still fine
            warnings.simplefilter("ignore", UserWarning)
            u = engine.random(n)
    pdg = pdgs[np.minimum((u[:, 0] * len(pdgs)).astype(int), len(pdgs) - 1)]
    return Conditions.make(
        space.energy.map_unit(u[:, 1]),
        pdg,
        space.theta.map_unit(u[:, 2]),
        space.phi.map_unit(u[:, 3]),
    )
