from __future__ import annotations

import numpy as np
import pytest

from twinforge.campaign import CampaignConfig, ParameterSpace, SamplerConfig, job_seed
from twinforge.campaign.space import particle_pdg, sample_conditions
from twinforge.config import validate_config
from twinforge.errors import ConfigError


def space(**kw) -> ParameterSpace:
    return ParameterSpace.model_validate(
        {"particles": ["e-", "gamma"], "energy": {"min": "1GeV", "max": "100GeV"}, **kw}
    )


@pytest.mark.parametrize("kind", ["random", "sobol", "lhs"])
def test_samplers_cover_the_space_deterministically(kind: str) -> None:
    s = space(theta={"min": 0.0, "max": 0.2})
    a = sample_conditions(s, SamplerConfig(kind=kind, seed=3), 500)
    b = sample_conditions(s, SamplerConfig(kind=kind, seed=3), 500)
    np.testing.assert_array_equal(a.energy, b.energy)
    assert a.energy.min() >= 1e3
    assert a.energy.max() <= 1e5
    assert set(a.pdg.tolist()) == {11, 22}
    assert 0.0 <= a.theta.min() <= a.theta.max() <= 0.2
    # log-uniform: about half the events below the geometric mean (10 GeV)
    assert 0.4 < np.mean(a.energy < 1e4) < 0.6
    c = sample_conditions(s, SamplerConfig(kind=kind, seed=4), 500)
    assert not np.array_equal(a.energy, c.energy)


def test_quasi_random_is_more_uniform_than_random() -> None:
    s = ParameterSpace.model_validate(
        {"energy": {"min": 1.0, "max": 2.0, "distribution": "uniform"}}
    )

    def worst_gap(kind: str) -> float:
        e = np.sort(sample_conditions(s, SamplerConfig(kind=kind, seed=1), 256).energy)
        return float(np.max(np.diff(e)))

    assert worst_gap("sobol") < worst_gap("random")
    assert worst_gap("lhs") < worst_gap("random")


def test_grid_shares_events_between_points() -> None:
    s = space(energy={"values": ["1GeV", "10GeV", "100GeV"]})
    cond = sample_conditions(s, SamplerConfig(kind="grid"), 60)
    points, counts = np.unique(np.stack([cond.pdg, cond.energy], 1), axis=0, return_counts=True)
    assert len(points) == 6
    assert set(counts.tolist()) == {10}
    log_grid = sample_conditions(space(), SamplerConfig(kind="grid", grid_points=3), 3)
    np.testing.assert_allclose(log_grid.energy, [1e3, 1e4, 1e5])  # log-spaced, point by point


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"energy": {"min": "10GeV", "max": "1GeV"}}, "max"),
        ({"energy": {"min": "1GeV"}}, "both 'min' and 'max'"),
        ({"energy": {"values": [1.0], "min": 1.0, "max": 2.0}}, "not both"),
        ({"energy": {"values": ["3 furlongs"]}}, "cannot read energy"),
        ({"particles": ["electron-ish"]}, "unknown particle"),
        ({"particles": []}, "at least one particle"),
        ({"theta": {"values": []}}, "empty"),
        ({"energy": {"min": 1, "max": 2, "distrib": "x"}}, "unknown key 'energy.distrib'"),
    ],
)
def test_bad_spaces(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        validate_config(ParameterSpace, data, "space")


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
    cfg = CampaignConfig(name="x", total_events=1005, events_per_job=100)
    assert cfg.n_jobs == 11
    slices = cfg.job_slices()
    assert slices[-1] == slice(1000, 1005)
    assert sum(s.stop - s.start for s in slices) == 1005
    with pytest.raises(ConfigError, match="address"):
        validate_config(CampaignConfig, {"name": "x", "executor": {"kind": "dask-address"}}, "c")
    with pytest.raises(ConfigError, match="name"):
        validate_config(CampaignConfig, {"name": "a/b"}, "c")
