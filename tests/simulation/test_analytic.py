"""The analytic backend: each function's known values, its noise and its space."""

from __future__ import annotations

import numpy as np
import pytest

from twinforge.errors import ConfigError
from twinforge.simulation import registry
from twinforge.space import ParameterSpace


def run(function: str, x: list[list[float]], noise: float = 0.0, seed: int = 0) -> dict:
    sim = registry.create("analytic", {"function": function, "noise": noise})
    names = [p.name for p in sim.parameters()]
    points = {
        n: np.asarray(col, dtype=float) for n, col in zip(names, np.asarray(x).T, strict=False)
    }
    return sim.run(points, seed=seed).outputs


@pytest.mark.parametrize(
    ("function", "x", "value"),
    [
        ("branin", [[-np.pi, 12.275], [np.pi, 2.275], [9.42478, 2.475]], 0.397887),
        ("hartmann3", [[0.114614, 0.555649, 0.852547]], -3.86278),
        ("hartmann6", [[0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]], -3.32237),
        ("ishigami", [[0.0, 0.0, 0.0]], 0.0),
        ("ishigami", [[np.pi / 2, np.pi / 2, 1.0]], 1 + 7 + 0.1),
    ],
)
def test_known_values(function: str, x: list[list[float]], value: float) -> None:
    out = run(function, x)
    np.testing.assert_allclose(out["y_true"], value, atol=2e-5)
    np.testing.assert_array_equal(out["y"], out["y_true"])


def test_borehole_reference_point() -> None:
    # the centre of the domain, against the formula written out by hand
    x = np.array([[0.10, 25050, 89335, 1050, 89.55, 760, 1400, 10950]])
    rw, r, tu, hu, tl, hl, length, kw = x[0]
    lr = np.log(r / rw)
    denominator = lr * (1 + 2 * length * tu / (lr * rw**2 * kw) + tu / tl)
    expected = 2 * np.pi * tu * (hu - hl) / denominator
    np.testing.assert_allclose(run("borehole", x.tolist())["y_true"], expected, rtol=1e-12)


def test_noise_is_seeded_per_point_and_has_its_width() -> None:
    x = np.full((4000, 3), 0.3).tolist()
    a = run("hartmann3", x, noise=0.2, seed=3)
    b = run("hartmann3", x, noise=0.2, seed=3)
    np.testing.assert_array_equal(a["y"], b["y"])
    assert abs(np.std(a["y"] - a["y_true"]) - 0.2) < 0.01
    # batching does not change a point's draw
    sim = registry.create("analytic", {"function": "hartmann3", "noise": 0.2})
    tail = {f"x{i + 1}": np.full(10, 0.3) for i in range(3)}
    part = sim.run(tail, seed=3, first_index=3990).outputs["y"]
    np.testing.assert_array_equal(part, a["y"][3990:])


def test_space_defaults_to_the_domain_and_refuses_outside() -> None:
    sim = registry.create("analytic", {"function": "branin"})
    space = ParameterSpace.model_validate({}).resolve(sim.parameters())
    x1 = space.dimensions[0]
    assert (x1.low, x1.high) == (-5.0, 10.0)
    with pytest.raises(ConfigError, match="x1"):
        ParameterSpace.model_validate({"x1": {"min": -6, "max": 0}}).resolve(sim.parameters())
    with pytest.raises(ConfigError, match="function"):
        registry.create("analytic", {"function": "rosenbrock"})
