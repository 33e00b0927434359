"""Campaign benchmarks: Geant4 throughput with 1 and 2 Dask workers, per-job scheduler overhead,
and a 1000-job campaign that is killed and resumed.

    .venv/bin/python benchmarks/campaign_scaling.py --out campaign.json

Run by hand on an idle machine; figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from twinforge.campaign import CampaignConfig, merge_campaign, run_campaign
from twinforge.catalog import Catalog
from twinforge.showers import ShowerFile


def geant4_scaling(work: Path, events: int, per_job: int, energy: str) -> dict[str, float]:
    """Showers/s of the same Geant4 campaign with 1 and 2 worker processes (pool warm-up and
    geometry construction included: that is what a user waits for)."""
    rates = {}
    for workers in (1, 2):
        cfg = CampaignConfig.model_validate(
            {
                "name": f"g4-{workers}w", "detector": "siw", "simulator": "geant4",
                "total_events": events, "events_per_job": per_job,
                "space": {"particles": ["e-"], "energy": {"values": [energy]}},
                "executor": {"kind": "dask", "workers": workers},
                "output_dir": str(work / "{name}"),
            }
        )  # fmt: skip
        with Catalog.open(work / "catalog.sqlite") as cat:
            report = run_campaign(cfg, cat)
        assert report.complete, report.failed
        key = f"showers_per_s_{workers}w"
        rates[key] = report.points / report.seconds
        rates[f"{key}_after_startup"] = report.points / (report.seconds - report.startup_seconds)
        rates[f"startup_s_{workers}w"] = report.startup_seconds
        print(
            f"geant4 {energy} e-, {workers} worker(s): {report.points} showers in "
            f"{report.seconds:.1f} s ({report.startup_seconds:.1f} s cluster start-up) -> "
            f"{rates[key]:.2f} showers/s, {rates[f'{key}_after_startup']:.2f} after start-up"
        )
    rates["speedup_2w"] = rates["showers_per_s_2w"] / rates["showers_per_s_1w"]
    rates["speedup_2w_after_startup"] = (
        rates["showers_per_s_2w_after_startup"] / rates["showers_per_s_1w_after_startup"]
    )
    return rates


def hardware_ceiling(work: Path, showers: int, energy_gev: float) -> dict[str, float]:
    """Parallel speed-up of two *independent* Geant4 processes (no Dask): the most any
    scheduler can get out of this machine's two cores."""
    script = Path(__file__).with_name("geant4_per_shower.py")

    def run(n_proc: int) -> float:
        outs = [work / f"ceiling-{n_proc}-{i}.json" for i in range(n_proc)]
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(script),
                    "--energies",
                    str(energy_gev),
                    "--showers",
                    str(showers),
                    "--seed",
                    str(i),
                    "--out",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
            )
            for i, out in enumerate(outs)
        ]
        for proc in procs:
            proc.wait()
        medians = [json.loads(out.read_text())["results"][0]["median_wall_s"] for out in outs]
        return sum(medians) / len(medians)

    solo, pair = run(1), run(2)
    ceiling = 2 * solo / pair
    print(f"independent processes at {energy_gev:g} GeV: {solo:.3f} s/shower alone, "
          f"{pair:.3f} s/shower with two at once -> ceiling {ceiling:.2f}x")  # fmt: skip
    return {"s_per_shower_1proc": solo, "s_per_shower_2proc": pair, "ceiling_2w": ceiling}


def scheduler_overhead(work: Path, jobs: int) -> dict[str, float]:
    """Wall time per job of a campaign whose jobs do (almost) nothing: the journal, the Dask
    round trip and the shard write are all that is left."""
    out = {}
    for kind in ("local", "dask"):
        cfg = CampaignConfig.model_validate(
            {
                "name": f"overhead-{kind}", "detector": "tiny", "simulator": "synthetic-test",
                "total_events": jobs, "events_per_job": 1,
                "executor": {"kind": kind, "workers": 2}, "output_dir": str(work / "{name}"),
            }
        )  # fmt: skip
        with Catalog.open(work / "catalog.sqlite") as cat:
            t0 = time.perf_counter()
            report = run_campaign(cfg, cat)
            wall = time.perf_counter() - t0
            job_seconds = sum(
                j.provenance.get("seconds", 0.0) for j in cat.jobs(report.campaign_id)
            )
        assert report.complete
        out[f"{kind}_ms_per_job"] = 1e3 * wall / jobs
        out[f"{kind}_ms_per_job_excluding_work"] = (
            1e3 * (wall - job_seconds / (2 if kind == "dask" else 1)) / jobs
        )
        print(
            f"{kind}: {jobs} jobs in {wall:.1f} s = {out[f'{kind}_ms_per_job']:.1f} ms/job "
            f"(job bodies {1e3 * job_seconds / jobs:.1f} ms/job)"
        )
    return out


def kill_and_resume(work: Path, jobs: int) -> dict[str, float | int | bool]:
    """A ``jobs``-job campaign of tiny jobs: SIGKILL mid-way, resume, merge, check the events."""
    data = {
        "kind": "campaign", "name": "resume", "detector": "tiny", "simulator": "synthetic-test",
        "total_events": jobs, "events_per_job": 1, "executor": {"kind": "local"},
        "output_dir": str(work / "{name}"),
    }  # fmt: skip
    path = work / "resume.yaml"
    path.write_text(yaml.safe_dump(data))
    db = work / "resume.sqlite"
    cmd = [sys.executable, "-c", "from twinforge.cli import main; main()",
           "--quiet", "campaign", "run", str(path), "--catalog", str(db)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=work)
    time.sleep(8)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cfg = CampaignConfig.model_validate(data)
    with Catalog.open(db) as cat:
        done_before = cat.job_counts(cat.find("resume", "campaigns").global_id)["done"]
        t0 = time.perf_counter()
        report = run_campaign(cfg, cat)
        resume_s = time.perf_counter() - t0
        dataset = merge_campaign(cat, cfg)
    with ShowerFile(work / "resume" / "resume.h5") as f:
        energies = f.conditions().energy
    exact = bool((energies == cfg.conditions().energy).all())
    print(
        f"kill/resume: {done_before}/{jobs} done at the kill, resume ran {report.ran} and "
        f"adopted {report.adopted} in {resume_s:.1f} s; merged {dataset.n_events} events, "
        f"every event exactly once: {exact}"
    )
    return {"jobs": jobs, "done_at_kill": done_before, "ran_on_resume": report.ran,
            "adopted_on_resume": report.adopted, "merged_events": dataset.n_events,
            "every_event_once": exact}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=80, help="Geant4 showers per scaling run")
    parser.add_argument("--per-job", type=int, default=5)
    parser.add_argument("--energy", default="10GeV")
    parser.add_argument("--overhead-jobs", type=int, default=500)
    parser.add_argument("--resume-jobs", type=int, default=1000)
    parser.add_argument("--skip-geant4", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_geant4:
            result["geant4"] = geant4_scaling(work, args.events, args.per_job, args.energy)
            gev = float(args.energy.lower().removesuffix("gev"))
            result["hardware"] = hardware_ceiling(work, 30, gev)
        result["overhead"] = scheduler_overhead(work, args.overhead_jobs)
        result["resume"] = kill_and_resume(work, args.resume_jobs)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
