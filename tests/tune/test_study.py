"""Studies end to end on tiny data: in-process, resumed after a kill, with failing trials, on a
Dask LocalCluster, and with their storage in a PostgreSQL catalogue's database."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.conftest import Run
from twinforge.config import load_config
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.training.train import TrainConfig
from twinforge.tune import load_tune_config, resolve_storage, run_study
from twinforge.tune.storage import open_storage

FIGURE_TITLES = ("Optimisation history", "Parameter importances", "Parallel coordinates")


def _trials(config, catalog: str | None = None) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(resolve_storage(config.storage, catalog).url, config)
    try:
        return optuna.load_study(study_name=config.study, storage=storage).get_trials()
    finally:
        storage.engine.dispose()


def test_a_tiny_study_in_process(project: Callable[..., Path], tmp_path: Path) -> None:
    config = load_tune_config(project())
    seen = []
    outcome = run_study(config, on_trial=seen.append)
    assert outcome.counts == {"COMPLETE": 3}
    assert [o.state for o in seen] == ["COMPLETE"] * 3
    assert outcome.stopped == "3 of 3 trials finished"
    assert outcome.storage == str(tmp_path / "studies.sqlite")  # beside TWINFORGE_CATALOG
    trials = _trials(config)
    best = min(trials, key=lambda t: t.value)
    assert outcome.best_number == best.number
    assert outcome.best_value == best.value
    # every trial: the suite's FPD, its own folder with model and validation report, tidied
    for t in trials:
        assert t.user_attrs["figures"] == {"fpd": t.value}
        folder = Path(t.user_attrs["directory"])
        assert folder == tmp_path / "studies" / "tiny" / f"trial-{t.number}"
        assert (folder / "model" / "model.json").is_file()
        metrics = json.loads((folder / "validation" / "metrics.json").read_text())
        assert metrics["overall"]["fpd"]["value"] == t.value
        assert not (folder / "validation" / "generated.h5").exists()
        assert not (folder / "model.checkpoints").exists()
    # the best configuration is a training config twinforge train accepts
    best_yaml = tmp_path / "studies" / "tiny" / "best-train.yaml"
    assert outcome.best_config == best_yaml
    train = load_config(best_yaml, TrainConfig)
    assert train.name == "tiny-vae-tuned"
    assert train.data.files == ["train.h5"]  # as the user wrote it
    assert train.optim.lr == pytest.approx(best.params["optim.lr"])
    assert train.model.config["latent_dim"] == best.params["model.config.latent_dim"]
    assert train.model.config["hidden"] == json.loads(best.params["model.config.hidden"])
    assert train.optim.max_steps == 24
    # the report: three figures inline, every trial in the table, nothing from the network
    html = outcome.report.read_text()
    for title in FIGURE_TITLES:
        assert f"<img alt='{title}' src='data:image/svg+xml;base64," in html
    assert "fANOVA" in html
    assert html.count("<tr><td>") == 3
    assert "http://" not in html
    assert "https://" not in html
    summary = json.loads((tmp_path / "studies" / "tiny" / "study.json").read_text())
    assert summary["best"]["number"] == best.number
    # run again: the budget is reached, nothing new runs
    again = run_study(config)
    assert again.trials_run == 0
    assert again.counts == {"COMPLETE": 3}


def test_a_stale_running_trial_is_resumed(project: Callable[..., Path]) -> None:
    """A trial left RUNNING by a killed process (its heartbeat stopped) is failed, queued
    again with its parameters, run in its own folder, and the budget is completed."""
    config = load_tune_config(
        project(n_trials=2, heartbeat={"interval_s": 1, "grace_s": 2, "max_retry": 1})
    )
    location = resolve_storage(None)
    storage = open_storage(location.url, config)
    study = optuna.create_study(study_name="tiny", storage=storage, direction="minimize")
    params = {"optim.lr": 0.003, "model.config.latent_dim": 3, "model.config.hidden": "[16]"}
    study.enqueue_trial(params)
    with warnings.catch_warnings():  # (heartbeats outside Study.optimize)
        warnings.simplefilter("ignore")
        killed = study.ask()  # the trial of the process that was killed ...
    storage.record_heartbeat(killed._trial_id)  # ... beat once, then died
    storage.engine.dispose()
    time.sleep(2.5)  # past the grace period

    outcome = run_study(config)
    assert outcome.counts == {"COMPLETE": 2, "FAIL": 1}
    trials = {t.number: t for t in _trials(config)}
    assert trials[0].state == TrialState.FAIL  # the killed one
    retried = next(t for t in trials.values() if t.user_attrs.get("resumes_trial") == 0)
    assert retried.state == TrialState.COMPLETE
    assert retried.params == params
    assert retried.user_attrs["directory"].endswith("trial-0")  # resumes in the same folder


def test_failed_trials_are_recorded_and_stop_the_run(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args, **_kwargs):
        raise TwinforgeError("out of memory on purpose")

    monkeypatch.setattr("twinforge.training.train.run_training", broken)
    config = load_tune_config(project(max_failed_trials=2))
    outcome = run_study(config)
    assert outcome.counts == {"FAIL": 2}
    assert outcome.stopped == "2 trials failed in this run"
    assert outcome.best_number is None
    assert outcome.best_config is None
    assert "out of memory on purpose" in outcome.last_error
    assert [t.user_attrs["error"] for t in _trials(config)] == ["out of memory on purpose"] * 2
    assert "No trial has completed yet" in outcome.report.read_text()


def test_another_space_under_the_same_study_name_is_refused(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("twinforge.training.train.run_training", _raise)
    run_study(load_tune_config(project(max_failed_trials=1)))
    other = project(
        max_failed_trials=1, space={"optim.lr": {"type": "float", "low": 1e-3, "high": 1e-2}}
    )
    with pytest.raises(ConfigError, match=r"study .tiny. in .* was made with another space"):
        run_study(load_tune_config(other))


def _raise(*_args, **_kwargs):
    raise TwinforgeError("not trained")


@pytest.mark.slow  # about 30 s: two worker processes start and import torch and Lightning
def test_trials_in_parallel_on_a_dask_local_cluster(project: Callable[..., Path]) -> None:
    config = load_tune_config(
        project(n_trials=2, executor={"kind": "dask", "workers": 2}, sampler="tpe")
    )
    outcome = run_study(config)
    assert outcome.counts == {"COMPLETE": 2}
    assert outcome.executor.startswith("dask LocalCluster, 2 worker")
    trials = _trials(config)
    assert len({t.params["optim.lr"] for t in trials}) == 2  # two different asks
    assert {Path(t.user_attrs["model"]).parent.name for t in trials} == {"trial-0", "trial-1"}


def test_storage_in_a_postgresql_catalogue_database(project: Callable[..., Path], pg: str) -> None:
    """Optuna's tables (and its alembic_version) in schema 'optuna' of the catalogue's
    database, apart from the catalogue's tables in 'public'."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.pool import NullPool

    from twinforge.catalog import Catalog

    with Catalog.open(pg):
        pass
    config = load_tune_config(project(n_trials=1))
    outcome = run_study(config, catalog=pg)
    assert outcome.counts == {"COMPLETE": 1}
    assert "schema optuna" in outcome.storage
    assert outcome.best_config is not None
    engine = create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1),
                           poolclass=NullPool)  # fmt: skip
    try:
        tables = inspect(engine)
        optuna_tables = set(tables.get_table_names(schema="optuna"))
        public = set(tables.get_table_names(schema="public"))
    finally:
        engine.dispose()
    assert {"studies", "trials", "alembic_version", "version_info"} <= optuna_tables
    assert "twinforge_alembic_version" in public
    assert "models" in public
    assert not ({"studies", "trials", "alembic_version"} & public)
    with Catalog.open(pg) as cat:  # the catalogue still opens and is usable
        assert cat.list("models") == []


@pytest.fixture
def pg() -> Iterator[str]:
    from tests.catalog.conftest import fresh_postgres_database, postgres_skip_reason

    reason = postgres_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with fresh_postgres_database("tf_tune") as url:
        yield url


@pytest.mark.slow  # about 40 s: a real twinforge tune killed mid-trial, then run again
def test_killed_and_run_again(project: Callable[..., Path], twinforge: Run) -> None:
    import signal
    import subprocess
    import sys

    train = yaml.safe_load(Path("train.yaml").read_text())
    train["optim"].update(max_steps=400, max_epochs=40, patience=40)  # long enough to kill
    Path("train.yaml").write_text(yaml.safe_dump(train))
    path = project(n_trials=1, heartbeat={"interval_s": 1, "grace_s": 2, "max_retry": 1})
    command = [sys.executable, "-c", "from twinforge.cli import main; main()",
               "-q", "tune", str(path), "--no-tracking"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        checkpoints = Path("studies/tiny/trial-0/model.checkpoints")
        deadline = time.monotonic() + 120
        while not list(checkpoints.glob("*/last.ckpt")) and time.monotonic() < deadline:
            assert process.poll() is None, "finished before it could be killed"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    config = load_tune_config(path)
    assert [t.state for t in _trials(config)] == [TrialState.RUNNING]  # left behind
    time.sleep(2.5)  # its heartbeat is stale now

    result = twinforge("tune", str(path), "--no-tracking")
    assert result.returncode == 0, result.stderr
    trials = _trials(config)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].params == trials[0].params
    assert trials[1].user_attrs["resumes_trial"] == 0
    assert trials[1].user_attrs["directory"].endswith("trial-0")


def test_the_gp_sampler_drives_a_study(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Gaussian-process sampler proposes the trials after the random start-up ones (the
    training and the suite replaced by a known function of the learning rate: the sampler is
    what is tested here)."""
    import math

    def train(config, **_kwargs):  # a "model" that is its learning rate
        model = Path(config.output)
        model.mkdir(parents=True)
        (model / "lr").write_text(repr(config.optim.lr))
        return model

    def suite(model, *_args, **_kwargs):  # the objective's minimum at lr = 1e-3
        lr = float((model / "lr").read_text())
        return {"overall": {"fpd": {"value": (math.log10(lr) + 3.0) ** 2}}}

    monkeypatch.setattr("twinforge.training.train.run_training", train)
    monkeypatch.setattr("twinforge.tune.study.evaluate_model", suite)
    space = {"optim.lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}}
    config = load_tune_config(
        project(space=space, n_trials=6, sampler={"kind": "gp", "seed": 0, "startup_trials": 3})
    )
    outcome = run_study(config)
    assert outcome.counts == {"COMPLETE": 6}
    trials = sorted(_trials(config), key=lambda t: t.number)
    start, guided = trials[:3], trials[3:]
    # the model of the objective pulls the later proposals towards lr = 1e-3
    assert min(t.value for t in guided) < min(t.value for t in start)
    assert outcome.best_params["optim.lr"] == pytest.approx(1e-3, rel=0.5)


def test_tracked_as_a_parent_run_with_a_child_per_trial(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    def train(config, *, tracker, **_kwargs):
        assert tracker.run_id is not None  # the trial's own run
        model = Path(config.output)
        model.mkdir(parents=True)
        return model

    def suite(*_args, **_kwargs):
        return {"overall": {"fpd": {"value": 0.25, "error": 0.01}}}

    monkeypatch.setattr("twinforge.training.train.run_training", train)
    monkeypatch.setattr("twinforge.tune.study.evaluate_model", suite)
    config = load_tune_config(project(n_trials=2, tracking={"experiment": "tuning"}))
    outcome = run_study(config)
    assert outcome.tracking_run is not None
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.sqlite'}")  # beside the catalogue
    experiment = client.get_experiment_by_name("tuning")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.info.run_id == outcome.tracking_run)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.data.tags["twinforge.kind"] == "tune"
    assert parent.data.metrics["best_value"] == 0.25
    assert parent.data.params["objective"] == "fpd"
    assert len(children) == 2
    for child in children:
        assert child.data.tags["twinforge.kind"] == "trial"
        assert child.data.metrics["objective"] == 0.25
        assert child.data.metrics["fpd"] == 0.25
        assert "trial.params.optim.lr" in child.data.params
        assert child.info.status == "FINISHED"


def test_ctrl_c_queues_the_trial_again(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("twinforge.training.train.run_training", interrupted)
    config = load_tune_config(project(n_trials=1))
    with pytest.raises(KeyboardInterrupt):
        run_study(config)
    first, queued = _trials(config)
    assert first.state == TrialState.FAIL
    assert first.user_attrs["error"] == "interrupted"
    assert queued.state == TrialState.WAITING  # the next run starts with it
    assert queued.params == first.params
