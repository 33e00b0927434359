"""The objective comes from the suite's own metrics (every figure name resolves on a real
result), a figure the suite skipped is an error with its reason, and the reference is checked
before any training."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest

from twinforge.detector import load_detector
from twinforge.errors import ConfigError
from twinforge.simulation.synthetic import SyntheticConfig, synthetic_showers
from twinforge.tune import FIGURES, objective_value
from twinforge.tune.objective import ObjectiveError, check_reference, read_figures, suite_config
from twinforge.validation import ClassifierConfig, ValidationConfig, run_validation

TINY = load_detector("tiny")
FAST_CLS = ClassifierConfig(hidden=[16], epochs=2, batch_size=100, lr=1e-3, threads=1)


def _showers(n: int, seed: int):
    cond = SyntheticConfig(detector="tiny", n_events=n, seed=seed).conditions()
    return synthetic_showers(TINY, cond, seed), cond.energy


@pytest.fixture(scope="module")
def metrics() -> dict:
    """The whole suite (every metric) on two tiny samples."""
    (s1, e1), (s2, e2) = _showers(400, 1), _showers(400, 2)
    config = ValidationConfig(
        classifier=FAST_CLS, high_classifier=FAST_CLS, classifier_seeds=[0], energy_bins=0,
        noise_floor=False,
        distances={"fpd_min_samples": 100, "fpd_max_samples": 200, "fpd_batches": 2,
                   "fpd_points": 2, "kpd_batches": 2, "kpd_batch_size": 100},
    )  # fmt: skip
    return run_validation(s1, e1, s2, e2, TINY.binning(), config).metrics


def test_every_figure_is_read_from_the_suite(metrics: dict) -> None:
    figures = read_figures(metrics)
    assert set(figures) == set(FIGURES)
    for name, value in figures.items():
        assert value is not None, name
        assert math.isfinite(value), name
    assert figures["fpd"] == metrics["overall"]["fpd"]["value"]
    assert figures["auc_low"] == metrics["overall"]["classifier_low"]["auc"]
    assert figures["separation.e_ratio"] == metrics["overall"]["separation"]["e_ratio"]


def test_weighted_sum(metrics: dict) -> None:
    value, parts = objective_value(metrics, suite_weighted := _weighted())
    assert parts == {"fpd": metrics["overall"]["fpd"]["value"],
                     "auc_high": metrics["overall"]["classifier_high"]["auc"]}  # fmt: skip
    assert value == pytest.approx(parts["fpd"] + 10 * parts["auc_high"])
    assert suite_config(suite_weighted, None).metrics == ["fpd", "classifier_high"]


def _weighted():
    from twinforge.tune.objective import WeightedObjective

    return WeightedObjective(weighted={"fpd": 1.0, "auc_high": 10.0})


def test_a_skipped_figure_is_an_error_with_the_suite_reason() -> None:
    (s1, e1), (s2, e2) = _showers(60, 1), _showers(60, 2)
    config = suite_config("fpd", None)
    metrics = run_validation(s1, e1, s2, e2, TINY.binning(), config).metrics
    with pytest.raises(ObjectiveError, match="objective figure fpd not computed: FPD needs"):
        objective_value(metrics, "fpd")


def test_reference_checks(tmp_path: Path, shower_files: tuple[Path, Path]) -> None:
    train, ref = shower_files
    fpd = suite_config("fpd", None)
    assert check_reference(ref, [train], fpd, None) == 300
    assert check_reference(ref, [train], fpd, 120) == 120
    with pytest.raises(ConfigError, match=r"FPD needs at least 100 .*twice the 50 high-level"):
        check_reference(ref, [train], fpd, 60)
    with pytest.raises(ConfigError, match="is a training file"):
        check_reference(train, [train], fpd, None)
    with pytest.raises(ConfigError, match="shower file not found"):
        check_reference(tmp_path / "none.h5", [train], fpd, None)
    low = suite_config("auc_low", None)
    with pytest.raises(ConfigError, match="too few showers for the low-level classifier"):
        check_reference(ref, [train], low, 100)


def test_trial_validation_is_twinforge_validate_without_the_html(
    tmp_path: Path, shower_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial's metrics (evaluate(report=False)) equal those of evaluate() with its report,
    the code of twinforge validate --model (the HTML itself stubbed here: slow)."""
    import json

    from twinforge.training.train import TrainConfig, run_training
    from twinforge.tune.objective import evaluate_model

    # (the package's name "evaluate" is the function; the module is in sys.modules)
    evaluate_module = importlib.import_module("twinforge.validation.evaluate")

    train, ref = shower_files
    model = run_training(
        TrainConfig.model_validate({
            "name": "m", "data": {"files": [str(train)]}, "output": str(tmp_path / "m"),
            "model": {"config": {"latent_dim": 2, "hidden": [8]}},
            "optim": {"max_steps": 5, "batch_size": 256},
        }),
        quiet=True,
    )  # fmt: skip
    suite = suite_config("fpd", ValidationConfig(distances={"fpd_batches": 2, "fpd_points": 2}))
    ours = evaluate_model(model, ref, tmp_path / "ours", suite, max_showers=250, title="t")
    written = json.loads((tmp_path / "ours" / "metrics.json").read_text())
    assert written["overall"] == ours["overall"]
    assert not (tmp_path / "ours" / "report.html").exists()  # evaluate(report=False)
    monkeypatch.setattr(evaluate_module, "_write_report", lambda output, *a: output / "r.html")
    theirs = evaluate_module.evaluate(
        ref, tmp_path / "theirs", model=model, config=suite, max_showers=250
    ).result.metrics
    assert ours["overall"]["fpd"] == theirs["overall"]["fpd"]
    assert ours["reference"] == theirs["reference"]
    assert ours["config"] == theirs["config"]
