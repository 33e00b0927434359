"""One campaign job: simulate a block of events and write them as a shard, on a worker.

:func:`run_job` is what executors ship to workers. It is a plain function of a plain payload
(numbers, strings, NumPy arrays), so Dask can send it to any worker process. Geant4 keeps one
run manager per process: a worker reuses its session for every job of the same detector.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinforge.catalog.hashing import sha256_file
from twinforge.detector.config import DetectorConfig
from twinforge.errors import ShowerFileError, SimulationError
from twinforge.showers.conditions import Conditions
from twinforge.showers.file import ShowerFile, ShowerWriter

__all__ = ["JobOutcome", "JobPayload", "run_job", "shard_matches", "simulate"]


@dataclass(frozen=True)
class JobPayload:
    """Everything a worker needs to run one job."""

    campaign: str
    key: str
    index: int
    seed: int
    detector: dict[str, Any]  # DetectorConfig.model_dump(mode="json")
    simulator: str  # "geant4" | "synthetic-test"
    physics: str
    energy: NDArray[np.float64]
    pdg: NDArray[np.int32]
    theta: NDArray[np.float64]
    phi: NDArray[np.float64]
    output: str
    compression: str = "gzip"

    @property
    def conditions(self) -> Conditions:
        return Conditions(self.energy, self.pdg, self.theta, self.phi)


@dataclass(frozen=True)
class JobOutcome:
    """What a finished job reports back to the journal."""

    key: str
    output: str
    sha256: str
    n_events: int
    seconds: float
    worker: str


def simulate(
    simulator: str,
    detector: DetectorConfig,
    physics: str,
    conditions: Conditions,
    seed: int,
    *,
    first_index: int = 0,
    root_path: str | None = None,
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Showers ``(N, V)`` (MeV) and provenance from the named simulator, in this process.

    ``first_index`` is the index of the first shower in the whole run (Geant4 seeds shower
    ``i`` from ``(seed, first_index + i)``); ``root_path`` also writes Geant4's ROOT ntuple.
    """
    if simulator == "synthetic-test":
        from twinforge.showers.synthetic import synthetic_provenance, synthetic_showers

        if root_path is not None:
            raise SimulationError("ROOT output needs the geant4 simulator")
        batch_seed = int(np.random.SeedSequence([seed, first_index]).generate_state(1)[0])
        return synthetic_showers(detector, conditions, batch_seed), synthetic_provenance()
    from twinforge.simulation.geant4 import Geant4Options, get_session

    session = get_session(detector, Geant4Options(physics=physics))
    showers = session.simulate(conditions, seed, first_index=first_index, root_path=root_path)
    return showers, session.provenance()


def run_job(payload: JobPayload) -> JobOutcome:
    """Simulate the job's events and write its shard atomically; return checksum and timing."""
    t0 = time.perf_counter()
    detector = DetectorConfig.model_validate(payload.detector)
    conditions = payload.conditions
    showers, provenance = simulate(
        payload.simulator, detector, payload.physics, conditions, payload.seed
    )
    provenance = {
        **provenance,
        "detector": detector.name,
        "campaign": payload.campaign,
        "job": payload.key,
        "job_index": payload.index,
        "seed": payload.seed,
    }
    out = Path(payload.output)
    with ShowerWriter(
        out,
        detector.binning(),
        provenance,
        overwrite=True,
        compression=payload.compression,  # type: ignore[arg-type]
    ) as writer:
        writer.append(conditions, showers)
    return JobOutcome(
        key=payload.key,
        output=str(out),
        sha256=sha256_file(out),
        n_events=len(conditions),
        seconds=time.perf_counter() - t0,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )


def shard_matches(path: Path, payload: JobPayload) -> bool:
    """True when ``path`` is a complete shard written by this very job (key, seed, events).

    Shards appear under their final name only once complete (atomic rename), so a shard left by
    a campaign killed before its journal was updated can be adopted instead of re-simulated.
    """
    try:
        with ShowerFile(path) as f:
            prov = f.provenance
            if (
                prov.get("job") != payload.key
                or prov.get("seed") != payload.seed
                or prov.get("campaign") != payload.campaign
                or f.n_events != len(payload.energy)
            ):
                return False
            return bool(np.array_equal(f.conditions().energy, payload.energy))
    except (ShowerFileError, OSError):
        return False
