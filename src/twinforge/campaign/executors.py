"""Executors: where campaign jobs run.

One small protocol, :class:`Executor`, with ``run(fn, items)`` yielding ``(item, result)`` pairs
as jobs finish (a failed job yields its exception as the result), and a streaming form for
adaptive campaigns, which choose each job when a slot frees: ``submit(fn, item)`` then
``next_completed()``, with ``slots`` jobs running at once. Implementations:

- ``local``: in the calling process, one job after another (tests, debugging);
- ``dask``: a Dask ``LocalCluster`` of worker *processes* (one per core by default, one thread
  each: Geant4 keeps one run manager per process);
- ``dask-address``: an existing Dask scheduler (``tcp://host:8786``);
- ``slurm`` / ``pbs``: a dask-jobqueue cluster that submits worker jobs to the batch system.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, Protocol, TypeVar

from pydantic import Field, PositiveInt, model_validator

from twinforge.config import StrictModel

__all__ = [
    "DaskExecutor",
    "Executor",
    "ExecutorConfig",
    "InProcessExecutor",
    "JobqueueConfig",
    "jobqueue_cluster",
    "make_executor",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class JobqueueConfig(StrictModel):
    """Batch-system worker jobs (dask-jobqueue); names follow dask-jobqueue's arguments."""

    cores: PositiveInt = Field(1, description="cores per batch job")
    processes: PositiveInt | None = Field(None, description="Dask worker processes per job")
    memory: str = Field("4GB", description="memory per batch job")
    walltime: str = "02:00:00"
    queue: str | None = Field(None, description="partition (Slurm) / queue (PBS)")
    account: str | None = None
    jobs: PositiveInt = Field(1, description="number of batch jobs to start")
    job_extra_directives: list[str] = Field(default_factory=list)
    job_script_prologue: list[str] = Field(
        default_factory=list, description="shell lines run before the worker (module load ...)"
    )
    local_directory: str | None = None
    log_directory: str | None = None


class ExecutorConfig(StrictModel):
    """Which executor runs the jobs."""

    kind: Literal["local", "dask", "dask-address", "slurm", "pbs"] = "dask"
    workers: PositiveInt | None = Field(None, description="dask: worker processes (default: cores)")
    address: str | None = Field(None, description="dask-address: scheduler address")
    jobqueue: JobqueueConfig = Field(default_factory=JobqueueConfig)

    @model_validator(mode="after")
    def _check(self) -> ExecutorConfig:
        if self.kind == "dask-address" and not self.address:
            raise ValueError("executor kind 'dask-address' needs 'address' (tcp://host:port)")
        return self


class Executor(Protocol):
    """Runs ``fn`` on each item; yields ``(item, result_or_exception)`` as jobs complete."""

    def run(
        self, fn: Callable[[T], R], items: Iterable[T]
    ) -> Iterator[tuple[T, R | BaseException]]: ...

    @property
    def description(self) -> str: ...

    @property
    def slots(self) -> int:
        """How many jobs run at once (the workers)."""
        ...

    def submit(self, fn: Callable[[T], R], item: T) -> None:
        """Start ``fn(item)``; its result comes from :meth:`next_completed`."""
        ...

    def next_completed(self) -> tuple[Any, Any]:
        """``(item, result_or_exception)`` of a submitted job once one finishes (blocks)."""
        ...


class InProcessExecutor:
    """Runs jobs one after another in this process."""

    description = "in-process"
    slots = 1

    def __init__(self) -> None:
        self._queue: list[tuple[Callable[[Any], Any], Any]] = []

    def submit(self, fn: Callable[[T], R], item: T) -> None:
        self._queue.append((fn, item))

    def next_completed(self) -> tuple[Any, Any]:
        fn, item = self._queue.pop(0)
        try:
            result = fn(item)
        except Exception as exc:  # a failed job is reported, not raised
            result = exc
        return item, result

    def run(
        self, fn: Callable[[T], R], items: Iterable[T]
    ) -> Iterator[tuple[T, R | BaseException]]:
        for item in items:
            try:
                result: R | BaseException = fn(item)
            except Exception as exc:  # a failed job is reported, not raised
                result = exc
            yield item, result


class DaskExecutor:
    """Runs jobs on a ``distributed.Client`` (any cluster), yielding them as they complete.

    ``expected_slots``: the worker threads the cluster was asked for (batch jobs start late);
    :attr:`slots` is the larger of that and the threads connected now.
    """

    def __init__(self, client: Any, description: str, expected_slots: int = 0) -> None:
        self.client = client
        self.description = description
        self.expected_slots = expected_slots
        self._stream: Any = None
        self._items: dict[str, Any] = {}

    @property
    def slots(self) -> int:
        workers = self.client.scheduler_info().get("workers", {})
        connected = sum(int(w.get("nthreads", 1)) for w in workers.values())
        return max(1, connected, self.expected_slots)

    def submit(self, fn: Callable[[T], R], item: T) -> None:
        from distributed import as_completed

        future = self.client.submit(fn, item, pure=False)
        self._items[future.key] = item
        if self._stream is None:
            self._stream = as_completed([future])
        else:
            self._stream.add(future)

    def next_completed(self) -> tuple[Any, Any]:
        future = next(self._stream)
        item = self._items.pop(future.key)
        try:
            result: Any = future.result()
        except Exception as exc:
            result = exc
        future.release()
        return item, result

    def run(
        self, fn: Callable[[T], R], items: Iterable[T]
    ) -> Iterator[tuple[T, R | BaseException]]:
        from distributed import as_completed

        pending = []
        items_by_key: dict[str, T] = {}
        for item in items:
            future = self.client.submit(fn, item, pure=False)
            pending.append(future)
            items_by_key[future.key] = item
        completed = as_completed(pending)
        del pending  # as_completed holds them; drop each once its result is taken
        for future in completed:
            item = items_by_key.pop(future.key)
            try:
                result: R | BaseException = future.result()
            except Exception as exc:
                result = exc
            future.release()
            yield item, result


def jobqueue_cluster(config: JobqueueConfig, kind: Literal["slurm", "pbs"]) -> Any:
    """A dask-jobqueue cluster for ``config`` (not yet scaled). ``.job_script()`` shows what
    it would submit."""
    if kind == "slurm":
        from dask_jobqueue import SLURMCluster as Cluster
    else:
        from dask_jobqueue import PBSCluster as Cluster
    kwargs: dict[str, Any] = {
        "cores": config.cores,
        "processes": config.processes or config.cores,  # one thread per worker process
        "memory": config.memory,
        "walltime": config.walltime,
        "job_extra_directives": config.job_extra_directives,
        "job_script_prologue": config.job_script_prologue,
    }
    for key in ("queue", "account", "local_directory", "log_directory"):
        if getattr(config, key) is not None:
            kwargs[key] = getattr(config, key)
    return Cluster(**kwargs)


@contextlib.contextmanager
def make_executor(config: ExecutorConfig) -> Iterator[Executor]:
    """Start the executor ``config`` describes; shut down what it started on exit."""
    if config.kind == "local":
        yield InProcessExecutor()
        return
    from distributed import Client, LocalCluster

    if config.kind == "dask-address":
        with Client(config.address, timeout="30s") as client:
            yield DaskExecutor(client, f"dask scheduler {config.address}")
        return
    if config.kind == "dask":
        workers = config.workers or os.cpu_count() or 1
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # no fixed port: runs side by side
                silence_logs=logging.CRITICAL,  # a stop makes workers log heartbeat errors
            ) as cluster,
            Client(cluster) as client,
        ):
            yield DaskExecutor(client, f"dask LocalCluster, {workers} worker process(es)", workers)
        return
    with jobqueue_cluster(config.jobqueue, config.kind) as cluster:
        cluster.scale(jobs=config.jobqueue.jobs)
        with Client(cluster) as client:
            yield DaskExecutor(
                client,
                f"dask-jobqueue {config.kind}, {config.jobqueue.jobs} job(s)",
                config.jobqueue.jobs * config.jobqueue.cores,
            )
