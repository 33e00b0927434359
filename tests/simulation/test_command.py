"""The command-line backend against MAD-NG, the real program the pymadng wheel ships: decks,
parsers, and failures that are recorded as data."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from tests.simulation.test_contract import madng_options
from twinforge.campaign import CampaignConfig, campaign_status, merge_campaign, run_campaign
from twinforge.catalog import Catalog
from twinforge.config import validate_config
from twinforge.errors import ConfigError, JobFailure
from twinforge.results import ResultFile
from twinforge.simulation import registry

pytest.importorskip("pymadng", reason="MAD-NG ships in pymadng (pip install .[madng])")


def mad(deck: str, outputs: dict | None = None, **extra) -> dict:
    """MAD-NG options running ``deck`` (a Jinja2 template) with parameter x."""
    base = madng_options()
    return {
        **{k: base[k] for k in ("package", "executable", "args", "input_name")},
        "template": deck,
        "parameters": {"x": {"min": -10.0, "max": 10.0, "default": 1.0}},
        "outputs": outputs or {"y": {"parser": "regex", "pattern": r"y = (\S+)"}},
        **extra,
    }


def run(options: dict, xs: list[float], tmp_path: Path, seed: int = 1):
    sim = registry.create("command", options)
    return sim.run({"x": np.asarray(xs)}, seed, workdir=tmp_path / "work")


def test_decks_and_parsers(tmp_path: Path) -> None:
    deck = (
        'print(string.format("y = %.6f", {{ x }} * 2))\n'
        'print(string.format("y = %.6f", {{ x }} * 3))\n'  # regex: the last match by default
        'local f = io.open("out.json", "w") f:write(\'{"a": {"b": {{ x }}}}\') f:close()\n'
        "-- seed {{ seed }}, point {{ index }}\n"
    )
    outputs = {
        "y": {"parser": "regex", "pattern": r"y = (\S+)"},
        "y_first": {"parser": "regex", "pattern": r"y = (\S+)", "match": "first"},
        "b": {"parser": "json", "file": "out.json", "key": "a.b", "unit": "m"},
    }
    result = run(mad(deck, outputs), [1.0, 2.5], tmp_path)
    np.testing.assert_allclose(result.outputs["y"], [3.0, 7.5])
    np.testing.assert_allclose(result.outputs["y_first"], [2.0, 5.0])
    np.testing.assert_allclose(result.outputs["b"], [1.0, 2.5])
    assert "-- seed 1, point 1" in result.records["input"][1]  # the rendered deck is kept
    assert not list((tmp_path / "work").iterdir())  # folders of good points are removed


def test_hdf5_parser(tmp_path: Path) -> None:
    """MAD-NG writes no HDF5; the parser reads a file the deck leaves beside a real run."""
    import h5py

    with h5py.File(tmp_path / "profile.h5", "w") as h5:
        h5["beta"] = np.arange(4.0)
    deck = f'os.execute("cp {tmp_path}/profile.h5 .")\nprint("y = {{{{ x }}}}")\n'
    outputs = {"profile": {"parser": "hdf5", "file": "profile.h5", "dataset": "beta",
                           "shape": [4]}}  # fmt: skip
    result = run(mad(deck, outputs, env={"PATH": "/usr/bin:/bin"}), [1.0], tmp_path)
    np.testing.assert_array_equal(result.outputs["profile"], [np.arange(4.0)])
    bad = {"profile": {**outputs["profile"], "shape": [5]}}
    with pytest.raises(JobFailure, match=r"output 'profile': shape \(4,\), declared \(5,\)"):
        run(mad(deck, bad, env={"PATH": "/usr/bin:/bin"}), [1.0], tmp_path)


def test_program_errors_are_job_failures_with_exit_code_and_stderr(tmp_path: Path) -> None:
    with pytest.raises(JobFailure) as info:
        run(mad("print(undefined_table.field)\n"), [1.0], tmp_path)
    failure = info.value
    assert failure.exit_code == 1
    assert "attempt to index" in failure.stderr_tail
    assert failure.retryable
    kept = list((tmp_path / "work").iterdir())  # the failed point's folder is kept
    assert (kept[0] / "input.txt").exists() or list(kept[0].glob("*.mad"))


def test_timeout_kills_the_program(tmp_path: Path) -> None:
    import time

    t0 = time.perf_counter()
    with pytest.raises(JobFailure, match=r"timed out after 1 s"):
        run(mad("while true do end\n", timeout=1.0), [1.0], tmp_path)
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize(
    ("deck", "match"),
    [
        ('print("z = 1")\n', r"output 'y': pattern .* not found in stdout"),
        ('print("y = banana")\n', "'banana' .* is not a number"),
    ],
)
def test_output_the_parser_cannot_find(deck: str, match: str, tmp_path: Path) -> None:
    with pytest.raises(JobFailure, match=match):
        run(mad(deck), [1.0], tmp_path)


def test_missing_json_file_and_key(tmp_path: Path) -> None:
    outputs = {"b": {"parser": "json", "file": "out.json", "key": "b"}}
    with pytest.raises(JobFailure, match=r"the program wrote no file out\.json"):
        run(mad('print("y = 1")\n', outputs), [1.0], tmp_path)
    deck = 'local f = io.open("out.json", "w") f:write(\'{"a": 1}\') f:close()\n'
    with pytest.raises(JobFailure, match=r"out\.json has no key 'b'"):
        run(mad(deck, outputs), [1.0], tmp_path)


def test_bad_configs_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"undefined parameter\(s\) k1q .*parameters: x"):
        registry.create("command", mad('print("{{ k1q }}")\n'))
    with pytest.raises(ConfigError, match="line 1: template error"):
        registry.create("command", mad('print("{{ x ")\n'))
    with pytest.raises(ConfigError, match="executable 'no-such-code' not found on PATH"):
        registry.create("command", {**mad("x"), "package": None, "executable": "no-such-code"})
    script = tmp_path / "code"
    script.write_text("#!/bin/sh\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with pytest.raises(ConfigError, match=r"code is not executable \(chmod \+x\)"):
        registry.create("command", {**mad("x"), "package": None, "executable": str(script)})
    with pytest.raises(ConfigError, match="Python package 'nopkg' is not installed"):
        registry.create("command", {**mad("x"), "package": "nopkg"})
    with pytest.raises(ConfigError, match="needs a group"):
        registry.create("command", mad("x", {"y": {"parser": "regex", "pattern": "y = 1"}}))
    with pytest.raises(ConfigError, match="the json parser needs key"):
        registry.create("command", mad("x", {"y": {"parser": "json", "file": "a.json"}}))
    with pytest.raises(ConfigError, match=r"space: x: 20\.0 is outside the bounds of x"):
        validate_config(
            CampaignConfig,
            {"name": "c", "simulator": {"name": "command", **mad("{{ x }}")}, "space": {"x": 20.0}},
            "c.yaml",
        )


def campaign(tmp_path: Path, deck: str, **kw) -> CampaignConfig:
    return CampaignConfig.model_validate(
        {
            "name": "mad", "simulator": {"name": "command", **mad(deck)},
            "space": {"x": {"min": -2.0, "max": 2.0}}, "total_points": 8, "points_per_job": 2,
            "executor": {"kind": "local"}, "output_dir": str(tmp_path / "{name}"), **kw,
        }
    )  # fmt: skip


def test_failing_points_are_recorded_retried_and_never_merged(tmp_path: Path) -> None:
    """x < 0 crashes MAD-NG: those jobs fail (exit code and stderr kept), are retried, and the
    merged result holds only the good ones."""
    deck = (
        "if {{ x }} < 0 then error('negative x: {{ x }}') end\n"
        'print(string.format("y = %.8f", {{ x }} ^ 2))\n'
    )
    cfg = campaign(tmp_path, deck, max_retries=1)
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        report = run_campaign(cfg, cat)
        assert report.failed  # some jobs hold a negative x
        _, jobs = campaign_status(cat, "mad")
        failed = [j for j in jobs if j.state == "failed"]
        assert failed
        for job in failed:
            assert job.exit_code == 1
            assert "negative x" in job.stderr_tail
            assert job.attempts == 2  # the first try and one retry
        dataset = merge_campaign(cat, cfg, allow_partial=True)
        with ResultFile(cat.files(dataset.global_id)[0].path) as f:
            x, y = f.inputs()["x"], f.outputs()["y"]
            assert f.code["name"] == "mad_Linux"
            assert f.units() == {}
        assert len(x) == 2 * sum(j.state == "done" for j in jobs)
        np.testing.assert_allclose(y, x**2, rtol=1e-6)


def test_a_failure_that_always_repeats_is_not_retried(tmp_path: Path) -> None:
    """A template that fails to render for a point (here a division by zero) fails the same
    way on every retry: it is recorded once and not retried."""
    cfg = campaign(tmp_path, "{{ x / 0 }}\n")
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        report = run_campaign(cfg, cat)
        _, jobs = campaign_status(cat, "mad")
    assert len(report.failed) == 4
    assert {j.attempts for j in jobs} == {1}


def test_campaign_status_shows_exit_code_and_stderr(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from twinforge.cli import app

    cfg = campaign(tmp_path, "error('no convergence for x = {{ x }}')\n", max_retries=0)
    db = tmp_path / "c.sqlite"
    with Catalog.open(db) as cat:
        run_campaign(cfg, cat)
    result = CliRunner().invoke(
        app, ["campaign", "status", "mad", "--catalog", str(db)], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert "4 failed" in result.output
    assert "exited with 1" in result.output
    assert "no convergence for x" in result.output  # the stderr tail
