"""One-off simulations into a shower file (what ``twinforge simulate`` runs).

Campaigns are the way to run many jobs; this is the quick path: one process, one file, events
simulated in batches so that progress can be shown. With Geant4, shower ``i`` of a run with
seed ``s`` is seeded from ``(s, i)`` whatever the batching, so the file depends only on the
config.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twinforge.campaign.config import SimulateConfig
from twinforge.campaign.jobs import simulate
from twinforge.detector.config import load_detector
from twinforge.showers.file import ShowerWriter
from twinforge.showers.io import check_writable_target

__all__ = ["run_simulation"]


def run_simulation(
    config: SimulateConfig,
    *,
    batch_size: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Simulate ``config.n_events`` showers into ``config.output`` (atomic); return its path.

    ``on_progress(done, total)`` is called after each batch.
    """
    detector = load_detector(config.detector)
    if config.root_output is not None:
        check_writable_target(Path(config.root_output), overwrite=config.overwrite)
    cond = config.conditions()
    n = len(cond)
    if config.root_output is not None or batch_size is None:
        batch_size = n if config.root_output is not None else max(1, math.ceil(n / 50))
    provenance: dict[str, Any] = {}
    with ShowerWriter(config.output, detector.binning(), overwrite=config.overwrite) as writer:
        for start in range(0, n, batch_size):
            part = cond[start : start + batch_size]
            showers, provenance = simulate(
                config.simulator, detector, config.physics, part, config.seed,
                first_index=start, root_path=config.root_output,
            )  # fmt: skip
            writer.append(part, showers)
            if on_progress:
                on_progress(start + len(part), n)
        writer.set_provenance(
            {
                **provenance,
                "detector": detector.name,
                "detector_config": detector.model_dump(mode="json"),
                "seed": config.seed,
                "simulate_config": config.model_dump(mode="json"),
            }
        )
    return Path(config.output)
