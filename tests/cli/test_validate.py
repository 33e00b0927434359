"""``twinforge validate`` end to end on tiny synthetic files, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli.test_cli import assert_user_error
from tests.conftest import Run

# two readout layers of 4 alpha x 4 r bins (32 voxels): a report with few panels, fast to draw
DETECTOR = """\
kind: detector
name: two-layer
geometry:
  kind: sampling
  absorber: G4_W
  absorber_thickness: 3.5
  sensitive: G4_Si
  sensitive_thickness: 0.3
  n_layers: 4
transverse_size: 300.0
readout:
  r_edges: [0.0, 5.0, 10.0, 20.0, 40.0]
  n_alpha: 4
  layers_per_bin: 2
  threshold: 0.01515
"""

# a small classifier and distance budget: seconds, not minutes
CONFIG = """\
kind: validation
classifier: {hidden: [16], epochs: 2, patience: 1, batch_size: 100}
high_classifier: {hidden: [16], epochs: 2, patience: 1, batch_size: 100}
classifier_seeds: [0]
energy_bins: 2
distances: {fpd_min_samples: 100, fpd_max_samples: 150, fpd_batches: 2, fpd_points: 2,
            kpd_batches: 2, kpd_batch_size: 100}
"""


def synthetic(path: Path, detector: str, n: int, seed: int) -> Path:
    from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file

    cfg = SyntheticConfig(detector=detector, n_events=n, seed=seed, energy_max="8GeV")
    return write_synthetic_file(cfg, path)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    detector = tmp_path / "two-layer.yaml"
    detector.write_text(DETECTOR)
    (tmp_path / "v.yaml").write_text(CONFIG)
    ref = synthetic(tmp_path / "ref.h5", str(detector), 320, seed=1)
    gen = synthetic(tmp_path / "gen.h5", str(detector), 300, seed=2)
    return ref, gen


def test_validate_writes_report_and_registers(
    twinforge: Run, tmp_path: Path, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWINFORGE_NO_TRACKING")  # this test checks the MLflow run
    from twinforge.catalog import Catalog

    ref, _ = files
    with Catalog.open() as cat:  # the test's own catalogue (TWINFORGE_CATALOG)
        dataset = cat.add_dataset("reference", files=[(ref, 320)])
    result = twinforge(
        "validate", "-r", "ref.h5", "-g", "gen.h5", "-o", "report", "--config", "v.yaml",
        "--max-showers", "250", "--seed", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Classifier AUC, low level" in result.stdout
    assert "Noise floor" in result.stdout
    assert "report/report.html" in result.stdout
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["reference"]["n_showers"] == 250
    assert metrics["reference"]["n_in_file"] == 320
    assert metrics["generated"]["path"] == "gen.h5"
    assert metrics["reference"]["provenance"]["simulator"] == "synthetic-test"
    assert {"separation", "kpd"} <= set(metrics["overall"])
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Average shower per layer" in page
    with Catalog.open() as cat:
        (evaluation,) = cat.list("evaluations")
        assert evaluation.dataset_id == dataset.id
        assert "separation" in evaluation.metrics
        names = sorted(Path(f.path).name for f in cat.files(evaluation.global_id))
        assert names == ["metrics.json", "report.html"]
    # the MLflow run beside the catalogue, linked both ways
    from mlflow import MlflowClient

    link = evaluation.provenance["mlflow"]
    assert link["tracking_uri"] == f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    assert f"MLflow run {link['run_id']}" in result.stdout
    run = MlflowClient(link["tracking_uri"]).get_run(link["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["twinforge.record"] == evaluation.global_id
    assert run.data.params["reference"] == str(ref)
    assert run.data.params["config.seed"] == "3"
    assert {"auc_low", "auc_high", "fpd", "kpd"} <= set(run.data.metrics)
    assert any(key.startswith("floor/") for key in run.data.metrics)
    artefacts = MlflowClient(link["tracking_uri"]).list_artifacts(link["run_id"], "report")
    assert sorted(a.path for a in artefacts) == ["report/metrics.json", "report/report.html"]

    again = twinforge("validate", "-r", "ref.h5", "-g", "gen.h5", "-o", "report")
    assert_user_error(again, "report", "not empty", "--overwrite")


def test_validate_samples_a_model(twinforge: Run, tmp_path: Path, files: tuple[Path, Path]) -> None:
    import torch

    from twinforge.detector.readout import Readout
    from twinforge.models import Surrogate, model_class
    from twinforge.models.transforms import ShowerTransform
    from twinforge.showers import ShowerFile, read_showers

    ref, _ = files
    cond, showers = read_showers(ref)
    with ShowerFile(ref) as f:
        readout: Readout = f.readout  # type: ignore[assignment]
    transform = ShowerTransform(readout.n_voxels, pdgs=[11]).fit(showers, cond.energy)
    torch.manual_seed(0)
    config = {"latent_dim": 4, "hidden": [16]}
    vae = model_class("vae")(config, readout.n_voxels, transform.n_conditions)
    Surrogate(vae, transform, readout.to_xml()).save(tmp_path / "model")
    (tmp_path / "sep.yaml").write_text("kind: validation\nmetrics: [separation]\n")
    result = twinforge(
        "--quiet", "validate", "-r", "ref.h5", "--model", "model", "-o", "out",
        "--config", "sep.yaml", "--no-noise-floor", "--no-catalog",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with ShowerFile(tmp_path / "out" / "generated.h5") as f:
        assert f.n_events == 320
        assert f.provenance["sampling"]["ms_per_shower"] > 0
        np.testing.assert_array_equal(f.conditions().energy, cond.energy)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["noise_floor"] is None
    assert set(metrics["overall"]) == {"separation"}


def test_binning_mismatch_names_both_files(
    twinforge: Run, tmp_path: Path, files: tuple[Path, Path]
) -> None:
    synthetic(tmp_path / "tiny.h5", "tiny", 20, seed=3)
    result = twinforge("validate", "-r", "ref.h5", "-g", "tiny.h5", "-o", "report")
    assert_user_error(result, "binning mismatch", "ref.h5", "tiny.h5", "2 vs 6 layers")
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert "ref.h5" in line
    assert "tiny.h5" in line
    assert not (tmp_path / "report").exists()


def test_bad_invocations(twinforge: Run, tmp_path: Path, files: tuple[Path, Path]) -> None:
    assert_user_error(
        twinforge("validate", "-r", "nope.h5", "-g", "gen.h5", "-o", "r"), "nope.h5", "not found"
    )
    assert_user_error(twinforge("validate", "-r", "ref.h5", "-o", "r"), "--generated", "--model")
    (tmp_path / "bad.yaml").write_text("kind: validation\nepochs: 3\n")
    assert_user_error(
        twinforge("validate", "-r", "ref.h5", "-g", "gen.h5", "-o", "r", "--config", "bad.yaml"),
        "bad.yaml",
        "unknown key 'epochs'",
    )
    assert not (tmp_path / "r").exists()


def test_protocol_refusals_leave_no_report(
    twinforge: Run, tmp_path: Path, files: tuple[Path, Path]
) -> None:
    # too few showers for the protocol: says how many it needs
    result = twinforge(
        "validate", "-r", "ref.h5", "-g", "gen.h5", "-o", "few", "--max-showers", "200",
        "--no-catalog",
    )  # fmt: skip
    assert_user_error(result, "too few showers", "at least 250", "has 200")
    assert not (tmp_path / "few").exists()
    # different incident-energy ranges
    detector = str(tmp_path / "two-layer.yaml")
    from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file

    cfg = SyntheticConfig(detector=detector, n_events=300, seed=4, energy_min="20GeV",
                          energy_max="60GeV")  # fmt: skip
    write_synthetic_file(cfg, tmp_path / "high.h5")
    result = twinforge("validate", "-r", "ref.h5", "-g", "high.h5", "-o", "range", "--no-catalog")
    assert_user_error(result, "incident-energy ranges differ", "MeV, generated 2")
    assert not (tmp_path / "range").exists()
    # an empty generated file
    from twinforge.showers import ShowerFile, ShowerWriter

    with ShowerFile(tmp_path / "ref.h5") as f:
        readout = f.readout
    with ShowerWriter(tmp_path / "empty.h5", readout, {}):
        pass
    result = twinforge("validate", "-r", "ref.h5", "-g", "empty.h5", "-o", "empty", "--no-catalog")
    assert_user_error(result, "empty.h5", "no showers")
    assert not (tmp_path / "empty").exists()


def test_quick_budget_is_labelled(twinforge: Run, tmp_path: Path, files: tuple[Path, Path]) -> None:
    (tmp_path / "q.yaml").write_text(
        "kind: validation\nclassifier: {hidden: [16]}\nhigh_classifier: {hidden: [16]}\n"
        "energy_bins: 0\nmetrics: [classifier_low]\nnoise_floor: false\n"
    )
    result = twinforge(
        "validate", "-r", "ref.h5", "-g", "gen.h5", "-o", "q", "--config", "q.yaml", "--quick",
        "--seeds", "2", "--no-catalog",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert metrics["protocol"]["low_budget"] == "quick (custom)"
    assert metrics["protocol"]["comparable"] is False
    assert len(metrics["overall"]["classifier_low"]["seeds"]) == 2
    page = (tmp_path / "q" / "report.html").read_text()
    assert "Not comparable" in page
