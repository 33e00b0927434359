"""The catalogue schema under Alembic: new catalogues, old ones, newer ones, shared databases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from twinforge.catalog import SCHEMA_VERSION, Catalog, migrate
from twinforge.catalog.schema import Base
from twinforge.errors import CatalogError


def _legacy_catalogue(path: Path) -> None:
    """A catalogue as twinforge 0.1 wrote it (create_all era): the baseline tables, the meta
    rows, one campaign with one job, and no version table."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        migrate.upgrade(conn, migrate.BASELINE)
        conn.execute(text(f"DROP TABLE {migrate.VERSION_TABLE}"))
        conn.execute(
            text("INSERT INTO twinforge_meta VALUES ('schema_version', '1'), ('created_by', 'x')")
        )
        conn.execute(
            text(
                "INSERT INTO campaigns (name, description, config, created_at, provenance) "
                "VALUES ('old', '', '{}', '2026-01-01 00:00:00', '{}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO jobs (campaign_id, key, parameters, state, attempts, created_at, "
                "provenance) VALUES (1, 'job-000000', '{}', 'failed', 3, '2026-01-01', '{}')"
            )
        )
    engine.dispose()


def test_new_catalogue_matches_the_orm_schema(db_path: Path) -> None:
    Catalog.open(db_path).close()
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": migrate.VERSION_TABLE}
        )
        assert compare_metadata(context, Base.metadata) == []
        assert migrate.current_revision(conn) == migrate.head_revision()
    engine.dispose()
    tables = {r[0] for r in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master")}
    assert migrate.VERSION_TABLE in tables
    assert "alembic_version" not in tables  # Optuna's and MLflow's name stays free


def test_schema_version_is_the_head_revision() -> None:
    assert int(migrate.head_revision()) == SCHEMA_VERSION
    assert migrate.known_revisions()[0] == migrate.BASELINE


def test_old_catalogue_is_refused_until_upgraded_and_keeps_its_records(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    _legacy_catalogue(db_path)
    with pytest.raises(CatalogError, match=r"revision 0001, older.*twinforge catalog upgrade"):
        Catalog.open(db_path)
    assert Catalog.upgrade(db_path) == (migrate.BASELINE, migrate.head_revision())
    assert Catalog.upgrade(db_path) == (migrate.head_revision(),) * 2  # idempotent
    with Catalog.open(db_path, create=False) as cat:
        (job,) = cat.jobs("camp-1")
        assert (job.key, job.state, job.attempts) == ("job-000000", "failed", 3)
        assert job.exit_code is None
        failed = cat.set_job_state(job.id, "pending", expected="failed")
        cat.set_job_state(failed.id, "running")
        job = cat.set_job_state(job.id, "failed", error="boom", exit_code=3, stderr_tail="x\ny")
        assert (job.exit_code, job.stderr_tail) == (3, "x\ny")
        assert cat.set_job_state(job.id, "pending").exit_code == 3  # kept until it succeeds
    value = sqlite3.connect(db_path).execute(
        "SELECT value FROM twinforge_meta WHERE key = 'schema_version'"
    )
    assert value.fetchone()[0] == str(SCHEMA_VERSION)


def test_failed_upgrade_changes_nothing(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db_path.parent.mkdir(parents=True)
    _legacy_catalogue(db_path)
    before = db_path.read_bytes()

    def broken(conn: object, revision: str = "head") -> None:
        raise CatalogError("migration failed half-way")

    monkeypatch.setattr(migrate, "upgrade", broken)
    with pytest.raises(CatalogError, match="half-way"):
        Catalog.upgrade(db_path)
    tables = {r[0] for r in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master")}
    assert migrate.VERSION_TABLE not in tables  # the stamp was rolled back with the rest
    assert len(db_path.read_bytes()) == len(before)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (f"UPDATE {migrate.VERSION_TABLE} SET version_num = '0099'", "revision 0099"),
        ("UPDATE twinforge_meta SET value = '99' WHERE key = 'schema_version'", "version 99"),
    ],
)
def test_newer_catalogue_is_refused(db_path: Path, statement: str, message: str) -> None:
    Catalog.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(statement)
    for call in (Catalog.open, Catalog.upgrade):
        with pytest.raises(CatalogError, match=rf"{message}.*newer than this twinforge"):
            call(db_path)


def test_catalogue_shares_a_database_with_other_tools(db_path: Path) -> None:
    """Optuna and MLflow keep their own Alembic version table (``alembic_version``)."""
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('v3.2.0.a')")
        conn.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY)")
    with Catalog.open(db_path) as cat:
        cat.add_campaign("c", config={})
    rows = sqlite3.connect(db_path).execute("SELECT version_num FROM alembic_version").fetchall()
    assert rows == [("v3.2.0.a",)]


def test_a_table_named_like_ours_is_not_taken_over(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE jobs (x INTEGER)")
    with pytest.raises(CatalogError, match=r"tables named like ours \(jobs\)"):
        Catalog.open(db_path)


def test_upgrade_of_nothing(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no catalogue at"):
        Catalog.upgrade(tmp_path / "missing.sqlite")
