"""Baseline: the catalogue schema of twinforge 0.1, before migrations existed.

Frozen: later changes are new revisions, never edits here. Catalogues created before this
revision existed are stamped with it when first opened (they have exactly these tables).

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)  # UTC; stored naive on SQLite (schema.UTCDateTime)


def _table(name: str, *columns: sa.Column | sa.Constraint) -> None:
    """A table with the columns every catalogue table has (id, created_at, provenance)."""
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        *[c for c in columns if isinstance(c, sa.Column)],
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("provenance", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        *[c for c in columns if not isinstance(c, sa.Column)],
        sqlite_autoincrement=True,
    )


def _fk(column: str, table: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "twinforge_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    _table(
        "campaigns",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.UniqueConstraint("name"),
    )
    _table(
        "models",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("architecture", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        sa.UniqueConstraint("name"),
    )
    _table(
        "datasets",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        _fk("campaign_id", "campaigns", "SET NULL"),
        sa.UniqueConstraint("name"),
    )
    _table(
        "jobs",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("output_path", sa.Text(), nullable=True),
        sa.Column("output_sha256", sa.String(length=64), nullable=True),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("finished_at", TIME, nullable=True),
        sa.Column("updated_at", TIME, nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'running', 'done', 'failed')", name="ck_jobs_state"
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_jobs_attempts"),
        _fk("campaign_id", "campaigns", "CASCADE"),
        sa.UniqueConstraint("campaign_id", "key", name="uq_jobs_campaign_key"),
    )
    op.create_index("ix_jobs_campaign_state", "jobs", ["campaign_id", "state"])
    for name, extra in (
        ("evaluations", [sa.Column("description", sa.Text(), nullable=False)]),
        (
            "training_runs",
            [
                sa.Column("hyperparameters", JSON, nullable=False),
                sa.Column("started_at", TIME, nullable=True),
                sa.Column("finished_at", TIME, nullable=True),
            ],
        ),
    ):
        _table(
            name,
            sa.Column("model_id", sa.Integer(), nullable=True),
            sa.Column("dataset_id", sa.Integer(), nullable=True),
            *extra,
            sa.Column("metrics", JSON, nullable=False),
            _fk("dataset_id", "datasets", "SET NULL"),
            _fk("model_id", "models", "SET NULL"),
        )
    owners = " + ".join(
        f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)"
        for c in ("dataset_id", "model_id", "evaluation_id")
    )
    _table(
        "files",
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("evaluation_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("n_events", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(f"{owners} = 1", name="ck_files_one_owner"),
        sa.CheckConstraint("n_events IS NULL OR n_events >= 0", name="ck_files_n_events"),
        sa.CheckConstraint("size_bytes >= 0", name="ck_files_size"),
        _fk("dataset_id", "datasets", "CASCADE"),
        _fk("evaluation_id", "evaluations", "CASCADE"),
        _fk("model_id", "models", "CASCADE"),
        sa.UniqueConstraint("dataset_id", "path", name="uq_files_dataset_path"),
        sa.UniqueConstraint("evaluation_id", "path", name="uq_files_evaluation_path"),
        sa.UniqueConstraint("model_id", "path", name="uq_files_model_path"),
    )
    op.create_index("ix_files_dataset", "files", ["dataset_id"])
    op.create_index("ix_files_sha256", "files", ["sha256"])


def downgrade() -> None:
    for table in (
        "files", "training_runs", "evaluations", "jobs", "datasets", "models", "campaigns",
        "twinforge_meta",
    ):  # fmt: skip
        op.drop_table(table)
