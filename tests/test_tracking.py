"""MLflow tracking: the local store, nested and failed runs, an unreachable server, no-op runs,
the Lightning logger, what validate and bench log, and the web catalogue's link to a run."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from twinforge import tracking
from twinforge.bench.summary import bench_summary
from twinforge.errors import ConfigError, Stopped
from twinforge.tracking import (
    TrackingConfig,
    default_workdir,
    flatten_params,
    sanitize_key,
    start_run,
)
from twinforge.validation.summary import validation_summary

HTTP_VARS = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
)


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No server remembered as down from another test; MLflow's HTTP settings restored; a cwd
    where a stray ./mlruns or ./mlflow.db would show."""
    monkeypatch.setattr(tracking, "_UNREACHABLE", set())
    for name in HTTP_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("TWINFORGE_TRACKING_URI", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One local store for the tests that do not look at its creation (tables take seconds)."""
    path = tmp_path_factory.mktemp("store")
    with start_run(None, kind="train", name="create", workdir=path):
        pass
    return path


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A socket that accepts connections (backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


# ---------------------------------------------------------------------------- local store
def test_local_store_under_workdir_reads_back(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    report = tmp_path / "report"
    report.mkdir()
    (report / "metrics.json").write_text("{}")
    (report / "report.html").write_text("<html></html>")
    single = tmp_path / "bench.json"
    single.write_text("[]")
    with start_run(None, kind="validate", name="gen vs ref", workdir=workdir,
                   tags={"who": "test"}) as run:  # fmt: skip
        run.log_params({"config": {"seed": 3, "hidden": [16, 16], "budget": "quick"},
                        "model": Path("/m"), "n": None})  # fmt: skip
        run.log_metrics({"auc_low": 0.61, "fpd": None, "kpd": float("nan"), "bad key!": 1})
        run.log_metrics({"val/loss": 2.0}, step=0)
        run.log_metrics({"val/loss": 1.5}, step=1)
        run.log_artifact(report, "report")
        run.log_artifact(single)
        run.set_tags({"twinforge.record": "eval-1"})
    assert (workdir / "mlflow.sqlite").is_file()
    assert not (tmp_path / "cwd" / "mlruns").exists()
    assert not (tmp_path / "cwd" / "mlflow.db").exists()
    assert run.tracking_uri == f"sqlite:///{workdir / 'mlflow.sqlite'}"
    c = client(run.tracking_uri)
    got = c.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "gen vs ref"
    assert got.info.artifact_uri.startswith((workdir / "mlartifacts").as_uri())
    assert got.data.params == {"config.seed": "3", "config.hidden": "[16, 16]",
                               "config.budget": "quick", "model": "/m", "n": "None"}  # fmt: skip
    assert got.data.metrics == {"auc_low": 0.61, "bad key_": 1.0, "val/loss": 1.5}
    history = c.get_metric_history(run.run_id, "val/loss")
    assert [(m.step, m.value) for m in history] == [(0, 2.0), (1, 1.5)]
    tags = got.data.tags
    assert tags["twinforge.kind"] == "validate"
    assert tags["who"] == "test"
    assert tags["twinforge.record"] == "eval-1"
    names = {a.path for a in c.list_artifacts(run.run_id)}
    assert names == {"report", "bench.json"}
    assert {a.path for a in c.list_artifacts(run.run_id, "report")} == {
        "report/metrics.json",
        "report/report.html",
    }
    link = run.link()
    assert link is not None
    assert link["run_id"] == run.run_id
    assert link["experiment_id"] == got.info.experiment_id
    assert link["ui"].startswith(f"mlflow ui --backend-store-uri {run.tracking_uri}")
    assert f"--default-artifact-root {workdir / 'mlartifacts'}" in link["ui"]
    assert c.get_experiment(run.experiment_id).name == "twinforge"


def test_two_runs_and_a_nested_one_share_the_store(store: Path) -> None:
    cfg = TrackingConfig(experiment="study")
    with start_run(cfg, kind="tune", name="study", workdir=store) as parent:
        trial = start_run(
            cfg, kind="trial", name="trial 0", workdir=store, parent_run_id=parent.run_id
        )
        with trial as child:
            child.log_metrics({"objective": 0.7})
    c = client(parent.tracking_uri)
    got = c.get_run(child.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.run_id
    assert got.data.tags["twinforge.kind"] == "trial"
    assert got.info.experiment_id == parent.experiment_id
    assert c.get_run(parent.run_id).info.status == "FINISHED"


def test_a_failing_body_ends_the_run_failed_and_raises(store: Path) -> None:
    runs = []

    def body() -> None:
        with start_run(None, kind="train", name="t", workdir=store) as run:
            runs.append(run)
            run.log_metrics({"train/loss": 3.0})
            raise RuntimeError("loss diverged\nsecond line")

    with pytest.raises(RuntimeError, match="diverged"):
        body()
    (run,) = runs
    got = client(run.tracking_uri).get_run(run.run_id)
    assert got.info.status == "FAILED"
    assert got.data.tags["twinforge.error"] == "RuntimeError: loss diverged"
    assert got.data.metrics == {"train/loss": 3.0}


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), Stopped("SIGTERM: run it again")])
def test_a_stopped_body_ends_the_run_killed_not_failed(store: Path, stop: BaseException) -> None:
    """Ctrl-C and SIGTERM (a training part ended by ``timeout``) are stops, not failures."""
    with pytest.raises(type(stop)), start_run(None, kind="train", name="t", workdir=store) as run:
        raise stop
    assert client(run.tracking_uri).get_run(run.run_id).info.status == "KILLED"


def test_a_changed_parameter_warns_and_logging_goes_on(
    store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with start_run(None, kind="train", name="t", workdir=store) as run:
        run.log_params({"lr": 1e-3})
        with caplog.at_level(logging.WARNING, logger="twinforge.tracking"):
            run.log_params({"lr": 2e-3})
        run.log_metrics({"train/loss": 1.0})
    assert len(caplog.records) == 1
    assert "cannot log parameters" in caplog.records[0].getMessage()
    got = client(run.tracking_uri).get_run(run.run_id)
    assert got.data.params == {"lr": "0.001"}
    assert got.data.metrics == {"train/loss": 1.0}


PROCESS = """
import sys
from pathlib import Path
from twinforge.tracking import start_run
with start_run(None, kind="trial", name=sys.argv[2], workdir=Path(sys.argv[1])) as run:
    run.log_metrics({"x": 1.0})
print(run.run_id)
"""


def test_processes_starting_together_create_the_store_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS, str(tmp_path / "w"), f"p{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [job.communicate(timeout=120) for job in jobs]
    for out, err in outputs:
        assert "cannot be used" not in err, err
        assert len(out.strip()) == 32, (out, err)  # a run ID, not None
    runs = client(f"sqlite:///{tmp_path / 'w' / 'mlflow.sqlite'}").search_runs(["1"])
    assert sorted(r.info.run_name for r in runs) == ["p0", "p1"]


# ---------------------------------------------------------------------------- servers
def test_an_unreachable_server_costs_one_warning_and_logs_locally(
    store: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")  # a user's own value is kept
    url = f"http://127.0.0.1:{closed_port()}"
    cfg = TrackingConfig(uri=url, timeout_s=1.0)
    start = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="twinforge.tracking"):
        with start_run(cfg, kind="train", name="t", workdir=store) as run:
            run.log_metrics({"train/loss": 1.0})
        with start_run(cfg, kind="validate", name="v", workdir=store) as again:
            pass
    assert time.monotonic() - start < cfg.timeout_s + 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert url in warnings[0]
    assert "unreachable" in warnings[0]
    assert f"local store {store / 'mlflow.sqlite'}" in warnings[0]
    assert run.tracking_uri == again.tracking_uri == f"sqlite:///{store / 'mlflow.sqlite'}"
    assert client(run.tracking_uri).get_run(run.run_id).data.metrics == {"train/loss": 1.0}
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"


def test_a_silent_server_times_out(
    store: Path, silent_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = TrackingConfig(uri=silent_server, timeout_s=0.5)
    start = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="twinforge.tracking"),
        start_run(cfg, kind="bench", name="b", workdir=store) as run,
    ):
        pass
    assert time.monotonic() - start < cfg.timeout_s + 2
    (message,) = [r.getMessage() for r in caplog.records]
    assert f"{silent_server} did not answer within 0.5 s" in message
    assert run.run_id is not None


def test_no_op_runs(tmp_path: Path) -> None:
    for cfg in (TrackingConfig(enabled=False), TrackingConfig(enabled=False, uri="http://x")):
        with start_run(cfg, kind="train", name="t", workdir=tmp_path) as run:
            run.log_params({"a": 1})
            run.log_metrics({"b": 2.0})
            run.log_artifact(tmp_path)
            run.set_tags({"c": "d"})
            assert run.run_id is None
            assert run.link() is None
            assert run.lightning_logger() is None
    assert list(tmp_path.iterdir()) == [tmp_path / "cwd"]


def test_a_store_that_cannot_be_used_is_a_warning_and_a_no_op_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with (
        caplog.at_level(logging.WARNING, logger="twinforge.tracking"),
        start_run(None, kind="train", name="t", workdir=blocker / "sub") as run,
    ):
        run.log_metrics({"a": 1.0})
    assert run.run_id is None
    (message,) = [r.getMessage() for r in caplog.records]
    assert "cannot be used" in message
    assert "not tracking" in message


# ---------------------------------------------------------------------------- locations
def test_default_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_workdir(str(tmp_path / "db" / "cat.sqlite")) == tmp_path / "db"
    monkeypatch.setenv("TWINFORGE_CATALOG", str(tmp_path / "env" / "catalog.sqlite"))
    assert default_workdir(None) == tmp_path / "env"
    monkeypatch.delenv("TWINFORGE_CATALOG")
    assert default_workdir(None) == tmp_path / "cwd" / ".twinforge"
    assert default_workdir("postgresql://u@localhost/db") == tmp_path / "cwd" / ".twinforge"


def test_uris(tmp_path: Path) -> None:
    resolve = tracking._resolve
    local = resolve(None, tmp_path)
    assert local.database == tmp_path / "mlflow.sqlite"
    assert local.artifact_location == (tmp_path / "mlartifacts").as_uri()
    in_dir = resolve(str(tmp_path / "store"), tmp_path / "elsewhere")
    assert in_dir.database == tmp_path / "store" / "mlflow.sqlite"
    assert in_dir.artifact_location == (tmp_path / "store" / "mlartifacts").as_uri()
    db = resolve(str(tmp_path / "runs.db"), tmp_path)
    assert db.database == tmp_path / "runs.db"
    relative = resolve("sqlite:///sub/t.sqlite", tmp_path)
    assert relative.database == tmp_path / "cwd" / "sub" / "t.sqlite"
    assert resolve(f"sqlite:///{tmp_path}/a.sqlite", tmp_path).database == tmp_path / "a.sqlite"
    server = resolve("https://user:pw@mlflow.example:5000/", tmp_path)
    assert server.server
    assert server.uri == "https://user:pw@mlflow.example:5000"
    assert server.ui == "https://user:***@mlflow.example:5000"
    postgres = resolve("postgresql://u:secret@db/mlflow", tmp_path)
    assert "secret" not in postgres.ui
    assert postgres.artifact_location == (tmp_path / "mlartifacts").as_uri()
    for bad in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(ConfigError, match="in-memory"):
            resolve(bad, tmp_path)
    with pytest.raises(ValueError, match="unknown run kind"):
        start_run(None, kind="nope", name="x", workdir=tmp_path).__enter__()
    assert TrackingConfig(uri="  ").uri is None


def test_flatten_params_and_keys() -> None:
    flat = flatten_params(
        {"a": {"b": 1, "c": {"d": "x"}}, "layers": [{"n": 4}, {"n": 8}], "grid": [[1, 2]],
         "hidden": (16, 16), "empty": {}, "long": "v" * 7000, "bad=key": True}
    )  # fmt: skip
    assert flat["a.b"] == "1"
    assert flat["a.c.d"] == "x"
    assert flat["layers.0.n"] == "4"
    assert flat["layers.1.n"] == "8"
    assert flat["grid.0"] == "[1, 2]"
    assert flat["hidden"] == "[16, 16]"
    assert flat["empty"] == "{}"
    assert len(flat["long"]) == 6000
    assert flat["long"].endswith("...")
    assert flat["bad_key"] == "True"
    assert sanitize_key("val/loss (x1e3):a%") == "val/loss _x1e3_:a_"
    assert len(sanitize_key("k" * 300)) == 250


# ---------------------------------------------------------------------------- Lightning
def test_lightning_logger_forwards_epoch_metrics(store: Path) -> None:
    import lightning as L
    import torch

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)
            self.save_hyperparameters({"lr": 0.1})

        def training_step(self, batch: list[torch.Tensor], _index: int) -> torch.Tensor:
            loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
            self.log("train/loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch: list[torch.Tensor], _index: int) -> None:
            self.log("val/loss", torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1]))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.TensorDataset(torch.randn(8, 2), torch.randn(8, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    with start_run(None, kind="train", name="tiny", workdir=store) as run:
        logger = run.lightning_logger()
        assert logger is not None
        assert logger.version == run.run_id
        trainer = L.Trainer(
            max_epochs=2, logger=logger, accelerator="cpu", enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
            default_root_dir=store / 'lightning',
        )  # fmt: skip
        trainer.fit(Tiny(), loader, loader)
    c = client(run.tracking_uri)
    steps = {}
    assert c.get_metric_history(run.run_id, "epoch")  # Lightning adds it to each log call
    for key in ("train/loss", "val/loss"):
        history = c.get_metric_history(run.run_id, key)
        steps[key] = sorted(m.step for m in history)
        assert len(history) == 2, key  # once per epoch, at Lightning's (global) step
        assert steps[key][0] < steps[key][1], key
    assert steps["train/loss"] == steps["val/loss"]
    assert c.get_run(run.run_id).data.params == {}  # hyper-parameters are ours to log
    assert c.get_run(run.run_id).info.status == "FINISHED"


# ---------------------------------------------------------------------------- summaries
def _clf(auc: float) -> dict:
    return {"auc": auc, "auc_min": auc - 0.01, "auc_max": auc + 0.01, "auc_std": 0.01,
            "jsd": 0.1, "jsd_min": 0.09, "jsd_max": 0.11, "budget": "quick"}  # fmt: skip


def _scope(auc: float) -> dict:
    return {"classifier_low": _clf(auc), "classifier_high": _clf(auc + 0.1),
            "fpd": {"value": 0.5, "error": 0.01}, "kpd": None,
            "separation": {"e_ratio": 0.02, "voxel_spectrum": None, "radial": 0.03,
                           "summary": {"layer_energy": 0.04, "e_ratio": 0.02}}}  # fmt: skip


def test_validation_summary() -> None:
    metrics = {
        "reference": {"n_showers": 250}, "generated": {"n_showers": 240},
        "readout": {"n_layers": 2, "n_voxels": 32, "calochallenge_dataset": None, "x": 1},
        "protocol": {"name": "calochallenge", "low_budget": "quick",
                     "low_budget_description": "long text"},
        "config": {"seed": 3, "classifier": {"epochs": 2}},
        "overall": _scope(0.6),
        "noise_floor": {"overall": _scope(0.5)},
        "per_energy": [{"energy_range_mev": [1.0, 2.0], "metrics": _scope(0.7)},
                       {"energy_range_mev": [2.0, 4.0], "metrics": {}}],
        "timing_s": {"a": 1.0, "b": 2.5},
    }  # fmt: skip
    params, values, per_energy = validation_summary(metrics)
    flat = flatten_params(params)
    assert flat["config.classifier.epochs"] == "2"
    assert flat["protocol.low_budget"] == "quick"
    assert "protocol.low_budget_description" not in flat
    assert flat["n_reference"] == "250"
    assert flat["n_generated"] == "240"
    assert flat["readout.n_voxels"] == "32"
    assert "readout.x" not in flat
    assert values["auc_low"] == 0.6
    assert values["auc_high"] == pytest.approx(0.7)
    assert values["auc_low_min"] == pytest.approx(0.59)
    assert values["jsd_high_max"] == 0.11
    assert values["fpd"] == 0.5
    assert values["fpd_error"] == 0.01
    assert "kpd" not in values
    assert values["separation/e_ratio"] == 0.02
    assert values["separation/layer_energy"] == 0.04
    assert values["floor/auc_low"] == 0.5
    assert values["seconds"] == 3.5
    assert [i for i, _ in per_energy] == [0, 1]
    assert per_energy[0][1]["per_energy/auc_low"] == 0.7
    assert per_energy[1][1] == {"per_energy/energy_lo_mev": 2.0, "per_energy/energy_hi_mev": 4.0}


def test_bench_summary() -> None:
    row = {"backend": "onnx", "precision": "float32", "device": "cpu", "batch": 100,
           "median_ms_per_shower": 0.5, "showers_per_s": 2000.0, "peak_rss_mib": 300.0,
           "gpu_peak_mib": None, "speedup_vs_geant4": 400.0}  # fmt: skip
    result = {
        "model": {"path": "/m", "family": "vae"}, "conditions": {"energy_MeV": 1e4},
        "settings": {"batch_sizes": [1, 100]},
        "machine": {"cpu_model": "cpu", "hostname": "host", "versions": {"torch": "2"}},
        "geant4": {"physics": "FTFP_BERT", "detector": "siw", "n": 5,
                   "median_s_per_shower": 0.2},
        "results": [row, {**row, "backend": "torch", "median_ms_per_shower": 0.8,
                          "speedup_vs_geant4": 250.0}],
        "fidelity": {"same_noise": {"onnx int8 cpu": {"n": 10, "voxel_rel_l1": 0.01}}},
    }  # fmt: skip
    params, values = bench_summary(result)
    flat = flatten_params(params)
    assert flat["model.family"] == "vae"
    assert flat["machine.versions.torch"] == "2"
    assert "machine.hostname" not in flat
    assert flat["geant4.physics"] == "FTFP_BERT"
    assert values["onnx_float32_cpu_b100/ms_per_shower"] == 0.5
    assert values["torch_float32_cpu_b100/speedup_vs_geant4"] == 250.0
    assert values["best_ms_per_shower"] == 0.5
    assert values["best_speedup_vs_geant4"] == 400.0
    assert values["geant4_ms_per_shower"] == pytest.approx(200.0)
    assert values["fidelity/onnx int8 cpu/voxel_rel_l1"] == 0.01


def test_cli_tracking_options() -> None:
    from twinforge.cli._common import tracking_config

    assert tracking_config(None, False) == TrackingConfig()
    assert tracking_config("http://127.0.0.1:5000", True) == TrackingConfig(
        uri="http://127.0.0.1:5000", enabled=False
    )


# ---------------------------------------------------------------------------- web catalogue
def test_landing_page_shows_the_mlflow_run(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from tests.service.conftest import client_for
    from twinforge.catalog import Catalog

    ui = "mlflow ui --backend-store-uri sqlite:////w/mlflow.sqlite"
    local = {"run_id": "abc123", "experiment_id": "1", "tracking_uri": "sqlite:////w/m", "ui": ui}
    server = {"run_id": "def456", "experiment_id": "7", "tracking_uri": "http://mlf:5000",
              "ui": "http://mlf:5000/#/experiments/7/runs/def456"}  # fmt: skip
    with Catalog.open(tmp_path / "catalog.sqlite") as cat:
        a = cat.add_evaluation(description="local", provenance={"mlflow": local})
        b = cat.add_evaluation(description="server", provenance={"mlflow": server})
        c = cat.add_evaluation(description="none", provenance={"mlflow": None})
        with client_for(cat) as web:
            page_a = web.get(f"/evaluations/{a.global_id}").text
            page_b = web.get(f"/evaluations/{b.global_id}").text
            page_c = web.get(f"/evaluations/{c.global_id}")
    assert "<th>MLflow run</th><td>abc123</td>" in page_a
    assert f"<th>MLflow UI</th><td>{ui}</td>" in page_a
    assert (
        '<th>MLflow run</th><td><a href="http://mlf:5000/#/experiments/7/runs/def456">def456</a>'
        in page_b
    )
    assert page_c.status_code == 200
    assert "MLflow run" not in page_c.text
