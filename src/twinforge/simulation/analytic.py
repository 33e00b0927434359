"""Analytic test functions behind the simulator seam: problems whose truth is known.

Active-learning and surrogate studies need a problem where the true response is known
everywhere, so that a surrogate's error is measured against the truth and not against another
noisy simulation. This backend evaluates standard test functions of the surrogate-modelling
literature (Surjanovic & Bingham's library), optionally with Gaussian noise, as a campaign would
run any code:

=============  ====  ===========================================  =============================
function       dims  domain                                       notes
=============  ====  ===========================================  =============================
``ishigami``   3     x1, x2, x3 in [-pi, pi]                      a = 7, b = 0.1 (Sobol indices
                                                                  known in closed form)
``branin``     2     x1 in [-5, 10], x2 in [0, 15]                three global minima 0.397887
``hartmann3``  3     [0, 1]^3                                     minimum -3.86278
``hartmann6``  6     [0, 1]^6                                     minimum -3.32237
``borehole``   8     physical ranges (m, m^2/yr, m, ...)          water flow (m^3/yr)
=============  ====  ===========================================  =============================

Outputs per point: ``y`` (the value plus noise of standard deviation ``noise``, drawn from
``(seed, point index)`` so batching does not change it) and ``y_true`` (the noiseless value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from twinforge import __version__
from twinforge.config import StrictModel
from twinforge.simulation.base import Output, OutputFormat, RunResult, Simulator
from twinforge.simulation.table import TableFormat
from twinforge.space import Parameter, Points

__all__ = ["ANALYTIC_FUNCTIONS", "AnalyticBackend", "AnalyticOptions"]

Array = NDArray[np.float64]


def _ishigami(x: Array) -> Array:
    a, b = 7.0, 0.1
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def _branin(x: Array) -> Array:
    x1, x2 = x[:, 0], x[:, 1]
    b, c, t = 5.1 / (4 * np.pi**2), 5 / np.pi, 1 / (8 * np.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547],
                         [381, 5743, 8828]])  # fmt: skip
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])  # fmt: skip
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886],
                         [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650],
                         [4047, 8828, 8732, 5743, 1091, 381]])  # fmt: skip
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann(a: Array, p: Array) -> Callable[[Array], Array]:
    def f(x: Array) -> Array:
        inner = np.einsum("ij,nij->ni", a, (x[:, None, :] - p[None]) ** 2)
        return -(np.exp(-inner) @ _H_ALPHA)

    return f


def _borehole(x: Array) -> Array:
    rw, r, tu, hu, tl, hl, length, kw = x.T
    log_ratio = np.log(r / rw)
    return (2 * np.pi * tu * (hu - hl)) / (
        log_ratio * (1 + 2 * length * tu / (log_ratio * rw**2 * kw) + tu / tl)
    )


@dataclass(frozen=True)
class AnalyticFunction:
    """A test function: its inputs (name, lower, upper, unit) and a vectorised ``f(x (n, d))``."""

    inputs: tuple[tuple[str, float, float, str | None], ...]
    f: Callable[[Array], Array]
    description: str


def _unit_cube(d: int) -> tuple[tuple[str, float, float, str | None], ...]:
    return tuple((f"x{i + 1}", 0.0, 1.0, None) for i in range(d))


ANALYTIC_FUNCTIONS: dict[str, AnalyticFunction] = {
    "ishigami": AnalyticFunction(
        tuple((f"x{i + 1}", -np.pi, np.pi, None) for i in range(3)),
        _ishigami,
        "Ishigami function (a = 7, b = 0.1)",
    ),
    "branin": AnalyticFunction(
        (("x1", -5.0, 10.0, None), ("x2", 0.0, 15.0, None)), _branin, "Branin-Hoo function"
    ),
    "hartmann3": AnalyticFunction(_unit_cube(3), _hartmann(_H3_A, _H3_P), "Hartmann 3-D"),
    "hartmann6": AnalyticFunction(_unit_cube(6), _hartmann(_H6_A, _H6_P), "Hartmann 6-D"),
    "borehole": AnalyticFunction(
        (
            ("rw", 0.05, 0.15, "m"),
            ("r", 100.0, 50000.0, "m"),
            ("Tu", 63070.0, 115600.0, "m^2/yr"),
            ("Hu", 990.0, 1110.0, "m"),
            ("Tl", 63.1, 116.0, "m^2/yr"),
            ("Hl", 700.0, 820.0, "m"),
            ("L", 1120.0, 1680.0, "m"),
            ("Kw", 9855.0, 12045.0, "m/yr"),
        ),
        _borehole,
        "borehole water flow (m^3/yr)",
    ),
}


class AnalyticOptions(StrictModel):
    """Which function, and the standard deviation of the Gaussian noise added to ``y``."""

    function: Literal["ishigami", "branin", "hartmann3", "hartmann6", "borehole"] = "ishigami"
    noise: float = Field(0.0, ge=0.0, description="standard deviation of the noise on y")


class AnalyticBackend(Simulator):
    """A known function of the parameters, with optional noise (tests, benchmarks, demos)."""

    name = "analytic"
    summary = "analytic test functions with known truth (Ishigami, Branin, Hartmann, borehole)"
    Options: ClassVar[type[StrictModel]] = AnalyticOptions
    format: ClassVar[type[OutputFormat]] = TableFormat

    @property
    def function(self) -> AnalyticFunction:
        assert isinstance(self.options, AnalyticOptions)
        return ANALYTIC_FUNCTIONS[self.options.function]

    def parameters(self) -> list[Parameter]:
        return [
            Parameter(name, unit=unit, lower=lo, upper=hi, default={"min": lo, "max": hi})
            for name, lo, hi, unit in self.function.inputs
        ]

    def outputs(self) -> list[Output]:
        fn = self.function
        return [
            Output("y", None, (), "float64", f"{fn.description}, with noise"),
            Output("y_true", None, (), "float64", f"{fn.description}, without noise"),
        ]

    def run(
        self, points: Points, seed: int, *, first_index: int = 0, workdir: Path | None = None
    ) -> RunResult:
        assert isinstance(self.options, AnalyticOptions)
        x = np.column_stack([np.asarray(points[n], dtype=np.float64) for n, *_ in
                             self.function.inputs])  # fmt: skip
        truth = self.function.f(x)
        noise = self.options.noise
        if noise > 0:
            draws = np.array([np.random.default_rng([seed, first_index + i]).standard_normal()
                              for i in range(len(x))])  # fmt: skip
            y = truth + noise * draws
        else:
            y = truth.copy()
        return RunResult({"y": y, "y_true": truth})

    def code(self) -> dict[str, str]:
        return {"name": "twinforge analytic functions", "version": __version__}

    def provenance(self) -> dict[str, Any]:
        assert isinstance(self.options, AnalyticOptions)
        return {**super().provenance(), **self.options.model_dump(mode="json")}
