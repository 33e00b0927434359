"""Several processes writing the same catalogue at once, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.catalog.conftest import BACKENDS, sqlite_only
from twinforge.catalog import Catalog, JobSpec

CATALOG_BACKENDS = BACKENDS  # tests using ``cat`` or ``catalog_url`` run on both

N_PROCESSES = 4
N_INSERTS = 50


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _insert_worker(db: str, worker: int, files_dir: str) -> None:
    # every process opens the catalogue itself; the first opens also race to create it
    with Catalog.open(db) as cat:
        for i in range(N_INSERTS):
            path = Path(files_dir) / f"w{worker}-{i}.h5"
            path.write_bytes(f"{worker}-{i}".encode())
            cat.add_dataset(f"w{worker}-d{i}", files=[(path, i)], provenance={"worker": worker})


def _claim_worker(db: str, worker: int, out_dir: str) -> None:
    claimed = []
    with Catalog.open(db) as cat:
        camp = cat.find("shared", "campaigns")
        assert camp is not None
        while (job := cat.claim(camp.id, worker=f"w{worker}")) is not None:
            claimed.append(job.id)
            cat.set_job_state(job.id, "done", expected="running")
    (Path(out_dir) / f"w{worker}.json").write_text(json.dumps(claimed))


def _run(target, args_list) -> None:
    ctx = _context()
    procs = [ctx.Process(target=target, args=args) for args in args_list]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_parallel_inserts_lose_nothing(catalog_url: str, backend: str, tmp_path: Path) -> None:
    # the catalogue does not exist yet (SQLite: nor its directory): the workers race to create it
    files = tmp_path / "files"
    files.mkdir()
    _run(_insert_worker, [(catalog_url, w, str(files)) for w in range(N_PROCESSES)])

    total = N_PROCESSES * N_INSERTS
    with Catalog.open(catalog_url) as cat:
        assert cat.count("datasets") == total
        assert cat.count("files") == total
        names = {r.name for r in cat.list("datasets")}  # type: ignore[attr-defined]
        assert names == {f"w{w}-d{i}" for w in range(N_PROCESSES) for i in range(N_INSERTS)}
        ids = sorted(r.id for r in cat.list("files"))
        assert len(set(ids)) == total
        if backend == "sqlite":  # a retried transaction leaves no gap; a PostgreSQL sequence may
            assert ids == list(range(1, total + 1))
    if backend == "sqlite":
        con = sqlite3.connect(catalog_url)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            con.close()


def test_parallel_claims_never_share_a_job(catalog_url: str, tmp_path: Path) -> None:
    db = catalog_url
    with Catalog.open(db) as cat:
        camp = cat.add_campaign("shared")
        cat.add_jobs(camp.id, [JobSpec({"i": i}, seed=i) for i in range(60)])
    _run(_claim_worker, [(db, w, str(tmp_path)) for w in range(N_PROCESSES)])
    claimed = [
        job for w in range(N_PROCESSES) for job in json.loads((tmp_path / f"w{w}.json").read_text())
    ]
    assert sorted(claimed) == list(range(1, 61))  # each job exactly once
    with Catalog.open(db) as cat:
        assert cat.job_counts("camp-1") == {"pending": 0, "running": 0, "done": 60, "failed": 0}
        assert all(j.attempts == 1 for j in cat.jobs("camp-1"))


@sqlite_only  # SQLite's file lock and busy timeout; on PostgreSQL a writer simply waits for
# the row locks of the other transaction (the claims test covers those)
def test_writer_waits_for_a_lock_held_elsewhere(catalog_url: str) -> None:
    db = catalog_url
    cat = Catalog.open(db, busy_timeout=0.05)  # short: the retries must do the waiting
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO twinforge_meta (key, value) VALUES ('held', 'x')")
    release = threading.Timer(0.4, holder.commit)
    release.start()
    started = time.monotonic()
    try:
        record = cat.add_campaign("after-the-lock")
    finally:
        release.join()
        holder.close()
        cat.close()
    assert record.global_id == "camp-1"
    assert time.monotonic() - started >= 0.3


def _use_inherited(cat: Catalog) -> None:
    # a Catalog opened before fork(): the child must not reuse the parent's connections
    cat.add_campaign("from-child")


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_catalog_survives_fork(cat: Catalog) -> None:
    cat.add_campaign("from-parent")
    child = multiprocessing.get_context("fork").Process(target=_use_inherited, args=(cat,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert {r.name for r in cat.list("campaigns")} == {"from-parent", "from-child"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("n_threads", [4])
def test_threads_share_one_catalog(cat: Catalog, n_threads: int) -> None:
    camp = cat.add_campaign("t")

    def add(t: int) -> None:
        cat.add_jobs(camp.id, [JobSpec({"t": t, "i": i}) for i in range(20)])

    threads = [threading.Thread(target=add, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert cat.job_counts(camp.id)["pending"] == 20 * n_threads


def _merge_worker(db: str, worker: int) -> None:
    with Catalog.open(db) as cat:
        for i in range(15):
            cat.update_training_run("run-1", metrics={f"w{worker}-{i}": i})
        for _ in range(5):  # every process adds the same jobs: idempotent, never an error
            cat.add_jobs("camp-1", [JobSpec({"x": j}, seed=j) for j in range(10)])


def test_concurrent_merges_and_adds_lose_nothing(catalog_url: str) -> None:
    with Catalog.open(catalog_url) as cat:
        cat.add_campaign("same-jobs")
        cat.add_training_run()
    _run(_merge_worker, [(catalog_url, w) for w in range(3)])
    with Catalog.open(catalog_url) as cat:
        metrics = cat.get("run-1").metrics  # type: ignore[attr-defined]
        assert len(metrics) == 45  # no update overwrote another's
        assert len(cat.jobs("camp-1")) == 10
