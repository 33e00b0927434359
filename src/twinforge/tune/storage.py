"""Where a study lives (Optuna's RDB storage), beside the catalogue.

For an SQLite catalogue ``<its folder>/studies.sqlite``; for a PostgreSQL catalogue the same
database, with Optuna's tables in their own schema ``optuna`` (``search_path``), so that its
``alembic_version`` and ``version_info`` tables stay apart from the catalogue's (which keeps its
revision in ``twinforge_alembic_version``) and from MLflow's (its own database file).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from twinforge.errors import ConfigError, TwinforgeError
from twinforge.tune.config import TuneConfig

__all__ = [
    "OPTUNA_SCHEMA",
    "STUDY_FILE",
    "StorageLocation",
    "open_storage",
    "prepare_storage",
    "quiet_optuna",
    "resolve_storage",
]

STUDY_FILE = "studies.sqlite"
"""The study database beside an SQLite catalogue."""
OPTUNA_SCHEMA = "optuna"
"""The PostgreSQL schema of Optuna's tables in a PostgreSQL catalogue's database."""


@dataclass(frozen=True)
class StorageLocation:
    """Where a study is stored: the SQLAlchemy URL (with its password: worker processes open
    it), the text shown to people, and the PostgreSQL schema created before first use."""

    url: str
    display: str
    schema: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


def resolve_storage(storage: str | None, catalog: str | None = None) -> StorageLocation:
    """The study storage: ``storage`` (a URL, or a path meaning an SQLite file), else beside
    the catalogue (``catalog``, ``$TWINFORGE_CATALOG`` or the default one; see the module
    docstring).

    Raises:
        ConfigError: an in-memory catalogue, or a catalogue database other than SQLite or
            PostgreSQL, without an explicit ``storage``.
    """
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    from twinforge.catalog.engine import resolve_location

    if storage:
        if "://" not in storage:
            path = Path(storage).expanduser().absolute()
            return StorageLocation(f"sqlite:///{path}", str(path))
        try:
            url = make_url(storage)
        except (ArgumentError, ValueError) as exc:
            raise ConfigError(f"storage: invalid database URL ({exc})") from None
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return StorageLocation(
            url.render_as_string(hide_password=False), url.render_as_string(hide_password=True)
        )
    location = resolve_location(catalog)
    if location.path is not None:
        path = location.path.parent / STUDY_FILE
        return StorageLocation(f"sqlite:///{path}", str(path))
    backend = location.url.get_backend_name()
    if backend == "postgresql":
        url = location.url.update_query_dict({"options": f"-csearch_path={OPTUNA_SCHEMA}"})
        return StorageLocation(
            url.render_as_string(hide_password=False),
            f"{url.render_as_string(hide_password=True)} (schema {OPTUNA_SCHEMA})",
            OPTUNA_SCHEMA,
        )
    raise ConfigError(
        f"the catalogue {location.display} is not a file or PostgreSQL database: give the "
        "study's storage (storage: sqlite:///studies.sqlite or a database URL)"
    )


def prepare_storage(location: StorageLocation) -> None:
    """Create the SQLite file's folder or the PostgreSQL schema (idempotent)."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    url = make_url(location.url)
    if location.is_sqlite:
        if url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        return
    if location.schema is None:
        return
    engine = create_engine(
        url.difference_update_query(["options"]), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{location.schema}"'))
    except Exception as exc:
        raise TwinforgeError(
            f"study storage {location.display}: cannot create schema {location.schema} "
            f"({str(exc).splitlines()[0]})"
        ) from None
    finally:
        engine.dispose()


def open_storage(url: str, config: TuneConfig) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats; a trial whose heartbeat stops is failed and queued
    again with the same parameters (``config.heartbeat``)."""
    hb = config.heartbeat
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):  # several worker processes write: wait for the lock
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    with quiet_optuna():
        try:
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=hb.interval_s,
                grace_period=hb.grace_s,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=hb.max_retry, inherit_intermediate_values=True
                ),
                **kwargs,
            )
        except Exception as exc:  # sqlalchemy / driver errors: one line naming the storage
            shown = url.split("@")[-1] if "@" in url else url
            raise TwinforgeError(
                f"study storage {shown}: cannot open ({str(exc).splitlines()[0]})"
            ) from None


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's experimental-feature warnings (heartbeats, constant liar) off."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield
