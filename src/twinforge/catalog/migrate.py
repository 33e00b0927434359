"""The catalogue's schema under Alembic migrations.

Every change of :mod:`twinforge.catalog.schema` comes with a migration under
``catalog/migrations/versions`` that upgrades an existing catalogue; revision ``0001`` is the
baseline, the schema of twinforge 0.1 (the ``create_all`` era). Alembic records the revision in
its own table, :data:`VERSION_TABLE`, so that Optuna's and MLflow's tables (``alembic_version``,
``version_info``, ...) can share a database with ours without colliding.

:class:`~twinforge.catalog.Catalog` creates a new catalogue by upgrading an empty database to
the head revision, adopts a catalogue from before the migrations (it has ``twinforge_meta`` but
no version table) as the baseline, and refuses a catalogue at an older revision until it is
upgraded (``twinforge catalog upgrade``): other processes may still use it with the older
schema, so an upgrade is never a side effect of opening.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

__all__ = [
    "BASELINE",
    "VERSION_TABLE",
    "current_revision",
    "head_revision",
    "known_revisions",
    "stamp",
    "upgrade",
]

VERSION_TABLE: Final = "twinforge_alembic_version"
"""Alembic's version table in a twinforge catalogue (not the default ``alembic_version``)."""

BASELINE: Final = "0001"
"""The revision of the schema as it was before migrations existed."""

_SCRIPTS: Final = Path(__file__).with_name("migrations")


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The newest revision this twinforge knows."""
    head = _scripts().get_current_head()
    assert head is not None, f"no migrations under {_SCRIPTS}"
    return head


def known_revisions() -> list[str]:
    """Every revision this twinforge knows, oldest first."""
    return [s.revision for s in reversed(list(_scripts().walk_revisions()))]


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the catalogue behind ``connection`` (None: not versioned)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade the catalogue behind ``connection`` to ``revision``, inside the caller's
    transaction (nothing is committed here)."""
    from alembic import command

    command.upgrade(_config(connection), revision)


def stamp(connection: Connection, revision: str) -> None:
    """Record ``revision`` as the catalogue's without running anything (adopting a catalogue
    created before migrations existed)."""
    from alembic import command

    command.stamp(_config(connection), revision)
