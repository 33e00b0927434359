"""Parameter spaces and samplers (twinforge.space), on the calorimeter's parameters and on
general ones."""

from __future__ import annotations

import numpy as np
import pytest

from twinforge.campaign import CampaignConfig, job_seed
from twinforge.config import validate_config
from twinforge.errors import ConfigError
from twinforge.simulation.calorimeter import CALORIMETER_PARAMETERS
from twinforge.space import (
    Parameter,
    ParameterSpace,
    SamplerConfig,
    particle_pdg,
    sample_points,
)

CALO = list(CALORIMETER_PARAMETERS)
GENERAL = [
    Parameter("k1", unit="1/m^2", lower=-2.0, upper=2.0),
    Parameter("length", unit="m", lower=0.0, lower_open=True, default=1.0),
    Parameter("n_turns", type="integer", lower=1, default=10),
    Parameter("mode", type="category", choices=("a", "b", "c"), default=["a"]),
]


def calo(**kw) -> ParameterSpace:
    return ParameterSpace.model_validate(
        {"particles": ["e-", "gamma"], "energy": {"min": "1GeV", "max": "100GeV"}, **kw}
    )


def draw(space: dict | ParameterSpace, kind: str, n: int, params=None, seed: int = 3) -> dict:
    if isinstance(space, dict):
        space = validate_config(ParameterSpace, space, "space")
    resolved = space.resolve(CALO if params is None else params)
    return sample_points(resolved, SamplerConfig(kind=kind, seed=seed), n)


@pytest.mark.parametrize("kind", ["random", "sobol", "lhs"])
def test_samplers_cover_the_space_deterministically(kind: str) -> None:
    s = calo(theta={"min": 0.0, "max": 0.2})
    a, b = draw(s, kind, 500), draw(s, kind, 500)
    np.testing.assert_array_equal(a["energy"], b["energy"])
    assert 1e3 <= a["energy"].min() <= a["energy"].max() <= 1e5
    assert set(a["particle"].tolist()) == {11, 22}
    assert 0.0 <= a["theta"].min() <= a["theta"].max() <= 0.2
    # the energy's default scale is log: about half the points below 10 GeV
    assert 0.4 < np.mean(a["energy"] < 1e4) < 0.6
    assert not np.array_equal(a["energy"], draw(s, kind, 500, seed=4)["energy"])


def test_quasi_random_is_more_uniform_than_random() -> None:
    s = {"energy": {"min": 1.0, "max": 2.0, "scale": "linear"}}

    def worst_gap(kind: str) -> float:
        return float(np.max(np.diff(np.sort(draw(s, kind, 256, seed=1)["energy"]))))

    assert worst_gap("sobol") < worst_gap("random")
    assert worst_gap("lhs") < worst_gap("random")


def test_grid_shares_points_equally() -> None:
    s = calo(energy={"values": ["1GeV", "10GeV", "100GeV"]})
    pts = draw(s, "grid", 60)
    grid = np.stack([pts["particle"], pts["energy"]], 1)
    values, counts = np.unique(grid, axis=0, return_counts=True)
    assert len(values) == 6
    assert set(counts.tolist()) == {10}
    log_grid = sample_points(calo().resolve(CALO), SamplerConfig(kind="grid", grid_points=3), 6)
    np.testing.assert_allclose(np.unique(log_grid["energy"]), [1e3, 1e4, 1e5])


def test_points_of_twinforge_0_1_spaces_are_unchanged() -> None:
    """A campaign of twinforge 0.1 draws the same points (its shards stay valid on resume).
    Reference values: twinforge 0.1's sample_conditions, seed 1, Sobol, 1-64 GeV."""
    s = {
        "particles": ["e-"],
        "energy": {"min": "1GeV", "max": "64GeV", "distribution": "log-uniform"},
    }
    pts = draw(s, "sobol", 4, seed=1)
    np.testing.assert_allclose(
        pts["energy"], [1966.7476015, 29021.94040793, 3116.29737485, 14132.72683754]
    )
    assert pts["particle"].tolist() == [11] * 4
    assert pts["theta"].tolist() == pts["phi"].tolist() == [0.0] * 4


def test_general_space_types_units_and_constants() -> None:
    s = {
        "k1": {"min": -0.5, "max": 0.5},
        "length": "50 cm",  # a constant, converted to the parameter's unit
        "n_turns": {"min": 1, "max": 4},
        "mode": ["a", "c"],
    }
    pts = draw(s, "random", 400, GENERAL)
    assert list(pts) == ["k1", "length", "n_turns", "mode"]  # the parameters' order
    assert pts["length"].tolist() == [0.5] * 400
    assert pts["n_turns"].dtype == np.int64
    assert set(pts["n_turns"].tolist()) == {1, 2, 3, 4}  # both ends included
    assert set(pts["mode"].tolist()) == {"a", "c"}
    assert -0.5 <= pts["k1"].min() < pts["k1"].max() <= 0.5
    grid = draw(s, "grid", 5 * 4 * 2, GENERAL)
    assert (
        len({(a, b, c) for a, b, c in zip(grid["k1"], grid["n_turns"], grid["mode"], strict=True)})
        == 40
    )


def test_integer_log_scale_and_defaults() -> None:
    pts = draw({"k1": 0.1, "n_turns": {"min": 1, "max": 1000, "scale": "log"}}, "random", 2000,
               GENERAL)  # fmt: skip
    assert pts["n_turns"].min() >= 1
    assert pts["n_turns"].max() <= 1000
    assert 0.4 < np.mean(pts["n_turns"] < 32) < 0.6  # log: about half below sqrt(1000)
    assert pts["mode"].tolist() == ["a"] * 2000  # the parameter's default
    assert pts["length"].tolist() == [1.0] * 2000


@pytest.mark.parametrize("kind", ["random", "sobol", "lhs", "grid"])
def test_constraints(kind: str) -> None:
    s = {
        "k1": {"min": -1.0, "max": 1.0},
        "length": {"min": 1.0, "max": 3.0},
        "constraints": ["k1 * length < 0.5", "abs(k1) > 0.1 or length > 2.5"],
    }
    pts = draw(s, kind, 300, GENERAL)
    assert len(pts["k1"]) == 300
    assert np.all(pts["k1"] * pts["length"] < 0.5)
    assert np.all((np.abs(pts["k1"]) > 0.1) | (pts["length"] > 2.5))
    again = draw(s, kind, 300, GENERAL)
    np.testing.assert_array_equal(pts["k1"], again["k1"])


@pytest.mark.parametrize(
    ("data", "params", "match"),
    [
        ({"energy": {"min": "10GeV", "max": "1GeV"}}, CALO, "max"),
        ({"energy": {"min": "1GeV"}}, CALO, "both 'min' and 'max'"),
        ({"energy": {"values": [1.0], "min": 1.0, "max": 2.0}}, CALO, "not both"),
        ({"energy": {"values": ["3 furlongs"]}}, CALO, "unknown unit 'furlongs'"),
        ({"energy": {"values": ["3 m"]}}, CALO, "cannot convert m"),
        ({"energy": -5.0}, CALO, r"outside the bounds of energy \[MeV\] in \(0"),
        ({"particles": ["electron-ish"]}, CALO, "unknown particle"),
        ({"particles": []}, CALO, "at least one particle"),
        ({"theta": {"values": []}}, CALO, "empty"),
        ({"theta": 2.0}, CALO, "outside the bounds of theta"),
        ({"energy": {"min": 1, "max": 2, "distrib": "x"}}, CALO, "unknown key 'energy.distrib'"),
        (
            {"bogus": 1.0},
            CALO,
            "unknown parameter 'bogus'; the simulator's parameters are particle",
        ),
        ({"length": 1.0}, GENERAL, "parameter 'k1' needs a value"),
        ({"k1": 5.0}, GENERAL, "outside the bounds"),
        ({"k1": 0.0, "n_turns": 2.5}, GENERAL, "not an integer"),
        ({"k1": 0.0, "mode": ["d"]}, GENERAL, "'d' is not one of a, b, c"),
        ({"k1": 0.0, "mode": {"min": 1, "max": 2}}, GENERAL, "categorical"),
        ({"k1": {"min": 0.0, "max": 1.0, "scale": "log"}}, GENERAL, "log scale needs min > 0"),
        ({"k1": 0.0, "constraints": ["k2 > 0"]}, GENERAL, "names 'k2', which is not a variable"),
        ({"k1": 0.0, "constraints": ["k1 >"]}, GENERAL, "cannot be read"),
        ({"k1": 0.0, "constraints": ["__import__('os')"]}, GENERAL, "names '__import__'"),
        ({"k1": 0.0, "constraints": ["k1.real > 0"]}, GENERAL, "Attribute is not allowed"),
    ],
)
def test_bad_spaces(data: dict, params: list, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        validate_config(ParameterSpace, data, "space").resolve(params)


def test_bad_spaces_in_a_campaign_name_the_key() -> None:
    with pytest.raises(ConfigError, match="unknown parameter 'bogus'"):
        validate_config(
            CampaignConfig, {"name": "x", "simulator": "synthetic-test", "space": {"bogus": 1}}, "c"
        )


def test_constraints_that_reject_everything() -> None:
    s = {"k1": {"min": -1.0, "max": 1.0}, "constraints": ["k1 > 5"]}
    for kind in ("random", "grid"):
        with pytest.raises(ConfigError, match="constraints"):
            draw(s, kind, 10, GENERAL)


def test_particles_and_seeds() -> None:
    assert particle_pdg("e-") == 11
    assert particle_pdg("gamma") == 22
    assert particle_pdg(-11) == -11
    assert particle_pdg("2212") == 2212
    seeds = {job_seed(7, i) for i in range(1000)}
    assert len(seeds) == 1000
    assert all(0 < s < 2**31 for s in seeds)
    assert job_seed(7, 3) == job_seed(7, 3) != job_seed(8, 3)


def test_campaign_config_jobs() -> None:
    cfg = CampaignConfig(name="x", total_points=1005, points_per_job=100)
    assert cfg.n_jobs == 11
    slices = cfg.job_slices()
    assert slices[-1] == slice(1000, 1005)
    assert sum(s.stop - s.start for s in slices) == 1005
    old = CampaignConfig.model_validate({"name": "x", "total_events": 1005, "events_per_job": 100})
    assert (old.total_points, old.points_per_job) == (1005, 100)  # twinforge 0.1's names
    with pytest.raises(ConfigError, match="address"):
        validate_config(CampaignConfig, {"name": "x", "executor": {"kind": "dask-address"}}, "c")
    with pytest.raises(ConfigError, match="name"):
        validate_config(CampaignConfig, {"name": "a/b"}, "c")
