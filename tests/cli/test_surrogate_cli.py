"""twinforge surrogate fit | predict | plot | optimise on a real (analytic) campaign."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import assert_user_error
from tests.conftest import Run

CAMPAIGN = """\
kind: campaign
name: branin
simulator: {name: analytic, function: branin, noise: 0.5}
space: {}
sampler: {kind: sobol, seed: 1}
total_points: 64
points_per_job: 16
executor: {kind: local}
"""


@pytest.fixture
def results(twinforge: Run, tmp_path: Path) -> Path:
    (tmp_path / "branin.yaml").write_text(CAMPAIGN)
    for step in ("run", "merge"):
        result = twinforge("campaign", step, "branin.yaml")
        assert result.returncode == 0, result.stderr
    return tmp_path / "campaigns" / "branin" / "branin.h5"


def test_fit_predict_optimise_plot(twinforge: Run, results: Path, tmp_path: Path) -> None:
    fit = twinforge("surrogate", "fit", str(results), "-o", "gp", "-y", "y", "--name", "b-gp")
    assert fit.returncode == 0, fit.stderr
    assert "on 64 points (noise: learned)" in fit.stdout
    assert "catalogued as model-1" in fit.stdout
    shown = twinforge("catalog", "show", "b-gp")
    assert shown.returncode == 0, shown.stderr
    assert "surrogate-gp" in shown.stdout

    pred = twinforge("surrogate", "predict", "gp", "--at", "x1=[-3.14159, 3.14159]", "--at",
                     "x2=[12.275, 2.275]", "--json")  # fmt: skip
    assert pred.returncode == 0, pred.stderr
    data = json.loads(pred.stdout)
    assert len(data["y"]["mean"]) == 2
    for mean, std in zip(data["y"]["mean"], data["y"]["std"], strict=True):
        assert abs(mean - 0.397887) < 3 * std + 2.0  # two of Branin's minima

    best = twinforge("surrogate", "optimise", "gp", "-y", "y", "--minimise", "--verify", "4",
                     "--json")  # fmt: skip
    assert best.returncode == 0, best.stderr
    answer = json.loads(best.stdout)
    assert answer["mean"] < 3.0  # Branin's minimum is 0.398, its range over 300
    assert answer["verified"]["n"] == 4
    assert abs(answer["verified"]["mean"] - answer["mean"]) < 5 * answer["std"] + 2.0

    target = twinforge("surrogate", "optimise", "gp", "-y", "y", "--target", "50", "--json")
    assert target.returncode == 0, target.stderr
    assert abs(json.loads(target.stdout)["mean"] - 50) < 1.0

    plot = twinforge("surrogate", "plot", "gp", "-o", "fig.png")
    assert plot.returncode == 0, plot.stderr
    assert (tmp_path / "fig.png").stat().st_size > 10_000


def test_bad_input(twinforge: Run, results: Path, tmp_path: Path) -> None:
    assert_user_error(twinforge("surrogate", "fit", str(results), "-o", "m", "-y", "speed"),
                      "no scalar output 'speed'", "y, y_true")  # fmt: skip
    assert not (tmp_path / "m").exists()
    assert_user_error(twinforge("surrogate", "fit", str(results), "-o", "m", "-k", "kriging"),
                      "unknown surrogate 'kriging'", "ensemble, gp")  # fmt: skip
    assert twinforge("surrogate", "fit", str(results), "-o", "m", "-y", "y").returncode == 0
    assert_user_error(twinforge("surrogate", "fit", str(results), "-o", "m"), "m exists")
    assert_user_error(twinforge("surrogate", "predict", "m", "--at", "x1=20", "--at", "x2=1"),
                      "x1 = 20 is outside the space [-5, 10]")  # fmt: skip
    assert_user_error(twinforge("surrogate", "predict", "m", "--at", "x1=1"),
                      "no value for 'x2'")  # fmt: skip
    assert_user_error(twinforge("surrogate", "predict", "m", "--at", "x1=1", "--at", "x2=1",
                                "-y", "emittance"), "not fitted on output 'emittance'")  # fmt: skip
    assert_user_error(twinforge("surrogate", "optimise", "m", "-y", "y"), "exactly one of")
    assert_user_error(twinforge("surrogate", "optimise", "m", "-y", "q", "--minimise"),
                      "not fitted on output 'q'")  # fmt: skip
    assert_user_error(twinforge("surrogate", "predict", "nowhere", "--at", "x1=1"),
                      "not a surrogate directory")  # fmt: skip
