from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from twinforge.catalog import Catalog
from twinforge.demo import FULL, QUICK, DemoProfile, run_demo
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.showers import ShowerFile

# the synthetic TEST simulator in the tiny detector, in-process: the chain without Geant4
SYNTHETIC = {"simulator": "synthetic-test", "detector": "tiny", "executor": {"kind": "local"}}

# every size shrunk: a few training steps, a tiny classifier, a benchmark without Geant4
TINY = QUICK.replace(
    name="test",
    train_events=400,
    reference_events=300,  # >= 250 per class: the classifiers run (the noise floor's do not)
    events_per_job=100,
    model_config={"latent_dim": 4, "hidden": [32, 16]},
    batch_size=64,
    max_steps=15,
    max_minutes=None,
    classifier_hidden=[16],
    classifier_epochs=1,
    energy_bins=2,
    bench_batch_sizes=[1, 10],
    bench_geant4_showers=0,
    bench_budget_s=0.0,
    bench_isolate=False,
    xsuite_points=32,
    adaptive_points=12,
    adaptive_test_points=40,
)


def test_demo_runs_the_chain(tmp_path: Path) -> None:
    steps: list[str] = []
    result = run_demo(tmp_path / "demo", profile=TINY, overrides=SYNTHETIC, on_step=steps.append)
    assert list(result.steps) == steps
    assert len(steps) == 11
    assert {"verify checksums", "export ONNX", "export RO-Crate"} <= set(steps)
    with ShowerFile(result.shower_file) as f:
        assert f.n_events == 400
        f.validate()
    with ShowerFile(result.reference_file) as f:
        assert f.n_events == 300
    with Catalog.open(result.catalog, create=False) as cat:
        assert cat.get(result.dataset_id).n_events == 400
        assert cat.get(result.reference_id).n_events == 300
        assert all(r.ok for r in cat.verify())
        assert cat.find("demo-siw-electrons", "campaigns") is not None
        assert cat.find("demo-siw-electrons-reference", "campaigns") is not None
        assert cat.get(result.model_id).path == str(result.model_dir)
        evaluation = cat.get(result.evaluation_id)
        assert evaluation.model_id == cat.get(result.model_id).id
        assert evaluation.dataset_id == cat.get(result.reference_id).id
        assert "classifier_low" in evaluation.metrics
        assert cat.get(result.bench_id).provenance["kind"] == "benchmark"

    assert (result.workdir / "report" / "metrics.json").exists()
    assert "<html" in result.report.read_text()[:200].lower()
    assert result.onnx.stat().st_size > 0
    bench = json.loads(result.bench_json.read_text())
    assert {r["batch"] for r in bench["results"]} == {1, 10}
    assert result.bench_plot.read_bytes()[:4] == b"\x89PNG"
    for role in ("dataset", "model", "evaluation", "xsuite-dataset"):
        meta = json.loads((result.crates[role] / "ro-crate-metadata.json").read_text())
        types = {str(e.get("@type")) for e in meta["@graph"]}
        assert "CreateAction" in types
        assert any("Person" in t for t in types)  # creators are always credited
    assert result.crate == result.crates["dataset"]
    assert {p.name for p in (result.workdir / "configs").iterdir()} == {
        "training-campaign.yaml", "reference-campaign.yaml", "train.yaml", "validation.yaml",
        "xsuite-campaign.yaml", "adaptive-campaign.yaml",
    }  # fmt: skip
    adaptive = result.figures["adaptive"]
    assert adaptive["points"] == 12
    assert adaptive["rmse_adaptive"] > 0
    assert adaptive["rmse_sobol"] > 0
    with Catalog.open(result.catalog, create=False) as cat:
        assert cat.get(result.surrogate_id).path == str(result.surrogate_dir)
        jobs = cat.jobs(cat.find("xsuite-adaptive", "campaigns").global_id)
        assert [j.parameters["proposed_by"] for j in jobs] == ["sobol"] * 8 + ["nipv"] * 4
    xsuite = result.figures["xsuite"]
    assert xsuite["points"] == 32
    assert 0.0 < xsuite["stable_fraction"] <= 1.0
    with Catalog.open(result.catalog, create=False) as cat:
        assert cat.get(result.xsuite_id).n_events == 32
        assert cat.get(result.xsuite_id).provenance["code"]["name"] == "Xsuite"

    figures = result.figures
    assert set(figures["visible_fraction"]) == {"1-2 GeV", "2-4 GeV", "4-8 GeV", "8-16 GeV"}
    assert set(figures["visible_fraction_model"]) == set(figures["visible_fraction"])
    assert 0.0 <= figures["auc_low"] <= 1.0  # a 1-epoch classifier: any value, no fidelity claim
    assert figures["auc_low_floor"] is None  # 150 showers per half: too few for a classifier
    assert next(row[0] for row in figures["validation"]) == "Classifier AUC, low level"
    assert figures["model_ms_per_shower"] > 0
    assert figures["bench_backend"] == "onnx float32"
    assert figures["speedup"] is None  # Geant4 not timed
    assert figures["training"]["steps"] <= 15
    assert figures["training"]["seconds"] > 0
    assert figures["bench_threads"] >= 1
    assert any("synthetic-test, not Geant4" in note for note in result.notes)
    assert any("quality is modest" in note for note in result.notes)


def test_demo_starts_afresh_and_refuses_foreign_directory(tmp_path: Path) -> None:
    failing = TINY.replace(family="no-such-family")  # fails at training, after the campaigns
    with pytest.raises(TwinforgeError, match="unknown model family"):
        run_demo(tmp_path / "demo", profile=failing, overrides=SYNTHETIC)
    stale = tmp_path / "demo" / "campaigns" / "demo-siw-electrons" / "demo-siw-electrons.h5"
    assert stale.exists()
    with pytest.raises(TwinforgeError, match="unknown model family"):
        run_demo(tmp_path / "demo", profile=failing.replace(train_events=50), overrides=SYNTHETIC)
    with ShowerFile(stale) as f:  # the directory was emptied: a new campaign, not a resume
        assert f.n_events == 50

    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(TwinforgeError, match="not a demo directory"):
        run_demo(tmp_path, profile=TINY, overrides=SYNTHETIC)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_profiles() -> None:
    assert QUICK.train_events == 1600
    assert QUICK.reference_events == 1500
    assert QUICK.classifier_budget == "quick"
    assert FULL.classifier_budget == "challenge"
    assert QUICK.bench_batch_sizes == (1, 100, 1000)
    assert FULL.train_events == 20_000
    assert FULL.energy_max == 64_000.0
    assert FULL.classifier_hidden is None  # the suite's default budget
    assert "hours" in FULL.duration
    changed = QUICK.with_texts({"max_steps": "50", "bench_batch_sizes": "[1, 10]"})
    assert changed.max_steps == 50
    assert changed.bench_batch_sizes == (1, 10)
    assert QUICK.with_texts({"max_minutes": "null"}).max_minutes is None
    assert QUICK.scaled(80).reference_events == 75
    with pytest.raises(ConfigError, match="unknown setting 'steps'"):
        QUICK.with_texts({"steps": "5"})
    with pytest.raises(ConfigError, match="max_steps"):
        QUICK.with_texts({"max_steps": "many"})
    assert isinstance(TINY, DemoProfile)


def test_demo_cli_with_real_geant4(tmp_path: Path) -> None:
    """The real chain (Geant4 on Dask, siw) with a handful of showers and training steps."""
    sets = {
        "max_steps": 3, "max_minutes": "null", "batch_size": 16, "classifier_epochs": 1,
        "bench_batch_sizes": "[1,10]", "bench_geant4_showers": 1, "bench_budget_s": 0,
        "bench_isolate": "false", "bench_backends": "[onnx]",
    }  # fmt: skip
    args = [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]
    proc = subprocess.run(
        [sys.executable, "-c", "from twinforge.cli import main; main()",
         "demo", "--workdir", str(tmp_path / "d"), "--n", "32", *args],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for text in ("twinforge-datafree-em", "E_Si / E_inc", "report.html", ".onnx", "speed-up",
                 "quality is modest"):  # fmt: skip
        assert text in out, text
    last = out.strip().splitlines()[-1]
    assert last.startswith("browse the catalogue: twinforge serve "), last
    assert last.split()[5].endswith("catalog.sqlite")
    campaigns = tmp_path / "d" / "campaigns"
    with ShowerFile(campaigns / "demo-siw-electrons" / "demo-siw-electrons.h5") as f:
        assert f.n_events == 32
        assert f.n_voxels == 6480
        assert f.provenance["physics"] == "twinforge-datafree-em"
    bench = json.loads((tmp_path / "d" / "bench" / "bench.json").read_text())
    assert bench["geant4"]["n"] == 1
    assert bench["results"][0]["speedup_vs_geant4"] > 0
