from __future__ import annotations

from pathlib import Path

import pytest

from twinforge.config import config_kinds, load_config, parse_energy
from twinforge.errors import ConfigError
from twinforge.simulation.synthetic import SyntheticConfig


@pytest.mark.parametrize(
    ("text", "mev"),
    [
        ("10GeV", 1e4),
        ("500 MeV", 500.0),
        ("1.5 TeV", 1.5e6),
        ("250keV", 0.25),
        (42, 42.0),
        ("1e3", 1e3),
        ("2gev", 2e3),
    ],
)
def test_parse_energy(text: str | float, mev: float) -> None:
    assert parse_energy(text) == pytest.approx(mev)


@pytest.mark.parametrize("bad", ["10 GeVs", "abc", "-1GeV", "0", float("nan"), "inf", True])
def test_parse_energy_rejects(bad: object) -> None:
    with pytest.raises(ConfigError):
        parse_energy(bad)  # type: ignore[arg-type]


def test_load_config_by_kind(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("kind: synthetic\ndetector: tiny\nn_events: 10\nenergy_max: 2GeV\n")
    cfg = load_config(path)
    assert isinstance(cfg, SyntheticConfig)
    assert cfg.energy_max == 2000.0
    assert cfg.seed == 12345  # defaulted


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("kind: synthetic\nn_event: 10\n", "unknown key 'n_event'"),
        ("kind: synthetic\nn_events: -1\n", "key 'n_events'"),
        ("kind: nope\n", "unknown kind 'nope'"),
        ("detector: tiny\n", "no 'kind' key"),
        ("kind: synthetic\n  bad: [\n", "invalid YAML at line"),
        ("", "file is empty"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("kind: synthetic\nenergy_min: 5GeV\nenergy_max: 1GeV\n", "energy_max"),
        ("kind: synthetic\nn_events: 3\nn_events: 4\n", "duplicate key 'n_events'"),
        ("kind: [synthetic]\n", "'kind' must be a word"),
        ("kind: synthetic\nseed: -1\n", "key 'seed'"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_kinds_are_listed() -> None:
    assert {"detector", "synthetic"} <= set(config_kinds())


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "examples").rglob("*.yaml")))
def test_shipped_examples_validate(path: Path) -> None:
    load_config(path)
