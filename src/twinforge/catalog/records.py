"""What the catalogue hands to callers: frozen, detached records (never live ORM objects).

Records are plain frozen dataclasses. Their JSON fields (``provenance``, ``parameters``,
``metrics`` ...) are private copies: changing them changes nothing in the catalogue.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, Literal

from twinforge.catalog.ids import Kind, format_id

__all__ = [
    "CampaignRecord",
    "DatasetRecord",
    "EvaluationRecord",
    "FileRecord",
    "FileSpec",
    "JobRecord",
    "JobSpec",
    "JobState",
    "ModelRecord",
    "Page",
    "PublicationRecord",
    "Record",
    "TrainingRunRecord",
    "VerifyResult",
    "VerifyStatus",
]

JobState = Literal["pending", "running", "done", "failed"]
"""States of a campaign job: ``pending -> running -> done | failed``."""

VerifyStatus = Literal["ok", "missing", "size mismatch", "sha256 mismatch", "unreadable"]
"""Outcome of re-hashing one file."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """Fields every record has; subclasses add their own."""

    kind: ClassVar[Kind]

    id: int
    """Integer primary key, unique within the record's table."""
    created_at: datetime
    """When the row was written (UTC, timezone-aware)."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Free-form JSON object: who, what, how (simulator, versions, seeds, ...)."""

    @property
    def global_id(self) -> str:
        """The record's catalogue-wide ID, e.g. ``ds-3``."""
        return format_id(self.kind, self.id)

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (timestamps as ISO 8601 text), ``id`` global."""
        data: dict[str, Any] = {"id": self.global_id, "kind": self.kind}
        for f in fields(self):
            if f.name == "id":
                continue
            value = getattr(self, f.name)
            data[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetRecord(Record):
    """A named set of shower files, with totals over its files."""

    kind: ClassVar[Kind] = "datasets"

    name: str
    description: str = ""
    campaign_id: int | None = None
    n_files: int = 0
    n_events: int = 0
    size_bytes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRecord(Record):
    """A catalogued file: absolute path, SHA-256, size, event count, owner."""

    kind: ClassVar[Kind] = "files"

    path: str
    sha256: str
    size_bytes: int
    n_events: int | None = None
    dataset_id: int | None = None
    model_id: int | None = None
    evaluation_id: int | None = None

    @property
    def owner(self) -> str:
        """Global ID of the dataset, model or evaluation that holds the file."""
        if self.dataset_id is not None:
            return format_id("datasets", self.dataset_id)
        if self.model_id is not None:
            return format_id("models", self.model_id)
        return format_id("evaluations", self.evaluation_id or 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignRecord(Record):
    """A simulation campaign and how many of its jobs are in each state."""

    kind: ClassVar[Kind] = "campaigns"

    name: str
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    job_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRecord(Record):
    """One job of a campaign: its inputs, state machine and output."""

    kind: ClassVar[Kind] = "jobs"

    campaign_id: int
    key: str
    parameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    state: JobState = "pending"
    attempts: int = 0
    worker: str | None = None
    error: str | None = None
    exit_code: int | None = None
    stderr_tail: str | None = None
    output_path: str | None = None
    output_sha256: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRecord(Record):
    """A trained generative model."""

    kind: ClassVar[Kind] = "models"

    name: str
    architecture: str = ""
    description: str = ""
    path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingRunRecord(Record):
    """One training of a model on a dataset."""

    kind: ClassVar[Kind] = "runs"

    model_id: int | None = None
    dataset_id: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationRecord(Record):
    """A validation of a model against a reference dataset."""

    kind: ClassVar[Kind] = "evaluations"

    model_id: int | None = None
    dataset_id: int | None = None
    description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicationRecord:
    """A released version of a dataset or model (``record`` is its global ID)."""

    id: int
    record: str
    version: str
    license: str
    identifier: str | None = None
    datacite: dict[str, Any] = field(default_factory=dict)
    created_at: datetime
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The publication as a JSON-ready dict."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a search: the records, how many match in all, where the page starts."""

    records: list[Record]
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        """Whether records follow this page."""
        return self.offset + len(self.records) < self.total


@dataclass(frozen=True, slots=True)
class FileSpec:
    """A file to register: its path, event count (None for non-event files) and provenance."""

    path: str | os.PathLike[str]
    n_events: int | None = None
    provenance: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job to add to a campaign.

    ``key`` identifies the job within its campaign; adding a job whose key exists is a no-op,
    which makes :meth:`~twinforge.catalog.Catalog.add_jobs` safe to repeat on resume. When
    None, the key is derived from the parameters and the seed.
    """

    parameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    key: str | None = None
    provenance: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of re-hashing one catalogued file (or job output) against the catalogue."""

    id: str
    """Global ID of the file (``file-12``) or of the job whose output it is (``job-40``)."""
    path: str
    status: VerifyStatus
    expected_sha256: str
    expected_size: int | None = None
    actual_sha256: str | None = None
    actual_size: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the file is present with the catalogued size and checksum."""
        return self.status == "ok"
