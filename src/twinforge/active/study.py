"""Learning curves: a surrogate's error against the number of simulations, for adaptive and
space-filling designs on the same problem (the benchmark, and the demo's comparison).

A :class:`Problem` is a simulator, a space, one scalar output and an independent test grid
with its truth. Each design spends the same budget, one simulation per point; at each
checkpoint a ``gp`` surrogate (the same settings for every design, so that only the choice of
points differs) is fitted on the points so far and its RMSE measured on the test grid. The
adaptive design proposes ``batch`` points at a time with the others pending, as two workers
would. The RMSE that can be reached is floored by the test grid's own noise (``floor``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from twinforge.active.config import ActiveConfig
from twinforge.active.generator import SurrogateGenerator
from twinforge.active.vocs import space_to_vocs
from twinforge.simulation.base import Simulator
from twinforge.space import Points, ResolvedSpace, SamplerConfig, sample_points
from twinforge.surrogate import Observations, create, group_replicates, rmse

__all__ = ["Curve", "Problem", "learning_curve", "sims_to_target"]

Design = Literal["adaptive", "sobol", "random", "lhs"]


@dataclass
class Problem:
    """What is learnt, and the test grid it is judged on (``truth`` in ``output``'s units)."""

    name: str
    simulator: Simulator
    space: ResolvedSpace
    output: str
    test_points: Points
    truth: NDArray[np.float64]
    floor: float = 0.0
    target: float = 0.0
    replicates: int = 1
    """Simulations behind one observation: a calorimeter point's showers (its response and
    resolution come from them, through the simulator's output format)."""


@dataclass
class Curve:
    """RMSE on the test grid after ``n[i]`` simulations; seconds spent simulating and
    choosing points (acquisition and surrogate fits of the adaptive design)."""

    design: str
    seed: int
    n: list[int] = field(default_factory=list)
    rmse: list[float] = field(default_factory=list)
    simulation_seconds: float = 0.0
    design_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"design": self.design, "seed": self.seed, "n": self.n, "rmse": self.rmse,
                "simulation_seconds": self.simulation_seconds,
                "design_seconds": self.design_seconds}  # fmt: skip


def _simulate(problem: Problem, points: Points, seed: int, first: int) -> NDArray[np.float64]:
    """``problem.output`` at each point: the simulator's own output, or the format's observable
    from ``replicates`` simulations of the point (one job each, seeded by its index)."""
    sim = problem.simulator
    if problem.output in {o.name for o in sim.outputs()}:
        out = sim.run(points, seed=seed, first_index=first).outputs[problem.output]
        return np.asarray(out, dtype=np.float64)
    n = len(next(iter(points.values())))
    values = np.empty(n)
    for i in range(n):
        job = {k: np.repeat(np.asarray(v)[i : i + 1], problem.replicates)
               for k, v in points.items()}  # fmt: skip
        result = sim.run(job, seed=seed + first + i, first_index=0)
        _, observed, _ = sim.format.observe_result(sim, job, result)
        values[i] = observed[problem.output][0]
    return values


def _fit_rmse(problem: Problem, points: Points, y: NDArray[np.float64]) -> float:
    keep = np.isfinite(y)
    pts = {k: np.asarray(v)[keep] for k, v in points.items()}
    grouped, means, variances, counts = group_replicates(pts, {problem.output: y[keep]})
    model = create("gp").fit(Observations(problem.space, grouped, means, variances, counts))
    return rmse(model.predict(problem.test_points).mean[problem.output], problem.truth)


def learning_curve(
    problem: Problem,
    design: Design,
    seed: int,
    checkpoints: Sequence[int],
    *,
    batch: int = 2,
    config: ActiveConfig | None = None,
) -> Curve:
    """The RMSE of ``design`` at each checkpoint (simulations so far), up to the last one."""
    budget = max(checkpoints)
    curve = Curve(design, seed)
    sim_seed = 1000 + seed
    if design != "adaptive":
        points = sample_points(problem.space, SamplerConfig(kind=design, seed=seed), budget)
        t0 = time.perf_counter()
        y = _simulate(problem, points, sim_seed, 0)
        curve.simulation_seconds = time.perf_counter() - t0
        for n in checkpoints:
            curve.n.append(n)
            curve.rmse.append(_fit_rmse(problem, {k: v[:n] for k, v in points.items()}, y[:n]))
        return curve
    config = config or ActiveConfig(seed=seed)
    vocs = space_to_vocs(problem.space, {problem.output: "EXPLORE"})
    gen = SurrogateGenerator(vocs, config, space=problem.space)
    done = 0
    marks = sorted(checkpoints)
    chosen: dict[str, list[Any]] = {k: [] for k in problem.space.names}
    values: list[float] = []
    while done < budget:
        t0 = time.perf_counter()
        proposed = gen.suggest(min(batch, budget - done))
        curve.design_seconds += time.perf_counter() - t0
        cols = {k: np.asarray([p[k] for p in proposed]) for k in problem.space.names}
        t0 = time.perf_counter()
        y = _simulate(problem, cols, sim_seed, done)
        curve.simulation_seconds += time.perf_counter() - t0
        gen.ingest([{**p, problem.output: float(v)} for p, v in zip(proposed, y, strict=True)])
        for k in chosen:
            chosen[k] += [p[k] for p in proposed]
        values += [float(v) for v in y]
        done += len(proposed)
        while marks and done >= marks[0]:
            # judged like the other designs: a fresh fit of the same surrogate on its points
            points = {k: np.asarray(v) for k, v in chosen.items()}
            curve.n.append(marks.pop(0))
            curve.rmse.append(_fit_rmse(problem, points, np.asarray(values)))
    return curve


def sims_to_target(curve: Curve, target: float) -> int | None:
    """The first checkpoint from which the RMSE stays at or below ``target`` (None: never)."""
    ok = np.asarray(curve.rmse) <= target
    for i in range(len(ok)):
        if ok[i:].all():
            return curve.n[i]
    return None
