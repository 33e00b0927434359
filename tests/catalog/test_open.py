"""Where the catalogue lives, first-open creation, schema version, unusable locations."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from twinforge.catalog import DEFAULT_PATH, ENV_VAR, SCHEMA_VERSION, Catalog, resolve_location
from twinforge.errors import CatalogError


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_location().path == tmp_path / DEFAULT_PATH
    assert str(DEFAULT_PATH) == os.path.join(".twinforge", "catalog.sqlite")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.sqlite"))
    assert resolve_location().path == tmp_path / "env.sqlite"
    assert resolve_location("explicit.sqlite").path == tmp_path / "explicit.sqlite"
    assert resolve_location(Path("p.sqlite")).path == tmp_path / "p.sqlite"


def test_default_location_is_created_on_first_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Catalog.open() as cat:
        cat.add_dataset("d")
    assert (tmp_path / ".twinforge" / "catalog.sqlite").is_file()
    with Catalog.open(tmp_path / ".twinforge" / "catalog.sqlite") as cat:
        assert cat.find("d") is not None


def test_urls(tmp_path: Path) -> None:
    loc = resolve_location(f"sqlite:///{tmp_path}/u.sqlite")
    assert loc.path == tmp_path / "u.sqlite"
    assert loc.is_sqlite
    pg = resolve_location("postgresql://me:secret@db.example.org/twinforge")
    assert pg.path is None
    assert pg.url.drivername == "postgresql+psycopg"
    assert "secret" not in pg.display
    with pytest.raises(CatalogError, match="invalid catalogue URL") as info:
        resolve_location("postgresql://me:secret@host:notaport/db")
    assert "secret" not in str(info.value)


def test_in_memory_catalog() -> None:
    with Catalog.open("sqlite://") as cat:
        cat.add_campaign("c")
        assert cat.count("campaigns") == 1


def test_sqlite_settings(cat: Catalog, db_path: Path) -> None:
    con = sqlite3.connect(db_path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = con.execute(
            "SELECT value FROM twinforge_meta WHERE key = 'schema_version'"
        ).fetchone()[0]
        assert int(version) == SCHEMA_VERSION
    finally:
        con.close()


def test_path_under_a_file_is_refused_cleanly(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(CatalogError, match="not-a-dir is not a directory") as info:
        Catalog.open(blocker / "sub" / "catalog.sqlite")
    assert "\n" not in str(info.value)
    assert blocker.read_text() == "x"


def test_directory_as_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="it is a directory"):
        Catalog.open(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_is_refused_cleanly(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(CatalogError, match=r"ro.* is not writable"):
            Catalog.open(locked / "a" / "b" / "catalog.sqlite")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_unwritable_directory_is_refused_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the permission check itself (the test above cannot run as root, who may write anywhere)
    from twinforge.catalog import store

    real_access = os.access
    monkeypatch.setattr(
        store.os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode)
    )
    with pytest.raises(CatalogError, match=f"{tmp_path} is not writable"):
        Catalog.open(tmp_path / "sub" / "catalog.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_nothing_half_created_when_the_database_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # make the very first write fail after the directories were created
    from twinforge.catalog import store

    def broken(*args: object, **kwargs: object) -> None:
        raise CatalogError("simulated failure")

    monkeypatch.setattr(store, "_initialise", broken)
    with pytest.raises(CatalogError, match="simulated"):
        Catalog.open(tmp_path / "new" / "deeper" / "catalog.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_missing_catalog_without_create(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no catalogue at"):
        Catalog.open(tmp_path / "absent.sqlite", create=False)
    assert not (tmp_path / "absent.sqlite").exists()


def test_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError, match="not an SQLite database"):
        Catalog.open(junk)
    assert junk.read_bytes() == b"this is not sqlite" * 100


def test_foreign_database_is_not_a_catalogue(tmp_path: Path) -> None:
    """Read-only commands refuse it; creating one beside other tools' tables is allowed
    (test_migrations.py)."""
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE stuff (x INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(CatalogError, match=r"not a twinforge catalogue \(no twinforge tables"):
        Catalog.open(other, create=False)


def test_newer_schema_version_is_refused(cat: Catalog, db_path: Path) -> None:
    cat.close()
    con = sqlite3.connect(db_path)
    con.execute("UPDATE twinforge_meta SET value = '999' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(CatalogError, match=r"schema version 999 .*newer than .*upgrade twinforge"):
        Catalog.open(db_path)


def test_reopen_keeps_data(cat: Catalog, db_path: Path) -> None:
    cat.add_campaign("kept")
    cat.close()
    with Catalog.open(f"sqlite:///{db_path}") as again:
        assert again.find("kept") is not None
