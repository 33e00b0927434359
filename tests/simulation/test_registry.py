"""Simulators come from entry points: a third-party package adds one without editing twinforge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from twinforge.campaign import CampaignConfig, run_campaign
from twinforge.catalog import Catalog
from twinforge.config import validate_config
from twinforge.errors import ConfigError
from twinforge.simulation import registry

PLUGIN = """
import numpy as np
from twinforge.simulation.base import Output, RunResult, Simulator
from twinforge.simulation.table import TableFormat
from twinforge.space import Parameter


class Parabola(Simulator):
    name = "parabola"
    summary = "y = a x^2, a third-party test plug-in"
    format = TableFormat

    def parameters(self):
        return [Parameter("x", unit="m", lower=-10, upper=10), Parameter("a", default=2.0)]

    def outputs(self):
        return [Output("y", "m")]

    def run(self, points, seed, *, first_index=0, workdir=None):
        return RunResult({"y": points["a"] * points["x"] ** 2})

    def code(self):
        return {"name": "parabola", "version": "1.0"}
"""


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed distribution (a dist-info on sys.path) that registers 'parabola'."""
    site = tmp_path / "site"
    (site / "parabola_plugin").mkdir(parents=True)
    (site / "parabola_plugin" / "__init__.py").write_text(PLUGIN)
    info = site / "parabola_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: parabola-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[twinforge.simulators]\nparabola = parabola_plugin:Parabola\n"
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def test_a_third_party_simulator_runs_a_campaign(third_party: Path, tmp_path: Path) -> None:
    assert "parabola" in registry.available()
    cfg = CampaignConfig.model_validate(
        {
            "name": "p", "simulator": "parabola", "space": {"x": {"min": -1, "max": 1}},
            "total_points": 20, "points_per_job": 5, "executor": {"kind": "local"},
            "output_dir": str(tmp_path / "{name}"),
        }
    )  # fmt: skip
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        report = run_campaign(cfg, cat)
    assert report.complete
    assert report.points == 20


def test_twinforge_simulators_lists_it(third_party: Path) -> None:
    env_path = f"{third_party}"
    out = subprocess.run(
        [sys.executable, "-c", "from twinforge.cli import main; main()", "simulators", "--json"],
        capture_output=True, text=True, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        check=True,
    )  # fmt: skip
    import json

    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert {"geant4", "synthetic-test", "xsuite", "command", "parabola"} <= set(rows)
    assert rows["parabola"]["parameters"] == ["x [m] in [-10, 10]", "a"]
    assert rows["parabola"]["outputs"] == ["y [m]"]
    assert rows["command"]["options"]["executable"] == "required"


def test_unknown_simulator_lists_the_installed_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown simulator 'geant5'; installed: .*geant4"):
        registry.create("geant5")
    with pytest.raises(ConfigError, match=r"c\.yaml: key 'simulator': unknown simulator 'geant5'"):
        validate_config(CampaignConfig, {"name": "x", "simulator": "geant5"}, "c.yaml")


def test_bad_options_name_the_key() -> None:
    with pytest.raises(ConfigError, match="unknown key 'physic'"):
        registry.create("geant4", {"physic": "auto"})
    with pytest.raises(ConfigError, match="simulator synthetic-test: unknown key 'lattice'"):
        validate_config(
            CampaignConfig,
            {"name": "x", "simulator": {"name": "synthetic-test", "lattice": 1}},
            "c",
        )


def test_broken_plugin_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    info = site / "broken-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[twinforge.simulators]\nbroken = no_such_module:X\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ConfigError, match=r"simulator 'broken' .* cannot be imported"):
        registry.load("broken")
