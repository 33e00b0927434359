"""Per-job overhead of each simulator backend on Dask, and Xsuite campaign throughput.

    .venv/bin/python benchmarks/campaign_overhead.py overhead --jobs 200 --out overhead.json
    .venv/bin/python benchmarks/campaign_overhead.py xsuite --points 1000 --out xsuite.json

``overhead``: for each backend a campaign of ``--jobs`` one-point jobs on a Dask LocalCluster
of 2 workers. Every job records its time in the worker (``seconds``) and the simulator's own
``run`` (``body_seconds``). The overhead beyond the body has two parts:

- in the worker: creating (first job of a worker only) or reusing the simulator, writing the
  job's file atomically, its SHA-256; the median over jobs that are not a worker's first;
- around the worker: Dask scheduling, result transfer, the journal's two transactions per job,
  the progress callback: the workers' idle time per job,
  ``((wall - cluster start-up) * workers - sum(seconds)) / jobs``.

Their sum is the per-job overhead a user pays beyond the simulation (target: < 50 ms). The
first job of each worker also pays the simulator's set-up (Geant4 geometry, Xsuite import and
line build), reported separately.

``xsuite``: the shipped FODO example's campaign of ``--points`` points (50 per job) on 1 and 2
workers: points/s with and without the cluster start-up.

Run by hand on an idle machine; figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from twinforge.campaign import CampaignConfig, run_campaign
from twinforge.catalog import Catalog
from twinforge.showers.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def _madng() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "examples" / "madng-fodo.yaml").read_text())
    sim = data["simulator"]
    sim["template_file"] = str(ROOT / "examples" / "madng" / "fodo.mad")
    return {"simulator": sim, "space": {"k1f": 0.3, "k1d": -0.3}}


def _xsuite() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "examples" / "xsuite-fodo.yaml").read_text())
    return {"simulator": data["simulator"], "space": data["space"]}


BACKENDS = {
    "synthetic-test": lambda: {"simulator": {"name": "synthetic-test", "detector": "tiny"}},
    "geant4": lambda: {
        "simulator": {"name": "geant4", "detector": "tiny"},
        "space": {"energy": "1 GeV"},
    },
    "xsuite": _xsuite,
    "command (MAD-NG)": _madng,
}


def _campaign(work: Path, name: str, base: dict[str, Any], **kw: Any) -> CampaignConfig:
    return CampaignConfig.model_validate(
        {"name": name, **base, "output_dir": str(work / "{name}"), **kw}
    )


def overhead(work: Path, jobs: int, workers: int) -> dict[str, Any]:
    rows = {}
    for label, make in BACKENDS.items():
        cfg = _campaign(
            work, label.split()[0], make(), total_points=jobs, points_per_job=1,
            executor={"kind": "dask", "workers": workers},
        )  # fmt: skip
        with Catalog.open(work / "catalog.sqlite") as cat:
            report = run_campaign(cfg, cat)
            assert report.complete, report.failed
            records = cat.jobs(report.campaign_id)
        timing = [
            (j.worker, j.provenance["seconds"], j.provenance["body_seconds"]) for j in records
        ]
        by_worker: dict[str, list[tuple[float, float]]] = {}
        for worker, seconds, body in sorted(timing, key=lambda t: t[0] or ""):
            by_worker.setdefault(worker or "", []).append((seconds, body))
        first = [max(v) for v in by_worker.values()]  # a worker's slowest job: the set-up
        steady = [s - b for v in by_worker.values() for s, b in sorted(v)[:-1]]
        busy = sum(s for _, s, _ in timing)
        active = report.seconds - report.startup_seconds
        around = (active * workers - busy) / jobs
        inside = statistics.median(steady) if steady else float("nan")
        rows[label] = {
            "jobs": jobs,
            "workers": workers,
            "wall_s": report.seconds,
            "cluster_startup_s": report.startup_seconds,
            "body_median_ms": 1e3 * statistics.median(b for _, _, b in timing),
            "in_worker_overhead_median_ms": 1e3 * inside,
            "around_worker_overhead_ms": 1e3 * around,
            "overhead_per_job_ms": 1e3 * (inside + around),
            "first_job_per_worker_s": [round(s, 3) for s, _ in first],
        }
        print(
            f"{label:18s} body {rows[label]['body_median_ms']:8.1f} ms | overhead: in worker "
            f"{1e3 * inside:6.1f} ms + around {1e3 * around:6.1f} ms = "
            f"{1e3 * (inside + around):6.1f} ms/job | first job per worker "
            f"{', '.join(f'{s:.2f}' for s, _ in first)} s | start-up "
            f"{report.startup_seconds:.1f} s",
            flush=True,
        )
    return rows


def xsuite_throughput(work: Path, points: int) -> dict[str, Any]:
    rows = {}
    for workers in (1, 2):
        cfg = _campaign(
            work, f"xsuite-{workers}w", _xsuite(), total_points=points, points_per_job=50,
            executor={"kind": "dask", "workers": workers},
        )  # fmt: skip
        with Catalog.open(work / "catalog.sqlite") as cat:
            report = run_campaign(cfg, cat)
        assert report.complete, report.failed
        active = report.seconds - report.startup_seconds
        rows[f"{workers}w"] = {
            "points": points,
            "wall_s": report.seconds,
            "cluster_startup_s": report.startup_seconds,
            "points_per_s": points / report.seconds,
            "points_per_s_after_startup": points / active,
        }
        print(
            f"xsuite {points} points, {workers} worker(s): {report.seconds:.1f} s "
            f"({report.startup_seconds:.1f} s start-up): {points / report.seconds:.1f} points/s, "
            f"{points / active:.1f} after start-up",
            flush=True,
        )
    rows["speedup_2w_after_startup"] = (
        rows["2w"]["points_per_s_after_startup"] / rows["1w"]["points_per_s_after_startup"]
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["overhead", "xsuite"])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="twinforge-bench-") as tmp:
        if args.what == "overhead":
            result["overhead"] = overhead(Path(tmp), args.jobs, args.workers)
        else:
            result["xsuite"] = xsuite_throughput(Path(tmp), args.points)
    text = json.dumps(result, indent=2)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
