"""Running a study: samplers, the pruning callback, trials on the campaign executors,
resuming after a kill, the best configuration and the report.

A trial (:func:`run_trial`) is one task for an executor of :mod:`twinforge.campaign.executors`
(in-process, or a Dask cluster: trials in parallel). The task opens the study from its database
(Optuna's RDB storage), asks for a trial, trains the trial's configuration with
:func:`~twinforge.training.train.run_training` (the pruning callback reports the validation
loss of every epoch to the trial and stops a bad one), validates the model against the held-out
reference with the suite (:func:`twinforge.tune.objective.evaluate_model`), and tells the study
the objective. A trial that raises is recorded FAILED with its message; the study goes on.

Resuming: a running trial writes a heartbeat every ``heartbeat.interval_s``; one silent for
``heartbeat.grace_s`` (its process was killed) is failed and queued again with the same
parameters (up to ``heartbeat.max_retry`` times), and the queued copy trains in the killed
trial's directory, so it resumes from the last checkpoint. Running ``twinforge tune`` again with
the same config continues the study until ``n_trials`` trials are finished (complete or pruned).

Storage: :mod:`twinforge.tune.storage`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from lightning.pytorch.callbacks import Callback
from optuna.trial import TrialState

from twinforge import __version__
from twinforge.errors import ConfigError, Stopped, TwinforgeError
from twinforge.showers.io import atomic_write_text
from twinforge.training.train import TrainConfig
from twinforge.tune.config import Param, TuneConfig, apply_params, decode_choice
from twinforge.tune.objective import (
    check_reference,
    describe_objective,
    evaluate_model,
    objective_value,
)
from twinforge.tune.storage import (
    StorageLocation,
    open_storage,
    prepare_storage,
    quiet_optuna,
    resolve_storage,
)

__all__ = [
    "BEST_CONFIG",
    "REPORT",
    "PruningCallback",
    "StudyOutcome",
    "TrialOutcome",
    "TrialTask",
    "run_study",
    "run_trial",
    "write_best_config",
]

log = logging.getLogger(__name__)

BEST_CONFIG = "best-train.yaml"
REPORT = "report.html"
SUMMARY = "study.json"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def make_sampler(
    config: TuneConfig, seed: int | None, parallel: bool
) -> optuna.samplers.BaseSampler:
    """The sampler of ``config`` (TPE with the constant liar when trials run in parallel, or
    the Gaussian-process sampler)."""
    spec = config.sampler
    with quiet_optuna():
        if spec.kind == "gp":
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=spec.startup_trials)
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=spec.startup_trials, constant_liar=parallel
        )


def make_pruner(config: TuneConfig) -> optuna.pruners.BasePruner:
    """The median rule (after ``warmup_epochs`` and ``startup_trials``) or none."""
    spec = config.pruner
    if spec.kind == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_epochs
    )


# --------------------------------------------------------------------------- pruning
class PruningCallback(Callback):
    """Reports the validation loss (``val/loss``) of every epoch to an Optuna trial and raises
    :class:`optuna.TrialPruned` when the study's pruner says the trial is worse than the others
    were at that epoch.

    ``trial`` needs ``report(value, step)`` and ``should_prune()``; the step is the epoch.
    """

    def __init__(self, trial: Any, monitor: str = "val/loss") -> None:
        super().__init__()
        self.trial = trial
        self.monitor = monitor

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if getattr(trainer, "sanity_checking", False):
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        epoch = int(trainer.current_epoch)
        loss = float(value)
        self.trial.report(loss, step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}: {self.monitor} {loss:.5g}")


# --------------------------------------------------------------------------- one trial
@dataclass(frozen=True)
class TrialTask:
    """What one trial task needs (picklable: it travels to Dask workers).

    ``config`` holds the study's config with absolute paths; ``sampler_seed`` the seed of this
    ask's sampler (None: random); ``parallel`` whether trials run at once (TPE then uses the
    constant liar); ``parent_run_id`` the study's tracking run.
    """

    config: TuneConfig
    storage_url: str
    study_dir: str
    sampler_seed: int | None
    parallel: bool
    parent_run_id: str | None
    tracking_workdir: str


@dataclass
class TrialOutcome:
    """What a trial task reports back to the study loop."""

    number: int
    state: str
    value: float | None = None
    figures: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0
    directory: str = ""


Stage = Callable[[int, str], None]


def run_trial(task: TrialTask, stage: Stage | None = None) -> TrialOutcome:
    """Open the study, ask a trial, train, validate, tell; return what happened.

    ``stage`` (in-process runs only) is called with the trial number and a short description
    of what the trial is doing.
    """
    config = task.config
    storage = open_storage(task.storage_url, config)
    try:
        study = optuna.load_study(
            study_name=config.study,
            storage=storage,
            sampler=make_sampler(config, task.sampler_seed, task.parallel),
            pruner=make_pruner(config),
        )
        with quiet_optuna():
            optuna.storages.fail_stale_trials(study)
            # (Optuna warns that heartbeats belong to Study.optimize: this loop beats itself)
            warnings.filterwarnings("ignore", message=".*Heartbeat of storage.*")
            trial = study.ask()
        from optuna.storages._heartbeat import get_heartbeat_thread

        start = time.perf_counter()
        outcome = TrialOutcome(trial.number, "RUNNING")
        state, value = TrialState.FAIL, None
        with get_heartbeat_thread(trial._trial_id, storage), _quieter():
            try:
                value = _objective(trial, task, outcome, stage)
                state = TrialState.COMPLETE
            except optuna.TrialPruned as exc:
                state, outcome.message = TrialState.PRUNED, str(exc)
            except (KeyboardInterrupt, SystemExit, Stopped):  # Ctrl-C, SIGTERM
                _interrupted(study, trial, config)
                raise
            except Exception as exc:
                outcome.message = _message(exc)
                trial.set_user_attr("error", outcome.message)
                if not isinstance(exc, TwinforgeError):
                    log.debug("trial %d failed", trial.number, exc_info=True)
        outcome.seconds = time.perf_counter() - start
        trial.set_user_attr("seconds", round(outcome.seconds, 3))
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        outcome.state, outcome.value = state.name, value
        if state in FINISHED and outcome.directory:
            _tidy(Path(outcome.directory))
        return outcome
    finally:
        storage.remove_session()
        storage.engine.dispose()


@contextlib.contextmanager
def _quieter() -> Iterator[None]:
    """Training's and validation's info lines (one trial of many) at debug level only: the
    study's progress shows what a trial is doing."""
    loggers = [logging.getLogger(f"twinforge.{name}") for name in ("training", "validation")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        if lg.getEffectiveLevel() > logging.DEBUG:
            lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _tidy(directory: Path) -> None:
    """Remove what a finished trial no longer needs: the checkpoints (only for resuming) and
    the sampled showers of its validation (as large as the reference; the model samples them
    again). The model, metrics.json and report.html stay."""
    import shutil

    shutil.rmtree(directory / "model.checkpoints", ignore_errors=True)
    (directory / "validation" / "generated.h5").unlink(missing_ok=True)


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, TwinforgeError) else f"{type(exc).__name__}: {text}"


def _interrupted(study: optuna.Study, trial: optuna.Trial, config: TuneConfig) -> None:
    """Ctrl-C in a trial: fail it and queue its parameters again, so that the next run resumes
    it (from its checkpoint) at once instead of after the heartbeat grace period."""
    try:
        trial.set_user_attr("error", "interrupted")
        study.tell(trial, state=TrialState.FAIL)
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
        with quiet_optuna():
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=config.heartbeat.max_retry, inherit_intermediate_values=True
            )
            retry(study, frozen)
    except Exception:  # the heartbeat rule still resumes it later
        log.debug("could not queue interrupted trial %d again", trial.number, exc_info=True)


def _suggest(trial: optuna.Trial, path: str, param: Param) -> Any:
    if param.type == "float":
        assert param.low is not None and param.high is not None
        return trial.suggest_float(path, param.low, param.high, log=param.log, step=param.step)
    if param.type == "int":
        assert param.low is not None and param.high is not None
        step = int(param.step) if param.step is not None else 1
        return trial.suggest_int(path, int(param.low), int(param.high), step=step, log=param.log)
    distribution = param.distribution()
    return decode_choice(param, trial.suggest_categorical(path, distribution.choices))


def _objective(
    trial: optuna.Trial, task: TrialTask, outcome: TrialOutcome, stage: Stage | None
) -> float:
    from twinforge.tracking import start_run

    config = task.config
    number = trial.number
    say = (lambda text: stage(number, text)) if stage is not None else (lambda text: None)
    params = {path: _suggest(trial, path, param) for path, param in config.space.items()}
    outcome.params = params
    # a trial queued again after its process died trains in that trial's directory (resumes)
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == number)
    first = frozen.system_attrs.get("failed_trial", number)
    directory = Path(task.study_dir) / f"trial-{first}"
    outcome.directory = str(directory)
    trial.set_user_attr("directory", str(directory))
    if first != number:
        trial.set_user_attr("resumes_trial", first)
    train = apply_params(
        config.train_config(),
        params,
        updates={"name": f"{config.study}-trial-{first}", "output": str(directory / "model")},
    )
    tags = {"twinforge.study": config.study, "twinforge.trial": str(number)}
    pruned: optuna.TrialPruned | None = None
    with start_run(
        config.tracking,
        kind="trial",
        name=f"{config.study}/trial-{number}",
        workdir=Path(task.tracking_workdir),
        tags=tags,
        parent_run_id=task.parent_run_id,
    ) as run:
        run.log_params({"trial": {"number": number, "params": params}})
        try:
            value = _train_and_validate(trial, config, train, directory, run, outcome, say)
        except optuna.TrialPruned as exc:  # the tracked run ends finished, tagged pruned
            run.set_tags({"twinforge.pruned": str(exc)})
            pruned = exc
    if pruned is not None:
        raise pruned
    if not math.isfinite(value):
        raise TwinforgeError(f"objective is {value} (not finite)")
    return value


def _train_and_validate(
    trial: optuna.Trial,
    config: TuneConfig,
    train: TrainConfig,
    directory: Path,
    run: Any,
    outcome: TrialOutcome,
    say: Callable[[str], None],
) -> float:
    """Train ``train`` (pruned on its validation loss), validate the model, return the
    objective; record what it did in the trial's user attributes and the tracked ``run``."""
    from twinforge.training.train import run_training
    from twinforge.validation.summary import validation_summary

    say("training")
    model = run_training(
        train, quiet=True, overwrite=True, callbacks=[PruningCallback(trial)], tracker=run
    )
    trial.set_user_attr("model", str(model))
    say("validating")
    report_dir = directory / "validation"
    metrics = evaluate_model(
        model,
        Path(config.reference),
        report_dir,
        config.suite_config(),
        max_showers=config.max_showers,
        title=f"{config.study}: trial {trial.number}",
        report=config.trial_reports,
        progress=lambda text: say(f"validating: {text}"),
    )
    trial.set_user_attr("metrics", str(report_dir / "metrics.json"))
    if config.trial_reports:
        trial.set_user_attr("report", str(report_dir / "report.html"))
    trial.set_user_attr("validation_seconds", (metrics.get("timing_s") or {}).get("total"))
    value, figures = objective_value(metrics, config.objective)
    outcome.figures = figures
    trial.set_user_attr("figures", figures)
    _, summary, _ = validation_summary(metrics)
    run.log_metrics({**summary, "objective": value})
    run.log_artifact(report_dir / "metrics.json", "validation")
    return value


# --------------------------------------------------------------------------- the study
@dataclass
class StudyOutcome:
    """What a run of a study did and where its results are."""

    study: str
    storage: str
    directory: Path
    executor: str
    objective: str
    counts: dict[str, int]
    trials_run: int
    stopped: str
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_config: Path | None = None
    report: Path | None = None
    tracking_run: str | None = None
    last_error: str = ""


def run_study(
    config: TuneConfig,
    *,
    catalog: str | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_trial: Callable[[TrialOutcome], None] | None = None,
    on_stage: Stage | None = None,
) -> StudyOutcome:
    """Run (or continue) the study of ``config`` until ``n_trials`` trials are finished, the
    wall-clock budget is spent or ``max_failed_trials`` trials of this run failed; write the
    best configuration, the report and ``study.json`` into the study directory.

    Args:
        config: a loaded config (:func:`~twinforge.tune.config.load_tune_config`).
        catalog: the catalogue the study is stored beside (default: as everywhere,
            ``$TWINFORGE_CATALOG`` or ``./.twinforge/catalog.sqlite``) and whose folder holds
            the local tracking store.
        on_start: called with (finished trials so far, n_trials).
        on_trial: called with each trial's outcome as it ends.
        on_stage: in-process runs: called with (trial number, what it is doing).

    Raises:
        ConfigError: an unusable reference, or a stored study of the same name made with
            another search space, objective or training config.
    """
    from twinforge.campaign.executors import make_executor
    from twinforge.tracking import default_workdir, start_run

    given = config.train_config()  # best-train.yaml keeps its paths as the user wrote them
    config = _absolute(config)
    train = config.train_config()
    suite = config.suite_config()
    n_reference = check_reference(
        Path(config.reference), [Path(f) for f in train.data.files], suite, config.max_showers
    )
    study_dir = config.study_dir()
    study_dir.mkdir(parents=True, exist_ok=True)
    location = resolve_storage(config.storage, catalog)
    prepare_storage(location)
    storage = open_storage(location.url, config)
    try:
        study = _create_or_load(storage, config, location, n_reference)
        with quiet_optuna():
            optuna.storages.fail_stale_trials(study)
        done = _count(study, FINISHED)
    finally:
        storage.remove_session()
        storage.engine.dispose()
    if on_start is not None:
        on_start(done, config.n_trials)
    workdir = default_workdir(catalog)
    started = time.monotonic()
    deadline = started + 60 * config.timeout_minutes if config.timeout_minutes else math.inf
    with start_run(
        config.tracking,
        kind="tune",
        name=config.study,
        workdir=workdir,
        tags={"twinforge.study": config.study, "twinforge.storage": location.display},
    ) as parent:
        parent.log_params(_tracked_params(config, location))
        with make_executor(config.executor) as executor:
            slots = executor.slots
            run = _Loop(config, location, study_dir, executor, slots, parent.run_id, workdir)
            stopped = run.loop(deadline, on_trial, on_stage)
        outcome = finish_study(
            config, location, study_dir, executor.description, run, stopped, base=given
        )
        outcome.tracking_run = parent.run_id
        if outcome.best_value is not None:
            parent.log_metrics(
                {"best_value": outcome.best_value, "best_trial": outcome.best_number}
            )
        parent.log_metrics({f"trials_{k.lower()}": v for k, v in outcome.counts.items()})
        for path in (outcome.best_config, outcome.report, study_dir / SUMMARY):
            if path is not None and path.exists():
                parent.log_artifact(path)
    return outcome


class _Loop:
    """Keeps ``slots`` trial tasks running until a budget says stop."""

    def __init__(
        self,
        config: TuneConfig,
        location: StorageLocation,
        study_dir: Path,
        executor: Any,
        slots: int,
        parent_run_id: str | None,
        workdir: Path,
    ) -> None:
        self.config, self.location, self.study_dir = config, location, study_dir
        self.executor, self.slots = executor, slots
        self.parent_run_id, self.workdir = parent_run_id, workdir
        self.in_flight = 0
        self.failed = 0
        self.trials_run = 0
        self.last_error = ""

    def _finished(self) -> tuple[int, int]:
        """Finished trials (complete or pruned) and all trials of the study, stale ones failed."""
        storage = open_storage(self.location.url, self.config)
        try:
            study = optuna.load_study(study_name=self.config.study, storage=storage)
            with quiet_optuna():
                optuna.storages.fail_stale_trials(study)
            return _count(study, FINISHED), len(study.get_trials(deepcopy=False))
        finally:
            storage.remove_session()
            storage.engine.dispose()

    def _submit(self, n_existing: int, on_stage: Stage | None) -> None:
        seed = self.config.sampler.seed
        task = TrialTask(
            config=self.config,
            storage_url=self.location.url,
            study_dir=str(self.study_dir.absolute()),
            # a fresh sampler per ask: seed + the number of trials it sees, so that a
            # sequential study is reproducible and parallel asks differ
            sampler_seed=None if seed is None else seed + n_existing + self.in_flight,
            parallel=self.slots > 1,
            parent_run_id=self.parent_run_id,
            tracking_workdir=str(self.workdir),
        )
        fn = functools.partial(run_trial, stage=on_stage) if self.slots == 1 else run_trial
        self.executor.submit(fn, task)
        self.in_flight += 1

    def _fill(self, deadline: float, on_stage: Stage | None) -> str:
        """Submit tasks up to the slots; return why no more may start ('' when more may)."""
        while self.in_flight < self.slots:
            finished, existing = self._finished()
            if finished + self.in_flight >= self.config.n_trials:
                return f"{finished} of {self.config.n_trials} trials finished"
            if time.monotonic() >= deadline:
                return f"wall-clock budget of {self.config.timeout_minutes:g} min spent"
            if self.failed >= self.config.max_failed_trials:
                return f"{self.failed} trials failed in this run"
            self._submit(existing, on_stage)
        return ""

    def loop(
        self,
        deadline: float,
        on_trial: Callable[[TrialOutcome], None] | None,
        on_stage: Stage | None,
    ) -> str:
        stopped = self._fill(deadline, on_stage)
        while self.in_flight:
            _, result = self.executor.next_completed()
            self.in_flight -= 1
            self.trials_run += 1
            if isinstance(result, BaseException):  # the task itself died (a killed worker)
                if isinstance(result, KeyboardInterrupt | Stopped):
                    raise result
                self.failed += 1
                self.last_error = _message(result)
                log.warning("a trial task failed: %s", self.last_error)
                result = TrialOutcome(-1, "FAIL", message=self.last_error)
            elif result.state == "FAIL":
                self.failed += 1
                self.last_error = f"trial {result.number}: {result.message}"
                log.warning("trial %d failed: %s", result.number, result.message)
            if on_trial is not None:
                on_trial(result)
            stopped = self._fill(deadline, on_stage) or stopped
        if not stopped:
            stopped = self._fill(deadline, on_stage)
        return stopped


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _absolute(config: TuneConfig) -> TuneConfig:
    """``config`` with every file path absolute (trials may run in other processes)."""
    train = config.train_config()
    files = [str(Path(f).expanduser().absolute()) for f in train.data.files]
    data = train.data.model_copy(update={"files": files})
    updates: dict[str, Any] = {
        "train": train.model_copy(update={"data": data}),
        "reference": str(Path(config.reference).expanduser().absolute()),
        "output": str(Path(config.study_dir()).absolute()),
        "study_name": config.study,
    }
    return config.model_copy(update=updates)


def _fingerprint(config: TuneConfig, n_reference: int) -> dict[str, Any]:
    """What makes trials of one study comparable: space, objective, the base training config
    (without name and output), the reference and the suite settings."""
    train = config.train_config().model_dump(mode="json", exclude={"name", "output"})
    suite = config.suite_config().model_dump(
        mode="json", exclude={"cache_dir", "blas_threads", "kind"}
    )
    return {
        "space": {k: v.model_dump(mode="json") for k, v in config.space.items()},
        "objective": describe_objective(config.objective),
        "train": train,
        "reference": config.reference,
        "n_reference": n_reference,
        "suite": suite,
    }


def _create_or_load(
    storage: optuna.storages.RDBStorage,
    config: TuneConfig,
    location: StorageLocation,
    n_reference: int,
) -> optuna.Study:
    fingerprint = _fingerprint(config, n_reference)
    study = optuna.create_study(
        study_name=config.study, storage=storage, direction="minimize", load_if_exists=True
    )
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        study.set_user_attr("fingerprint", fingerprint)
        study.set_user_attr("objective", fingerprint["objective"])
        study.set_user_attr("twinforge", __version__)
        study.set_user_attr("created", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        return study
    if stored != fingerprint:
        changed = [k for k in fingerprint if stored.get(k) != fingerprint[k]]
        raise ConfigError(
            f"study {config.study!r} in {location.display} was made with another "
            f"{', '.join(changed)}: its trials would not compare; choose another study_name "
            "(or delete the study: optuna delete-study)"
        )
    return study


def _tracked_params(config: TuneConfig, location: StorageLocation) -> dict[str, Any]:
    return {
        "study": config.study,
        "objective": describe_objective(config.objective),
        "space": {k: v.describe() for k, v in config.space.items()},
        "sampler": config.sampler.model_dump(mode="json"),
        "pruner": config.pruner.model_dump(mode="json"),
        "n_trials": config.n_trials,
        "timeout_minutes": config.timeout_minutes,
        "reference": config.reference,
        "max_showers": config.max_showers,
        "storage": location.display,
        "executor": config.executor.kind,
    }


# --------------------------------------------------------------------------- results
def finish_study(
    config: TuneConfig,
    location: StorageLocation,
    study_dir: Path,
    executor: str,
    loop: Any,
    stopped: str,
    *,
    base: TrainConfig | None = None,
) -> StudyOutcome:
    """Read the study back; write the best training config (from ``base``, default the
    config's training config), the report and ``study.json``."""
    from twinforge.tune.report import write_report

    storage = open_storage(location.url, config)
    try:
        study = optuna.load_study(study_name=config.study, storage=storage)
        trials = study.get_trials(deepcopy=True)
    finally:
        storage.remove_session()
        storage.engine.dispose()
    counts = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    outcome = StudyOutcome(
        study=config.study,
        storage=location.display,
        directory=study_dir,
        executor=executor,
        objective=describe_objective(config.objective),
        counts={k: v for k, v in counts.items() if v},
        trials_run=loop.trials_run,
        stopped=stopped,
        last_error=loop.last_error,
    )
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = min(complete, key=lambda t: (t.value, t.number)) if complete else None
    if best is not None:
        outcome.best_number, outcome.best_value = best.number, best.value
        outcome.best_params = _decoded(config, best.params)
        outcome.best_config = write_best_config(config, best, study_dir / BEST_CONFIG, base=base)
    outcome.report = write_report(
        study_dir / REPORT, config, trials, storage=location.display, executor=executor,
        stopped=stopped,
    )  # fmt: skip
    summary = {
        "study": config.study,
        "storage": location.display,
        "objective": outcome.objective,
        "direction": "minimize",
        "counts": outcome.counts,
        "stopped": stopped,
        "best": None
        if best is None
        else {
            "number": best.number,
            "value": best.value,
            "params": outcome.best_params,
            "figures": best.user_attrs.get("figures"),
            "model": best.user_attrs.get("model"),
            "config": str(outcome.best_config),
        },
        "report": str(outcome.report),
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "twinforge": __version__,
    }
    atomic_write_text(study_dir / SUMMARY, json.dumps(summary, indent=2, default=str) + "\n")
    return outcome


def _decoded(config: TuneConfig, params: dict[str, Any]) -> dict[str, Any]:
    return {k: decode_choice(config.space[k], v) if k in config.space else v
            for k, v in params.items()}  # fmt: skip


def best_train_config(
    config: TuneConfig, trial: optuna.trial.FrozenTrial, base: TrainConfig | None = None
) -> TrainConfig:
    """The training config of ``trial``: ``base`` (default the study's training config) with
    its parameters, named ``<base name>-tuned``, written where the base config writes."""
    base = base or config.train_config()
    return apply_params(
        base, _decoded(config, trial.params), updates={"name": f"{base.name}-tuned"}
    )


def write_best_config(
    config: TuneConfig,
    trial: optuna.trial.FrozenTrial,
    path: Path,
    *,
    base: TrainConfig | None = None,
) -> Path:
    """Write the best trial's training config (``kind: train``) atomically; return ``path``."""
    train = best_train_config(config, trial, base)
    data = train.model_dump(mode="json", exclude_unset=True)
    data = {"kind": "train", **{k: v for k, v in data.items() if k != "kind"}}
    figures = trial.user_attrs.get("figures") or {}
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
    header = [
        f"# Best configuration of study {config.study}: trial {trial.number}, "
        f"{describe_objective(config.objective)} = {trial.value:.6g}",
        *(f"#   {name} = {value:.6g}" for name, value in figures.items()),
        "# Parameters: "
        + ", ".join(f"{k} = {json.dumps(v)}" for k, v in _decoded(config, trial.params).items()),
        f"# Its model: {trial.user_attrs.get('model', '?')}",
        f"# Written by twinforge tune {__version__} (config digest {digest}); train it with:",
        f"#   twinforge train {_shown(path)}",
    ]
    text = "\n".join(header) + "\n" + yaml.safe_dump(data, sort_keys=False)
    atomic_write_text(path, text)
    return path


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it lies below it."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
