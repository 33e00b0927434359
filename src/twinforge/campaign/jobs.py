"""One campaign job: run the simulator on a block of points and write its file, on a worker.

:func:`run_job` is what executors ship to workers. It is a plain function of a plain payload
(numbers, strings, NumPy arrays, the simulator's self-contained options), so Dask can send it
to any worker process. A worker keeps one simulator per set-up and reuses it for every job
(Geant4 keeps one run manager per process; Xsuite compiles its kernels once).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinforge.catalog.hashing import sha256_file
from twinforge.errors import ShowerFileError, TwinforgeError
from twinforge.simulation.base import Simulator
from twinforge.space import Points

__all__ = ["JobOutcome", "JobPayload", "run_job", "shard_matches", "worker_simulator"]


@dataclass(frozen=True)
class JobPayload:
    """Everything a worker needs to run one job."""

    campaign: str
    key: str
    index: int
    seed: int
    simulator: str  # registry name
    options: dict[str, Any]  # Simulator.worker_options(): self-contained
    points: Points
    output: str
    compression: str = "gzip"

    @property
    def n_points(self) -> int:
        return len(next(iter(self.points.values())))


@dataclass(frozen=True)
class JobOutcome:
    """What a finished job reports back to the journal."""

    key: str
    output: str
    sha256: str
    n_points: int
    seconds: float
    worker: str
    body_seconds: float = 0.0  # the simulator's run() alone


_SIMULATORS: dict[tuple[str, str], Simulator] = {}


def worker_simulator(name: str, options: dict[str, Any]) -> Simulator:
    """This process's simulator for ``name`` and ``options``, created on first use."""
    key = (name, json.dumps(options, sort_keys=True))
    if key not in _SIMULATORS:
        from twinforge.simulation import registry

        _SIMULATORS[key] = registry.create(name, options)
    return _SIMULATORS[key]


def run_job(payload: JobPayload) -> JobOutcome:
    """Run the job's points and write its file atomically; return checksum and timing."""
    t0 = time.perf_counter()
    simulator = worker_simulator(payload.simulator, payload.options)
    t1 = time.perf_counter()
    out = Path(payload.output)
    result = simulator.run(payload.points, payload.seed, workdir=out.with_suffix(".work"))
    body = time.perf_counter() - t1
    provenance = {
        **simulator.provenance(),
        "campaign": payload.campaign,
        "job": payload.key,
        "job_index": payload.index,
        "seed": payload.seed,
    }
    n = simulator.format.write(
        out, simulator, payload.points, result, provenance, compression=payload.compression
    )
    return JobOutcome(
        key=payload.key,
        output=str(out),
        sha256=sha256_file(out),
        n_points=n,
        seconds=time.perf_counter() - t0,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        body_seconds=body,
    )


def shard_matches(path: Path, payload: JobPayload, simulator: Simulator) -> bool:
    """True when ``path`` is a complete file written by this very job (key, seed, points).

    Files appear under their final name only once complete (atomic rename), so one left by a
    campaign killed before its journal was updated can be adopted instead of re-simulated.
    """
    if not path.is_file():
        return False
    try:
        n, prov = simulator.format.describe(path)
        if (
            prov.get("job") != payload.key
            or prov.get("seed") != payload.seed
            or prov.get("campaign") != payload.campaign
            or n != payload.n_points
        ):
            return False
        for name, column in payload.points.items():
            stored: NDArray[Any] = simulator.format.input_column(path, name)
            if not np.array_equal(stored, column):
                return False
        return True
    except (ShowerFileError, TwinforgeError, OSError, KeyError):
        return False
