"""The :class:`Catalog`: a typed API over the catalogue database.

Every public method runs in its own short transaction and returns frozen records
(:mod:`twinforge.catalog.records`). Files are hashed *before* the write transaction starts, so
that a writer never holds the database lock while reading gigabytes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    case,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import DatabaseError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from twinforge import __version__
from twinforge._json import json_default
from twinforge.catalog import migrate
from twinforge.catalog.engine import (
    WRITE_OPTION,
    Location,
    create_catalog_engine,
    is_retryable,
    resolve_location,
    retry,
)
from twinforge.catalog.hashing import Digest, file_digest, is_sha256, resolve_file
from twinforge.catalog.ids import KINDS, Kind, format_id, normalise_kind, parse_id
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
from twinforge.catalog.schema import (
    BY_KIND,
    JOB_STATES,
    SCHEMA_VERSION,
    Base,
    Campaign,
    Dataset,
    Evaluation,
    File,
    Job,
    Meta,
    Model,
    Publication,
    Tag,
    TrainingRun,
    utcnow,
)
from twinforge.catalog.search import NAMED, search_query
from twinforge.errors import CatalogError, CatalogUnavailable, RecordNotFound

__all__ = ["JOB_TRANSITIONS", "Catalog", "IdLike"]

log = logging.getLogger(__name__)

T = TypeVar("T")

IdLike = int | str | Record
"""A record reference: integer primary key, global ID (``"ds-3"``) or a record."""

FileLike = FileSpec | str | os.PathLike[str] | tuple[str | os.PathLike[str], int | None]
"""A file to register: a :class:`FileSpec`, a path, or ``(path, n_events)``."""

JOB_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "pending": frozenset({"running", "failed"}),
    "running": frozenset({"done", "failed", "pending"}),
    "failed": frozenset({"pending"}),
    "done": frozenset(),
}
"""Allowed job state changes: ``JOB_TRANSITIONS[old]`` holds the states ``old`` may go to."""

_ORM: Final = BY_KIND

_RECORDS: Final[dict[Kind, type[Record]]] = {
    "datasets": DatasetRecord,
    "files": FileRecord,
    "campaigns": CampaignRecord,
    "jobs": JobRecord,
    "models": ModelRecord,
    "runs": TrainingRunRecord,
    "evaluations": EvaluationRecord,
}

_NAMED: Final = NAMED

_MAX_SEED: Final = 2**63 - 1
_IN_CHUNK: Final = 500  # parameters per IN (...) clause, well below SQLite's limit
_PG_LOCK_KEY: Final = 0x7477_696E  # advisory lock serialising schema creation on PostgreSQL


class Catalog:
    """The catalogue of datasets, files, campaigns, jobs, models, training runs, evaluations.

    Open one with :meth:`open`; close it with :meth:`close` or use it as a context manager.
    A Catalog is safe to use from several threads, and several processes may open the same
    catalogue at once. After ``fork``, the child re-opens its own connections transparently.

    Example::

        with Catalog.open() as cat:
            ds = cat.add_dataset("siw-e-1to64GeV", files=[("run0.h5", 1000)],
                                 provenance={"simulator": {"name": "Geant4", "version": "11.2"}})
            print(ds.global_id, ds.n_events)
    """

    def __init__(self, engine: Engine, location: Location) -> None:
        """Wrap an initialised engine; use :meth:`open` rather than this constructor."""
        self._engine = engine
        self._location = location
        self._pid = os.getpid()
        self._reader = sessionmaker(bind=engine, expire_on_commit=False)
        self._writer = sessionmaker(
            bind=engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    def open(
        cls,
        url_or_path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        busy_timeout: float = 30.0,
    ) -> Catalog:
        """Open (and on first use create) a catalogue.

        Args:
            url_or_path: an SQLite file path or any SQLAlchemy URL. When None, the environment
                variable ``TWINFORGE_CATALOG``, else ``./.twinforge/catalog.sqlite``.
            create: create the database and its tables when missing; when False, a missing
                catalogue is an error (read-only commands use this).
            busy_timeout: seconds an SQLite connection waits for a lock held by another
                process before the transaction is retried.

        Raises:
            CatalogError: the location is not writable, not a twinforge catalogue, or holds a
                schema version this twinforge does not know. Nothing is left behind on failure.
        """
        location = resolve_location(url_or_path)
        cleanup = _prepare_file(location.path, create=create) if location.path else _noop
        engine = create_catalog_engine(location, busy_timeout=busy_timeout)
        try:
            retry(lambda: _initialise(engine, location, create=create))
        except CatalogError:
            engine.dispose()
            cleanup()
            raise
        except DatabaseError as exc:
            engine.dispose()
            if not is_retryable(exc):  # a locked file is another process's new catalogue
                cleanup()
            raise CatalogError(_db_error_message(location, exc)) from None
        log.debug("opened catalogue %s", location.display)
        return cls(engine, location)

    @staticmethod
    def upgrade(url_or_path: str | os.PathLike[str] | None = None) -> tuple[str, str]:
        """Upgrade an existing catalogue's schema to this twinforge's; return the revisions
        (before, after). Every migration runs in one transaction: on failure nothing changed.

        Processes running an older twinforge cannot use the catalogue afterwards; back the
        database up first.

        Raises:
            CatalogError: no catalogue there, or one newer than this twinforge knows.
        """
        location = resolve_location(url_or_path)
        if location.path is not None and not location.path.is_file():
            raise CatalogError(f"no catalogue at {location.display}")
        engine = create_catalog_engine(location)
        try:

            def run() -> tuple[str, str]:
                with _write_locked(engine) as conn:
                    before = _schema_revision(conn, location)
                    if before is None:
                        raise CatalogError(f"{location.display} is not a twinforge catalogue")
                    if migrate.VERSION_TABLE not in inspect(conn).get_table_names():
                        migrate.stamp(conn, migrate.BASELINE)  # from before migrations
                    migrate.upgrade(conn)
                    return before, migrate.head_revision()

            before, after = retry(run)
        except DatabaseError as exc:
            raise CatalogError(_db_error_message(location, exc)) from None
        finally:
            engine.dispose()
        if before != after:
            log.info("upgraded catalogue %s: revision %s -> %s", location.display, before, after)
        return before, after

    @property
    def location(self) -> Location:
        """Where the catalogue is (URL and, for SQLite, the file)."""
        return self._location

    @property
    def url(self) -> str:
        """The catalogue's URL, password hidden."""
        return self._location.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self._location.display!r})"

    # ------------------------------------------------------------------ datasets and files

    def add_dataset(
        self,
        name: str,
        *,
        description: str = "",
        provenance: Mapping[str, Any] | None = None,
        files: Iterable[FileLike] = (),
        campaign_id: IdLike | None = None,
    ) -> DatasetRecord:
        """Register a dataset and, in the same transaction, its files.

        Args:
            name: unique name of the dataset (not shaped like an ID such as ``ds-3``).
            description: free text.
            provenance: JSON object (simulator and version, physics list, geometry, seeds...).
            files: the dataset's files: :class:`FileSpec`, ``(path, n_events)`` pairs.
                Each is hashed (SHA-256) before anything is written.
            campaign_id: the campaign that produced the dataset, if any.

        Raises:
            CatalogError: duplicate name, missing file, unknown campaign, bad provenance.
        """
        name = _check_name(name, "dataset")
        prov = _json_object(provenance, "provenance")
        campaign_pk = _pk(campaign_id, "campaigns") if campaign_id is not None else None
        specs = [_file_spec(f, need_events=True) for f in files]
        digests = [_digest(Path(s.path)) for s in specs]

        def write(s: Session) -> DatasetRecord:
            _ensure_unique_name(s, Dataset, name, "datasets")
            if campaign_pk is not None:
                _require(s, "campaigns", campaign_pk)
            row = Dataset(
                name=name, description=description, campaign_id=campaign_pk, provenance=prov
            )
            s.add(row)
            s.flush()
            rows = _insert_files(s, "dataset_id", row.id, specs, digests)
            return _dataset_record(row, rows)

        record = self._write(write)
        log.info("added %s %r with %d file(s)", record.global_id, name, record.n_files)
        return record

    def add_file(
        self,
        dataset_id: IdLike,
        path: str | os.PathLike[str],
        *,
        n_events: int,
        provenance: Mapping[str, Any] | None = None,
    ) -> FileRecord:
        """Register one file of a dataset; its SHA-256 and size are computed here.

        Raises:
            CatalogError: unknown dataset, missing or unreadable file, file already in the
                dataset, negative ``n_events``.
        """
        owner = format_id("datasets", _pk(dataset_id, "datasets"))
        return self.add_files(owner, [FileSpec(path, n_events, _opt_dict(provenance))])[0]

    def add_files(self, owner: IdLike, files: Iterable[FileLike]) -> list[FileRecord]:
        """Register several files of a dataset, model or evaluation in one transaction.

        Args:
            owner: the dataset, model or evaluation (ID or record).
            files: :class:`FileSpec`, paths, or ``(path, n_events)`` pairs; dataset files
                need ``n_events``.
        """
        kind, pk = _owner(owner)
        column = _OWNER_COLUMNS[kind]
        specs = [_file_spec(f, need_events=kind == "datasets") for f in files]
        digests = [_digest(Path(s.path)) for s in specs]

        def write(s: Session) -> list[FileRecord]:
            _require(s, kind, pk)
            return [_record(r) for r in _insert_files(s, column, pk, specs, digests)]

        records = self._write(write)
        log.info("added %d file(s) to %s", len(records), format_id(kind, pk))
        return records  # type: ignore[return-value]

    def files(self, owner: IdLike | None = None) -> list[FileRecord]:
        """The files of a dataset, model or evaluation (all files when None), by ID."""
        with self._read() as s:
            query = select(File).order_by(File.id)
            if owner is not None:
                kind, pk = _owner(owner)
                _require(s, kind, pk)
                query = query.where(getattr(File, _OWNER_COLUMNS[kind]) == pk)
            return [_record(r) for r in s.scalars(query)]  # type: ignore[misc]

    # ------------------------------------------------------------------ campaigns and jobs

    def add_campaign(
        self,
        name: str,
        *,
        description: str = "",
        config: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> CampaignRecord:
        """Register a campaign; ``config`` is its full specification as a JSON object.

        Raises:
            CatalogError: a campaign of that name exists (look it up with :meth:`find`).
        """
        name = _check_name(name, "campaign")
        cfg = _json_object(config, "config")
        prov = _json_object(provenance, "provenance")

        def write(s: Session) -> CampaignRecord:
            _ensure_unique_name(s, Campaign, name, "campaigns")
            row = Campaign(name=name, description=description, config=cfg, provenance=prov)
            s.add(row)
            s.flush()
            return _campaign_record(row, {})

        record = self._write(write)
        log.info("added %s %r", record.global_id, name)
        return record

    def add_jobs(
        self, campaign_id: IdLike, jobs: Iterable[JobSpec | Mapping[str, Any]]
    ) -> list[JobRecord]:
        """Add jobs to a campaign in one transaction; returns them in the order given.

        Jobs are identified by their key within the campaign (:class:`JobSpec`; derived from
        parameters and seed when not given). A job whose key already exists is not added again
        and its current record is returned: repeating the call on resume is safe.

        Raises:
            CatalogError: unknown campaign, a key that exists with other parameters or seed,
                a seed outside [0, 2**63), parameters that are not a JSON object.
        """
        campaign_pk = _pk(campaign_id, "campaigns")
        wanted: dict[str, dict[str, Any]] = {}
        order: list[str] = []
        for job in jobs:
            row = _job_row(job)
            previous = wanted.get(row["key"])
            if previous is None:
                wanted[row["key"]] = row
                order.append(row["key"])
            elif (previous["parameters"], previous["seed"]) != (row["parameters"], row["seed"]):
                raise CatalogError(f"two jobs with key {row['key']!r} and different parameters")

        def write(s: Session) -> list[JobRecord]:
            _require(s, "campaigns", campaign_pk)
            existing = _jobs_by_key(s, campaign_pk, order)
            for key, job in existing.items():
                new = wanted[key]
                if (job.parameters, job.seed) != (new["parameters"], new["seed"]):
                    raise CatalogError(
                        f"{format_id('jobs', job.id)} has key {key!r} in "
                        f"{format_id('campaigns', campaign_pk)} but other parameters or seed"
                    )
            now = utcnow()
            new_rows = [
                {**wanted[k], "campaign_id": campaign_pk, "created_at": now, "state": "pending"}
                for k in order
                if k not in existing
            ]
            if new_rows:
                s.execute(insert(Job), new_rows)
            by_key = _jobs_by_key(s, campaign_pk, order)
            return [_record(by_key[k]) for k in order]  # type: ignore[misc]

        records = self._write(write)
        log.debug("%s: %d job(s) given", format_id("campaigns", campaign_pk), len(records))
        return records

    def claim(self, campaign_id: IdLike, *, worker: str | None = None) -> JobRecord | None:
        """Atomically take the oldest pending job of a campaign and mark it running.

        Two processes claiming at once never get the same job. ``attempts`` is incremented and
        ``worker`` (default ``host:pid``) recorded. Returns None when no job is pending.

        Raises:
            CatalogError: unknown campaign.
        """
        campaign_pk = _pk(campaign_id, "campaigns")
        worker = worker or _default_worker()
        sqlite = self._location.is_sqlite

        def write(s: Session) -> JobRecord | None:
            query = (
                select(Job.id)
                .where(Job.campaign_id == campaign_pk, Job.state == "pending")
                .order_by(Job.id)
                .limit(1)
            )
            if not sqlite:  # SQLite's BEGIN IMMEDIATE already serialises writers
                query = query.with_for_update(skip_locked=True)
            job_pk = s.scalar(query)
            if job_pk is None:
                _require(s, "campaigns", campaign_pk)
                return None
            now = utcnow()
            values = {
                "state": "running",
                "attempts": Job.attempts + 1,
                "worker": worker,
                "started_at": now,
                "finished_at": None,
                "updated_at": now,
            }
            s.execute(update(Job).where(Job.id == job_pk, Job.state == "pending").values(**values))
            return _record(s.get_one(Job, job_pk, populate_existing=True))  # type: ignore[return-value]

        return self._write(write)

    def set_job_state(
        self,
        job_id: IdLike,
        state: JobState,
        *,
        error: str | None = None,
        output_path: str | os.PathLike[str] | None = None,
        output_sha256: str | None = None,
        expected: JobState | None = None,
        worker: str | None = None,
        provenance: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
        stderr_tail: str | None = None,
    ) -> JobRecord:
        """Move a job to ``state`` atomically (compare-and-set on its current state).

        Allowed changes (:data:`JOB_TRANSITIONS`): pending -> running | failed,
        running -> done | failed | pending, failed -> pending; ``done`` is final.

        Args:
            job_id: the job.
            state: the new state.
            error: the failure message (``failed``).
            output_path: the job's output file (``done``); its SHA-256 is computed here unless
                ``output_sha256`` is given.
            output_sha256: the output's SHA-256 when already known.
            expected: require the job to be in this state now (else CatalogError).
            worker: who runs the job (``running``; default ``host:pid``).
            provenance: merged into the job's provenance.
            exit_code: the exit status of the program that failed (``failed``).
            stderr_tail: the last lines it wrote to stderr (``failed``).

        Raises:
            CatalogError: unknown job, a change not allowed from the job's current state, a
                missing output file, a malformed checksum.
        """
        job_pk = _pk(job_id, "jobs")
        if state not in JOB_STATES:
            raise CatalogError(f"unknown job state {state!r}; states: {', '.join(JOB_STATES)}")
        sources = [old for old, new in JOB_TRANSITIONS.items() if state in new]
        if expected is not None:
            if expected not in JOB_STATES:
                raise CatalogError(f"unknown job state {expected!r}")
            sources = [expected] if expected in sources else []
        now = utcnow()
        values: dict[str, Any] = {"state": state, "updated_at": now}
        if state == "running":
            values |= {
                "attempts": Job.attempts + 1,
                "started_at": now,
                "finished_at": None,
                "worker": worker or _default_worker(),
            }
        elif state == "done":
            values |= {"finished_at": now, "error": None, "exit_code": None, "stderr_tail": None}
            if worker is not None:  # where it really ran (a worker process), if known
                values["worker"] = worker
            if output_path is not None:
                out = resolve_file(output_path)
                sha = output_sha256 or _digest(out).sha256
                values |= {"output_path": str(out), "output_sha256": _check_sha(sha)}
            elif output_sha256 is not None:
                raise CatalogError("output_sha256 given without output_path")
        elif state == "failed":
            values |= {
                "finished_at": now,
                "error": error or "failed (no message)",
                "exit_code": exit_code,
                "stderr_tail": stderr_tail,
            }
        else:  # back to pending
            values |= {"worker": None, "started_at": None, "finished_at": None}
        if error is not None and state != "failed":
            values["error"] = error
        extra = _json_object(provenance, "provenance") if provenance is not None else None

        def write(s: Session) -> JobRecord:
            if extra is not None:
                # the row lock keeps a concurrent writer's provenance (PostgreSQL; SQLite's
                # BEGIN IMMEDIATE already serialises writers)
                current = s.get(Job, job_pk, with_for_update=True)
                if current is not None:
                    values["provenance"] = {**current.provenance, **extra}
            result = s.execute(
                update(Job)
                .where(Job.id == job_pk, Job.state.in_(sources))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                old = s.scalar(select(Job.state).where(Job.id == job_pk))
                if old is None:
                    raise RecordNotFound(f"no such record: {format_id('jobs', job_pk)}")
                raise CatalogError(
                    f"{format_id('jobs', job_pk)}: cannot change state from {old!r} to "
                    f"{state!r}" + (f" (expected {expected!r})" if expected else "")
                )
            return _record(s.get_one(Job, job_pk, populate_existing=True))  # type: ignore[return-value]

        return self._write(write)

    def reset_jobs(
        self,
        campaign_id: IdLike,
        *,
        states: Sequence[JobState] = ("running",),
        max_attempts: int | None = None,
    ) -> int:
        """Put a campaign's jobs in ``states`` back to pending; returns how many.

        On resume after a crash, ``states=("running",)`` re-queues the jobs that were running
        when the campaign died; ``states=("failed",), max_attempts=3`` retries failed jobs that
        have been tried fewer than three times.
        """
        campaign_pk = _pk(campaign_id, "campaigns")
        bad = [st for st in states if st not in ("running", "failed")]
        if bad:
            raise CatalogError(f"cannot reset jobs in state(s) {bad}: only running or failed")

        def write(s: Session) -> int:
            _require(s, "campaigns", campaign_pk)
            query = update(Job).where(Job.campaign_id == campaign_pk, Job.state.in_(states))
            if max_attempts is not None:
                query = query.where(Job.attempts < max_attempts)
            return _to_pending(s, query)

        n = self._write(write)
        log.debug("%s: %d job(s) back to pending", format_id("campaigns", campaign_pk), n)
        return n

    def release_jobs(self, job_ids: Sequence[IdLike]) -> int:
        """Hand running jobs back to pending without counting their attempt; returns how many.

        For a deliberate stop (Ctrl-C, SIGTERM): the jobs did not fail and did not crash their
        worker, so the stop must not bring them closer to their retry limit. Jobs no longer
        running (finished meanwhile) are left as they are.
        """
        pks = [_pk(j, "jobs") for j in job_ids]
        if not pks:
            return 0

        def write(s: Session) -> int:
            query = update(Job).where(Job.id.in_(pks), Job.state == "running")
            uncounted = case((Job.attempts > 0, Job.attempts - 1), else_=0)
            return _to_pending(s, query, attempts=uncounted)

        n = self._write(write)
        log.debug("%d running job(s) released to pending", n)
        return n

    def jobs(self, campaign_id: IdLike, state: JobState | None = None) -> list[JobRecord]:
        """The jobs of a campaign (only those in ``state`` when given), in insertion order."""
        campaign_pk = _pk(campaign_id, "campaigns")
        if state is not None and state not in JOB_STATES:
            raise CatalogError(f"unknown job state {state!r}; states: {', '.join(JOB_STATES)}")
        with self._read() as s:
            _require(s, "campaigns", campaign_pk)
            query = select(Job).where(Job.campaign_id == campaign_pk).order_by(Job.id)
            if state is not None:
                query = query.where(Job.state == state)
            return [_record(r) for r in s.scalars(query)]  # type: ignore[misc]

    def job_counts(self, campaign_id: IdLike) -> dict[str, int]:
        """How many jobs of the campaign are in each state (every state present, maybe 0)."""
        campaign_pk = _pk(campaign_id, "campaigns")
        with self._read() as s:
            _require(s, "campaigns", campaign_pk)
            return _job_counts(s, [campaign_pk]).get(campaign_pk, dict.fromkeys(JOB_STATES, 0))

    # ------------------------------------------------------------------ models, runs, evals

    def add_model(
        self,
        name: str,
        *,
        architecture: str = "",
        path: str | os.PathLike[str] | None = None,
        description: str = "",
        provenance: Mapping[str, Any] | None = None,
        files: Iterable[FileLike] | None = None,
    ) -> ModelRecord:
        """Register a trained model and its files (weights, config, transforms).

        Args:
            name: unique name of the model.
            architecture: e.g. ``"vae"``, ``"flow"``.
            path: the model's directory (or file).
            provenance: JSON object (training data, code version, ...).
            files: the files to checksum; when None, every file under ``path``.
        """
        name = _check_name(name, "model")
        prov = _json_object(provenance, "provenance")
        where = str(resolve_file(path)) if path is not None else None
        if files is None:
            files = _files_under(Path(where)) if where is not None else []
        specs = [_file_spec(f, need_events=False) for f in files]
        digests = [_digest(Path(s.path)) for s in specs]

        def write(s: Session) -> ModelRecord:
            _ensure_unique_name(s, Model, name, "models")
            row = Model(
                name=name,
                architecture=architecture,
                description=description,
                path=where,
                provenance=prov,
            )
            s.add(row)
            s.flush()
            _insert_files(s, "model_id", row.id, specs, digests)
            return _record(row)  # type: ignore[return-value]

        record = self._write(write)
        log.info("added %s %r with %d file(s)", record.global_id, name, len(specs))
        return record

    def add_training_run(
        self,
        *,
        model_id: IdLike | None = None,
        dataset_id: IdLike | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> TrainingRunRecord:
        """Record a training run: the dataset it used, the model it made, its numbers."""
        model_pk = _pk(model_id, "models") if model_id is not None else None
        dataset_pk = _pk(dataset_id, "datasets") if dataset_id is not None else None
        row_values = {
            "model_id": model_pk,
            "dataset_id": dataset_pk,
            "hyperparameters": _json_object(hyperparameters, "hyperparameters"),
            "metrics": _json_object(metrics, "metrics"),
            "started_at": started_at,
            "finished_at": finished_at,
            "provenance": _json_object(provenance, "provenance"),
        }

        def write(s: Session) -> TrainingRunRecord:
            if model_pk is not None:
                _require(s, "models", model_pk)
            if dataset_pk is not None:
                _require(s, "datasets", dataset_pk)
            row = TrainingRun(**row_values)
            s.add(row)
            s.flush()
            return _record(row)  # type: ignore[return-value]

        return self._write(write)

    def update_training_run(
        self,
        run_id: IdLike,
        *,
        model_id: IdLike | None = None,
        metrics: Mapping[str, Any] | None = None,
        finished_at: datetime | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> TrainingRunRecord:
        """Complete a training run: set its model and end time, merge metrics and provenance."""
        run_pk = _pk(run_id, "runs")
        model_pk = _pk(model_id, "models") if model_id is not None else None
        new_metrics = _json_object(metrics, "metrics") if metrics is not None else None
        new_prov = _json_object(provenance, "provenance") if provenance is not None else None

        def write(s: Session) -> TrainingRunRecord:
            row = s.get(TrainingRun, run_pk, with_for_update=True)  # merge, never lose
            if row is None:
                raise RecordNotFound(f"no such record: {format_id('runs', run_pk)}")
            if model_pk is not None:
                _require(s, "models", model_pk)
                row.model_id = model_pk
            if new_metrics is not None:
                row.metrics = {**row.metrics, **new_metrics}
            if new_prov is not None:
                row.provenance = {**row.provenance, **new_prov}
            if finished_at is not None:
                row.finished_at = finished_at
            s.flush()
            return _record(row)  # type: ignore[return-value]

        return self._write(write)

    def add_evaluation(
        self,
        *,
        model_id: IdLike | None = None,
        dataset_id: IdLike | None = None,
        metrics: Mapping[str, Any] | None = None,
        description: str = "",
        provenance: Mapping[str, Any] | None = None,
        files: Iterable[FileLike] = (),
    ) -> EvaluationRecord:
        """Record a validation of a model against a reference dataset, and its report files."""
        model_pk = _pk(model_id, "models") if model_id is not None else None
        dataset_pk = _pk(dataset_id, "datasets") if dataset_id is not None else None
        mets = _json_object(metrics, "metrics")
        prov = _json_object(provenance, "provenance")
        specs = [_file_spec(f, need_events=False) for f in files]
        digests = [_digest(Path(s.path)) for s in specs]

        def write(s: Session) -> EvaluationRecord:
            if model_pk is not None:
                _require(s, "models", model_pk)
            if dataset_pk is not None:
                _require(s, "datasets", dataset_pk)
            row = Evaluation(
                model_id=model_pk,
                dataset_id=dataset_pk,
                metrics=mets,
                description=description,
                provenance=prov,
            )
            s.add(row)
            s.flush()
            _insert_files(s, "evaluation_id", row.id, specs, digests)
            return _record(row)  # type: ignore[return-value]

        return self._write(write)

    # ------------------------------------------------------------------ reading

    def get(self, global_id: str) -> Record:
        """The record with this global ID (``ds-3``, ``job-40`` ...).

        Raises:
            CatalogError: malformed ID, or ``no such record: ds-99``.
        """
        kind, pk = parse_id(global_id)
        with self._read() as s:
            row = s.get(_ORM[kind], pk)
            if row is None:
                raise RecordNotFound(f"no such record: {format_id(kind, pk)}")
            return _full_record(s, kind, [row])[0]

    def find(self, name: str, kind: str | None = None) -> Record | None:
        """The dataset, campaign or model called ``name`` (of ``kind`` when given), or None.

        Raises:
            CatalogError: without ``kind``, several records of different kinds have this name.
        """
        kinds = _NAMED if kind is None else (normalise_kind(kind),)
        for k in kinds:
            if k not in _NAMED:
                raise CatalogError(f"{k} have no names; look them up by ID")
        with self._read() as s:
            found = []
            for k in kinds:
                orm = _ORM[k]
                row = s.scalar(select(orm).where(orm.name == name))  # type: ignore[attr-defined]
                if row is not None:
                    found.append(_full_record(s, k, [row])[0])
        if len(found) > 1:
            ids = ", ".join(r.global_id for r in found)
            raise CatalogError(f"{name!r} names several records ({ids}); use an ID")
        return found[0] if found else None

    def count(self, kind: str) -> int:
        """How many records of ``kind`` the catalogue holds."""
        orm = _ORM[normalise_kind(kind)]
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(orm)) or 0)

    def verify(
        self,
        global_id: str | None = None,
        *,
        progress: Callable[[int, int, VerifyResult], None] | None = None,
    ) -> list[VerifyResult]:
        """Re-hash files and compare them with the catalogue.

        Args:
            global_id: what to check: a dataset, model or evaluation (its files), a file, a
                campaign (its jobs' outputs) or a job (its output). None checks every file and
                every recorded job output.
            progress: called after each file as ``progress(done, total, result)``.

        Returns:
            One result per file, in catalogue order; ``result.ok`` tells whether it matched.
            Problems are reported as ``missing``, ``size mismatch``, ``sha256 mismatch`` or
            ``unreadable``, never raised.
        """
        targets = self._verify_targets(global_id)
        results = []
        for i, (gid, path, sha, size) in enumerate(targets, start=1):
            result = _verify_one(gid, path, sha, size)
            if not result.ok:
                log.warning("%s %s: %s", gid, path, result.status)
            results.append(result)
            if progress is not None:
                progress(i, len(targets), result)
        return results

    def _verify_targets(self, global_id: str | None) -> list[tuple[str, str, str, int | None]]:
        """(global ID, path, sha256, size or None) of every file ``verify`` must check."""
        files: Select[tuple[File]] | None = select(File).order_by(File.id)
        outputs: Select[tuple[Job]] | None = (
            select(Job).where(Job.output_sha256.is_not(None)).order_by(Job.id)
        )
        if global_id is not None:
            kind, pk = parse_id(global_id)
            files = outputs = None
            if kind in _OWNER_COLUMNS:
                files = select(File).where(getattr(File, _OWNER_COLUMNS[kind]) == pk)
            elif kind == "files":
                files = select(File).where(File.id == pk)
            elif kind == "campaigns":
                outputs = select(Job).where(Job.campaign_id == pk, Job.output_sha256.is_not(None))
            elif kind == "jobs":
                outputs = select(Job).where(Job.id == pk)
            else:
                raise CatalogError(f"{format_id(kind, pk)}: training runs have no files to verify")
        targets: list[tuple[str, str, str, int | None]] = []
        with self._read() as s:
            if global_id is not None:
                _require(s, kind, pk)
            if files is not None:
                for f in s.scalars(files.order_by(File.id)):
                    targets.append((format_id("files", f.id), f.path, f.sha256, f.size_bytes))
            if outputs is not None:
                for job in s.scalars(outputs.order_by(Job.id)):
                    if job.output_path is None or job.output_sha256 is None:
                        raise CatalogError(f"{format_id('jobs', job.id)} has no recorded output")
                    gid = format_id("jobs", job.id)
                    targets.append((gid, job.output_path, job.output_sha256, None))
        return targets

    def list(self, kind: str | None = None, *, limit: int | None = None) -> list[Record]:
        """Records of ``kind`` (any spelling: ``datasets``, ``dataset``, ``ds``) by ID.

        When ``kind`` is None, records of every kind, kind by kind. ``limit`` caps the number
        of records per kind.
        """
        kinds = KINDS if kind is None else (normalise_kind(kind),)
        out: list[Record] = []
        with self._read() as s:
            for k in kinds:
                orm = _ORM[k]
                query = select(orm).order_by(orm.id)  # type: ignore[attr-defined]
                if limit is not None:
                    query = query.limit(limit)
                out.extend(_full_record(s, k, s.scalars(query).all()))
        return out

    def search(
        self,
        kind: str,
        *,
        text: str | None = None,
        tags: Sequence[str] = (),
        filters: Mapping[str, Any] | None = None,
        sort: str = "-id",
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """One page of the records of ``kind`` that match a text, tags and filters.

        Args:
            kind: any spelling of a kind (``datasets``, ``ds`` ...).
            text: matched case-insensitively in the kind's text and JSON columns
                (:data:`twinforge.catalog.search.TEXT_COLUMNS`).
            tags: every one of these tags must be on the record.
            filters: the kind's named filters (:data:`twinforge.catalog.search.FILTERS`),
                e.g. ``{"campaign": "camp-1"}`` for datasets, ``{"trained_on": "ds-2"}`` for
                models.
            sort: ``id``, ``name`` (named kinds) or ``created``; ``-`` first for descending.
            limit: at most this many records (1-1000).
            offset: how many matching records to skip.

        Raises:
            CatalogError: unknown kind, filter or sort; a limit or offset out of range.
        """
        k = normalise_kind(kind)
        if not 1 <= limit <= 1000:
            raise CatalogError(f"limit must be between 1 and 1000, got {limit}")
        if offset < 0:
            raise CatalogError(f"offset must not be negative, got {offset}")
        names = tuple(_check_tag(t) for t in tags)
        query, count = search_query(k, text=text, tags=names, filters=filters, sort=sort)
        with self._read() as s:
            total = int(s.scalar(count) or 0)
            rows = s.scalars(query.limit(limit).offset(offset)).all()
            return Page(_full_record(s, k, rows), total, offset, limit)

    def dataset_of(self, paths: Iterable[str | os.PathLike[str]]) -> DatasetRecord | None:
        """The dataset that holds every one of these files (by absolute path), if one does."""
        wanted = sorted({str(resolve_file(p)) for p in paths})
        if not wanted:
            return None
        with self._read() as s:
            owners: set[int | None] | None = None
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                rows = s.execute(select(File.path, File.dataset_id).where(File.path.in_(chunk)))
                found: dict[str, set[int | None]] = {}
                for path, dataset_pk in rows:
                    found.setdefault(path, set()).add(dataset_pk)
                for path in chunk:
                    here = found.get(path, set()) - {None}
                    owners = here if owners is None else owners & here
            if not owners:
                return None
            row = s.get(Dataset, min(owners))  # type: ignore[type-var]
            return _full_record(s, "datasets", [row])[0]  # type: ignore[return-value,list-item]

    # ------------------------------------------------------------------ tags and publications

    def tag(self, record: IdLike, *names: str, by: str | None = None) -> list[str]:
        """Put tags on a dataset, campaign, model, training run or evaluation; returns all its
        tags. A tag already there is kept (no error).

        Tags are lower-case words of letters, digits, ``.``, ``_`` and ``-`` (at most 64).

        Raises:
            CatalogError: unknown record, a kind that takes no tags, a malformed tag.
        """
        kind, pk = _taggable(record)
        clean = sorted({_check_tag(n) for n in names})
        if not clean:
            raise CatalogError("give at least one tag")
        prov = {"by": by} if by else {}

        def write(s: Session) -> list[str]:
            _require(s, kind, pk)
            have = set(_tags_of(s, kind, [pk]).get(pk, []))
            s.add_all(
                Tag(kind=kind, record_id=pk, name=n, provenance=prov)
                for n in clean
                if n not in have
            )
            s.flush()
            return _tags_of(s, kind, [pk]).get(pk, [])

        tags = self._write(write)
        log.debug("tagged %s: %s", format_id(kind, pk), ", ".join(clean))
        return tags

    def untag(self, record: IdLike, name: str) -> list[str]:
        """Remove one tag from a record; returns its remaining tags.

        Raises:
            CatalogError: unknown record, or the record does not carry that tag.
        """
        kind, pk = _taggable(record)
        tag = _check_tag(name)

        def write(s: Session) -> list[str]:
            _require(s, kind, pk)
            row = s.scalar(
                select(Tag).where(Tag.kind == kind, Tag.record_id == pk, Tag.name == tag)
            )
            if row is None:
                raise CatalogError(f"{format_id(kind, pk)} has no tag {tag!r}")
            s.delete(row)
            s.flush()
            return _tags_of(s, kind, [pk]).get(pk, [])

        return self._write(write)

    def tags(self, record: IdLike | None = None) -> list[str] | dict[str, int]:
        """The tags of one record (sorted), or with None every tag in use and how many
        records carry it."""
        with self._read() as s:
            if record is None:
                rows = s.execute(select(Tag.name, func.count()).group_by(Tag.name))
                return dict(sorted((name, int(n)) for name, n in rows))
            kind, pk = _taggable(record)
            _require(s, kind, pk)
            return _tags_of(s, kind, [pk]).get(pk, [])

    def tags_of(self, records: Sequence[Record]) -> dict[str, list[str]]:
        """The tags of several records at once: global ID -> sorted tags."""
        out: dict[str, list[str]] = {}
        by_kind: dict[Kind, list[int]] = {}
        for r in records:
            by_kind.setdefault(r.kind, []).append(r.id)
        with self._read() as s:
            for kind, pks in by_kind.items():
                for pk, names in _tags_of(s, kind, pks).items():
                    out[format_id(kind, pk)] = names
        return out

    def publish(
        self,
        record: IdLike,
        *,
        version: str,
        license: str,
        identifier: str | None = None,
        datacite: Mapping[str, Any] | None = None,
        by: str | None = None,
    ) -> PublicationRecord:
        """Record a released version of a dataset or model: its licence (SPDX id or URL), its
        persistent identifier once one exists (a DOI) and the DataCite metadata deposited.

        Raises:
            CatalogError: unknown record, not a dataset or model, that version published
                already, an empty version or licence.
        """
        kind, pk = _taggable(record)
        if kind not in ("datasets", "models"):
            raise CatalogError(f"{format_id(kind, pk)}: only datasets and models are published")
        version = str(version).strip()
        if not version or len(version) > 64:
            raise CatalogError("a publication needs a version of 1 to 64 characters")
        if not str(license).strip():
            raise CatalogError("a publication needs a licence (an SPDX id such as CC-BY-4.0)")
        meta = _json_object(datacite, "datacite")
        prov = {"by": by} if by else {}

        def write(s: Session) -> PublicationRecord:
            _require(s, kind, pk)
            taken = s.scalar(
                select(Publication.id).where(
                    Publication.kind == kind,
                    Publication.record_id == pk,
                    Publication.version == version,
                )
            )
            if taken is not None:
                raise CatalogError(
                    f"{format_id(kind, pk)} version {version!r} is published already"
                )
            row = Publication(
                kind=kind,
                record_id=pk,
                version=version,
                license=str(license).strip(),
                identifier=identifier,
                datacite=meta,
                provenance=prov,
            )
            s.add(row)
            s.flush()
            return _publication_record(row)

        pub = self._write(write)
        log.debug("published %s version %s", pub.record, version)
        return pub

    def publications(self, record: IdLike) -> list[PublicationRecord]:
        """The published versions of a dataset or model, oldest first."""
        kind, pk = _taggable(record)
        with self._read() as s:
            _require(s, kind, pk)
            rows = s.scalars(
                select(Publication)
                .where(Publication.kind == kind, Publication.record_id == pk)
                .order_by(Publication.id)
            )
            return [_publication_record(r) for r in rows]

    # ------------------------------------------------------------------ sessions

    @contextmanager
    def _read(self) -> Iterator[Session]:
        self._after_fork()
        try:
            with self._reader() as session:
                yield session
        except OperationalError as exc:
            raise CatalogUnavailable(_db_error_message(self._location, exc)) from None

    def _write(self, fn: Callable[[Session], T]) -> T:
        self._after_fork()

        def transaction() -> T:
            with self._writer() as session, session.begin():
                return fn(session)

        try:
            try:
                return retry(transaction)
            except IntegrityError as exc:
                if not _unique_violation(exc):
                    raise
                # another process inserted the same name or key between our check and our
                # insert (PostgreSQL runs writers concurrently): run the transaction again,
                # once; it now sees that row (an idempotent add, or "already exists")
                return retry(transaction)
        except IntegrityError as exc:
            raise CatalogError(f"catalogue {self._location.display}: {exc.orig}") from None
        except OperationalError as exc:
            raise CatalogUnavailable(_db_error_message(self._location, exc)) from None

    def _after_fork(self) -> None:
        # connections must not cross fork(): a child starts with a fresh pool
        if os.getpid() != self._pid:
            self._engine.dispose(close=False)
            self._pid = os.getpid()


# ---------------------------------------------------------------------- opening helpers


def _noop() -> None:
    return None


def _prepare_file(path: Path, *, create: bool) -> Callable[[], None]:
    """Check that ``path`` can hold an SQLite catalogue; make missing parent directories.

    Returns a function that removes what this call (and a failed first open) created.
    """
    if path.is_dir():
        raise CatalogError(f"cannot use {path} as the catalogue: it is a directory")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise CatalogError(f"cannot write the catalogue {path}: permission denied")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise CatalogError(
                f"cannot write the catalogue {path}: its directory is not writable "
                "(SQLite keeps its -wal and -shm files there)"
            )
        return _noop
    if not create:
        raise CatalogError(
            f"no catalogue at {path} (give --catalog or set TWINFORGE_CATALOG to an existing one)"
        )
    missing = []
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        missing.append(ancestor)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CatalogError(f"cannot create the catalogue {path}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise CatalogError(f"cannot create the catalogue {path}: {ancestor} is not writable")
    made: list[Path] = []

    def cleanup() -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with suppress(OSError):
                Path(f"{path}{suffix}").unlink()
        for directory in reversed(made):
            with suppress(OSError):
                directory.rmdir()

    for directory in reversed(missing):
        try:
            directory.mkdir()
            made.append(directory)
        except FileExistsError:
            continue
        except OSError as exc:
            cleanup()
            raise CatalogError(
                f"cannot create the catalogue {path}: {directory}: {exc.strerror}"
            ) from None
    return cleanup


def _initialise(engine: Engine, location: Location, *, create: bool) -> None:
    """Create the tables on first use (one process wins); refuse a catalogue whose schema is
    not this twinforge's (older: it must be upgraded first; newer: twinforge must be)."""
    with engine.connect() as conn:
        if _schema_revision(conn, location) == migrate.head_revision():
            return
    with _write_locked(engine) as conn:
        revision = _schema_revision(conn, location)
        if revision is None:
            if not create:
                raise CatalogError(
                    f"{location.display} is not a twinforge catalogue (no twinforge tables)"
                )
            others = sorted(inspect(conn).get_table_names())
            if others:
                log.info("creating the catalogue beside other tables: %s", ", ".join(others[:5]))
            migrate.upgrade(conn)
            conn.execute(
                insert(Meta),
                [
                    {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                    {"key": "created_by", "value": f"twinforge {__version__}"},
                    {"key": "created_at", "value": utcnow().isoformat()},
                ],
            )
            log.info("created catalogue %s (schema version %d)", location.display, SCHEMA_VERSION)
        elif revision != migrate.head_revision():
            raise CatalogError(
                f"{location.display} has catalogue schema revision {revision}, older than this "
                f"twinforge's ({migrate.head_revision()}); back it up and run "
                "'twinforge catalog upgrade'"
            )


@contextmanager
def _write_locked(engine: Engine) -> Iterator[Connection]:
    """A write transaction holding the lock that serialises schema changes."""
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield conn  # SQLite: BEGIN IMMEDIATE already holds the write lock


def _schema_revision(conn: Connection, location: Location) -> str | None:
    """The catalogue's migration revision: None for an empty database, the baseline for a
    catalogue from before migrations (``twinforge_meta`` but no version table).

    Raises:
        CatalogError: not a twinforge catalogue, an unreadable version, or a revision (or
            schema version) newer than this twinforge knows.
    """
    tables = set(inspect(conn).get_table_names())
    if Meta.__tablename__ not in tables:
        # other tools' tables (Optuna's, MLflow's) may share the database; ours may not exist
        clash = sorted(tables & ({*Base.metadata.tables, migrate.VERSION_TABLE}))
        if clash:
            raise CatalogError(
                f"{location.display} is not a twinforge catalogue: it holds tables named like "
                f"ours ({', '.join(clash[:5])}) and no {Meta.__tablename__} table"
            )
        return None
    value = conn.scalar(select(Meta.value).where(Meta.key == "schema_version"))
    try:
        version = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CatalogError(
            f"{location.display}: unreadable schema version {value!r} in {Meta.__tablename__}"
        ) from None
    revision = (
        migrate.current_revision(conn) if migrate.VERSION_TABLE in tables else migrate.BASELINE
    )
    if version > SCHEMA_VERSION or revision not in migrate.known_revisions():
        raise CatalogError(
            f"{location.display} has catalogue schema version {version} (revision {revision}), "
            f"newer than this twinforge {__version__} knows ({SCHEMA_VERSION}); upgrade twinforge"
        )
    return revision


def _unique_violation(exc: IntegrityError) -> bool:
    """Whether ``exc`` is a unique-constraint violation (SQLSTATE 23505; SQLite's text)."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state == "23505" or "UNIQUE constraint failed" in str(exc.orig)


def _db_error_message(location: Location, exc: DBAPIError) -> str:
    reason = (str(exc.orig).strip() or type(exc.orig).__name__).splitlines()[0]
    if "file is not a database" in reason:
        return f"{location.display} is not a twinforge catalogue (not an SQLite database)"
    if is_retryable(exc):
        return f"catalogue {location.display} stayed locked by another process: {reason}"
    return f"cannot use the catalogue {location.display}: {reason}"


# ---------------------------------------------------------------------- argument helpers


def _pk(value: IdLike, kind: Kind) -> int:
    """Primary key of ``value`` (an int, a global ID of ``kind`` or a record of ``kind``)."""
    if isinstance(value, Record):
        if value.kind != kind:
            raise CatalogError(f"{value.global_id} is not one of the {kind}")
        return value.id
    if isinstance(value, bool):
        raise CatalogError(f"not a record ID: {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise RecordNotFound(f"no such record: {format_id(kind, value)}")
        return value
    return parse_id(str(value), expected=kind)[1]


_OWNER_COLUMNS: Final[dict[Kind, str]] = {
    "datasets": "dataset_id",
    "models": "model_id",
    "evaluations": "evaluation_id",
}


def _owner(value: IdLike) -> tuple[Kind, int]:
    if isinstance(value, Record):
        kind, pk = value.kind, value.id
    elif isinstance(value, int) and not isinstance(value, bool):
        kind, pk = "datasets", value
    else:
        kind, pk = parse_id(str(value))
    if kind not in _OWNER_COLUMNS:
        raise CatalogError(
            f"{format_id(kind, pk)} holds no files: give a dataset, model or evaluation"
        )
    return kind, pk


def _require(s: Session, kind: Kind, pk: int) -> None:
    orm = _ORM[kind]
    if s.scalar(select(orm.id).where(orm.id == pk)) is None:  # type: ignore[attr-defined]
        raise RecordNotFound(f"no such record: {format_id(kind, pk)}")


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise CatalogError(f"invalid {what} name {name!r}: give non-empty text without edge blanks")
    if len(name) > 255:
        raise CatalogError(f"{what} name too long ({len(name)} > 255 characters)")
    try:
        parse_id(name)
    except CatalogError:
        return name
    raise CatalogError(f"invalid {what} name {name!r}: it looks like a catalogue ID")


def _ensure_unique_name(s: Session, orm: type[Base], name: str, kind: Kind) -> None:
    pk = s.scalar(select(orm.id).where(orm.name == name))  # type: ignore[attr-defined]
    if pk is not None:
        raise CatalogError(f"{kind[:-1]} {name!r} already exists ({format_id(kind, pk)})")


def _json_object(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    """A private JSON-clean copy of ``value`` (paths, dates and numpy values converted)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise CatalogError(f"{what} must be a mapping, got {type(value).__name__}")
    try:
        clean = json.loads(json.dumps(dict(value), default=json_default, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"{what} is not valid JSON: {exc}") from None
    return clean  # type: ignore[no-any-return]


def _opt_dict(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


def _file_spec(item: FileLike, *, need_events: bool) -> FileSpec:
    if isinstance(item, FileSpec):
        spec = item
    elif isinstance(item, tuple):
        if len(item) != 2:
            raise CatalogError(f"a file must be given as (path, n_events), got {item!r}")
        spec = FileSpec(item[0], item[1])
    else:
        spec = FileSpec(item)
    n = spec.n_events
    if n is None and need_events:
        raise CatalogError(f"{spec.path}: a dataset file needs its number of events (n_events)")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        if hasattr(n, "item") and isinstance(n.item(), int) and n.item() >= 0:
            n = int(n.item())
        else:
            raise CatalogError(f"{spec.path}: n_events must be a non-negative integer, got {n!r}")
    prov = _json_object(spec.provenance, "file provenance") if spec.provenance else None
    return FileSpec(resolve_file(spec.path), n, prov)


def _digest(path: Path) -> Digest:
    try:
        return file_digest(path)
    except FileNotFoundError:
        raise CatalogError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise CatalogError(f"not a file: {path} is a directory") from None
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc.strerror}") from None


def _check_sha(sha: str) -> str:
    if not isinstance(sha, str) or not is_sha256(sha):
        raise CatalogError(f"not a SHA-256 (64 hex digits): {sha!r}")
    return sha.lower()


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise CatalogError(f"model path not found: {path}")
    return sorted(p for p in path.rglob("*") if p.is_file())


def _default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _job_row(job: JobSpec | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(job, Mapping):
        unknown = set(job) - {"parameters", "seed", "key", "provenance"}
        if unknown:
            raise CatalogError(f"unknown job field(s): {', '.join(sorted(unknown))}")
        job = JobSpec(**job)
    params = _json_object(job.parameters, "job parameters")
    seed = job.seed
    if seed is not None:
        if hasattr(seed, "item"):
            seed = seed.item()
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
            raise CatalogError(f"job seed must be an integer in [0, 2**63), got {job.seed!r}")
    key = job.key
    if key is None:
        canonical = json.dumps({"parameters": params, "seed": seed}, sort_keys=True)
        key = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    elif not isinstance(key, str) or not key or len(key) > 255:
        raise CatalogError(f"job key must be non-empty text of at most 255 characters: {key!r}")
    return {
        "key": key,
        "parameters": params,
        "seed": seed,
        "provenance": _json_object(job.provenance, "job provenance"),
    }


def _jobs_by_key(s: Session, campaign_pk: int, keys: Sequence[str]) -> dict[str, Job]:
    found: dict[str, Job] = {}
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start : start + _IN_CHUNK]
        query = select(Job).where(Job.campaign_id == campaign_pk, Job.key.in_(chunk))
        found.update((job.key, job) for job in s.scalars(query))
    return found


def _insert_files(
    s: Session, column: str, owner_pk: int, specs: Sequence[FileSpec], digests: Sequence[Digest]
) -> list[File]:
    seen: set[str] = set()
    rows = []
    for spec, digest in zip(specs, digests, strict=True):
        path = str(spec.path)
        if path in seen:
            raise CatalogError(f"file given twice: {path}")
        seen.add(path)
        existing = s.scalar(
            select(File.id).where(getattr(File, column) == owner_pk, File.path == path)
        )
        if existing is not None:
            owner = format_id(_KIND_OF_COLUMN[column], owner_pk)
            raise CatalogError(f"{path} is already in {owner} ({format_id('files', existing)})")
        rows.append(
            File(
                path=path,
                sha256=digest.sha256,
                size_bytes=digest.size,
                n_events=spec.n_events,
                provenance=spec.provenance or {},
                **{column: owner_pk},
            )
        )
    s.add_all(rows)
    s.flush()
    return rows


_KIND_OF_COLUMN: Final[dict[str, Kind]] = {c: k for k, c in _OWNER_COLUMNS.items()}


# ---------------------------------------------------------------------- records


def _to_pending(s: Session, query: Any, **values: Any) -> int:
    """Run the job ``update`` query that puts its jobs back to pending; how many it changed."""
    values |= {"state": "pending", "worker": None, "started_at": None, "updated_at": utcnow()}
    result = s.execute(query.values(**values).execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _record(row: Base, **extra: Any) -> Record:
    """The frozen record of an ORM row (JSON fields deep-copied)."""
    kind = _KIND_OF_ORM[type(row)]
    cls = _RECORDS[kind]
    values = {}
    for f in fields(cls):
        if f.name in extra:
            values[f.name] = extra[f.name]
        elif hasattr(row, f.name):
            value = getattr(row, f.name)
            if isinstance(value, dict | list):
                value = copy.deepcopy(value)
            elif isinstance(value, datetime):
                value = _as_utc(value)
            values[f.name] = value
    return cls(**values)


def _as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive time is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_KIND_OF_ORM: Final[dict[type[Base], Kind]] = {orm: kind for kind, orm in _ORM.items()}


def _dataset_record(row: Dataset, files: Sequence[File]) -> DatasetRecord:
    return _record(  # type: ignore[return-value]
        row,
        n_files=len(files),
        n_events=sum(f.n_events or 0 for f in files),
        size_bytes=sum(f.size_bytes for f in files),
    )


def _campaign_record(row: Campaign, counts: Mapping[str, int]) -> CampaignRecord:
    return _record(row, job_counts=dict(counts) or dict.fromkeys(JOB_STATES, 0))  # type: ignore[return-value]


def _full_record(s: Session, kind: Kind, rows: Sequence[Base]) -> list[Record]:
    """Records of ``rows`` with their aggregates (dataset totals, campaign job counts)."""
    if not rows:
        return []
    if kind == "datasets":
        ids = [r.id for r in rows]  # type: ignore[attr-defined]
        totals = {}
        for start in range(0, len(ids), _IN_CHUNK):
            query = (
                select(
                    File.dataset_id,
                    func.count(File.id),
                    func.coalesce(func.sum(File.n_events), 0),
                    func.coalesce(func.sum(File.size_bytes), 0),
                )
                .where(File.dataset_id.in_(ids[start : start + _IN_CHUNK]))
                .group_by(File.dataset_id)
            )
            totals.update({d: (int(n), int(e), int(b)) for d, n, e, b in s.execute(query)})
        return [
            _record(
                r,
                **dict(
                    zip(
                        ("n_files", "n_events", "size_bytes"),
                        totals.get(r.id, (0, 0, 0)),  # type: ignore[attr-defined]
                        strict=True,
                    )
                ),
            )
            for r in rows
        ]
    if kind == "campaigns":
        counts = _job_counts(s, [r.id for r in rows])  # type: ignore[attr-defined]
        return [_campaign_record(r, counts.get(r.id, {})) for r in rows]  # type: ignore[arg-type,attr-defined]
    return [_record(r) for r in rows]


def _job_counts(s: Session, campaign_pks: Sequence[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    for start in range(0, len(campaign_pks), _IN_CHUNK):
        query = (
            select(Job.campaign_id, Job.state, func.count(Job.id))
            .where(Job.campaign_id.in_(campaign_pks[start : start + _IN_CHUNK]))
            .group_by(Job.campaign_id, Job.state)
        )
        for campaign_pk, state, n in s.execute(query):
            counts.setdefault(campaign_pk, dict.fromkeys(JOB_STATES, 0))[state] = int(n)
    return counts


# ---------------------------------------------------------------------- tags and publications

_TAG_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_TAGGABLE: Final[tuple[Kind, ...]] = ("datasets", "campaigns", "models", "runs", "evaluations")


def _check_tag(name: str) -> str:
    text = str(name).strip().lower()
    if not _TAG_RE.match(text):
        raise CatalogError(
            f"invalid tag {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return text


def _taggable(record: IdLike) -> tuple[Kind, int]:
    if isinstance(record, Record):
        kind, pk = record.kind, record.id
    else:
        kind, pk = parse_id(str(record))
    if kind not in _TAGGABLE:
        raise CatalogError(
            f"{format_id(kind, pk)}: only {', '.join(_TAGGABLE)} take tags and publications"
        )
    return kind, pk


def _tags_of(s: Session, kind: Kind, pks: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for start in range(0, len(pks), _IN_CHUNK):
        rows = s.execute(
            select(Tag.record_id, Tag.name)
            .where(Tag.kind == kind, Tag.record_id.in_(pks[start : start + _IN_CHUNK]))
            .order_by(Tag.name)
        )
        for pk, name in rows:
            out.setdefault(pk, []).append(name)
    return out


def _publication_record(row: Publication) -> PublicationRecord:
    return PublicationRecord(
        id=row.id,
        record=format_id(row.kind, row.record_id),  # type: ignore[arg-type]
        version=row.version,
        license=row.license,
        identifier=row.identifier,
        datacite=copy.deepcopy(row.datacite),
        created_at=_as_utc(row.created_at),
        provenance=copy.deepcopy(row.provenance),
    )


# ---------------------------------------------------------------------- verification


def _verify_one(gid: str, path: str, sha: str, size: int | None) -> VerifyResult:
    p = Path(path)
    try:
        actual_size = p.stat().st_size
    except FileNotFoundError:
        return VerifyResult(gid, path, "missing", sha, size, detail="file not found")
    except OSError as exc:
        return VerifyResult(gid, path, "unreadable", sha, size, detail=str(exc.strerror))
    if size is not None and actual_size != size:
        detail = f"{actual_size} bytes, catalogued {size}"
        return VerifyResult(
            gid, path, "size mismatch", sha, size, actual_size=actual_size, detail=detail
        )
    try:
        digest = file_digest(p)
    except OSError as exc:
        return VerifyResult(gid, path, "unreadable", sha, size, detail=str(exc.strerror))
    status = "ok" if digest.sha256 == sha else "sha256 mismatch"
    detail = "" if status == "ok" else "content changed since it was catalogued"
    return VerifyResult(gid, path, status, sha, size, digest.sha256, digest.size, detail)
