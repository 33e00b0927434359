"""``twinforge scale``: a scaling study over data, model size and steps, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.tune.conftest import TRAIN, VALIDATION
from twinforge.errors import ConfigError
from twinforge.showers import ShowerFile
from twinforge.tune.scaling import load_scaling_config, run_scaling, summarise

SCALING = {
    "kind": "scaling",
    "name": "tiny-scaling",
    "train": "train.yaml",
    "reference": "ref.h5",
    "validation": VALIDATION,
    "figures": ["fpd"],
    "data_sizes": [300, 600],
    "model_sizes": [
        {"label": "narrow", "params": {"model.config.hidden": [8]}},
        {"label": "wide", "params": {"model.config.hidden": [32, 16]}},
    ],
    "train_steps": [4],
    "seeds": [0],
    "tracking": {"enabled": False},
}


@pytest.fixture
def study(tmp_path: Path, shower_files, monkeypatch: pytest.MonkeyPatch):
    train, ref = shower_files
    for source in (train, ref):
        (tmp_path / source.name).symlink_to(source)
    (tmp_path / "train.yaml").write_text(
        yaml.safe_dump({**TRAIN, "optim": {"max_steps": 6, "batch_size": 128}})
    )
    monkeypatch.chdir(tmp_path)

    def make(**changes) -> Path:
        path = tmp_path / "scaling.yaml"
        path.write_text(yaml.safe_dump({**SCALING, **changes}, sort_keys=False))
        return path

    return make


def test_a_study_trains_validates_plots_and_resumes(study, tmp_path: Path) -> None:
    config = load_scaling_config(study())
    outcome = run_scaling(config)
    assert outcome.failed == {}
    assert len(outcome.results) == 5  # 2 data sizes + 2 model sizes + 1 step count
    by_id = {r["id"]: r for r in outcome.results}
    with ShowerFile(tmp_path / "scaling/tiny-scaling/data/train-300.h5") as f:
        assert f.n_events == 300  # the first 300 training showers
    assert by_id["data-300-seed0"]["x"] == 300.0
    narrow, wide = by_id["model-narrow-seed0"], by_id["model-wide-seed0"]
    assert narrow["parameters"] < wide["parameters"]
    assert narrow["x"] == narrow["parameters"]
    assert by_id["steps-4-seed0"]["steps"] == 4
    assert all(r["figures"]["fpd"] > 0 for r in outcome.results)
    assert all(r["train_seconds"] > 0 for r in outcome.results)
    saved = json.loads((outcome.directory / "results.json").read_text())
    assert len(saved["results"]) == 5
    page = outcome.report.read_text()
    assert page.count("data:image/svg+xml;base64,") == 3
    assert "<script" not in page
    # run again: only the missing point is trained (a killed study resumes)
    (outcome.directory / "points/steps-4-seed0/result.json").unlink()
    before = {p: (outcome.directory / "points" / p / "result.json").stat().st_mtime_ns
              for p in by_id if p != "steps-4-seed0"}  # fmt: skip
    again = run_scaling(config)
    assert len(again.results) == 5
    after = {p: (outcome.directory / "points" / p / "result.json").stat().st_mtime_ns
             for p in before}  # fmt: skip
    assert before == after


def test_summary_over_seeds() -> None:
    def point(label: str, seed: int, fpd: float | None, seconds: float) -> dict:
        return {"axis": "steps", "label": label, "seed": seed, "x": float(label),
                "figures": {"fpd": fpd}, "train_seconds": seconds}  # fmt: skip

    results = [point("8", 0, 3.0, 2.0), point("8", 1, 1.0, 4.0), point("8", 2, 2.0, 3.0),
               point("4", 0, 5.0, 1.0), point("4", 1, None, 1.0)]  # fmt: skip
    rows = summarise(results, "steps", "fpd")
    assert [r["label"] for r in rows] == ["4", "8"]
    assert rows[1] | {} == {"label": "8", "x": 8.0, "n": 3, "median": 2.0, "min": 1.0,
                            "max": 3.0, "train_seconds": 3.0}  # fmt: skip
    assert rows[0]["n"] == 1  # an undefined figure is left out, not counted as 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"figures": ["fid"]}, "computes no figure 'fid'"),
        ({"data_sizes": [], "model_sizes": [], "train_steps": []}, "give at least one axis"),
        (
            {"model_sizes": [{"label": "x", "params": {"model.config.width": 3}}]},
            "model_sizes 'x': unknown training-config path 'model.config.width'",
        ),
        (
            {"model_sizes": [{"label": "x", "params": {"model.config.hidden": "big"}}]},
            "model_sizes 'x': training config",
        ),
    ],
)
def test_bad_configs_are_one_line(study, changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_scaling_config(study(**changes))
    assert "\n" not in str(info.value)


def test_cli_refuses_more_showers_than_the_data_holds(study, twinforge) -> None:
    config = study(data_sizes=[5000])
    result = twinforge("-q", "scale", str(config), cwd=config.parent)
    assert result.returncode == 1
    assert "data_sizes: 5000 showers asked, the training files hold 1200" in result.stderr
    assert "Traceback" not in result.stderr
