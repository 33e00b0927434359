"""A catalogue written by twinforge at schema revision 0002 (``data/catalog-rev0002.sqlite``,
made by ``data/make_legacy_catalog.py``) is refused until upgraded, then opens with every record
intact: on SQLite, and copied row by row into a PostgreSQL database at revision 0002.

Written to hold whatever the head revision is: while it is 0002 the fixture simply opens (and
the upgrade is a no-op); once a newer migration exists, opening must name
``twinforge catalog upgrade`` and the upgrade must carry every record over.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, func, insert, select, text
from sqlalchemy.pool import NullPool

from twinforge.catalog import Catalog, migrate
from twinforge.catalog.schema import utcnow
from twinforge.errors import CatalogError

DATA = Path(__file__).resolve().parent / "data"
FIXTURE = DATA / "catalog-rev0002.sqlite"
REVISION = "0002"
SCHEMA_VERSION = "2"
LEGACY_FILES = "tests/catalog/data/legacy-files"  # their absolute paths end like this

COUNTS = {"datasets": 1, "files": 3, "campaigns": 1, "jobs": 4, "models": 1, "runs": 1,
          "evaluations": 1}  # fmt: skip


def test_the_fixture_is_at_revision_0002() -> None:
    assert FIXTURE.stat().st_size < 100_000
    assert REVISION in migrate.known_revisions()
    con = sqlite3.connect(f"file:{FIXTURE}?mode=ro", uri=True)
    try:
        assert con.execute(f"SELECT version_num FROM {migrate.VERSION_TABLE}").fetchall() == [
            (REVISION,)
        ]
        meta = dict(con.execute("SELECT key, value FROM twinforge_meta").fetchall())
        assert meta["schema_version"] == SCHEMA_VERSION
    finally:
        con.close()


def _open_old_then_upgrade(location: str) -> None:
    """Open as a twinforge at the head revision would: refused while older, then upgraded."""
    head = migrate.head_revision()
    if head != REVISION:
        with pytest.raises(CatalogError, match="twinforge catalog upgrade") as refused:
            Catalog.open(location)
        assert REVISION in str(refused.value)
    else:
        Catalog.open(location, create=False).close()  # the head itself: opens as it is
    assert Catalog.upgrade(location) == (REVISION, head)
    assert Catalog.upgrade(location) == (head, head)  # idempotent


def _check_records(cat: Catalog) -> None:
    """Every record of the fixture, as make_legacy_catalog.py wrote it."""
    assert {kind: cat.count(kind) for kind in COUNTS} == COUNTS

    camp = cat.find("legacy-scan", "campaigns")
    assert camp is not None
    assert camp.global_id == "camp-1"
    assert camp.config["points_per_job"] == 10  # type: ignore[attr-defined]
    assert camp.config["space"] == {"energy": {"min": 1000.0, "max": 64000.0}}  # type: ignore[attr-defined]
    assert camp.provenance["user"] == "legacy"
    assert camp.job_counts == {"pending": 1, "running": 1, "done": 1, "failed": 1}  # type: ignore[attr-defined]
    jobs = cat.jobs(camp)
    assert [(j.global_id, j.key, j.state, j.attempts, j.worker) for j in jobs] == [
        ("job-1", "job-000000", "done", 1, "node1:101"),
        ("job-2", "job-000001", "failed", 1, "node2:202"),
        ("job-3", "job-000002", "running", 1, "node7:4242"),
        ("job-4", "job-000003", "pending", 0, None),
    ]
    assert [j.seed for j in jobs] == [1, 2, 3, 2**63 - 1]
    assert [j.parameters for j in jobs] == [{"energy_MeV": e} for e in (1e3, 4e3, 16e3, 64e3)]
    done, failed, running, pending = jobs
    assert done.output_path is not None
    assert done.output_path.endswith(f"{LEGACY_FILES}/run-0.txt")
    assert done.output_sha256 == _sha("run-0.txt")
    assert (done.error, done.exit_code, done.stderr_tail) == (None, None, None)
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.started_at.tzinfo is not None
    assert done.finished_at >= done.started_at
    assert failed.error == "simulator exited with status 3"
    assert (failed.exit_code, failed.stderr_tail) == (3, "G4Exception: boom\nAborting run")
    assert running.started_at is not None
    assert running.finished_at is None
    assert pending.started_at is None

    ds = cat.find("legacy-electrons", "datasets")
    assert ds is not None
    assert ds.global_id == "ds-1"
    assert (ds.n_files, ds.n_events, ds.size_bytes, ds.campaign_id) == (2, 25, 68, camp.id)  # type: ignore[attr-defined]
    assert ds.provenance == {"simulator": {"name": "synthetic-test"}, "seeds": [1, 2]}
    files = cat.files(ds)
    assert [(f.global_id, Path(f.path).name, f.n_events, f.size_bytes) for f in files] == [
        ("file-1", "run-0.txt", 10, 34),
        ("file-2", "run-1.txt", 15, 34),
    ]
    assert [f.sha256 for f in files] == [_sha("run-0.txt"), _sha("run-1.txt")]

    model = cat.find("legacy-vae", "models")
    assert model is not None
    assert model.global_id == "model-1"
    assert (model.architecture, model.provenance) == ("vae", {"torch": "2.5.1"})  # type: ignore[attr-defined]
    assert [(f.global_id, Path(f.path).name, f.n_events) for f in cat.files(model)] == [
        ("file-3", "model.json", None)
    ]

    run = cat.get("run-1")
    assert (run.model_id, run.dataset_id) == (model.id, ds.id)  # type: ignore[attr-defined]
    assert run.hyperparameters == {"lr": 0.001, "epochs": 3, "batch_size": 64}  # type: ignore[attr-defined]
    assert run.metrics == {"loss": 0.25, "val_loss": 0.3}  # type: ignore[attr-defined]
    assert run.started_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # type: ignore[attr-defined]
    assert run.finished_at == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)  # type: ignore[attr-defined]

    ev = cat.get("eval-1")
    assert (ev.model_id, ev.dataset_id) == (model.id, ds.id)  # type: ignore[attr-defined]
    assert ev.metrics == {"auc_low_level": 0.61, "fpd": 0.012, "per_energy": {"1000": 0.6}}  # type: ignore[attr-defined]
    assert ev.description == "validation against the legacy dataset"  # type: ignore[attr-defined]


def _check_still_writable(cat: Catalog) -> None:
    """The upgraded catalogue goes on: the pending job is claimed, new rows get new IDs."""
    job = cat.claim("camp-1", worker="after-upgrade")
    assert job is not None
    assert (job.global_id, job.attempts) == ("job-4", 1)
    assert cat.set_job_state(job.id, "failed", exit_code=1, error="x").exit_code == 1
    assert cat.add_jobs("camp-1", [{"parameters": {"energy_MeV": 2.0}}])[0].global_id == "job-5"
    assert cat.add_campaign("after-upgrade").global_id == "camp-2"


def _sha(name: str) -> str:
    from twinforge.catalog import sha256_file

    return sha256_file(DATA / "legacy-files" / name)


def test_sqlite_catalogue_at_0002_upgrades_and_keeps_its_records(tmp_path: Path) -> None:
    db = tmp_path / "catalog.sqlite"
    shutil.copyfile(FIXTURE, db)
    _open_old_then_upgrade(str(db))
    with Catalog.open(db, create=False) as cat:
        _check_records(cat)
        _check_still_writable(cat)


def _copy_fixture_into(url: str) -> None:
    """Make ``url`` (an empty PostgreSQL database) what twinforge at 0002 would have written:
    the migrations up to 0002, ``twinforge_meta`` as ``Catalog.open`` fills it, then every row
    of every table of the SQLite fixture (SQLAlchemy Core, reflected tables)."""
    source = create_engine(f"sqlite:///file:{FIXTURE}?mode=ro&uri=true", poolclass=NullPool)
    target = create_engine(url, poolclass=NullPool)
    try:
        old = MetaData()
        old.reflect(source)
        with source.connect() as src:
            rows = {name: [dict(r._mapping) for r in src.execute(select(table))]
                    for name, table in old.tables.items()}  # fmt: skip
        # the fixture's own bookkeeping, written again below the way twinforge 0.1.x does
        assert rows.pop(migrate.VERSION_TABLE) == [{"version_num": REVISION}]
        meta = {r["key"]: r["value"] for r in rows.pop("twinforge_meta")}
        assert meta["schema_version"] == SCHEMA_VERSION
        with target.begin() as conn:
            migrate.upgrade(conn, REVISION)
            conn.execute(
                text("INSERT INTO twinforge_meta (key, value) VALUES (:k, :v)"),
                [
                    {"k": "schema_version", "v": SCHEMA_VERSION},
                    {"k": "created_by", "v": meta["created_by"]},
                    {"k": "created_at", "v": utcnow().isoformat()},
                ],
            )
            new = MetaData()
            new.reflect(conn)
            assert set(rows) == set(new.tables) - {migrate.VERSION_TABLE, "twinforge_meta"}
            for table in new.sorted_tables:  # parents before children
                if rows.get(table.name):
                    conn.execute(insert(table), [_utc(r) for r in rows[table.name]])
                    # explicit IDs do not move a PostgreSQL sequence: move it past them
                    last = conn.scalar(select(func.max(table.c.id)))
                    conn.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), :n)"),
                        {"n": last},
                    )
    finally:
        source.dispose()
        target.dispose()


def _utc(row: dict) -> dict:
    # SQLite holds naive UTC times; a naive value in PostgreSQL would be taken as local time
    return {
        k: v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v
        for k, v in row.items()
    }


def test_postgresql_catalogue_at_0002_upgrades_and_keeps_its_records(pg: str) -> None:
    _copy_fixture_into(pg)
    _open_old_then_upgrade(pg)
    with Catalog.open(pg, create=False) as cat:
        _check_records(cat)
        _check_still_writable(cat)
