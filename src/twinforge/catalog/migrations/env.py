"""Alembic environment of the twinforge catalogue.

twinforge runs its migrations itself (:mod:`twinforge.catalog.migrate`), on a connection it
opened, inside the transaction that holds the catalogue's write lock; that connection arrives
as ``config.attributes["connection"]``. For development (``alembic revision --autogenerate``)
a URL works too: ``alembic -c src/twinforge/catalog/migrations/alembic.ini -x url=sqlite:///x``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from twinforge.catalog.migrate import VERSION_TABLE
from twinforge.catalog.schema import Base


def _configure(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite cannot ALTER most things: copy-and-move instead
        compare_type=True,
    )


connection = context.config.attributes.get("connection")
if connection is not None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the catalogue: alembic ... -x url=sqlite:///path/catalog.sqlite")
    with create_engine(url).connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()
