"""The catalogue's tables as typed SQLAlchemy 2 ORM classes.

Every table has an integer primary key ``id`` (never reused on SQLite: AUTOINCREMENT), a
``created_at`` timestamp (UTC) and a ``provenance`` JSON object. These classes are private to
:mod:`twinforge.catalog`: callers get frozen records (:mod:`twinforge.catalog.records`), never
live ORM objects.

A change here comes with an Alembic migration (``catalog/migrations/versions``, see
:mod:`twinforge.catalog.migrate`) that upgrades existing catalogues, and bumps
:data:`SCHEMA_VERSION`, the number of the head revision, which the migration also writes into
``twinforge_meta``: a twinforge older than the catalogue refuses to open it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from twinforge.catalog.ids import Kind

__all__ = [
    "BY_KIND",
    "JOB_STATES",
    "SCHEMA_VERSION",
    "Base",
    "Campaign",
    "Dataset",
    "Evaluation",
    "File",
    "Job",
    "Meta",
    "Model",
    "Publication",
    "Tag",
    "TrainingRun",
    "utcnow",
]

SCHEMA_VERSION: Final = 3
"""Version of the table layout (the head migration's number), kept in ``twinforge_meta``."""

JOB_STATES: Final = ("pending", "running", "done", "failed")
"""The states of a campaign job."""


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite keeps no time zone: values are converted to UTC and stored naive, and read back as
    UTC. A naive value given by a caller is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base of the catalogue tables."""

    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        dict[str, Any]: JSONType,
        datetime: UTCDateTime,
        str: Text,
    }


class _Row:
    """Columns every catalogue table has."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-10)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, sort_order=10)
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict, sort_order=11)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (*cls._constraints(), {"sqlite_autoincrement": True})

    @classmethod
    def _constraints(cls) -> tuple[Any, ...]:
        return ()


class Meta(Base):
    """Key-value facts about the catalogue itself (``schema_version``, ``created_by``)."""

    __tablename__ = "twinforge_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str]


class Campaign(_Row, Base):
    """A simulation campaign: parameter space + sampler + simulator + executor."""

    __tablename__ = "campaigns"

    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(default="")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Job(_Row, Base):
    """One simulation job of a campaign, its state machine and its output."""

    __tablename__ = "jobs"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None]
    exit_code: Mapped[int | None]  # of a failed program (command-line simulators)
    stderr_tail: Mapped[str | None]  # the last lines it wrote to stderr
    output_path: Mapped[str | None]
    output_sha256: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]

    @classmethod
    def _constraints(cls) -> tuple[Any, ...]:
        states = ", ".join(f"'{s}'" for s in JOB_STATES)
        return (
            UniqueConstraint("campaign_id", "key", name="uq_jobs_campaign_key"),
            CheckConstraint(f"state IN ({states})", name="ck_jobs_state"),
            CheckConstraint("attempts >= 0", name="ck_jobs_attempts"),
            Index("ix_jobs_campaign_state", "campaign_id", "state"),
        )


class Dataset(_Row, Base):
    """A named set of shower files, optionally produced by a campaign."""

    __tablename__ = "datasets"

    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(default="")
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))


class Model(_Row, Base):
    """A trained generative model (a directory of weights, config and transforms)."""

    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(255), unique=True)
    architecture: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(default="")
    path: Mapped[str | None]


class TrainingRun(_Row, Base):
    """One training of a model on a dataset: hyperparameters, metrics, times."""

    __tablename__ = "training_runs"

    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Evaluation(_Row, Base):
    """A validation of a model against a reference dataset: metrics and report files."""

    __tablename__ = "evaluations"

    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)


class File(_Row, Base):
    """A file with its checksum, owned by exactly one dataset, model or evaluation."""

    __tablename__ = "files"

    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    evaluation_id: Mapped[int | None] = mapped_column(
        ForeignKey("evaluations.id", ondelete="CASCADE")
    )
    path: Mapped[str]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    n_events: Mapped[int | None] = mapped_column(BigInteger)

    @classmethod
    def _constraints(cls) -> tuple[Any, ...]:
        owners = " + ".join(
            f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)"
            for c in ("dataset_id", "model_id", "evaluation_id")
        )
        return (
            CheckConstraint(f"{owners} = 1", name="ck_files_one_owner"),
            CheckConstraint("size_bytes >= 0", name="ck_files_size"),
            CheckConstraint("n_events IS NULL OR n_events >= 0", name="ck_files_n_events"),
            UniqueConstraint("dataset_id", "path", name="uq_files_dataset_path"),
            UniqueConstraint("model_id", "path", name="uq_files_model_path"),
            UniqueConstraint("evaluation_id", "path", name="uq_files_evaluation_path"),
            Index("ix_files_dataset", "dataset_id"),
        )


class Tag(_Row, Base):
    """A label on a dataset, campaign, model, training run or evaluation (``kind`` + ``record_id``,
    the parts of its global ID). Written by ``twinforge catalog tag`` or the web catalogue."""

    __tablename__ = "tags"

    kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int]
    name: Mapped[str] = mapped_column(String(64))

    @classmethod
    def _constraints(cls) -> tuple[Any, ...]:
        return (
            UniqueConstraint("kind", "record_id", "name", name="uq_tags_record_name"),
            Index("ix_tags_name", "name"),
        )


class Publication(_Row, Base):
    """A released version of a dataset or model: its licence, an identifier (a DOI once the
    data repository has minted one) and its DataCite metadata, as deposited."""

    __tablename__ = "publications"

    kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int]
    version: Mapped[str] = mapped_column(String(64))
    license: Mapped[str] = mapped_column(String(255))
    identifier: Mapped[str | None]
    datacite: Mapped[dict[str, Any]] = mapped_column(default=dict)

    @classmethod
    def _constraints(cls) -> tuple[Any, ...]:
        return (
            UniqueConstraint("kind", "record_id", "version", name="uq_publications_version"),
            Index("ix_publications_record", "kind", "record_id"),
        )


BY_KIND: Final[dict[Kind, type[Base]]] = {
    "datasets": Dataset,
    "files": File,
    "campaigns": Campaign,
    "jobs": Job,
    "models": Model,
    "runs": TrainingRun,
    "evaluations": Evaluation,
}
"""The table of each kind of record."""
