"""The campaign config (``kind: campaign``): what to simulate, how much, where, with what."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt, model_validator

from twinforge.campaign.executors import ExecutorConfig
from twinforge.campaign.space import ParameterSpace, SamplerConfig, sample_conditions
from twinforge.config import StrictModel
from twinforge.detector.config import DetectorConfig, load_detector
from twinforge.showers.conditions import Conditions

__all__ = ["CampaignConfig", "SimulateConfig", "job_seed"]


class CampaignConfig(StrictModel):
    """A simulation campaign: parameter space + sampler + simulator + executor + journal.

    Jobs are consecutive blocks of ``events_per_job`` events of the sampled conditions. Each job
    writes its own shard under ``output_dir/shards``; ``twinforge campaign merge`` joins them.
    """

    kind: Literal["campaign"] = "campaign"
    name: str = Field(description="campaign name; its journal in the catalogue is keyed by it")
    detector: str = Field("siw", description="preset name or detector YAML")
    simulator: Literal["geant4", "synthetic-test"] = "geant4"
    physics: str = Field(
        "auto",
        description="Geant4 physics list name, or 'auto' (standard list when data sets are "
        "installed, the data-free EM list otherwise)",
    )
    space: ParameterSpace = Field(default_factory=ParameterSpace)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    total_events: PositiveInt = 1000
    events_per_job: PositiveInt = 100
    seed: int = Field(
        0, ge=0, description="master seed; job seeds derive from it and the job index"
    )
    max_retries: int = Field(2, ge=0, description="re-runs of a failed job before giving up")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    output_dir: str = Field("campaigns/{name}", description="shards and merged file go here")
    compression: Literal["gzip", "lzf", "none"] = "gzip"

    @model_validator(mode="after")
    def _check(self) -> CampaignConfig:
        if not self.name or "/" in self.name or self.name.strip() != self.name:
            raise ValueError(f"name must be a non-empty word without '/', got {self.name!r}")
        return self

    @property
    def n_jobs(self) -> int:
        return math.ceil(self.total_events / self.events_per_job)

    def output_path(self, base: Path | None = None) -> Path:
        """The campaign directory (``{name}`` expanded; relative to ``base`` or the cwd)."""
        path = Path(self.output_dir.format(name=self.name))
        return path if path.is_absolute() or base is None else base / path

    def load_detector(self) -> DetectorConfig:
        return load_detector(self.detector)

    def conditions(self) -> Conditions:
        """Conditions of all ``total_events`` events (deterministic in the sampler seed)."""
        return sample_conditions(self.space, self.sampler, self.total_events)

    def job_slices(self) -> list[slice]:
        """Event range of each job."""
        n, k = self.total_events, self.events_per_job
        return [slice(i, min(i + k, n)) for i in range(0, n, k)]


def job_seed(master: int, index: int) -> int:
    """A 31-bit Geant4-friendly seed for job ``index``, independent streams per job."""
    state = np.random.SeedSequence([master, index, 0x7F4A]).generate_state(1)[0]
    return int(state) & 0x7FFFFFFF or 1


class SimulateConfig(StrictModel):
    """A one-off simulation into one shower file (``twinforge simulate --config``).

    For more than a few thousand showers, or anything that must survive a crash, use a campaign.
    """

    kind: Literal["simulate"] = "simulate"
    detector: str = Field("siw", description="preset name or detector YAML")
    simulator: Literal["geant4", "synthetic-test"] = "geant4"
    physics: str = "auto"
    space: ParameterSpace = Field(default_factory=ParameterSpace)
    n_events: PositiveInt = 100
    seed: int = Field(0, ge=0)
    output: str = Field(description="shower file (HDF5) to write")
    root_output: str | None = Field(None, description="also write Geant4's ROOT ntuple here")
    overwrite: bool = False

    def conditions(self) -> Conditions:
        """The events' conditions: independent draws from ``space`` (seeded by ``seed``)."""
        sampler = SamplerConfig(kind="random", seed=self.seed)
        return sample_conditions(self.space, sampler, self.n_events)
