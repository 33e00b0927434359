from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.catalog.conftest import both_backends
from twinforge.campaign import CampaignConfig, campaign_status, merge_campaign, run_campaign
from twinforge.catalog import Catalog, export_rocrate
from twinforge.errors import CatalogError, TwinforgeError
from twinforge.showers import ShowerFile
from twinforge.simulation.synthetic import SyntheticBackend


def config(tmp_path: Path, **kw) -> CampaignConfig:
    data = {
        "name": "t",
        "simulator": {"name": "synthetic-test", "detector": "tiny"},
        "total_points": 95,
        "points_per_job": 10,
        "executor": {"kind": "local"},
        "output_dir": str(tmp_path / "campaigns" / "{name}"),
        "space": {"energy": {"min": "1GeV", "max": "64GeV"}},
        **kw,
    }
    return CampaignConfig.model_validate(data)


@pytest.fixture
def catalog(catalog_url: str):
    """The journal's catalogue: SQLite, or also PostgreSQL for tests marked ``both_backends``."""
    with Catalog.open(catalog_url) as cat:
        yield cat


def merged_conditions_match(cfg: CampaignConfig, path: Path) -> None:
    expected = cfg.points()
    with ShowerFile(path) as f:
        cond, showers = f.read()
    assert len(cond) == cfg.total_points
    np.testing.assert_array_equal(cond.energy, expected["energy"])  # every point once, in order
    assert showers.shape == (cfg.total_points, 96)


@both_backends
def test_run_resume_merge_export(tmp_path: Path, catalog: Catalog) -> None:
    cfg = config(tmp_path)
    report = run_campaign(cfg, catalog)
    assert report.complete
    assert (report.done, report.ran, report.points) == (10, 10, 95)
    again = run_campaign(cfg, catalog)
    assert (again.ran, again.skipped) == (0, 10)  # finished jobs never run twice
    record, jobs = campaign_status(catalog, "t")
    assert {j.state for j in jobs} == {"done"}
    assert all(j.output_sha256 and j.seed for j in jobs)
    dataset = merge_campaign(catalog, cfg)
    assert dataset.n_events == 95
    assert dataset.campaign_id == record.id
    merged_conditions_match(cfg, tmp_path / "campaigns" / "t" / "t.h5")
    prov = catalog.get(dataset.global_id).provenance
    assert prov["campaign"] == "t"
    assert len(prov["shards"]) == 10
    assert prov["simulator"] == "synthetic-test"
    crate = export_rocrate(catalog, dataset.global_id, tmp_path / "crate")
    assert (crate / "ro-crate-metadata.json").exists()
    with pytest.raises(CatalogError, match="merged before"):
        merge_campaign(catalog, cfg, overwrite=True)
    assert all(r.ok for r in catalog.verify(dataset.global_id))  # the file was not rewritten


def test_second_live_run_is_refused(tmp_path: Path, catalog: Catalog) -> None:
    cfg = config(tmp_path)
    run_campaign(cfg, catalog)
    record = catalog.find("t", "campaigns")
    # pretend job 0 is being run by a live process on this host (the parent of pytest)
    job = catalog.jobs(record.global_id)[0]
    other = catalog.add_campaign("u")
    catalog.add_jobs(other.global_id, [{"key": "job-000000", "seed": 1}])
    live = catalog.jobs(other.global_id)[0]
    import socket

    catalog.set_job_state(live.id, "running", worker=f"{socket.gethostname()}:{os.getppid()}")

    from twinforge.campaign.runner import _check_no_live_run

    with pytest.raises(CatalogError, match="being run by process"):
        _check_no_live_run(catalog, other.global_id, "u", force=False)
    catalog.set_job_state(live.id, "failed", error="x")
    catalog.set_job_state(live.id, "pending", expected="failed")
    catalog.set_job_state(live.id, "running", worker="elsewhere:12")
    with pytest.raises(CatalogError, match="--force"):
        _check_no_live_run(catalog, other.global_id, "u", force=False)
    _check_no_live_run(catalog, other.global_id, "u", force=True)
    assert job.state == "done"


@both_backends
def test_changed_config_is_refused(tmp_path: Path, catalog: Catalog) -> None:
    run_campaign(config(tmp_path), catalog)
    # executor and retries may change on resume ...
    run_campaign(config(tmp_path, max_retries=5), catalog)
    # ... what the showers are may not
    with pytest.raises(CatalogError, match="total_points changed"):
        run_campaign(config(tmp_path, total_points=96), catalog)


@both_backends
def test_campaign_of_twinforge_0_1_is_resumed(tmp_path: Path, catalog: Catalog) -> None:
    """A journal written by twinforge 0.1 (detector at the top level, total_events, particles,
    the detector's content stored as detector_config) resumes: its jobs are not run again."""
    cfg = config(tmp_path)
    run_campaign(cfg, catalog)
    record = catalog.find("t", "campaigns")
    old = {
        **{k: v for k, v in record.config.items() if k not in ("simulator", "simulator_setup")},
        "simulator": "synthetic-test",
        "detector": "tiny",
        "physics": "auto",
        "total_events": 95,
        "events_per_job": 10,
        "space": {"particles": ["e-"], "energy": {"min": 1000.0, "max": 64000.0,
                  "distribution": "log-uniform"}, "theta": {"values": [0.0]},
                  "phi": {"values": [0.0], "min": None, "max": None}},
        "detector_config": record.config["simulator_setup"]["detector"],
    }  # fmt: skip
    del old["total_points"], old["points_per_job"]
    from sqlalchemy import update

    from twinforge.catalog.schema import Campaign

    with catalog._writer() as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == record.id).values(config=old))
    yaml_config = {k: v for k, v in old.items() if k != "detector_config"}
    again = run_campaign(CampaignConfig.model_validate(yaml_config), catalog)
    assert (again.ran, again.skipped) == (0, 10)


@both_backends
def test_failing_job_retried_then_reported(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[int, int] = {}
    real = SyntheticBackend.run

    def flaky(self, points, seed, *, first_index=0, workdir=None):
        index = next(
            i
            for i, s in enumerate(cfg.job_slices())
            if cfg.points()["energy"][s.start] == points["energy"][0]
        )
        calls[index] = calls.get(index, 0) + 1
        if index == 3 and calls[index] == 1:
            raise RuntimeError("transient worker failure")
        if index == 5:
            raise RuntimeError("bad conditions")
        return real(self, points, seed, first_index=first_index)

    cfg = config(tmp_path, max_retries=2)
    monkeypatch.setattr(SyntheticBackend, "run", flaky)
    report = run_campaign(cfg, catalog)
    assert report.done == 9
    assert list(report.failed) == ["job-000005"]
    assert "bad conditions" in report.failed["job-000005"]
    assert calls[3] == 2
    assert calls[5] == 3  # first try + 2 retries
    _, jobs = campaign_status(catalog, "t")
    failed = [j for j in jobs if j.state == "failed"]
    assert [(j.key, j.attempts) for j in failed] == [("job-000005", 3)]
    with pytest.raises(TwinforgeError, match="not finished"):
        merge_campaign(catalog, cfg)
    partial = merge_campaign(catalog, cfg, allow_partial=True)
    assert partial.n_events == 85
    # the cause is fixed: a new run with --retry-failed finishes the campaign
    monkeypatch.setattr(SyntheticBackend, "run", real)
    assert run_campaign(cfg, catalog).ran == 0  # retries used up: not re-run by default
    report = run_campaign(cfg, catalog, retry_failed=True)
    assert report.complete
    assert report.ran == 1


@both_backends
def test_stopping_a_campaign_again_and_again_fails_no_job(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or SIGTERM, which the CLI turns into the same) mid-job, more often than the
    retries allow: the stopped job goes back to pending uncharged, the queue is untouched,
    and the campaign still finishes with every job run once."""
    real = SyntheticBackend.run
    calls = {"n": 0}

    def stopped_every_third(self, points, seed, *, first_index=0, workdir=None):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise KeyboardInterrupt
        return real(self, points, seed, first_index=first_index)

    cfg = config(tmp_path, max_retries=1)
    monkeypatch.setattr(SyntheticBackend, "run", stopped_every_third)
    stops = 0
    while True:
        try:
            report = run_campaign(cfg, catalog)
            break
        except KeyboardInterrupt:
            stops += 1
            _, jobs = campaign_status(catalog, "t")
            assert {j.state for j in jobs} <= {"pending", "done"}
            assert all(j.attempts == 0 for j in jobs if j.state == "pending")
    assert stops == 4  # more than max_retries + 1
    assert report.complete
    assert not report.failed
    _, jobs = campaign_status(catalog, "t")
    assert [j.attempts for j in jobs] == [1] * 10
    merge_campaign(catalog, cfg)
    merged_conditions_match(cfg, tmp_path / "campaigns" / "t" / "t.h5")


def _marked_processes(mark: str) -> list[int]:
    """PIDs of live processes whose environment carries ``mark`` (a driver's descendants;
    zombies show no environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f"TWINFORGE_TEST_MARK={mark}".encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize(
    ("executor", "backend", "sig"),
    [
        ("local", "sqlite", signal.SIGKILL),
        ("dask", "sqlite", signal.SIGKILL),
        ("local", "postgresql", signal.SIGKILL),
        ("dask", "sqlite", signal.SIGTERM),
    ],
    indirect=["backend"],
)
def test_killed_then_resumed_loses_and_duplicates_nothing(
    tmp_path: Path, executor: str, backend: str, sig: int, catalog_url: str
) -> None:
    """The driver is killed mid-run; the resumed campaign finishes every job exactly once,
    and (on Dask) the killed driver's worker processes do not outlive it. On PostgreSQL the
    killed driver's connection dies with it, mid-transaction perhaps. Only the jobs on a
    worker were marked running, so only they are charged an attempt by SIGKILL; SIGTERM
    hands them back uncharged and exits with 143."""
    cfg_path = tmp_path / "c.yaml"
    kw = {"executor": {"kind": "dask", "workers": 2}} if executor == "dask" else {}
    data = config(tmp_path, total_points=400, points_per_job=2, name="kill", **kw)
    data = data.model_dump(mode="json")
    cfg_path.write_text(yaml.safe_dump(data))
    db = catalog_url  # a file path or a URL: the catalogue does not exist yet
    mark = f"{os.getpid()}-{executor}-{backend}-{sig}"
    cmd = [sys.executable, "-c", "from twinforge.cli import main; main()",
           "--quiet", "campaign", "run", str(cfg_path), "--catalog", db]  # fmt: skip
    env = {**os.environ, "TWINFORGE_TEST_MARK": mark}
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    deadline = time.monotonic() + 90
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if backend == "postgresql" or Path(db).exists():
            try:
                with Catalog.open(db, create=False) as cat:
                    camp = cat.find("kill", "campaigns")
                    done = cat.job_counts(camp.global_id)["done"] if camp else 0
            except CatalogError:
                continue
            if done >= 20:
                break
    assert proc.poll() is None, "campaign finished before it could be killed"
    if executor == "dask":
        assert len(_marked_processes(mark)) >= 3  # driver, its workers (nannies), ...
    os.kill(proc.pid, sig)
    assert proc.wait(timeout=60) == (143 if sig == signal.SIGTERM else -signal.SIGKILL)
    if sig == signal.SIGTERM:
        assert "stopped: SIGTERM: run the same command again" in proc.stderr.read().decode()
    deadline = time.monotonic() + 30
    while _marked_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _marked_processes(mark) == [], "worker processes outlived the killed driver"
    with Catalog.open(db) as cat:
        counts = cat.job_counts(cat.find("kill", "campaigns").global_id)
        assert 20 <= counts["done"] < 200
        unfinished = [j for j in cat.jobs(cat.find("kill", "campaigns").global_id)
                      if j.state != "done"]  # fmt: skip
        workers = 2 if executor == "dask" else 1
        charged = sum(j.attempts for j in unfinished)
        if sig == signal.SIGTERM:
            assert counts["running"] == charged == 0
        else:
            assert counts["running"] == charged <= workers
        cfg = CampaignConfig.model_validate(data)
        report = run_campaign(cfg, cat)
        assert report.complete
        assert report.skipped == counts["done"]
        assert report.ran + report.adopted == 200 - counts["done"]
        jobs = cat.jobs(report.campaign_id)
        assert len({j.key for j in jobs}) == len(jobs) == 200
        merge_campaign(cat, cfg)
    merged_conditions_match(cfg, tmp_path / "campaigns" / "kill" / "kill.h5")
    assert not list((tmp_path / "campaigns" / "kill" / "shards").glob("*.tmp-*"))


def test_dask_local_cluster(tmp_path: Path, catalog: Catalog) -> None:
    cfg = config(tmp_path, executor={"kind": "dask", "workers": 2}, total_points=40)
    report = run_campaign(cfg, catalog)
    assert report.complete
    assert "LocalCluster, 2 worker" in report.executor
    workers = {j.worker for j in catalog.jobs(report.campaign_id)}
    assert all(w and str(os.getpid()) not in w for w in workers)  # ran in worker processes


def test_slurm_job_script(tmp_path: Path) -> None:
    pytest.importorskip("dask_jobqueue")
    from twinforge.campaign.executors import JobqueueConfig, jobqueue_cluster

    cfg = JobqueueConfig(
        cores=8, memory="16GB", walltime="04:00:00", queue="short", account="hep",
        job_extra_directives=["--constraint=avx2"], job_script_prologue=["module load geant4"],
    )  # fmt: skip
    with jobqueue_cluster(cfg, "slurm") as cluster:
        script = cluster.job_script()
    assert "#SBATCH -p short" in script
    assert "#SBATCH -A hep" in script
    assert "#SBATCH -n 1" in script
    assert "#SBATCH --cpus-per-task=8" in script
    assert "#SBATCH -t 04:00:00" in script
    assert "#SBATCH --constraint=avx2" in script
    assert "module load geant4" in script
    assert "--nworkers 8" in script
    assert "--nthreads 1" in script
    with jobqueue_cluster(cfg, "pbs") as cluster:
        assert "#PBS -q short" in cluster.job_script()
