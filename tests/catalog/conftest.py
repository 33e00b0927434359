"""Fixtures of the catalogue tests: a fresh catalogue and small files to register.

The catalogue fixtures (``cat``, ``catalog_url``) run on SQLite by default. A test module opts
in to both database backends with ``CATALOG_BACKENDS = BACKENDS``: its tests that use them run
once on an SQLite file and once on a fresh database of a real PostgreSQL server. The server is
``TWINFORGE_TEST_POSTGRES``, the URL of a role that may create databases (``.ci/run`` starts
Debian's PostgreSQL and sets it); without it, or without psycopg, the ``postgresql`` cases are
skipped with that reason. A test that needs SQLite itself (file locks, PRAGMAs) is marked
``@sqlite_only``. Tests outside this folder (the campaign journal) import ``backend``,
``catalog_url`` and ``pg`` from here and parametrise ``backend`` themselves (``indirect``).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from twinforge.catalog import ENV_VAR, Catalog

GEANT4_PROVENANCE = {
    "simulator": {"name": "Geant4", "version": "11.2.1"},
    "physics_list": "FTFP_BERT_EMZ",
    "detector": "siw",
    "parameters": {"particle": "e-", "energy_min_MeV": 1000.0, "energy_max_MeV": 64000.0},
    "seeds": [11, 12],
    "software": {"geant4-pybind": "0.1.3"},
    "start_time": "2025-01-02T03:04:05+00:00",
    "end_time": "2025-01-02T04:05:06+00:00",
}

POSTGRES_ENV = "TWINFORGE_TEST_POSTGRES"
"""The URL of a PostgreSQL role that may create databases (one per test)."""

BACKENDS = ("sqlite", "postgresql")
"""The database backends of the catalogue; ``CATALOG_BACKENDS = BACKENDS`` opts a module in."""

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
"""Marks a test of an opted-in module that needs SQLite itself (its locks, PRAGMAs, files)."""

both_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
"""Runs one test on both backends (outside this folder, where the module opt-in does not
reach: import ``backend``, ``catalog_url``, ``db_path`` and ``pg`` from here as well)."""


def postgres_skip_reason() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    if not os.environ.get(POSTGRES_ENV, "").strip():
        return f"no PostgreSQL server: set {POSTGRES_ENV} (.ci/run does)"
    try:
        spec = importlib.util.find_spec("psycopg")
    except (ImportError, ValueError):  # a broken or blocked installation
        spec = None
    if spec is None:
        return "psycopg is not installed: pip install twinforge[postgres]"
    return None


@contextmanager
def fresh_postgres_database(prefix: str = "tf_test") -> Iterator[str]:
    """Create a new, empty database on the test server; yield its URL (with the password, for
    other processes); drop it afterwards, closing whatever connections are left."""
    admin_url = make_url(os.environ[POSTGRES_ENV]).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(autouse=True)
def _no_catalog_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the user's TWINFORGE_CATALOG."""
    monkeypatch.delenv(ENV_VAR, raising=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests of a module with ``CATALOG_BACKENDS`` on each of those backends."""
    if "backend" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        names = names.split(",") if isinstance(names, str) else names
        if "backend" in [n.strip() for n in names]:
            return  # the test chose its backends itself (sqlite_only)
    backends = getattr(metafunc.module, "CATALOG_BACKENDS", None)
    if backends is not None:
        metafunc.parametrize("backend", list(backends), indirect=True)


@pytest.fixture
def pg() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards (skip without one)."""
    reason = postgres_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The catalogue's database backend: ``sqlite`` unless the test is parametrised."""
    value = getattr(request, "param", "sqlite")
    assert value in BACKENDS, value
    return value


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db" / "catalog.sqlite"


@pytest.fixture
def catalog_url(backend: str, request: pytest.FixtureRequest) -> str:
    """Where the test's catalogue lives, not created yet: an SQLite file path (in a directory
    that does not exist yet either), or the URL of a fresh, empty PostgreSQL database. Any
    process may open it."""
    if backend == "postgresql":
        return str(request.getfixturevalue("pg"))
    return str(request.getfixturevalue("db_path"))


@pytest.fixture
def cat(catalog_url: str) -> Iterator[Catalog]:
    with Catalog.open(catalog_url) as catalog:
        yield catalog


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a small file (any content: the catalogue never parses it) and return its path."""

    def make(name: str, content: bytes | None = None) -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if content is not None else f"showers of {name}".encode())
        return path

    return make
