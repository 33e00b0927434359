"""Tags and publications: labels on any record, and released versions of datasets and models
with their licence, identifier and DataCite metadata (written by the web catalogue's write
actions and by ``twinforge catalog tag | publish``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)

_META = sa.table("twinforge_meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def _schema_version(value: int) -> None:
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value=str(value)))


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("provenance", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "record_id", "name", name="uq_tags_record_name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tags_name", "tags", ["name"])
    op.create_table(
        "publications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("license", sa.String(length=255), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=True),
        sa.Column("datacite", JSON, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("provenance", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "record_id", "version", name="uq_publications_version"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_publications_record", "publications", ["kind", "record_id"])
    _schema_version(3)


def downgrade() -> None:
    op.drop_index("ix_publications_record", table_name="publications")
    op.drop_table("publications")
    op.drop_index("ix_tags_name", table_name="tags")
    op.drop_table("tags")
    _schema_version(2)
