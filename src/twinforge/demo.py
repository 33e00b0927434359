"""The end-to-end demo behind ``make demo``: the pipeline on the embedded defaults.

Today's chain: a small Geant4 campaign on the default ``siw`` detector (Dask, journalled in a
catalogue) -> merged, registered dataset -> checksums verified -> RO-Crate export. Later stages
(training, validation, deployment) join as they land.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from twinforge.campaign import CampaignConfig, CampaignProgress, merge_campaign, run_campaign
from twinforge.catalog import Catalog, export_rocrate
from twinforge.errors import TwinforgeError
from twinforge.showers import ShowerFile

__all__ = ["DemoResult", "run_demo"]

log = logging.getLogger(__name__)


#: The demo campaign: electrons at four energies in the siw detector, 2 Dask workers.
DEMO_CAMPAIGN: dict[str, Any] = {
    "kind": "campaign",
    "name": "demo-siw-electrons",
    "detector": "siw",
    "simulator": "geant4",
    "physics": "auto",
    "space": {"particles": ["e-"], "energy": {"values": ["1GeV", "2GeV", "5GeV", "10GeV"]}},
    "sampler": {"kind": "grid", "seed": 1},
    "total_events": 400,
    "events_per_job": 25,
    "seed": 2026,
    "executor": {"kind": "dask", "workers": 2},
    "output_dir": "campaigns/{name}",
}


@dataclass
class DemoResult:
    """What the demo produced: paths, catalogue ids, figures, and wall time per step (s)."""

    workdir: Path
    catalog: Path
    shower_file: Path | None = None
    dataset_id: str | None = None
    crate: Path | None = None
    steps: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_demo(
    workdir: str | Path = "demo-output",
    *,
    n_events: int | None = None,
    fresh: bool = True,
    on_step: Callable[[str], None] | None = None,
    on_progress: Callable[[CampaignProgress], None] | None = None,
    overrides: dict[str, Any] | None = None,
) -> DemoResult:
    """Run the demo chain in ``workdir`` (emptied first when ``fresh``); return what it made.

    ``n_events`` and ``overrides`` (campaign config keys) shrink or change the campaign, e.g.
    ``{"detector": "tiny", "executor": {"kind": "local"}}`` for a quick smoke run.
    """
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise TwinforgeError(f"{workdir}: exists and is not a directory; choose another --workdir")
    if fresh and workdir.exists():
        if not (workdir / ".twinforge-demo").exists() and any(workdir.iterdir()):
            raise TwinforgeError(
                f"{workdir}: exists and is not a demo directory; choose another --workdir"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / ".twinforge-demo").touch()
    result = DemoResult(workdir=workdir, catalog=workdir / "catalog.sqlite")
    data = {**DEMO_CAMPAIGN, **(overrides or {})}
    if n_events is not None:
        data["total_events"] = n_events
    data["output_dir"] = str(workdir.resolve() / "campaigns" / "{name}")
    config = CampaignConfig.model_validate(data)
    (workdir / "campaign.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))

    @contextlib.contextmanager
    def step(name: str) -> Iterator[None]:
        if on_step:
            on_step(name)
        t0 = time.perf_counter()
        yield
        result.steps[name] = time.perf_counter() - t0

    with Catalog.open(result.catalog) as catalog:
        with step(f"{config.simulator} campaign: {config.total_events} showers, {config.detector}"):
            report = run_campaign(config, catalog, on_progress=on_progress)
            if not report.complete:
                first = next(iter(report.failed.items()))
                raise TwinforgeError(f"demo campaign failed: {first[0]}: {first[1]}")
            result.figures["showers_per_second"] = report.showers / report.seconds
            result.figures["executor"] = report.executor

        with step("merge shards and register the dataset"):
            dataset = merge_campaign(catalog, config)
            result.dataset_id = dataset.global_id
            result.shower_file = Path(catalog.files(dataset.global_id)[0].path)

        with step("verify checksums"):
            problems = [r for r in catalog.verify(dataset.global_id) if not r.ok]
            if problems:
                bad = problems[0]
                raise TwinforgeError(f"verification failed: {bad.path}: {bad.status}")

        with step("export RO-Crate"):
            result.crate = export_rocrate(catalog, dataset.global_id, workdir / "crate")

    with ShowerFile(result.shower_file) as f:
        cond, showers = f.read()
        result.figures["physics"] = f.provenance.get("physics", "")
    response = showers.sum(axis=1, dtype=np.float64) / cond.energy
    result.figures["visible_fraction"] = {
        f"{e / 1000:g} GeV": float(response[cond.energy == e].mean())
        for e in np.unique(cond.energy)
    }
    if config.simulator != "geant4":
        result.notes.append("showers come from the synthetic TEST generator, not Geant4")
    elif "datafree" in str(result.figures["physics"]):
        result.notes.append(
            "Geant4 ran with the data-free EM physics list (no Geant4 data sets here): "
            "electromagnetic showers only; see docs/simulation.md for what differs"
        )
    return result
