"""``twinforge tune`` on the command line: a study, and bad input as one line with exit 1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_cli import assert_user_error
from tests.conftest import Run
from twinforge.errors import ConfigError, TwinforgeError


def test_tune_runs_a_study(project: Callable[..., Path], twinforge: Run) -> None:
    project(n_trials=2)
    result = twinforge("tune", "tune.yaml", "--n-trials", "1", "--no-tracking")
    assert result.returncode == 0, result.stderr
    assert "study tiny: 1 complete; best trial 0: fpd = " in result.stdout
    assert "stopped: 1 of 1 trials finished" in result.stdout
    assert "best-train.yaml" in result.stdout
    assert "Traceback" not in result.stderr
    assert (Path("studies/tiny/best-train.yaml")).is_file()
    assert (Path("studies/tiny/report.html")).is_file()
    assert Path("studies.sqlite").is_file()  # beside the test's catalogue ($TWINFORGE_CATALOG)


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"space": {"optim.lrr": {"type": "float", "low": 0.1, "high": 0.2}}},
         ["tune.yaml: space 'optim.lrr': not a parameter of the training config",
          "optim.lr, optim.max_epochs"]),
        ({"objective": "auc"}, ["key 'objective'", "computes no figure 'auc'", "auc_high"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(
    project: Callable[..., Path], twinforge: Run, changes: dict, fragments: list[str]
) -> None:
    project(**changes)
    result = twinforge("tune", "tune.yaml", "--no-tracking")
    assert_user_error(result, *fragments)
    assert len([ln for ln in result.stderr.splitlines() if ln.strip()]) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"space": {"model.config.depth": {"type": "int", "low": 1, "high": 2}}},
         "space 'model.config.depth': the vae family has no option 'depth'"),
        ({"reference": "train.h5"}, "is a training file"),
        ({"reference": "missing.h5"}, "missing.h5: shower file not found"),
        ({"train": "nope.yaml"}, "nope.yaml: config file not found"),
    ],
)  # fmt: skip
def test_bad_input_stops_before_any_trial(
    project: Callable[..., Path], changes: dict, message: str
) -> None:
    from typer.testing import CliRunner

    from twinforge.cli.app import app

    project(**changes)
    result = CliRunner().invoke(app, ["-q", "tune", "tune.yaml", "--no-tracking"])
    assert isinstance(result.exception, ConfigError)
    assert message in str(result.exception)
    assert "\n" not in str(result.exception)
    assert not Path("studies").exists()


def test_no_completed_trial_is_an_error(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from twinforge.cli.app import app

    def broken(*_args, **_kwargs):
        raise TwinforgeError("disk full on purpose")

    monkeypatch.setattr("twinforge.training.train.run_training", broken)
    project(max_failed_trials=2)
    result = CliRunner().invoke(app, ["-q", "tune", "tune.yaml", "--no-tracking"])
    assert isinstance(result.exception, TwinforgeError)
    message = str(result.exception)
    assert message == (
        "study tiny: no trial completed (2 fail; 2 trials failed in this run); last error: "
        "trial 1: disk full on purpose"
    )
