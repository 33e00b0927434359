"""``twinforge bench`` end to end (real console entry point), and its one-line errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli.test_cli import assert_user_error
from tests.conftest import Run

FAST = ["--warmup", "1", "--min-repeats", "2", "--max-repeats", "3", "--budget", "0"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.inference.test_runtime import make_model_dir

    return make_model_dir(tmp_path_factory.mktemp("cli-bench") / "model")


def test_bench_writes_table_json_plot_and_record(
    twinforge: Run, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWINFORGE_NO_TRACKING")  # this test checks the MLflow run
    result = twinforge(
        "bench", str(model_dir), "--batch-sizes", "1,3", "--int8", "--threads", "1",
        "--geant4-showers", "0", "--no-isolate", *FAST, "-o", "b.json", "--plot", "b.png",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "vae model, 10 GeV pdg 11" in out
    assert "onnx int8 cpu" in out
    assert "torch float32 cpu" in out
    assert "fidelity cost vs float32" in out
    assert "no speed-ups" in out
    assert "skipped torch int8 cpu" in out
    assert "registered eval-1" in out
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["schema"] == "twinforge-bench"
    assert [r["batch"] for r in data["results"]] == [1, 3, 1, 3, 1, 3]
    assert {r["threads"] for r in data["results"]} == {1}
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    with sqlite3.connect(tmp_path / "catalog.sqlite") as db:
        (description, provenance) = db.execute(
            "select description, provenance from evaluations"
        ).fetchone()
    assert description.startswith("benchmark of the vae model")
    # the MLflow run beside the catalogue, linked both ways
    from mlflow import MlflowClient

    link = json.loads(provenance)["mlflow"]
    assert f"MLflow run {link['run_id']}" in out
    client = MlflowClient(link["tracking_uri"])
    run = client.get_run(link["run_id"])
    assert run.data.tags["twinforge.record"] == "eval-1"
    assert run.data.tags["twinforge.kind"] == "bench"
    assert run.data.params["model.family"] == "vae"
    assert run.data.metrics["best_ms_per_shower"] > 0
    assert "onnx_int8_cpu_b3/ms_per_shower" in run.data.metrics
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["b.json", "b.png"]


def test_bench_quiet_prints_nothing(twinforge: Run, model_dir: Path, tmp_path: Path) -> None:
    from twinforge.inference import export_onnx
    from twinforge.models import Surrogate

    onnx_file = export_onnx(Surrogate.load(model_dir), tmp_path / "model.onnx")
    result = twinforge(
        "--quiet", "bench", str(onnx_file), "--batch-sizes", "2",
        "--geant4-showers", "0", "--no-isolate", "--no-register", *FAST, "-o", "q.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert json.loads((tmp_path / "q.json").read_text())["results"][0]["batch"] == 2
    assert not (tmp_path / "catalog.sqlite").exists()


def test_bench_errors(twinforge: Run, model_dir: Path, tmp_path: Path) -> None:
    assert twinforge("bench", "--help").returncode == 0
    assert_user_error(twinforge("bench", "nope"), "nope", "not found")
    assert_user_error(
        twinforge("bench", str(model_dir), "--backends", "tf", "--geant4-showers", "0"),
        "unknown backend 'tf'",
    )
    assert_user_error(
        twinforge("bench", str(model_dir), "--batch-sizes", "1,x"), "--batch-sizes", "integers"
    )
    assert_user_error(twinforge("bench", str(model_dir), "--energy", "10 parsecs"), "energy")
    assert_user_error(twinforge("bench", str(model_dir), "--particle", "muon?"), "muon?")
    for bad, what in [("64GeV", "LOW-HIGH"), ("64GeV-1GeV", "LOW < HIGH"), ("1GeV-x", "1GeV-x")]:
        assert_user_error(twinforge("bench", str(model_dir), "--spectrum", bad), "--spectrum", what)
    (tmp_path / "corrupt.onnx").write_bytes(b"\x00 definitely not onnx")
    assert_user_error(
        twinforge("bench", "corrupt.onnx", "--geant4-showers", "0"),
        "corrupt.onnx",
        "not a loadable ONNX model",
    )
    assert not (tmp_path / "catalog.sqlite").exists()


def test_bench_with_classifier_auc_draws_the_pareto_figure(
    twinforge: Run, model_dir: Path, tmp_path: Path
) -> None:
    from tests.bench.test_pareto import comparable_metrics

    metrics = comparable_metrics(tmp_path)
    result = twinforge(
        "bench", str(model_dir), "--batch-sizes", "1000", "--backends", "onnx", "--threads", "1",
        "--geant4-showers", "0", "--no-isolate", "--no-register", *FAST,
        "--classifier", str(metrics), "-o", "p.json", "--pareto", "pareto.png",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "low-level classifier AUC" in result.stdout
    assert "over 2 seeds" in result.stdout
    low = json.loads((tmp_path / "p.json").read_text())["fidelity"]["classifier_low"]
    assert low["budget"] == "converged"
    assert low["metrics"] == str(metrics.resolve())
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_pareto_errors(twinforge: Run, model_dir: Path, tmp_path: Path) -> None:
    run = ["bench", str(model_dir), "--geant4-showers", "0", "--no-register", "-o", "x.json"]
    assert_user_error(twinforge(*run, "--pareto", "p.png"), "--pareto needs --classifier")
    (tmp_path / "m.json").write_text("[]")
    assert_user_error(
        twinforge(*run, "--classifier", "m.json"), "m.json", "not a twinforge validation metrics"
    )
    assert_user_error(
        twinforge(*run, "--batch-sizes", "10", "--classifier", "m.json", "--pareto", "p.png"),
        "--pareto places the model at batch 1000",
    )
    assert not (tmp_path / "x.json").exists()
    assert not (tmp_path / "p.png").exists()
