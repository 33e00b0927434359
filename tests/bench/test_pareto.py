"""The Pareto figure: AUC of a bench result's model against its CPU time, beside Geant4 and the
published CaloChallenge points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twinforge.bench.pareto import (
    classifier_low,
    geant4_point,
    model_point,
    pareto_table,
    published_points,
    write_pareto,
)
from twinforge.errors import TwinforgeError


def comparable_metrics(tmp_path: Path) -> Path:
    """A real suite run (quick budget), then marked as of a comparable budget: the test needs
    the file's shape, not a 20-minute classifier."""
    from tests.validation.test_suite import FAST, READOUT, _showers
    from twinforge.validation import run_validation

    (s1, e1), (s2, e2) = _showers(300, 1), _showers(300, 2)
    config = FAST.model_copy(update={"metrics": ["classifier_low"], "classifier_seeds": [0, 1]})
    result = run_validation(s1, e1, s2, e2, READOUT, config)
    quick = tmp_path / "quick.json"
    quick.write_text(result.to_json())
    with pytest.raises(TwinforgeError, match=r"quick.json: .* budget, which is not comparable"):
        classifier_low(quick)
    data = json.loads(result.to_json())
    data["overall"]["classifier_low"] |= {"budget": "converged", "comparable": True}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(data))
    return path


def bench_result(low: dict | None) -> dict:
    row = {"backend": "onnx", "precision": "float32", "device": "cpu", "threads": 2}
    return {
        "model": {"path": "/m/siw-vae", "family": "vae",
                  "training_cost": {"core_hours": 0.5, "gpu_hours": 0.0, "steps": 900}},
        "results": [
            row | {"batch": 1000, "median_ms_per_shower": 0.03, "block_size": None},
            row | {"batch": 1000, "median_ms_per_shower": 0.02, "block_size": 64},
            row | {"batch": 1, "median_ms_per_shower": 0.2, "block_size": None},
        ],
        "geant4": {"median_cpu_s_per_shower": 0.133, "energy_MeV": 1e4, "detector": "siw",
                   "spectrum": {"mean_cpu_s_per_shower": 0.2, "low_MeV": 1e3, "high_MeV": 6.4e4,
                                "scale": "log"}},
        "fidelity": {} if low is None else {"classifier_low": low},
    }  # fmt: skip


def test_points_table_and_figure(tmp_path: Path) -> None:
    low = classifier_low(comparable_metrics(tmp_path))
    assert low["seeds"] == 2
    assert low["budget"] == "converged"
    assert low["auc_min"] <= low["auc"] <= low["auc_max"]
    result = bench_result(low)
    ours = model_point(result)
    assert ours is not None
    assert ours.name == "siw-vae"
    assert ours.source == "ours"
    assert ours.ms == 0.02
    assert "blocks of 64, batch 1000" in ours.note
    assert ours.training == "0.5 core-h, 900 steps"
    g4 = geant4_point(result)
    assert g4 is not None
    assert g4.auc == 0.5
    assert g4.ms == pytest.approx(200.0)
    assert "1-64 GeV" in g4.note  # the spectrum's mean, not the fixed energy
    del result["geant4"]["spectrum"]
    assert geant4_point(result).ms == pytest.approx(133.0)
    published = published_points("2")
    names = {p.name for p in published}
    assert "CaloINN" in names
    assert all(p.source == "published" for p in published)
    assert all(p.auc_min <= p.auc <= p.auc_max and p.ms > 0 for p in published)
    table = pareto_table([*published, g4, ours])
    assert table.splitlines()[2].startswith("| siw-vae | ours |")  # ours first
    out = write_pareto([ours, g4, *published], tmp_path / "pareto.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_missing_auc_or_timing_gives_no_point(tmp_path: Path) -> None:
    assert model_point(bench_result(None)) is None
    result = bench_result({"auc": 0.9, "auc_min": 0.9, "auc_max": 0.9})
    assert model_point(result, batch=100) is None  # not timed at that batch size
    assert geant4_point({"results": []}) is None
    with pytest.raises(TwinforgeError, match="no point to draw"):
        write_pareto([], tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


def test_bad_metrics_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(TwinforgeError, match=r"bad.json: cannot read validation metrics"):
        classifier_low(tmp_path / "bad.json")
    data = json.loads(comparable_metrics(tmp_path).read_text())
    del data["overall"]["classifier_low"]
    (tmp_path / "nolow.json").write_text(json.dumps(data))
    with pytest.raises(TwinforgeError, match=r"nolow.json: no low-level classifier result"):
        classifier_low(tmp_path / "nolow.json")
