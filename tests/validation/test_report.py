"""The HTML report and metrics.json: content, self-containment, escaping, atomic writing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest

from tests.imports import assert_imports_none_of
from twinforge.detector.readout import Readout
from twinforge.validation.observables import compute_observables
from twinforge.validation.published import load_published
from twinforge.validation.report import (
    ShowerSample,
    headline_metrics,
    render_report,
    select_layers,
    write_report,
)
from twinforge.validation.suite import ValidationResult

HOSTILE = "<script>alert('pwned')</script>"


def tiny_readout() -> Readout:
    """Two layers of 4 alpha x 3 r bins: 24 voxels, cheap to plot."""
    return Readout.uniform(2, [0.0, 5.0, 10.0, 20.0], 4)


def toy_showers(readout: Readout, n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """Gamma-distributed voxel energies falling off with radius, some voxels zero (MeV)."""
    rng = np.random.default_rng(seed)
    centres = readout.voxel_centres()
    mean = 20.0 * np.exp(-centres.r / 6.0) * scale
    showers = rng.gamma(2.0, mean / 2.0, size=(n, readout.n_voxels))
    showers[rng.random(showers.shape) < 0.2] = 0.0
    return showers.astype(np.float32)


def _block(scale: float, n_layers: int) -> dict[str, Any]:
    per_layer = {
        k: [0.01 * scale * (i + 1) for i in range(n_layers)]
        for k in ("layer_energy", "centre_x", "centre_y", "width_x", "width_y", "sparsity")
    }
    return {
        "separation": {
            "e_ratio": 0.02 * scale,
            **per_layer,
            "voxel_spectrum": 0.01 * scale,
            "radial": 0.003 * scale,
            "summary": {},
        },
        "classifier_low": {
            "auc": 0.5 + 0.2 * scale,
            "jsd": 0.05,
            "accuracy": 0.6,
            "n_train": 120,
            "n_test": 40,
            "best_epoch": 1,
            "epochs_run": 2,
        },
        "classifier_high": {"auc": 0.5 + 0.1 * scale},
        "fpd": {"value": 0.1 * scale, "error": 0.01},
        "kpd": {"value": 1e-4 * scale, "error": 2e-5},
    }


def make_result(
    *, provenance: dict[str, Any] | None = None, dataset: str | None = None, n: int = 200
) -> tuple[ValidationResult, Readout, ShowerSample, ShowerSample]:
    """A result shaped like run_validation's, with made-up metric values (no training)."""
    readout = tiny_readout()
    energy = np.geomspace(1000.0, 8000.0, n)
    ref, gen = toy_showers(readout, n, 1), toy_showers(readout, n, 2, scale=1.1)
    edges = [1000.0, 3000.0, 8000.0]
    per_energy = [
        {
            "energy_range_mev": [edges[i], edges[i + 1]],
            "n_reference": n // 2,
            "n_generated": n // 2,
            "metrics": _block(1.5, readout.n_layers),
        }
        for i in range(2)
    ]
    metrics = {
        "format": "twinforge-validation",
        "format_version": 1,
        "reference": {"path": "ref.h5", "n_showers": n, "provenance": provenance or {}},
        "generated": {"path": "gen.h5", "n_showers": n, "provenance": {"simulator": "model"}},
        "readout": {
            "n_layers": readout.n_layers,
            "n_voxels": readout.n_voxels,
            "calochallenge_dataset": dataset,
        },
        "config": {"energy_bins": 2},
        "overall": _block(1.0, readout.n_layers),
        "per_energy": per_energy,
        "noise_floor": {
            "n_half": n // 2,
            "overall": _block(0.1, readout.n_layers),
            "per_energy": per_energy,
        },
        "skipped": [{"metric": "kpd", "scope": "E 3-8 GeV", "reason": "KPD needs 50 showers"}],
        "warnings": ["3 of 200 generated showers are empty (all voxels zero)"],
        "timing_s": {"total": 1.0},
    }
    result = ValidationResult(
        metrics,
        compute_observables(ref, energy, readout),
        compute_observables(gen, energy, readout),
    )
    return result, readout, ShowerSample.from_showers(ref), ShowerSample.from_showers(gen)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result, readout, ref, gen = make_result(provenance={"simulator": "Geant4", "note": HOSTILE})
    directory = tmp_path_factory.mktemp("report") / "out"
    write_report(directory, result, readout, reference=ref, generated=gen)
    return directory


def test_writes_metrics_and_self_contained_html(report_dir: Path) -> None:
    metrics = json.loads((report_dir / "metrics.json").read_text())
    assert metrics["format"] == "twinforge-validation"
    assert metrics["overall"]["fpd"]["value"] == pytest.approx(0.1)
    page = (report_dir / "report.html").read_text()
    for section in (
        "summary",
        "messages",
        "per-energy",
        "separation",
        "histograms",
        "images",
        "provenance",
    ):
        assert f'<section id="{section}">' in page
    for text in (
        "Classifier AUC, low level",
        "Noise floor",
        "Energy in layer",
        "Width in y",
        "Sparsity",
        "Voxel energy spectrum",
        "Longitudinal and radial profiles",
        "Average shower per layer",
        "KPD needs 50 showers",
        "<details>",
    ):
        assert text in page
    sources = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(sources) >= 8
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert page.count("<img ") == len(sources)
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # nothing fetched from outside
    assert sorted(p.name for p in report_dir.iterdir()) == ["metrics.json", "report.html"]
    assert '<section id="published">' not in page  # not a CaloChallenge readout


def test_escapes_user_strings(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the report's own image-counting script


def test_exception_while_rendering_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import twinforge.validation.report.figures as figures

    result, readout, ref, gen = make_result()

    def broken(fig: Any) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(figures, "_png", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_report(tmp_path / "out", result, readout, reference=ref, generated=gen)
    assert not (tmp_path / "out").exists()


def test_exception_while_committing_leaves_no_partial_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import twinforge.validation.report as report

    result, readout, ref, gen = make_result()
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    calls = []
    real_commit = report.commit

    def failing_commit(tmp: Path, final: Path) -> None:
        calls.append(final.name)
        if len(calls) == 2:
            raise OSError("no space left on device")
        real_commit(tmp, final)

    monkeypatch.setattr(report, "render_report", lambda *args, **kwargs: "<html></html>")
    monkeypatch.setattr(report, "commit", failing_commit)
    with pytest.raises(OSError, match="no space"):
        write_report(out, result, readout, reference=ref, generated=gen)
    assert calls == ["metrics.json", "report.html"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_missing_metrics_empty_showers_and_published_numbers() -> None:
    result, readout, ref, _ = make_result(dataset="2")
    metrics = result.metrics
    del metrics["overall"]["classifier_low"], metrics["overall"]["fpd"]
    metrics["noise_floor"] = None
    metrics["skipped"] = [
        {"metric": "classifier_low", "scope": "overall", "reason": "needs 150 showers, has 40"},
        {"metric": "fpd", "scope": "overall", "reason": "FPD needs at least 100 showers"},
    ]
    empty = ShowerSample.from_showers(np.zeros((5, readout.n_voxels), dtype=np.float32))
    page = render_report(result, readout, reference=ref, generated=empty)
    assert "needs 150 showers, has 40" in page
    assert "No noise floor was computed" in page
    assert "Average shower per layer" in page  # all-zero generated showers still render
    assert '<section id="published">' in page
    assert "CaloDREAM" in page
    assert "this report" in page
    rows = {label: (value, floor) for label, value, floor in headline_metrics(metrics)}
    assert rows["Classifier AUC, low level"] == ("not computed", "—")
    assert rows["FPD"][0] == "not computed"
    assert rows["KPD"][0] == "1.00e-04 ± 2.0e-05"


def test_published_tables() -> None:
    rows = load_published("2")
    names = [r["submission"] for r in rows]
    assert names[0] == "GEANT4"
    assert "CaloDREAM" in names
    geant4 = rows[0]
    assert geant4["auc_low"] == pytest.approx(0.49961)
    assert geant4["fpd_e3"] == pytest.approx(10.776)
    assert geant4["time_cpu_1_ms"] is None
    assert all(load_published(key) for key in ("1-photons", "1-pions", "3"))
    assert load_published(None) == []
    assert load_published("7") == []


def test_layer_selection() -> None:
    assert select_layers(Readout.uniform(45, [0, 1, 2], 4)) == list(range(0, 45, 5))
    assert select_layers(Readout.uniform(6, [0, 1, 2], 4)) == list(range(6))
    assert select_layers(tiny_readout(), max_layers=1) == [0]


def test_matplotlib_global_style_unchanged(report_dir: Path) -> None:
    # the report module applies its style in a context: global settings stay as they were
    assert matplotlib.rcParams["font.size"] == matplotlib.rcParamsDefault["font.size"]
    assert matplotlib.rcParams["xtick.direction"] == matplotlib.rcParamsDefault["xtick.direction"]


def test_importing_the_report_imports_no_matplotlib() -> None:
    # matplotlib and mplhep are imported by the functions that draw, on first use
    assert_imports_none_of(
        ["twinforge.validation.report", "twinforge.validation.report.figures"],
        ["matplotlib", "mplhep"],
    )


def test_shower_sample_bounds_the_voxel_spectrum() -> None:
    showers = toy_showers(tiny_readout(), 50, seed=4) + 1.0  # no zero voxel
    sample = ShowerSample.from_showers(showers, max_voxels=100)
    np.testing.assert_allclose(sample.mean_shower, showers.mean(axis=0), rtol=1e-6)
    assert sample.voxel_energies.size == 100
    assert sample.n_showers == 50
    assert np.all(np.isin(sample.voxel_energies, showers))
    assert ShowerSample.from_showers(np.zeros((0, 24), np.float32)).n_showers == 0


def test_report_of_degenerate_inputs_says_what_is_missing() -> None:
    """All-zero generated showers, too few showers."""
    from twinforge.validation import ValidationConfig, run_validation

    readout = tiny_readout()
    ref = toy_showers(readout, 12, seed=5)
    gen = np.zeros_like(ref)
    energy = np.geomspace(1000.0, 2000.0, 12)
    config = ValidationConfig(metrics=["separation", "fpd", "kpd"], energy_bins=2)
    result = run_validation(ref, energy, gen, energy, readout, config)
    page = render_report(
        result,
        readout,
        reference=ShowerSample.from_showers(ref),
        generated=ShowerSample.from_showers(gen),
    )
    assert "generated showers are empty" in page
    assert "KPD needs at least 50 showers in each sample; has 12 reference and 12 generated" in page
    assert "No noise floor was computed" in page
    rows = {label: value for label, value, _ in headline_metrics(result.metrics)}
    assert rows["FPD"] == rows["KPD"] == "not computed"
