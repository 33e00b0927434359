"""Failures are data: a failed job keeps its program's exit code and the tail of its stderr.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_META = sa.table("twinforge_meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def _schema_version(value: int) -> None:
    op.execute(_META.update().where(_META.c.key == "schema_version").values(value=str(value)))


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("exit_code", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("stderr_tail", sa.Text(), nullable=True))
    _schema_version(2)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("stderr_tail")
        batch.drop_column("exit_code")
    _schema_version(1)
