"""The Xsuite backend: real xtrack optics and tracking on CPU."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from tests.simulation.test_contract import FODO
from twinforge.errors import ConfigError
from twinforge.simulation import registry

pytest.importorskip("xtrack")


def points(**columns: list[float]) -> dict[str, np.ndarray]:
    n = len(next(iter(columns.values())))
    base = {"k1f": [0.3] * n, "k1d": [-0.3] * n, "emit_x_norm": [2.5e-6] * n,
            "emit_y_norm": [2.5e-6] * n, "sigma_delta": [0.0] * n}  # fmt: skip
    return {k: np.asarray(v) for k, v in {**base, **columns}.items()}


def test_fodo_tunes_agree_with_mad_ng_and_thin_lens_theory() -> None:
    """The symmetric FODO cell (k1 = +-0.3 /m^2, 0.5 m quads, 10 m): MAD-NG's twiss of the same
    cell (examples/madng/fodo.mad) gives q1 = q2 = 0.11799951984."""
    sim = registry.create("xsuite", {**FODO, "n_particles": 5000})
    out = sim.run(points(k1f=[0.3]), seed=1).outputs
    assert out["stable"].tolist() == [1]
    np.testing.assert_allclose(out["qx"], 0.11799951984, rtol=1e-9)
    np.testing.assert_allclose(out["qy"], 0.11799951984, rtol=1e-9)
    # thin-lens estimate: sin(mu/2) = L / (4 f), f = 1 / (k1 l_q)
    mu = 2 * np.arcsin(10.0 * 0.3 * 0.5 / 4)
    assert abs(out["qx"][0] - mu / (2 * np.pi)) < 0.005
    # the tracked beam keeps the emittance it was matched with (no losses, linear optics), to
    # the estimator's statistical precision (about 1 / sqrt(5000))
    np.testing.assert_allclose(out["emit_x_end"], 2.5e-6, rtol=0.05)
    assert out["transmission"].tolist() == [1.0]


def test_unstable_optics_is_a_result_not_a_failure() -> None:
    sim = registry.create("xsuite", FODO)
    out = sim.run(points(k1f=[0.3, 3.0], k1d=[-0.3, -3.0]), seed=1).outputs
    assert out["stable"].tolist() == [1, 0]
    assert np.isnan(out["qx"][1])
    assert np.isnan(out["sigma_x_end"][1])


def test_aperture_and_observation_points(tmp_path: Path) -> None:
    opts = copy.deepcopy(FODO)
    opts["lattice"]["elements"] |= {"ap": {"type": "LimitEllipse", "a": 0.005, "b": 0.005},
                                     "mid": {"type": "Marker"}}  # fmt: skip
    opts["lattice"]["sequence"] = ["qf", "d1", "mid", "qd", "d2", "ap"]
    opts["lattice"]["repeat"] = 3
    opts["observe"] = ["mid", "mid::2", "end"]
    sim = registry.create("xsuite", opts)
    names = [o.name for o in sim.outputs()]
    assert "sigma_x_mid::2" in names
    out = sim.run(points(emit_x_norm=[1e-7, 2e-5], emit_y_norm=[1e-7, 1e-7]), seed=3).outputs
    assert out["transmission"][0] == 1.0
    assert out["transmission"][1] < 0.9  # a 5 mm aperture cuts the large beam
    assert out["sigma_x_end"][1] < out["sigma_x_mid"][1]  # the tails were lost
    with pytest.raises(ConfigError, match="order along the line"):
        registry.create("xsuite", {**opts, "observe": ["end", "mid"]}).run(points(k1f=[0.3]), 1)


def test_lattice_from_a_file_saved_by_xsuite(tmp_path: Path) -> None:
    import xtrack as xt

    env = xt.Environment()
    env["kq"] = 0.3
    line = env.new_line(components=[
        env.new("qf", xt.Quadrupole, length=0.5, k1="kq"), env.new("d1", xt.Drift, length=4.5),
        env.new("qd", xt.Quadrupole, length=0.5, k1="-kq"), env.new("d2", xt.Drift, length=4.5),
    ])  # fmt: skip
    line.to_json(tmp_path / "fodo.json")
    opts = {"lattice_file": str(tmp_path / "fodo.json"), "momentum": "2 GeV",
            "knobs": {"kq": {"value": 0.3, "unit": "1/m^2"}}, "n_particles": 100}  # fmt: skip
    sim = registry.create("xsuite", opts)
    worker = registry.create("xsuite", sim.worker_options())  # the file's content travels
    (tmp_path / "fodo.json").unlink()
    pts = {"kq": np.array([0.3]), "emit_x_norm": np.array([1e-6]), "emit_y_norm": np.array([1e-6]),
           "sigma_delta": np.array([0.0])}  # fmt: skip
    np.testing.assert_allclose(worker.run(pts, 1).outputs["qx"], 0.11799951984, rtol=1e-9)
    bad = registry.create(
        "xsuite", {**worker.options.model_dump(), "knobs": {"nope": {"value": 1.0}}}
    )
    with pytest.raises(ConfigError, match="knob 'nope' is not a variable"):
        bad.run(pts | {"nope": np.array([1.0])}, 1)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"lattice": None}, "exactly one of 'lattice'"),
        ({"observe": ["nowhere"]}, "observe: nowhere not in the lattice"),
        (
            {"lattice": {"elements": {"q": {"type": "Klystron"}}, "sequence": ["q"]}},
            "type 'Klystron' is not one of",
        ),
        ({"lattice": {"elements": {}, "sequence": ["q"]}}, "undefined element"),
        ({"knobs": {"sigma_delta": {"value": 1.0}}}, "reserved"),
        ({"momentum": "2 parsecs"}, "unknown unit"),
        ({"periodic": False, "n_turns": 5}, "tracked once"),
    ],
)
def test_bad_options(change: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        registry.create("xsuite", {**FODO, **change})


def test_a_knob_outside_its_bounds_is_refused() -> None:
    from twinforge.space import ParameterSpace

    opts = copy.deepcopy(FODO)
    opts["knobs"]["k1f"] |= {"min": 0.0, "max": 1.0}
    sim = registry.create("xsuite", opts)
    with pytest.raises(ConfigError, match=r"space: k1f: 2.0 is outside the bounds of k1f"):
        ParameterSpace.model_validate({"k1f": 2.0}).resolve(sim.parameters())


def test_transfer_line_uses_its_initial_optics() -> None:
    opts = {**FODO, "periodic": False}
    sim = registry.create("xsuite", opts)
    assert "betx0" in [p.name for p in sim.parameters()]
    assert "qx" not in [o.name for o in sim.outputs()]
    init = {"betx0": [10.0, 40.0], "bety0": [10.0, 10.0], "alfx0": [0.0, 0.0], "alfy0": [0.0, 0.0]}
    pts = points(k1f=[0.3, 0.3]) | {k: np.asarray(v) for k, v in init.items()}
    out = sim.run(pts, seed=2).outputs
    assert out["betx_end"][0] != pytest.approx(out["betx_end"][1])
