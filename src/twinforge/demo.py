"""The end-to-end demo behind ``make demo``: the pipeline on the embedded defaults.

Today's chain: write a shower file of the default ``siw`` detector -> register it in a
catalogue -> verify its checksums -> export it as an RO-Crate. Later stages join as they land.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from twinforge.catalog import Catalog, export_rocrate
from twinforge.errors import TwinforgeError
from twinforge.showers import ShowerFile
from twinforge.showers.synthetic import SyntheticConfig, write_synthetic_file

__all__ = ["DemoResult", "run_demo"]

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What the demo produced: paths, catalogue ids, and wall time per step (s)."""

    workdir: Path
    catalog: Path
    shower_file: Path | None = None
    dataset_id: str | None = None
    crate: Path | None = None
    steps: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_demo(
    workdir: str | Path = "demo-output",
    *,
    n_events: int = 2000,
    fresh: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the demo chain in ``workdir`` (emptied first when ``fresh``); return what it made."""
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

    @contextlib.contextmanager
    def step(name: str) -> Iterator[None]:
        if on_step:
            on_step(name)
        t0 = time.perf_counter()
        yield
        result.steps[name] = time.perf_counter() - t0

    with Catalog.open(result.catalog) as catalog:
        with step("showers (synthetic test generator, siw detector)"):
            config = SyntheticConfig(
                detector="siw", n_events=n_events, energy_min="1GeV", energy_max="64GeV", seed=1
            )
            shower_file = write_synthetic_file(config, workdir / "showers-siw.h5")
            result.shower_file = shower_file
            result.notes.append(
                "showers come from the synthetic TEST generator (parametrised, not Geant4)"
            )

        with step("register in the catalogue"):
            with ShowerFile(shower_file) as f:
                n, provenance = f.n_events, f.provenance
            dataset = catalog.add_dataset(
                "demo-siw-synthetic",
                description="Demo showers of the siw detector (synthetic test generator)",
                provenance=provenance,
                files=[(shower_file, n)],
            )
            result.dataset_id = dataset.global_id

        with step("verify checksums"):
            problems = [r for r in catalog.verify(dataset.global_id) if not r.ok]
            if problems:
                bad = problems[0]
                raise TwinforgeError(f"verification failed: {bad.path}: {bad.status}")

        with step("export RO-Crate"):
            result.crate = export_rocrate(catalog, dataset.global_id, workdir / "crate")

    return result
