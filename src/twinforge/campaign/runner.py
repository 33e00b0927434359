"""Run, resume, inspect and merge a campaign; its journal lives in the catalogue.

The journal records every job's parameters, seed, state, attempts, error and output checksum.
Running a campaign again resumes it: jobs already ``done`` are never run again, jobs left
``running`` by a killed run are re-queued (or adopted, when their shard was completely written),
failed jobs with retries left are re-queued. Within a run, a failed job is retried up to
``max_retries`` times; after that it is reported with its error and the other jobs go on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from twinforge import __version__
from twinforge.campaign.config import CampaignConfig, job_seed
from twinforge.campaign.executors import make_executor
from twinforge.campaign.jobs import JobOutcome, JobPayload, run_job, shard_matches
from twinforge.catalog import CampaignRecord, Catalog, DatasetRecord, JobRecord, JobSpec
from twinforge.errors import CatalogError, ConfigError, Stopped, TwinforgeError
from twinforge.showers.io import host_tag, temporary_owner
from twinforge.space import ResolvedSpace

__all__ = [
    "CampaignProgress",
    "CampaignReport",
    "campaign_status",
    "merge_campaign",
    "open_campaign",
    "run_campaign",
]

log = logging.getLogger(__name__)

# what may change between a run and its resume without changing the campaign's results
_RUNTIME_KEYS = ("executor", "max_retries")
_HOST = socket.gethostname()
_DRIVER = f"{_HOST}:{os.getpid()}"  # recorded on running jobs: who drives them


@dataclass
class CampaignProgress:
    """Progress of a running campaign, handed to the progress callback after each job."""

    total_jobs: int
    done: int
    failed: int
    points: int  # simulated in this run (showers, for a calorimeter)
    elapsed: float

    @property
    def points_per_second(self) -> float:
        return self.points / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class CampaignReport:
    """Outcome of :func:`run_campaign`."""

    campaign_id: str
    total_jobs: int
    done: int
    failed: dict[str, str] = field(default_factory=dict)  # job key -> last error
    ran: int = 0
    adopted: int = 0
    skipped: int = 0
    points: int = 0  # simulated in this run
    seconds: float = 0.0
    startup_seconds: float = 0.0  # starting the executor (cluster, worker processes)
    executor: str = ""
    stopped: str = ""  # adaptive campaigns: why no new job was started (budget, target error)
    predicted_error: dict[str, float] | None = None  # adaptive: the surrogate's RMSE estimate

    @property
    def complete(self) -> bool:
        return self.done == self.total_jobs


def _payloads(config: CampaignConfig, shard_dir: Path) -> dict[str, JobPayload]:
    simulator = config.make_simulator()
    options = simulator.worker_options()
    points = config.points()
    suffix = simulator.format.suffix
    payloads = {}
    for index, sl in enumerate(config.job_slices()):
        key = f"job-{index:06d}"
        payloads[key] = JobPayload(
            campaign=config.name,
            key=key,
            index=index,
            seed=job_seed(config.seed, index),
            simulator=config.simulator.name,
            options=options,
            points={name: column[sl] for name, column in points.items()},
            output=str(shard_dir / f"{key}{suffix}"),
            compression=config.compression,
        )
    return payloads


def _job_spec(payload: JobPayload, space: ResolvedSpace) -> JobSpec:
    ranges = {d.name: d.summary(payload.points[d.name]) for d in space.dimensions}
    return JobSpec(
        key=payload.key,
        seed=payload.seed,
        parameters={
            "index": payload.index,
            "n_points": payload.n_points,
            "points": ranges,  # per parameter: [min, max], or the values taken
            "output": f"shards/{Path(payload.output).name}",  # relative to the campaign dir
        },
    )


def _normalised(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored campaign config re-validated by this version's models, so that defaults
    added since it was stored (and twinforge 0.1's spellings) do not count as changes."""
    stored = dict(stored)
    setup = stored.pop("simulator_setup", None)
    detector = stored.pop("detector_config", None)  # twinforge 0.1 kept only the detector
    try:
        config = CampaignConfig.model_validate(stored).model_dump(mode="json")
    except (ValidationError, TwinforgeError):
        return {**stored, "simulator_setup": setup}
    if setup is None and detector is not None:
        setup = {**config["simulator"], "detector": detector}
        setup.pop("name")
    return {**config, "simulator_setup": setup}


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _RUNTIME_KEYS}


def open_campaign(
    catalog: Catalog, config: CampaignConfig, *, base_dir: Path | None = None
) -> tuple[CampaignRecord, dict[str, JobPayload]]:
    """Find or register the campaign and its jobs in the journal; return them with payloads.

    Raises:
        CatalogError: a campaign of that name exists with a different config.
    """
    shard_dir = config.output_path(base_dir).resolve() / "shards"
    payloads = {} if config.adaptive else _payloads(config, shard_dir)
    stored = catalog.find(config.name, "campaigns")
    # the set-up's content, not only file names: an edited detector or lattice file must not
    # mix two set-ups in one campaign
    wanted = {
        **config.model_dump(mode="json"),
        "simulator_setup": config.make_simulator().worker_options(),
    }
    if stored is None:
        simulator = config.make_simulator()
        record = catalog.add_campaign(
            config.name,
            description=f"{config.simulator.name} campaign: {simulator.summary}",
            config=wanted,
            provenance={
                "twinforge_version": __version__,
                "output_dir": str(shard_dir.parent),
                "code": simulator.code(),
            },
        )
    else:
        assert isinstance(stored, CampaignRecord)
        record = stored
        before = _normalised(record.config)
        if _comparable(before) != _comparable(wanted):
            changed = sorted(
                k for k in set(before) | set(wanted)
                if k not in _RUNTIME_KEYS and before.get(k) != wanted.get(k)
            )  # fmt: skip
            raise CatalogError(
                f"campaign {config.name!r} ({record.global_id}) exists with a different config "
                f"({', '.join(changed)} changed); give the new campaign another name"
            )
    if config.adaptive:  # jobs are proposed as the campaign runs: those so far
        from twinforge.campaign.adaptive import recorded_payloads

        return record, recorded_payloads(config, catalog, record.global_id, shard_dir)
    space = config.resolved_space
    catalog.add_jobs(record.global_id, [_job_spec(p, space) for p in payloads.values()])
    return record, payloads


def run_campaign(
    config: CampaignConfig,
    catalog: Catalog,
    *,
    base_dir: Path | None = None,
    retry_failed: bool = False,
    force: bool = False,
    on_progress: Callable[[CampaignProgress], None] | None = None,
) -> CampaignReport:
    """Run (or resume) a campaign until every job is done or has exhausted its retries.

    Args:
        retry_failed: also re-run jobs whose retries were used up by earlier runs.
        force: take over jobs marked running by a process on another host (whose death this
            host cannot check).

    Raises:
        CatalogError: the campaign is being run by another live process, or exists with a
            different config.
    """
    if config.adaptive:
        from twinforge.campaign.adaptive import run_adaptive

        return run_adaptive(config, catalog, base_dir=base_dir, retry_failed=retry_failed,
                            force=force, on_progress=on_progress)  # fmt: skip
    t0 = time.perf_counter()
    record, payloads = open_campaign(catalog, config, base_dir=base_dir)
    cid = record.global_id
    shard_dir = Path(next(iter(payloads.values())).output).parent
    shard_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(shard_dir)

    # resume: re-queue interrupted jobs, adopt shards that were completely written
    _check_no_live_run(catalog, cid, config.name, force=force)
    _requeue(catalog, cid, config, retry_failed=retry_failed)
    report = CampaignReport(campaign_id=cid, total_jobs=len(payloads), done=0)
    simulator = config.make_simulator()
    pending: list[JobRecord] = []
    for job in catalog.jobs(cid):
        if job.state == "done":
            report.skipped += 1
        elif job.state == "pending":
            payload = payloads[job.key]
            if shard_matches(Path(payload.output), payload, simulator):
                catalog.set_job_state(job.id, "running", expected="pending", worker=_DRIVER)
                catalog.set_job_state(
                    job.id, "done", output_path=payload.output, expected="running"
                )
                report.adopted += 1
            else:
                pending.append(job)
    report.done = report.skipped + report.adopted
    failed_now: dict[str, str] = {}
    for job in catalog.jobs(cid, state="failed"):
        failed_now[job.key] = job.error or "failed"

    points = 0

    def notify() -> None:
        if on_progress:
            on_progress(
                CampaignProgress(
                    report.total_jobs,
                    report.done,
                    len(failed_now),
                    points,
                    time.perf_counter() - t0,
                )
            )

    notify()
    t_start = time.perf_counter()
    queue = deque(pending)
    in_flight: dict[str, Any] = {}  # job key -> job id, of the jobs handed to a worker
    with make_executor(config.executor) as executor, released_on_stop(catalog, in_flight):
        report.startup_seconds = time.perf_counter() - t_start
        report.executor = executor.description
        while queue or in_flight:
            # only as many jobs as there are workers are marked running: an abrupt end charges
            # an attempt to the jobs that were really running, not to the whole queue
            free = executor.slots - len(in_flight)
            while queue and free > 0:
                job = queue.popleft()
                in_flight[job.key] = job.id  # first: a stop from here on releases it
                catalog.set_job_state(job.id, "running", expected="pending", worker=_DRIVER)
                executor.submit(run_job, payloads[job.key])
                free -= 1
            payload, result = executor.next_completed()
            job_id = in_flight[payload.key]  # dropped once its outcome is journalled
            if isinstance(result, JobOutcome):
                _record_done(catalog, job_id, result)
                report.done += 1
                report.ran += 1
                points += result.n_points
                failed_now.pop(payload.key, None)
            else:
                error, rec = _record_failure(catalog, job_id, payload.key, result)
                failed_now[payload.key] = error
                again = _requeue_failed(catalog, rec, result, config)
                if again is not None:
                    queue.append(again)
            del in_flight[payload.key]
            notify()
    report.failed = failed_now
    report.points = points
    report.seconds = time.perf_counter() - t0
    return report


def campaign_status(catalog: Catalog, name_or_id: str) -> tuple[CampaignRecord, list[JobRecord]]:
    """The campaign (by name or ``camp-N`` id) and its jobs."""
    record = catalog.find(name_or_id, "campaigns") if not name_or_id.startswith("camp-") else None
    if record is None:
        try:
            record = catalog.get(name_or_id)
        except CatalogError:
            raise CatalogError(
                f"no campaign called {name_or_id!r} in {catalog.location.display}"
            ) from None
    if not isinstance(record, CampaignRecord):
        raise CatalogError(f"{name_or_id} is not a campaign")
    return record, catalog.jobs(record.global_id)


def merge_campaign(
    catalog: Catalog,
    config: CampaignConfig,
    *,
    output: Path | None = None,
    base_dir: Path | None = None,
    allow_partial: bool = False,
    overwrite: bool = False,
) -> DatasetRecord:
    """Merge the campaign's shards into one file and register it as a dataset.

    Raises:
        TwinforgeError: jobs are not all done (unless ``allow_partial``), a shard is missing or
            its checksum changed since the job finished.
    """
    record, payloads = open_campaign(catalog, config, base_dir=base_dir)
    jobs = catalog.jobs(record.global_id)
    done = [j for j in jobs if j.state == "done"]
    if len(done) < len(jobs) and not allow_partial:
        counts = catalog.job_counts(record.global_id)
        raise TwinforgeError(
            f"campaign {config.name!r} is not finished ({counts['done']}/{len(jobs)} jobs done, "
            f"{counts['failed']} failed); run it again, or merge with --allow-partial"
        )
    if not done:
        raise TwinforgeError(f"campaign {config.name!r} has no finished job to merge")
    problems = [
        r
        for r in catalog.verify(record.global_id)
        if not r.ok and r.id in {j.global_id for j in done}
    ]
    if problems:
        first = problems[0]
        raise TwinforgeError(
            f"shard {first.path} of {first.id}: {first.status} {first.detail}".strip()
        )
    complete = len(done) == len(jobs)
    name = config.name if complete else f"{config.name}-partial-{len(done)}of{len(jobs)}"
    existing = catalog.find(name, "datasets")
    if existing is not None:  # checked first: never rewrite a catalogued file
        raise CatalogError(
            f"dataset {name!r} is already registered ({existing.global_id}); "
            "the campaign was merged before"
        )
    simulator = config.make_simulator()
    out = output or config.output_path(base_dir) / f"{name}{simulator.format.suffix}"
    shards = [Path(j.output_path or payloads[j.key].output) for j in done]
    simulator.format.merge(
        shards,
        out,
        {
            "campaign": config.name,
            "campaign_id": record.global_id,
            "campaign_config": config.model_dump(mode="json"),
            "simulator": config.simulator.name,
            "simulator_setup": payloads[done[0].key].options,
            "seeds": {j.key: j.seed for j in done},
            "complete": complete,
        },
        overwrite=overwrite,
        compression=config.compression,
    )
    n_events, provenance = simulator.format.describe(out)
    provenance.pop("merged_from", None)  # per-shard details stay in the file and the journal
    provenance["shards"] = [{"job": j.key, "sha256": j.output_sha256, "seed": j.seed} for j in done]
    return catalog.add_dataset(
        name,
        description=f"merged output of campaign {config.name} ({record.global_id})",
        provenance=provenance,
        files=[(out, n_events)],
        campaign_id=record.global_id,
    )


def _record_done(catalog: Catalog, job_id: Any, result: JobOutcome, **provenance: Any) -> None:
    """Journal a finished job: its output, checksum, worker, timing and ``provenance``."""
    timing = {
        "seconds": round(result.seconds, 4),
        "body_seconds": round(result.body_seconds, 4),
        "n_points": result.n_points,
    }
    catalog.set_job_state(
        job_id, "done", output_path=result.output, output_sha256=result.sha256,
        expected="running", worker=result.worker, provenance=timing | provenance,
    )  # fmt: skip


def _record_failure(
    catalog: Catalog, job_id: Any, key: str, result: BaseException
) -> tuple[str, JobRecord]:
    """Journal a failed attempt (error, exit code, stderr tail); the error line and record."""
    error = f"{type(result).__name__}: {result}"
    rec = catalog.set_job_state(
        job_id, "failed", error=error, expected="running",
        exit_code=getattr(result, "exit_code", None),
        stderr_tail=getattr(result, "stderr_tail", None),
    )  # fmt: skip
    log.warning("%s failed, attempt %d%s: %s", key, rec.attempts,
                "" if _retryable(result) else ", not retried", error)  # fmt: skip
    return error, rec


def _retryable(result: BaseException) -> bool:
    # a failure that will always repeat (a bad template, a bad value) is not retried; a crash
    # or a timeout may pass
    return bool(getattr(result, "retryable", not isinstance(result, ConfigError)))


def _requeue_failed(
    catalog: Catalog, rec: JobRecord, result: BaseException, config: CampaignConfig
) -> JobRecord | None:
    """The failed job back to pending when it may pass and has retries left, else None."""
    if _retryable(result) and rec.attempts <= config.max_retries:
        return catalog.set_job_state(rec.id, "pending", expected="failed")
    return None


def _requeue(catalog: Catalog, cid: str, config: CampaignConfig, *, retry_failed: bool) -> None:
    """Resume: interrupted jobs back to pending (unless they were interrupted too often, which
    suggests they kill their worker), failed ones with retries left too."""
    for job in catalog.jobs(cid, state="running"):
        if job.attempts > config.max_retries:  # it may be what killed its worker: stop here
            catalog.set_job_state(
                job.id, "failed", expected="running",
                error=f"interrupted {job.attempts} times (does it crash its worker?)",
            )  # fmt: skip
    requeued = catalog.reset_jobs(cid, states=("running",))
    failed_states = catalog.reset_jobs(
        cid, states=("failed",), max_attempts=None if retry_failed else config.max_retries + 1
    )
    if requeued or failed_states:
        log.info(
            "resuming %s: %d interrupted and %d failed job(s) re-queued",
            cid,
            requeued,
            failed_states,
        )


@contextlib.contextmanager
def released_on_stop(catalog: Catalog, in_flight: dict[str, Any]) -> Iterator[None]:
    """On Ctrl-C or SIGTERM (``KeyboardInterrupt`` or :class:`~twinforge.errors.Stopped`),
    hand the jobs in ``in_flight`` (key -> job id) back to pending without counting their
    attempt; a stop is not a failure. A shard a worker finished meanwhile is adopted on
    resume."""
    try:
        yield
    except (KeyboardInterrupt, Stopped):
        if in_flight:
            n = catalog.release_jobs(list(in_flight.values()))
            log.info("stopped: %d running job(s) back to pending", n)
        raise


def _check_no_live_run(catalog: Catalog, campaign_id: str, name: str, *, force: bool) -> None:
    """Refuse to take over running jobs whose driver may still be alive."""
    for job in catalog.jobs(campaign_id, state="running"):
        host, _, pid = (job.worker or "").rpartition(":")
        if not pid.isdigit():
            continue
        if host == _HOST and int(pid) != os.getpid() and _pid_alive(int(pid)):
            raise CatalogError(
                f"campaign {name!r} is being run by process {pid} on this host ({job.key} is "
                "running); wait for it or stop it first"
            )
        if host != _HOST and not force:
            raise CatalogError(
                f"campaign {name!r} has jobs running from host {host!r}; if that run is dead, "
                "run again with --force"
            )


def _remove_stale_temporaries(shard_dir: Path) -> None:
    """Delete temporary shard files left by dead writer processes of this host."""
    for tmp in shard_dir.glob("*.tmp-*"):
        owner = temporary_owner(tmp)
        if owner is not None and owner[0] == host_tag() and not _pid_alive(owner[1]):
            tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie, dead but not yet reaped, does not:
    in containers whose init does not reap, killed workers stay zombies)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): trust the signal
    return stat.rpartition(")")[2].split()[0] != "Z"
