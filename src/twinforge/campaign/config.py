"""The campaign config (``kind: campaign``): what to simulate, how much, where, with what.

The simulator is chosen by name among the installed ones (``twinforge simulators``), with its
own options beside the name::

    simulator: {name: geant4, detector: siw, physics: auto}
    space: {energy: {min: 1 GeV, max: 64 GeV}}
    total_points: 20000
    points_per_job: 100

twinforge 0.1's spellings still load: ``detector``/``physics`` at the top level (moved into the
simulator's options), ``total_events``/``events_per_job``, ``particles: [...]``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    AliasChoices,
    Field,
    PositiveInt,
    PrivateAttr,
    field_validator,
    model_serializer,
    model_validator,
)

from twinforge.active.config import AdaptiveSamplerConfig, XoptSamplerConfig
from twinforge.campaign.executors import ExecutorConfig
from twinforge.config import StrictModel
from twinforge.errors import ConfigError
from twinforge.simulation.base import Simulator
from twinforge.space import ParameterSpace, Points, ResolvedSpace, SamplerConfig, sample_points

__all__ = ["CampaignConfig", "SimulateConfig", "SimulatorChoice", "job_seed"]


class SimulatorChoice(StrictModel):
    """A simulator by name with its options: ``geant4`` or ``{name: geant4, physics: auto}``.

    The options are validated by the simulator's own model (unknown keys rejected by name) and
    kept in their normalised form, defaults filled in.
    """

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    _simulator: Simulator | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict) and set(data) - {"name", "options"}:
            data = dict(data)
            if "name" not in data:
                raise ValueError("give the simulator's 'name' (twinforge simulators lists them)")
            return {"name": data.pop("name"), "options": data}
        return data

    @model_validator(mode="after")
    def _create(self) -> SimulatorChoice:
        from twinforge.simulation import registry

        simulator = registry.create(self.name, self.options)
        normalised = simulator.options.model_dump(mode="json")
        if normalised != self.options:
            object.__setattr__(self, "options", normalised)  # no re-validation loop
        self._simulator = simulator
        return self

    @model_serializer(mode="plain")
    def _dump(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}

    @property
    def simulator(self) -> Simulator:
        """The simulator instance (created once)."""
        assert self._simulator is not None
        return self._simulator


def _move_legacy_options(data: Any) -> Any:
    """twinforge 0.1 had ``detector`` and ``physics`` at the top level."""
    if not isinstance(data, dict) or not ({"detector", "physics"} & set(data)):
        return data
    data = dict(data)
    choice = data.get("simulator", "geant4")
    choice = {"name": choice} if isinstance(choice, str) else dict(choice)
    if "options" in choice:
        choice = {"name": choice.get("name"), **choice["options"]}
    for key in ("detector", "physics"):
        if key not in data:
            continue
        value = data.pop(key)
        if key == "physics" and value == "auto":  # the default everywhere; not every
            continue  # simulator has physics
        if key in choice and choice[key] != value:
            raise ValueError(f"'{key}' is given twice, at the top level and under simulator")
        choice[key] = value
    data["simulator"] = choice
    return data


class _Simulates(StrictModel):
    """What a campaign and a one-off simulation share: the simulator and the space."""

    simulator: SimulatorChoice = Field(
        default_factory=lambda: SimulatorChoice(name="geant4"),
        description="an installed simulator's name, or {name: ..., <its options>}",
    )
    space: ParameterSpace = Field(default_factory=ParameterSpace)
    _space: ResolvedSpace | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _move_legacy_options(data)

    @model_validator(mode="after")
    def _resolve(self) -> _Simulates:
        simulator = self.simulator.simulator
        self._space = self.space.resolve(simulator.parameters())
        simulator.check_space(self._space)
        # stored in canonical form (numbers in the parameters' units, defaults filled in), so
        # that spellings of one space compare equal when a campaign is resumed
        object.__setattr__(self, "space", self._space.canonical())
        return self

    def make_simulator(self) -> Simulator:
        """The configured simulator."""
        return self.simulator.simulator

    @property
    def resolved_space(self) -> ResolvedSpace:
        """The space checked against the simulator's parameters, defaults filled in."""
        assert self._space is not None
        return self._space


class CampaignConfig(_Simulates):
    """A simulation campaign: simulator + parameter space + sampler + executor + journal.

    Jobs are consecutive blocks of ``points_per_job`` points of the sampled space. Each job
    writes its own file under ``output_dir/shards``; ``twinforge campaign merge`` joins them.
    """

    kind: Literal["campaign"] = "campaign"
    name: str = Field(description="campaign name; its journal in the catalogue is keyed by it")
    sampler: SamplerConfig | AdaptiveSamplerConfig | XoptSamplerConfig = Field(
        default_factory=SamplerConfig,
        description="grid | random | sobol | lhs (drawn up front), adaptive | xopt (chosen as "
        "results come in: one point per job, points_per_job replicates)",
    )
    total_points: PositiveInt = Field(
        1000,
        validation_alias=AliasChoices("total_points", "total_events"),
        description="points (showers, for a calorimeter) in the campaign",
    )
    points_per_job: PositiveInt = Field(
        100, validation_alias=AliasChoices("points_per_job", "events_per_job")
    )
    seed: int = Field(
        0, ge=0, description="master seed; job seeds derive from it and the job index"
    )
    max_retries: int = Field(2, ge=0, description="re-runs of a failed job before giving up")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    output_dir: str = Field("campaigns/{name}", description="shards and merged file go here")
    compression: Literal["gzip", "lzf", "none"] = "gzip"

    @field_validator("sampler", mode="before")
    @classmethod
    def _sampler(cls, value: Any) -> Any:
        """Dispatch on ``kind`` (one clear error instead of one per union member)."""
        if isinstance(value, dict):
            kind = value.get("kind")
            if kind == "adaptive":
                return AdaptiveSamplerConfig.model_validate(value)
            if kind == "xopt":
                return XoptSamplerConfig.model_validate(value)
            return SamplerConfig.model_validate(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> CampaignConfig:
        if not self.name or "/" in self.name or self.name.strip() != self.name:
            raise ValueError(f"name must be a non-empty word without '/', got {self.name!r}")
        if self.adaptive:
            assert isinstance(self.sampler, AdaptiveSamplerConfig | XoptSamplerConfig)
            simulator = self.make_simulator()
            scalars = [o.name for o in simulator.format.observables(simulator)]
            for name in self.sampler.outputs:
                if name not in scalars:
                    raise ValueError(
                        f"sampler: {name!r} is not a scalar output of simulator "
                        f"{simulator.name} ({', '.join(scalars) or 'it has none'})"
                    )
        return self

    @property
    def adaptive(self) -> bool:
        """Whether points are chosen as results come in (no up-front design)."""
        return not isinstance(self.sampler, SamplerConfig)

    @property
    def n_jobs(self) -> int:
        return math.ceil(self.total_points / self.points_per_job)

    def output_path(self, base: Path | None = None) -> Path:
        """The campaign directory (``{name}`` expanded; relative to ``base`` or the cwd)."""
        path = Path(self.output_dir.format(name=self.name))
        return path if path.is_absolute() or base is None else base / path

    def points(self) -> Points:
        """All ``total_points`` points (deterministic in the sampler seed).

        Raises:
            ConfigError: an adaptive campaign, whose points are not known in advance.
        """
        if not isinstance(self.sampler, SamplerConfig):
            raise ConfigError(f"campaign {self.name!r} is adaptive: its points are chosen as "
                              "it runs")  # fmt: skip
        return sample_points(self.resolved_space, self.sampler, self.total_points)

    def job_slices(self) -> list[slice]:
        """Point range of each job."""
        n, k = self.total_points, self.points_per_job
        return [slice(i, min(i + k, n)) for i in range(0, n, k)]


def job_seed(master: int, index: int) -> int:
    """A 31-bit Geant4-friendly seed for job ``index``, independent streams per job."""
    state = np.random.SeedSequence([master, index, 0x7F4A]).generate_state(1)[0]
    return int(state) & 0x7FFFFFFF or 1


class SimulateConfig(_Simulates):
    """A one-off simulation into one file (``twinforge simulate --config``).

    For more than a few thousand points, or anything that must survive a crash, use a campaign.
    """

    kind: Literal["simulate"] = "simulate"
    n_points: PositiveInt = Field(100, validation_alias=AliasChoices("n_points", "n_events"))
    seed: int = Field(0, ge=0)
    output: str = Field(description="file (HDF5) to write")
    overwrite: bool = False

    @model_validator(mode="before")
    @classmethod
    def _legacy_root(cls, data: Any) -> Any:
        """twinforge 0.1's top-level ``root_output`` is a Geant4 option now."""
        if isinstance(data, dict) and "root_output" in data:
            data = _move_legacy_options(data)
            data = dict(data)
            root = data.pop("root_output")
            if root is not None:
                choice = data.get("simulator", "geant4")
                choice = {"name": choice} if isinstance(choice, str) else dict(choice)
                data["simulator"] = {**choice, "root_output": root}
        return data

    def points(self) -> Points:
        """The points: independent draws from ``space`` (seeded by ``seed``)."""
        sampler = SamplerConfig(kind="random", seed=self.seed)
        return sample_points(self.resolved_space, sampler, self.n_points)
