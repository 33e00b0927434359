"""The catalogue: every dataset, file, campaign, job, model, training run and evaluation.

A SQLAlchemy store (SQLite file by default, PostgreSQL by URL) with checksummed files,
provenance on every row, human-friendly global IDs (``ds-3``, ``job-40``), safe concurrent
writers, re-hash verification and RO-Crate (Process Run Crate) export.

Importing this package does no work: nothing is opened until :meth:`Catalog.open`.
"""

from __future__ import annotations

from twinforge.catalog.crate import PROCESS_RUN_CRATE, Creator, export_rocrate
from twinforge.catalog.engine import DEFAULT_PATH, ENV_VAR, Location, resolve_location
from twinforge.catalog.hashing import file_digest, sha256_file
from twinforge.catalog.ids import KINDS, PREFIXES, Kind, format_id, normalise_kind, parse_id
from twinforge.catalog.records import (
    CampaignRecord,
    DatasetRecord,
    EvaluationRecord,
    FileRecord,
    FileSpec,
    JobRecord,
    JobSpec,
    JobState,
    ModelRecord,
    Page,
    PublicationRecord,
    Record,
    TrainingRunRecord,
    VerifyResult,
)
from twinforge.catalog.schema import SCHEMA_VERSION
from twinforge.catalog.store import JOB_TRANSITIONS, Catalog

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "JOB_TRANSITIONS",
    "KINDS",
    "PREFIXES",
    "PROCESS_RUN_CRATE",
    "SCHEMA_VERSION",
    "CampaignRecord",
    "Catalog",
    "Creator",
    "DatasetRecord",
    "EvaluationRecord",
    "FileRecord",
    "FileSpec",
    "JobRecord",
    "JobSpec",
    "JobState",
    "Kind",
    "Location",
    "ModelRecord",
    "Page",
    "PublicationRecord",
    "Record",
    "TrainingRunRecord",
    "VerifyResult",
    "export_rocrate",
    "file_digest",
    "format_id",
    "normalise_kind",
    "parse_id",
    "resolve_location",
    "sha256_file",
]
