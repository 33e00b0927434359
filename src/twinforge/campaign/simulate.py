"""One-off simulations into one file (what ``twinforge simulate`` runs).

Campaigns are the way to run many jobs; this is the quick path: one process, one file, points
simulated in batches so that progress can be shown. Point ``i`` of a run with seed ``s`` is
seeded from ``(s, i)`` whatever the batching (for codes that seed per point, such as Geant4),
so the file depends only on the config.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from twinforge.campaign.config import SimulateConfig
from twinforge.showers.io import check_writable_target
from twinforge.simulation.base import RunResult

__all__ = ["run_simulation"]


def run_simulation(
    config: SimulateConfig,
    *,
    batch_size: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Simulate ``config.n_points`` points into ``config.output`` (atomic); return its path.

    ``on_progress(done, total)`` is called after each batch.
    """
    simulator = config.make_simulator()
    out = Path(config.output)
    check_writable_target(out, overwrite=config.overwrite)
    points = config.points()
    n = config.n_points
    batch_size = batch_size or simulator.batch_size(n)
    parts: list[RunResult] = []
    for start in range(0, n, batch_size):
        part = {k: v[start : start + batch_size] for k, v in points.items()}
        parts.append(simulator.run(part, config.seed, first_index=start))
        if on_progress:
            on_progress(min(start + batch_size, n), n)
    result = RunResult(
        {k: np.concatenate([p.outputs[k] for p in parts]) for k in parts[0].outputs},
        {
            k: [r for p in parts for r in (p.records or {}).get(k, [])]
            for k in parts[0].records or {}
        },
    )
    provenance = {
        **simulator.provenance(),
        "seed": config.seed,
        "simulate_config": config.model_dump(mode="json"),
    }
    simulator.format.write(out, simulator, points, result, provenance, overwrite=config.overwrite)
    return out
