"""Surrogate-based optimisation and inverse design: the point that minimises, maximises or hits
a target in one output, with the surrogate's uncertainty there.

The search runs on the surrogate only: ``n_candidates`` Sobol points of the space (its
constraints applied), the best few refined with L-BFGS-B over the continuous dimensions (the
categories and integers of each start held), then the best feasible one. A target is hit by
minimising the expected squared miss ``(mean - target)^2 + variance``, so an answer the
surrogate is unsure of is not preferred over a well-known one with the same mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from twinforge.errors import ConfigError
from twinforge.space import Points, ResolvedSpace, SamplerConfig, sample_points
from twinforge.surrogate.base import Surrogate

__all__ = ["Optimum", "optimise"]

Goal = Literal["minimise", "maximise", "target"]


@dataclass
class Optimum:
    """The answer: ``point`` (name -> value), the output's ``mean`` and ``std`` (latent) there,
    and the ``objective`` value minimised."""

    point: dict[str, Any]
    output: str
    mean: float
    std: float
    objective: float


def optimise(
    model: Surrogate,
    output: str,
    goal: Goal = "minimise",
    *,
    target: float | None = None,
    n_candidates: int = 4096,
    n_refine: int = 8,
    seed: int = 0,
) -> Optimum:
    """Search the surrogate's space for the best point of ``output``.

    Raises:
        ConfigError: an output the surrogate was not fitted on, a target missing (or given
            without ``goal="target"``), no candidate satisfying the space's constraints.
    """
    from scipy.optimize import minimize

    model._check_outputs([output])
    if (goal == "target") != (target is not None):
        raise ConfigError("give a target value exactly when the goal is 'target'")
    encoder = model._encoder()
    col = model.outputs.index(output)

    def objective(u: NDArray[np.float64]) -> NDArray[np.float64]:
        mean, var, _ = model.predict_encoded(u)
        m, v = mean[:, col], var[:, col]
        if goal == "target":
            return (m - float(target)) ** 2 + v  # type: ignore[arg-type]
        return m if goal == "minimise" else -m

    space = encoder.space
    candidates = encoder.encode(
        sample_points(space, SamplerConfig(kind="sobol", seed=seed), n_candidates)
    )
    chunks = np.array_split(candidates, max(1, len(candidates) // 1024))
    values = np.concatenate([objective(c) for c in chunks])
    starts = candidates[np.argsort(values)[:n_refine]]
    best_u, best_f = candidates[int(np.argmin(values))], float(values.min())
    free = [i for i, d in enumerate(encoder.free) if d.values is None and not d.integer]
    for start in starts:
        if not free:
            break

        def f(z: NDArray[np.float64], start: NDArray[np.float64] = start) -> float:
            u = start.copy()
            u[free] = z
            return float(objective(u[None])[0])

        res = minimize(f, start[free], method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(free))
        u = start.copy()
        u[free] = res.x
        if res.fun < best_f and _feasible(space, encoder.decode(u[None])):
            best_u, best_f = u, float(res.fun)
    point = encoder.decode(best_u[None])
    mean, var, _ = model.predict_encoded(encoder.encode(point))
    return Optimum(
        point={k: v[0].item() if hasattr(v[0], "item") else v[0] for k, v in point.items()},
        output=output,
        mean=float(mean[0, col]),
        std=float(np.sqrt(max(var[0, col], 0.0))),
        objective=best_f,
    )


def _feasible(space: ResolvedSpace, points: Points) -> bool:
    return bool(np.all(space.accept(points)))
