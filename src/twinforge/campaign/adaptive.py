"""Adaptive campaigns: each job's point is chosen when a worker frees, from all results so far.

A campaign whose ``sampler`` is ``adaptive`` (twinforge's surrogate-based generator) or
``xopt`` (any Xopt generator) has no up-front design. The driver keeps every worker busy
(``Executor.submit`` / ``next_completed``): when a job finishes, its results are ingested, the
surrogate is refitted and a new point proposed, while the other jobs run on; the points still
running are pending, so the acquisition does not propose them again.

Each job is one proposed point simulated ``points_per_job`` times with the job's seed (its
replicates give the observation its own noise). The journal records each job's point, its
seed and what proposed it (``sobol`` for the initial design, the acquisition's name,
``xopt:<generator>``), and after each job the surrogate's predicted error. A killed campaign
resumes from the journal: finished jobs are re-read and ingested (not re-run), interrupted ones
re-run at their recorded point, and proposing goes on from there. A failed job is recorded;
the generator is told its point failed and goes on.

Stop rules: the budget (``total_points`` simulations, so ``total_points / points_per_job``
jobs) and, for twinforge's generator, ``target_error``: once the surrogate's predicted RMSE of
every listed output is below its target, no new job is started.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from twinforge._json import plain
from twinforge.active.config import AdaptiveSamplerConfig, XoptSamplerConfig
from twinforge.campaign.config import CampaignConfig, job_seed
from twinforge.campaign.executors import make_executor
from twinforge.campaign.jobs import JobOutcome, JobPayload, run_job, shard_matches
from twinforge.catalog import Catalog, JobRecord, JobSpec
from twinforge.space import ResolvedSpace, SamplerConfig, sample_points

__all__ = ["recorded_payloads", "run_adaptive"]

log = logging.getLogger(__name__)


def _key(index: int) -> str:
    return f"job-{index:06d}"


def recorded_payloads(
    config: CampaignConfig, catalog: Catalog, campaign_id: str, shard_dir: Path
) -> dict[str, JobPayload]:
    """The payloads of the jobs an adaptive campaign has proposed so far (from the journal)."""
    simulator = config.make_simulator()
    options = simulator.worker_options()
    return {
        job.key: _payload(config, job.parameters, options, shard_dir)
        for job in catalog.jobs(campaign_id)
    }


def _payload(
    config: CampaignConfig, parameters: dict[str, Any], options: dict[str, Any], shard_dir: Path
) -> JobPayload:
    index = int(parameters["index"])
    k = int(parameters["n_points"])
    point = parameters["point"]
    return JobPayload(
        campaign=config.name,
        key=_key(index),
        index=index,
        seed=job_seed(config.seed, index),
        simulator=config.simulator.name,
        options=options,
        points={name: np.repeat(np.asarray([value]), k) for name, value in point.items()},
        output=str(shard_dir / f"{_key(index)}{config.make_simulator().format.suffix}"),
        compression=config.compression,
    )


class _Foreign:
    """A gest-api generator from elsewhere (Xopt's) behind the interface the driver uses:
    ids and pending points kept here, ``initial_points`` Sobol points first."""

    def __init__(self, inner: Any, space: ResolvedSpace, config: XoptSamplerConfig) -> None:
        self.inner = inner
        self.space = space
        self.config = config
        self.pending: dict[int, dict[str, Any]] = {}
        self.proposed_by: dict[int, str] = {}
        self.failed: list[dict[str, Any]] = []
        self._next_id = 0
        self._suggested = 0
        self._seen = 0

    def suggest(self, n: int) -> list[dict[str, Any]]:
        n_sobol = max(0, min(n, self.config.initial_points - self._suggested))
        points: list[dict[str, Any]] = []
        labels: list[str] = []
        if n_sobol:
            draws = sample_points(self.space, SamplerConfig(kind="sobol", seed=self.config.seed),
                                  self._suggested + n_sobol)  # fmt: skip
            points += [{k: plain(v[i]) for k, v in draws.items()}
                       for i in range(self._suggested, self._suggested + n_sobol)]  # fmt: skip
            labels += ["sobol"] * n_sobol
        if n - n_sobol:
            names = self.space.names
            fresh = self.inner.suggest(n - n_sobol)
            for p in fresh:
                point = {k: plain(p[k]) for k in names if k in p}
                for d in self.space.dimensions:  # constants the VOCS left out
                    point.setdefault(d.name, plain(d.values[0]) if d.values else d.low)
                points.append(point)
            labels += [self.config.label] * len(fresh)
        out = []
        for point, label in zip(points, labels, strict=True):
            out.append({**point, "_id": self._next_id})
            self.pending[self._next_id] = out[-1]
            self.proposed_by[self._next_id] = label
            self._next_id += 1
        self._suggested += len(out)
        return out

    def advance(self, n: int) -> None:
        """``n`` points were proposed before (a resumed campaign): the Sobol start goes on
        after them."""
        self._suggested = max(self._suggested, n)

    def mark_pending(self, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for point in points:
            out.append({**point, "_id": self._next_id})
            self.pending[self._next_id] = out[-1]
            self.proposed_by[self._next_id] = "resumed"
            self._next_id += 1
        return out

    def ingest(self, results: list[dict[str, Any]]) -> None:
        for r in results:
            self.pending.pop(r.get("_id"), None)  # type: ignore[arg-type]
        good = [{k: v for k, v in r.items() if k != "_id"} for r in results
                if all(r.get(k) is not None and np.isfinite(float(r[k]))
                       for k in self.config.outputs)]  # fmt: skip
        self.failed += [r for r in results if r not in good]
        if good:
            self.inner.ingest(good)

    def predicted_error(self) -> dict[str, float] | None:
        return None


def make_generator(config: CampaignConfig) -> Any:
    """The campaign's generator (twinforge's or a wrapped Xopt one)."""
    from twinforge.active.vocs import space_to_vocs

    sampler = config.sampler
    space = config.resolved_space
    assert isinstance(sampler, AdaptiveSamplerConfig | XoptSamplerConfig)
    vocs = space_to_vocs(space, {k: v.upper() for k, v in sampler.objectives.items()},
                         dict(sampler.constraints))  # fmt: skip
    if isinstance(sampler, AdaptiveSamplerConfig):
        from twinforge.active.generator import SurrogateGenerator

        return SurrogateGenerator(vocs, sampler.active(), space=space)
    from twinforge.active.xopt import xopt_generator

    return _Foreign(xopt_generator(sampler.generator, vocs, sampler.options), space, sampler)


def _rows(path: Path, simulator: Any, job_id: int | None) -> list[dict[str, Any]]:
    """A finished job's observations as gest-api result dicts (each output's variance, where
    the format knows it, under ``<output>_var``)."""
    inputs, outputs, variances = simulator.format.observe(path)
    n = len(next(iter(inputs.values())))
    rows = []
    for i in range(n):
        row = {k: plain(v[i]) for k, v in inputs.items()}
        row |= {k: float(v[i]) for k, v in outputs.items()}
        row |= {f"{k}_var": float(v[i]) for k, v in (variances or {}).items()}
        if job_id is not None:
            row["_id"] = job_id
        rows.append(row)
    return rows


def run_adaptive(
    config: CampaignConfig,
    catalog: Catalog,
    *,
    base_dir: Path | None = None,
    retry_failed: bool = False,
    force: bool = False,
    on_progress: Callable[[Any], None] | None = None,
) -> Any:
    """Run (or resume) an adaptive campaign until its budget or its target error is reached.

    Returns a :class:`~twinforge.campaign.runner.CampaignReport`.
    """
    from twinforge.campaign import runner

    t0 = time.perf_counter()
    record, _ = runner.open_campaign(catalog, config, base_dir=base_dir)
    cid = record.global_id
    shard_dir = config.output_path(base_dir).resolve() / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    runner._remove_stale_temporaries(shard_dir)
    runner._check_no_live_run(catalog, cid, config.name, force=force)
    runner._requeue(catalog, cid, config, retry_failed=retry_failed)

    sampler = config.sampler
    assert isinstance(sampler, AdaptiveSamplerConfig | XoptSamplerConfig)
    simulator = config.make_simulator()
    options = simulator.worker_options()
    generator = make_generator(config)
    budget = config.n_jobs
    report = runner.CampaignReport(campaign_id=cid, total_jobs=budget, done=0)
    failed_now: dict[str, str] = {}
    ids: dict[str, int] = {}  # job key -> generator id, for the jobs it waits for
    records: dict[str, JobRecord] = {}  # job key -> its journal record
    queue: list[tuple[JobRecord, JobPayload]] = []

    # the journal so far: finished jobs are data, interrupted ones run again where they were
    jobs = sorted(catalog.jobs(cid), key=lambda j: int(j.parameters["index"]))
    for job in jobs:
        records[job.key] = job
        payload = _payload(config, job.parameters, options, shard_dir)
        if job.state == "pending" and shard_matches(Path(payload.output), payload, simulator):
            catalog.set_job_state(job.id, "running", expected="pending", worker=runner._DRIVER)
            job = catalog.set_job_state(job.id, "done", output_path=payload.output,
                                        expected="running")  # fmt: skip
            report.adopted += 1
        if job.state == "done":
            generator.ingest(_rows(Path(job.output_path or payload.output), simulator, None))
        elif job.state == "pending":
            (marked,) = generator.mark_pending([job.parameters["point"]])
            ids[job.key] = marked["_id"]
            queue.append((job, payload))
        else:
            failed_now[job.key] = job.error or "failed"
    report.skipped = sum(j.state == "done" for j in jobs)  # as found, before any adoption
    report.done = report.skipped + report.adopted
    generator.advance(len(jobs))
    next_index = max((int(j.parameters["index"]) for j in jobs), default=-1) + 1
    proposed = len(jobs)
    points = 0
    stopped = ""

    def notify() -> None:
        if on_progress:
            elapsed = time.perf_counter() - t0
            on_progress(
                runner.CampaignProgress(budget, report.done, len(failed_now), points, elapsed)
            )

    def check_target() -> dict[str, float] | None:
        nonlocal stopped
        error = generator.predicted_error()
        targets = getattr(sampler, "target_error", {})
        if error and targets and not stopped and all(error[k] <= t for k, t in targets.items()):
            stopped = "target error reached: " + ", ".join(
                f"{k} {error[k]:.3g} <= {t:g}" for k, t in targets.items())  # fmt: skip
            log.info("%s: %s; no new job is started", config.name, stopped)
        return error

    if report.done:  # a resumed campaign may have reached its target already
        check_target()

    notify()
    t_start = time.perf_counter()
    in_flight: dict[str, Any] = {}  # job key -> job id, of the jobs handed to a worker
    with (
        make_executor(config.executor) as executor,
        runner.released_on_stop(catalog, in_flight),
    ):
        report.startup_seconds = time.perf_counter() - t_start
        report.executor = executor.description
        while True:
            for job, payload in queue:
                in_flight[job.key] = job.id  # first: a stop from here on releases it
                catalog.set_job_state(job.id, "running", expected="pending",
                                      worker=runner._DRIVER)  # fmt: skip
                executor.submit(run_job, payload)
            queue = []
            free = min(executor.slots - len(in_flight), budget - proposed)
            if free > 0 and not stopped:
                for point in generator.suggest(free):
                    gid = point.pop("_id")
                    index = next_index
                    next_index += 1
                    proposed += 1
                    spec = JobSpec(
                        key=_key(index),
                        seed=job_seed(config.seed, index),
                        parameters={
                            "index": index,
                            "n_points": config.points_per_job,
                            "point": point,
                            "proposed_by": generator.proposed_by.get(gid, sampler.label),
                            "output": f"shards/{_key(index)}{simulator.format.suffix}",
                        },
                    )
                    (job,) = catalog.add_jobs(cid, [spec])
                    ids[job.key] = gid
                    records[job.key] = job
                    queue.append((job, _payload(config, spec.parameters, options, shard_dir)))
                if queue:
                    continue
            if not in_flight:
                break
            payload, result = executor.next_completed()
            job = records[payload.key]
            if isinstance(result, JobOutcome):
                generator.ingest(_rows(Path(result.output), simulator, ids.pop(payload.key)))
                error = check_target()
                extra = {"predicted_error": error} if error else {}
                runner._record_done(catalog, job.id, result, **extra)
                report.done += 1
                report.ran += 1
                points += result.n_points
                failed_now.pop(payload.key, None)
            else:
                error_text, rec = runner._record_failure(catalog, job.id, payload.key, result)
                failed_now[payload.key] = error_text
                again = runner._requeue_failed(catalog, rec, result, config)
                if again is not None:
                    records[payload.key] = again
                    queue.append((again, payload))
                else:  # the generator learns that this point failed and goes on
                    point = dict(job.parameters["point"])
                    generator.ingest([{**point, "_id": ids.pop(payload.key)}
                                      | dict.fromkeys(sampler.outputs)])  # fmt: skip
            del in_flight[payload.key]  # only once its outcome is journalled
            notify()
    report.failed = failed_now
    report.points = points
    report.seconds = time.perf_counter() - t0
    report.stopped = stopped or ("budget reached" if proposed >= budget else "")
    report.predicted_error = generator.predicted_error()
    return report
