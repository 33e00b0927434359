"""Where the catalogue lives and how to talk to it safely from many processes.

Location, in order of precedence: an explicit path or SQLAlchemy URL, the environment variable
``TWINFORGE_CATALOG``, then ``./.twinforge/catalog.sqlite`` under the current directory.

SQLite, with several processes writing at once (campaign workers, training jobs):

* the database runs in WAL journal mode, so readers never block the writer and vice versa;
* every connection has a busy timeout, so a writer waits for the lock instead of failing;
* SQLAlchemy emits the ``BEGIN`` itself (the pysqlite recipe: the driver's own transaction
  handling is switched off), ``BEGIN IMMEDIATE`` for write transactions, so a writer takes the
  write lock up front and never has to upgrade a read lock (the case where SQLite gives up with
  "database is locked" without waiting), and a plain deferred ``BEGIN`` for reads;
* write transactions that still fail with "database is locked" (or, on PostgreSQL, with a
  serialisation failure or deadlock) are rolled back and retried with jittered backoff.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from twinforge.errors import CatalogError

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "WRITE_OPTION",
    "Location",
    "create_catalog_engine",
    "is_retryable",
    "resolve_location",
    "retry",
]

log = logging.getLogger(__name__)

ENV_VAR: Final = "TWINFORGE_CATALOG"
"""Environment variable naming the catalogue (a path or an SQLAlchemy URL)."""

DEFAULT_PATH: Final = Path(".twinforge") / "catalog.sqlite"
"""Default catalogue file, relative to the current working directory."""

WRITE_OPTION: Final = "twinforge_write"
"""Execution option marking a connection whose transactions write (``BEGIN IMMEDIATE``)."""

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Location:
    """A resolved catalogue location."""

    url: URL
    """SQLAlchemy URL (SQLite paths made absolute)."""
    path: Path | None
    """The SQLite database file, or None for a server database or an in-memory one."""

    @property
    def display(self) -> str:
        """The location for messages: the file path, or the URL without its password."""
        if self.path is not None:
            return str(self.path)
        return self.url.render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        """Whether the catalogue is an SQLite database (file or memory)."""
        return self.url.get_backend_name() == "sqlite"


def resolve_location(url_or_path: str | os.PathLike[str] | None = None) -> Location:
    """Resolve where the catalogue is: argument > ``$TWINFORGE_CATALOG`` > default file.

    A text with a scheme (``postgresql://...``, ``sqlite:///...``) is an SQLAlchemy URL; anything
    else is a file path. ``postgresql://`` without a driver means ``postgresql+psycopg://``.

    Raises:
        CatalogError: the URL cannot be parsed.
    """
    if url_or_path is None or str(url_or_path).strip() == "":
        url_or_path = os.environ.get(ENV_VAR, "").strip() or None
    if url_or_path is None:
        return _file_location(Path.cwd() / DEFAULT_PATH)
    text = os.fspath(url_or_path)
    if isinstance(url_or_path, str) and _URL_RE.match(text):
        try:
            url = make_url(text)
        except (ArgumentError, ValueError) as exc:
            shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)
            raise CatalogError(f"invalid catalogue URL {shown!r}: {exc}") from None
        if url.get_backend_name() == "sqlite":
            if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
                return Location(url, None)
            return _file_location(Path(url.database), url)
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return Location(url, None)
    return _file_location(Path(text))


def _file_location(path: Path, url: URL | None = None) -> Location:
    path = Path(os.path.abspath(path.expanduser()))
    url = URL.create("sqlite") if url is None else url
    return Location(url.set(database=str(path)), path)


def create_catalog_engine(location: Location, *, busy_timeout: float = 30.0) -> Engine:
    """An engine for ``location``, with the SQLite concurrency settings described above.

    Args:
        location: where the catalogue is.
        busy_timeout: seconds an SQLite connection waits for a lock before giving up.

    Raises:
        CatalogError: the database driver is not installed (e.g. psycopg for PostgreSQL).
    """
    if not location.is_sqlite:
        # an unreachable server is an error in seconds, not after the OS's TCP timeout
        connect_args = {} if "connect_timeout" in location.url.query else {"connect_timeout": 10}
        try:
            return create_engine(location.url, pool_pre_ping=True, connect_args=connect_args)
        except ModuleNotFoundError as exc:
            raise CatalogError(
                f"cannot open catalogue {location.display}: the database driver is missing "
                f"({exc.name}); for PostgreSQL install twinforge[postgres]"
            ) from None
    if location.path is None:
        engine = create_engine(
            location.url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False, "timeout": busy_timeout},
        )
    else:
        engine = create_engine(location.url, connect_args={"timeout": busy_timeout})
    _install_sqlite_hooks(engine, wal=location.path is not None, busy_timeout=busy_timeout)
    return engine


def _install_sqlite_hooks(engine: Engine, *, wal: bool, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy emit BEGIN (see _on_begin) instead of the driver
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if wal:
                mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


_LOCKED = ("database is locked", "database table is locked", "database is busy")
_PG_RETRY_STATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is a transient lock conflict worth retrying the transaction for."""
    if not isinstance(exc, DBAPIError):
        return False
    if isinstance(exc, OperationalError) and any(s in str(exc.orig).lower() for s in _LOCKED):
        return True
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state in _PG_RETRY_STATES


def retry(
    fn: Callable[[], T],
    *,
    attempts: int = 8,
    first_delay: float = 0.05,
    max_delay: float = 2.0,
) -> T:
    """Call ``fn`` until it does not raise a retryable database error (jittered backoff).

    ``fn`` must run a whole transaction, so that a failed attempt leaves nothing behind.
    """
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except DBAPIError as exc:
            if not is_retryable(exc) or attempt == attempts:
                raise
            pause = random.uniform(0.5, 1.5) * delay
            log.debug("catalogue busy (%s); retry %d in %.2f s", exc.orig, attempt, pause)
            time.sleep(pause)
            delay = min(2 * delay, max_delay)
    raise AssertionError("unreachable")  # pragma: no cover
