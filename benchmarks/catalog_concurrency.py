"""The catalogue under concurrent writers: rows lost, jobs claimed twice, throughput, per backend.

    .venv/bin/python benchmarks/catalog_concurrency.py --per-writer 50 --out concurrency.json
    .venv/bin/python benchmarks/catalog_concurrency.py --backends postgresql \\
        --postgres postgresql://user:secret@db.example.org/postgres

For each backend, ``--writers`` processes (default 8; ``spawn``, or ``--start fork``) open the
same catalogue themselves and are released at once (a barrier), three phases, each started
together:

1. register: each writer registers ``--per-writer`` datasets, each with one small file of its
   own (hashed before the transaction, as always), one transaction per dataset;
2. add jobs: each writer adds ``--per-writer`` jobs to one shared campaign (made beforehand by
   the parent), one transaction per ``--batch`` jobs;
3. claim: each writer claims jobs of the shared campaign (``Catalog.claim``) and marks each
   done until none is pending.

Measured: datasets and files expected vs found afterwards (rows lost), jobs expected vs found,
jobs claimed twice (each writer reports the IDs it claimed; a job ID reported more than once is
a double claim), jobs never claimed, errors raised in the writers, lock retries (the
catalogue's "busy; retry" debug messages), and the wall time of each phase (first writer's
start to last writer's end): datasets/s, jobs added/s, claims/s (a claim plus its ``done``).

SQLite: a new file in a temporary directory. PostgreSQL: ``--postgres URL`` or
``$TWINFORGE_TEST_POSTGRES`` names a role that may create databases; the benchmark creates its
own database (``tf_bench_<random>``) and drops it afterwards. Without a URL, or without
psycopg, that backend is reported as skipped.

The JSON (``--out``) is written atomically; a table goes to stdout. Run by hand; figures go to
docs/benchmarks.md. Targets: 0 rows lost, 0 jobs claimed twice.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import logging
import multiprocessing
import os
import platform
import secrets
import sqlite3
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from twinforge.catalog import Catalog, JobSpec
from twinforge.showers.io import atomic_write_text

ENV_POSTGRES = "TWINFORGE_TEST_POSTGRES"
CAMPAIGN = "shared"
PHASES = ("register", "add_jobs", "claim")


class _RetryCounter(logging.Handler):
    """Counts the catalogue's "busy; retry" debug messages (transactions rolled back and
    retried after a lock conflict)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("catalogue busy"):
            self.count += 1


def _writer(
    location: str, worker: int, n: int, batch: int, work: str, barrier: Any, out: str
) -> None:
    """One writer process: the three phases, each after the barrier; results to ``out``."""
    retries = _RetryCounter()
    engine_log = logging.getLogger("twinforge.catalog.engine")
    engine_log.setLevel(logging.DEBUG)
    engine_log.addHandler(retries)
    files = Path(work) / f"w{worker}"
    files.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):  # the files exist before the clock starts
        path = files / f"d{i}.h5"
        path.write_bytes(f"writer {worker}, dataset {i}\n".encode() * 8)
        paths.append(path)
    result: dict[str, Any] = {"worker": worker, "errors": [], "claimed": [], "phases": {}}

    def error(phase: str, exc: BaseException) -> None:
        result["errors"].append(f"{phase}: {type(exc).__name__}: {exc}"[:500])

    with Catalog.open(location) as cat:
        campaign = cat.find(CAMPAIGN, "campaigns")
        assert campaign is not None
        name = f"bench-w{worker}"

        barrier.wait()
        start = time.time()
        for i, path in enumerate(paths):
            try:
                cat.add_dataset(f"w{worker}-d{i}", files=[(path, i)], provenance={"w": worker})
            except Exception as exc:
                error("register", exc)
        result["phases"]["register"] = (start, time.time())

        barrier.wait()
        start = time.time()
        specs = [JobSpec({"w": worker, "i": i}, seed=i, key=f"w{worker}-j{i}") for i in range(n)]
        for first in range(0, n, batch):
            try:
                cat.add_jobs(campaign.id, specs[first : first + batch])
            except Exception as exc:
                error("add_jobs", exc)
        result["phases"]["add_jobs"] = (start, time.time())

        barrier.wait()
        start = time.time()
        while True:
            try:
                job = cat.claim(campaign.id, worker=name)
            except Exception as exc:
                error("claim", exc)
                if len(result["errors"]) > 50:
                    break
                continue
            if job is None:
                break
            result["claimed"].append(job.id)
            try:
                cat.set_job_state(job.id, "done", expected="running", worker=name)
            except Exception as exc:
                error("done", exc)
        result["phases"]["claim"] = (start, time.time())
    result["lock_retries"] = retries.count
    Path(out).write_text(json.dumps(result))


def _wall(results: list[dict[str, Any]], phase: str) -> float:
    spans = [r["phases"][phase] for r in results if phase in r["phases"]]
    if not spans:
        return float("nan")
    return max(end for _, end in spans) - min(start for start, _ in spans)


def run_backend(
    backend: str, location: str, display: str, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """Run the writers against ``location`` (which exists and is empty); count what is there."""
    n, writers = args.per_writer, args.writers
    with Catalog.open(location) as cat:
        cat.add_campaign(CAMPAIGN, description="catalog_concurrency benchmark")
    ctx = multiprocessing.get_context(args.start)
    barrier = ctx.Barrier(writers, timeout=args.timeout)  # a dead writer breaks it
    outs = [work / f"{backend}-w{w}.json" for w in range(writers)]
    procs = [
        ctx.Process(
            target=_writer,
            args=(location, w, n, args.batch, str(work / backend), barrier, str(outs[w])),
        )
        for w in range(writers)
    ]
    started = time.time()
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=args.timeout)
    hung = [p.pid for p in procs if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    wall = time.time() - started
    results = [json.loads(o.read_text()) for o in outs if o.exists()]

    claims = Counter(job for r in results for job in r["claimed"])
    with Catalog.open(location, create=False) as cat:
        campaign = cat.find(CAMPAIGN, "campaigns")
        assert campaign is not None
        jobs = cat.jobs(campaign.id)
        names = {r.name for r in cat.list("datasets")}  # type: ignore[attr-defined]
        found = {
            "datasets": cat.count("datasets"),
            "files": cat.count("files"),
            "jobs": len(jobs),
        }
    expected_names = {f"w{w}-d{i}" for w in range(writers) for i in range(n)}
    expected = n * writers
    errors = [e for r in results for e in r["errors"]]
    row = {
        "backend": backend,
        "catalogue": display,
        "writers": writers,
        "per_writer": n,
        "writers_finished": len(results),
        "writers_hung": len(hung),
        "exit_codes": [p.exitcode for p in procs],
        "datasets_expected": expected,
        "datasets_found": found["datasets"],
        "dataset_names_missing": len(expected_names - names),
        "files_found": found["files"],
        "rows_lost": (expected - found["datasets"]) + (expected - found["files"]),
        "jobs_expected": expected,
        "jobs_found": found["jobs"],
        "jobs_lost": expected - found["jobs"],
        "claims": sum(claims.values()),
        "jobs_claimed_twice": sum(1 for c in claims.values() if c > 1),
        "jobs_never_claimed": sum(1 for j in jobs if j.id not in claims),
        "jobs_not_done": sum(1 for j in jobs if j.state != "done"),
        "jobs_attempts_over_1": sum(1 for j in jobs if j.attempts > 1),
        "errors": len(errors),
        "error_examples": errors[:5],
        "lock_retries": sum(r.get("lock_retries", 0) for r in results),
        "seconds": {phase: _wall(results, phase) for phase in PHASES},
        "wall_seconds": wall,
    }
    seconds = row["seconds"]
    row["datasets_per_s"] = expected / seconds["register"]
    row["jobs_added_per_s"] = expected / seconds["add_jobs"]
    row["claims_per_s"] = row["claims"] / seconds["claim"]
    return row


def _sqlite(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    db = work / "catalog.sqlite"
    row = run_backend("sqlite", str(db), str(db), args, work)
    row["server"] = f"SQLite {sqlite3.sqlite_version}"
    return row


def _postgresql(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    url = args.postgres or os.environ.get(ENV_POSTGRES, "").strip()
    if not url:
        return {"backend": "postgresql", "skipped": f"no server: give --postgres or {ENV_POSTGRES}"}
    if importlib.util.find_spec("psycopg") is None:
        return {"backend": "postgresql", "skipped": "psycopg is not installed"}
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    admin_url = make_url(url).set(drivername="postgresql+psycopg")
    name = f"tf_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        version = conn.execute(text("SHOW server_version")).scalar()
    try:
        target = admin_url.set(database=name)
        row = run_backend(
            "postgresql",
            target.render_as_string(hide_password=False),
            target.render_as_string(hide_password=True),
            args,
            work,
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    row["server"] = f"PostgreSQL {version}"
    return row


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("backend", "writers", "datasets exp/found", "rows lost", "jobs", "claimed twice",
            "never claimed", "errors", "retries", "datasets/s", "claims/s", "wall s")  # fmt: skip
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['backend']} | skipped: {r['skipped']}")
            continue
        lines.append(
            " | ".join(
                str(v)
                for v in (
                    r["backend"],
                    r["writers"],
                    f"{r['datasets_expected']}/{r['datasets_found']}",
                    r["rows_lost"],
                    f"{r['jobs_expected']}/{r['jobs_found']}",
                    r["jobs_claimed_twice"],
                    r["jobs_never_claimed"],
                    r["errors"],
                    r["lock_retries"],
                    f"{r['datasets_per_s']:.0f}",
                    f"{r['claims_per_s']:.0f}",
                    f"{r['wall_seconds']:.1f}",
                )
            )
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8, help="processes (default 8)")
    parser.add_argument("--per-writer", type=int, default=50, help="datasets and jobs each")
    parser.add_argument("--batch", type=int, default=10, help="jobs per add_jobs call")
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql"
    )
    parser.add_argument("--postgres", help=f"admin URL (default ${ENV_POSTGRES})")
    parser.add_argument("--start", choices=["spawn", "fork", "forkserver"], default="spawn")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per backend")
    parser.add_argument("--out", type=Path, help="JSON result (written atomically)")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")

    result: dict[str, Any] = {
        "benchmark": "catalog_concurrency",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {
            "cpu_model": _cpu_model(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "sqlalchemy": _version("sqlalchemy"),
            "psycopg": _version("psycopg"),
        },
        "load_before": os.getloadavg()[0],
        "settings": {k: v for k, v in vars(args).items() if k not in ("postgres", "out")},
        "results": [],
    }
    with tempfile.TemporaryDirectory(prefix="twinforge-bench-") as tmp:
        for backend in backends:
            work = Path(tmp) / backend
            work.mkdir()
            run = _sqlite if backend == "sqlite" else _postgresql
            try:
                row = run(args, work)
            except Exception:
                row = {"backend": backend, "failed": traceback.format_exc()[-2000:]}
                print(row["failed"], flush=True)
            result["results"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "error_examples"}), flush=True)
    result["load_after"] = os.getloadavg()[0]
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(_table([r for r in result["results"] if "failed" not in r]))


if __name__ == "__main__":
    main()
