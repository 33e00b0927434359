"""Simulations needed to reach a surrogate RMSE: adaptive (nipv) against Sobol and random.

    .venv/bin/python benchmarks/active_learning.py --problem ishigami --out al-ishigami.json
    .venv/bin/python benchmarks/active_learning.py --problem xsuite --out al-xsuite.json
    .venv/bin/python benchmarks/plot_active_learning.py al-*.json --out docs/figures/
    .venv/bin/python benchmarks/active_learning.py --merge part-*.json --out whole.json

Problems, fixed before any comparison run (ranges, test grid, target):

- ``ishigami``: the analytic Ishigami function (3 inputs in [-pi, pi]) simulated with Gaussian
  noise of standard deviation 0.2 (output std 3.7); the test grid is 2000 uniform random
  points (seed 12345) with the noiseless truth, so the floor is 0.
- ``xsuite``: a transfer line of four quadrupoles (0.3 m, k1..k4 in [-0.5, 0.5] m^-2) and 2 m
  drifts, 2 GeV protons from beta 8 m; the output is the rms horizontal beam size at the end
  from 1000 tracked particles (its Monte Carlo noise about 2 %). The test grid is 1000 uniform
  random points (seed 12345) tracked with 10000 particles, twice with two seeds: their mean is
  the truth and half their RMS difference (the noise of that mean) the floor.

- ``geant4`` (``--simulator synthetic-test`` for a smoke run, not physics): the default siw
  calorimeter, e- and gamma from 1 to 20 GeV (log) at 0 to 0.4 rad; the output ``--output``
  response (visible fraction) or resolution (its relative spread) of 50 showers per point (one
  simulation = one point's 50 showers). The test grid is 100 uniform random points (seed 12345)
  of 400 showers each; the floor is the RMS of their statistical errors. Oblique showers are
  scored from step positions, about 48 ms per GeV here (2026-12-05): some 3.3 core-hours for
  the test grid, and 11 core-minutes for a design of 60 simulations (the study: ``--budget 60
  --step 5``, 5 seeds of 3 designs, about 3 core-hours); ``--seed-start`` with ``--seeds 1``
  runs one seed per process, and ``--merge`` joins their results. The test grid is
  simulated once, on every core, and kept (``--grid-cache``, resumable chunk by chunk; the
  committed ``benchmarks/data/al-geant4-grid.json`` is this grid, made by
  ``--problem geant4 --grid-cache benchmarks/data/al-geant4-grid.json --grid-jobs 2
  --grid-only``); a part then only simulates its designs. Learn the resolution:
  the response (visible fraction) hardly varies over this space (test std 3e-4 on 0.032, with
  a statistical floor of 1.7e-4), so its targets are met by a constant.

Targets: 10 % and 5 % of the test truth's standard deviation (each at least 3 times the floor);
the simulations needed to reach each, and their Sobol / adaptive ratio, are reported for both.
Each design spends the budget one simulation per point; at each checkpoint the same ``gp``
surrogate is fitted on the points so far. The adaptive design proposes 2 points at a time with
the other pending (two workers). ``--seeds`` seeds each; the JSON keeps every curve.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from twinforge.active.study import Curve, Problem, learning_curve, sims_to_target
from twinforge.showers.io import atomic_write_text
from twinforge.simulation import registry
from twinforge.space import ParameterSpace, SamplerConfig, sample_points

XSUITE_LINE: dict[str, Any] = {
    "particle": "proton",
    "momentum": "2 GeV",
    "periodic": False,
    "knobs": {
        f"k{i}": {"value": 0.0, "unit": "1/m^2", "min": -1.0, "max": 1.0} for i in range(1, 5)
    },
    "lattice": {
        "elements": {
            **{f"q{i}": {"type": "Quadrupole", "length": 0.3, "k1": f"k{i}"} for i in range(1, 5)},
            "d": {"type": "Drift", "length": 2.0},
        },
        "sequence": ["q1", "d", "q2", "d", "q3", "d", "q4", "d"],
    },
    "n_particles": 1000,
    "twiss_init": {"betx": 8.0, "bety": 8.0},
}


def problem(name: str, n_test: int) -> Problem:
    if name == "ishigami":
        sim = registry.create("analytic", {"function": "ishigami", "noise": 0.2})
        space = ParameterSpace.model_validate({}).resolve(sim.parameters())
        test = sample_points(space, SamplerConfig(kind="random", seed=12345), n_test)
        truth = sim.run(test, seed=0).outputs["y_true"]
        return _with_target(Problem(name, sim, space, "y", test, truth, floor=0.0))
    if name == "xsuite":
        sim = registry.create("xsuite", XSUITE_LINE)
        space = ParameterSpace.model_validate(
            {f"k{i}": {"min": -0.5, "max": 0.5} for i in range(1, 5)}
        ).resolve(sim.parameters())
        test = sample_points(space, SamplerConfig(kind="random", seed=12345), n_test)
        fine = registry.create("xsuite", {**XSUITE_LINE, "n_particles": 10000})
        a = fine.run(test, seed=101).outputs["sigma_x_end"]
        b = fine.run(test, seed=202).outputs["sigma_x_end"]
        floor = float(np.sqrt(np.mean((a - b) ** 2) / 2) / np.sqrt(2))  # of the mean of two
        return _with_target(Problem(name, sim, space, "sigma_x_end", test, (a + b) / 2, floor))
    raise SystemExit(f"unknown problem {name!r}: ishigami, xsuite or geant4")


CALORIMETER_SPACE: dict[str, Any] = {
    "particle": ["e-", "gamma"],
    "energy": {"min": "1 GeV", "max": "20 GeV"},
    "theta": {"min": 0.0, "max": 0.4},
}
TEST_GRID_SEED = 424242
_WORKER_SIMS: dict[str, Any] = {}


def _grid_part(job: tuple[str, dict[str, Any], dict[str, list[Any]], int]) -> dict[str, Any]:
    """Simulate one chunk of the test grid in this (worker) process: per point its response
    and resolution with their statistical variances. Each shower is seeded from
    (TEST_GRID_SEED, its index in the whole grid), so chunking does not change the result."""
    simulator, options, rows, first_index = job
    key = json.dumps([simulator, options], sort_keys=True)
    sim = _WORKER_SIMS.get(key) or _WORKER_SIMS.setdefault(key, registry.create(simulator, options))
    points = {name: np.asarray(values) for name, values in rows.items()}
    result = sim.run(points, seed=TEST_GRID_SEED, first_index=first_index)
    inputs, values, variances = sim.format.observe_result(sim, points, result)
    assert variances is not None
    return {
        "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()},
        "values": {k: np.asarray(v).tolist() for k, v in values.items()},
        "variances": {k: np.asarray(v).tolist() for k, v in variances.items()},
    }


def _test_grid(sim: Any, simulator: str, space: Any, test: dict[str, Any], showers: int,
               cache: Path | None, jobs: int) -> dict[str, Any]:  # fmt: skip
    """The calorimeter test grid: per test point the observables of ``showers`` showers,
    simulated in ``jobs`` processes in chunks of 5 points, each chunk kept in ``cache`` +
    ``.parts/`` as it finishes (a killed run resumes), the whole in ``cache`` (JSON) at the end.
    A cache made with another set-up (simulator options, code version, space, grid, seed) is
    refused."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    setup = {
        "simulator": simulator,
        "options": sim.worker_options(),
        "code": sim.code(),
        "space": CALORIMETER_SPACE,
        "test_points": len(next(iter(test.values()))),
        "test_seed": 12345,
        "showers_per_point": showers,
        "shower_seed": TEST_GRID_SEED,
    }
    setup = json.loads(json.dumps(setup, default=str))
    if cache is not None and cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("setup") != setup:
            raise SystemExit(f"error: {cache} holds a test grid of another set-up; remove it")
        return stored
    n = setup["test_points"]
    chunk = 5
    parts_dir = cache.with_name(cache.name + ".parts") if cache is not None else None
    if parts_dir is not None:
        parts_dir.mkdir(parents=True, exist_ok=True)
        kept = parts_dir / "setup.json"
        if kept.exists() and json.loads(kept.read_text()) != setup:
            raise SystemExit(f"error: {parts_dir} holds chunks of another set-up; remove it")
        atomic_write_text(kept, json.dumps(setup, indent=1))
    parts: dict[int, dict[str, Any]] = {}
    todo = []
    for start in range(0, n, chunk):
        done = parts_dir / f"{start:04d}.json" if parts_dir is not None else None
        if done is not None and done.exists():
            parts[start] = json.loads(done.read_text())
            continue
        stop = min(n, start + chunk)
        rows = {k: np.repeat(np.asarray(v)[start:stop], showers).tolist() for k, v in test.items()}
        todo.append((start, (simulator, sim.worker_options(), rows, start * showers)))
    t0 = time.perf_counter()
    print(f"test grid: {n} points x {showers} showers, {len(parts)} chunk(s) of {chunk} kept, "
          f"{len(todo)} to simulate in {jobs} process(es)", flush=True)  # fmt: skip
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_grid_part, job): start for start, job in todo}
        for i, future in enumerate(as_completed(futures), start=1):
            start = futures[future]
            parts[start] = future.result()
            if parts_dir is not None:
                atomic_write_text(parts_dir / f"{start:04d}.json", json.dumps(parts[start]))
            print(f"  test grid chunk {i}/{len(todo)} (points {start}-{min(n, start + chunk) - 1}) "
                  f"after {time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    merged: dict[str, Any] = {"setup": setup, "inputs": {}, "values": {}, "variances": {}}
    for start in sorted(parts):
        for field in ("inputs", "values", "variances"):
            for k, v in parts[start][field].items():
                merged[field].setdefault(k, []).extend(v)
    merged["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    merged["seconds"] = time.perf_counter() - t0
    if cache is not None:
        atomic_write_text(cache, json.dumps(merged, indent=1))
    return merged


def calorimeter(
    simulator: str,
    output: str,
    n_test: int,
    replicates: int = 50,
    test_showers: int = 400,
    *,
    grid_cache: Path | None = None,
    jobs: int = 1,
) -> Problem:
    """The calorimeter problem (see the module's docstring)."""
    options = {"detector": "siw" if simulator == "geant4" else "tiny"}
    sim = registry.create(simulator, options)
    space = ParameterSpace.model_validate(CALORIMETER_SPACE).resolve(sim.parameters())
    test = sample_points(space, SamplerConfig(kind="random", seed=12345), n_test)
    grid = _test_grid(sim, simulator, space, test, test_showers, grid_cache, jobs)
    inputs = {k: np.asarray(v) for k, v in grid["inputs"].items()}
    values = np.asarray(grid["values"][output])
    variances = np.asarray(grid["variances"][output])
    order = np.lexsort([np.asarray(inputs[n], dtype=float) for n in reversed(space.names)])
    test_order = np.lexsort([np.asarray(test[n], dtype=float) for n in reversed(space.names)])
    if len(order) != n_test:
        raise SystemExit(f"error: the test grid has {len(order)} points, expected {n_test}")
    truth = np.empty(n_test)
    truth[test_order] = values[order]
    floor = float(np.sqrt(np.mean(variances)))
    prob = Problem(f"{simulator}-{output}", sim, space, output, test, truth, floor,
                   replicates=replicates)  # fmt: skip
    return _with_target(prob)


FRACTIONS = (0.10, 0.05)  # of the test truth's standard deviation


def _with_target(p: Problem) -> Problem:
    p.target = max(FRACTIONS[-1] * float(np.std(p.truth)), 3 * p.floor)
    return p


def targets(p: Problem) -> dict[str, float]:
    return {f"{f:.0%}": max(f * float(np.std(p.truth)), 3 * p.floor) for f in FRACTIONS}


def summarise(curves: list[Curve], goals: dict[str, float], designs: list[str]) -> dict[str, Any]:
    """Per design the simulations to each target (per seed), the RMSE at the budget and the
    seconds spent; the Sobol / adaptive ratios per seed, their mean and spread."""
    summary: dict[str, Any] = {}
    for design in designs:
        mine = sorted((c for c in curves if c.design == design), key=lambda c: c.seed)
        summary[design] = {
            "seeds": [c.seed for c in mine],
            "sims_to_target": {
                label: [sims_to_target(c, t) for c in mine] for label, t in goals.items()
            },
            "rmse_at_budget": [c.rmse[-1] for c in mine],
            "simulation_seconds": [c.simulation_seconds for c in mine],
            "design_seconds": [c.design_seconds for c in mine],
        }
    if "adaptive" in summary and "sobol" in summary:
        if summary["adaptive"]["seeds"] != summary["sobol"]["seeds"]:
            raise SystemExit("error: the adaptive and Sobol curves are not of the same seeds")
        summary["sobol_over_adaptive"] = {}
        for label in goals:
            pairs = zip(summary["adaptive"]["sims_to_target"][label],
                        summary["sobol"]["sims_to_target"][label], strict=True)  # fmt: skip
            ratios = [s / a for a, s in pairs if a and s]
            summary["sobol_over_adaptive"][label] = {
                "ratios": ratios,
                "mean": statistics.mean(ratios) if ratios else None,
                "std": statistics.stdev(ratios) if len(ratios) > 1 else None,
                "reached": f"{len(ratios)}/{len(summary['adaptive']['seeds'])}",
            }
    return summary


def merge(paths: list[Path], out: Path) -> None:
    """One result from results of the same problem and budget run in parts (other seeds)."""
    parts = [json.loads(p.read_text()) for p in paths]
    first = parts[0]
    same = ("problem", "output", "targets", "floor", "budget", "checkpoints")
    for path, part in zip(paths[1:], parts[1:], strict=True):
        if any(part[k] != first[k] for k in same):
            raise SystemExit(f"error: {path} is not of the same problem, targets and budget")
    curves = [Curve(**c) for part in parts for c in part["curves"]]
    keys = [(c.design, c.seed) for c in curves]
    if len(set(keys)) != len(keys):
        raise SystemExit("error: a (design, seed) curve is in more than one file")
    designs = list(dict.fromkeys(c.design for c in curves))
    result = {
        **{k: first[k] for k in (*same, "test_std", "machine")},
        "seeds": len({c.seed for c in curves}),
        "curves": [c.to_json() for c in curves],
        "summary": summarise(curves, first["targets"], designs),
        "parts": [
            {"file": p.name, "date": part["date"], "wall_seconds": part["wall_seconds"]}
            for p, part in zip(paths, parts, strict=True)
        ],
        "date": max(part["date"] for part in parts),
        "wall_seconds": sum(part["wall_seconds"] for part in parts),
    }
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problem", choices=["ishigami", "xsuite", "geant4"])
    ap.add_argument("--simulator", default="geant4", help="geant4: the calorimeter's simulator")
    ap.add_argument("--output", default="resolution", choices=["response", "resolution"])
    ap.add_argument("--seed-start", type=int, default=0, help="first seed (runs in parts)")
    ap.add_argument("--test-showers", type=int, default=400, help="geant4: showers per test point")
    ap.add_argument(
        "--grid-cache",
        type=Path,
        default=None,
        help="geant4: keep the test grid here (JSON; chunks in FILE.parts/ as they "
        "finish) and re-use it in later parts",
    )
    ap.add_argument(
        "--grid-jobs",
        type=int,
        default=1,
        help="geant4: processes simulating the test grid (one per core)",
    )
    ap.add_argument(
        "--grid-only",
        action="store_true",
        help="geant4: simulate (or check) the test grid and stop",
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--step", type=int, default=10, help="checkpoint every this many sims")
    ap.add_argument("--test-points", type=int, default=None)
    ap.add_argument("--designs", default="adaptive,sobol,random")
    ap.add_argument("--out", type=Path, help="the JSON result (required but with --grid-only)")
    ap.add_argument(
        "--merge", type=Path, nargs="+", help="merge these results (other seeds) into --out"
    )
    args = ap.parse_args()
    if args.merge:
        if args.out is None:
            ap.error("--merge needs --out")
        return merge(args.merge, args.out)
    if args.problem is None:
        ap.error("--problem is required (but with --merge)")
    if args.out is None and not args.grid_only:
        ap.error("--out is required")

    n_test = args.test_points or {"ishigami": 2000, "xsuite": 1000, "geant4": 100}[args.problem]
    t0 = time.perf_counter()
    if args.problem == "geant4":
        prob = calorimeter(args.simulator, args.output, n_test, test_showers=args.test_showers,
                           grid_cache=args.grid_cache, jobs=args.grid_jobs)  # fmt: skip
    else:
        prob = problem(args.problem, n_test)
    setup = time.perf_counter() - t0
    print(f"{prob.name}: target RMSEs {targets(prob)}, floor {prob.floor:.3g}, "
          f"test std {np.std(prob.truth):.4g} ({n_test} points, {setup:.0f} s)")  # fmt: skip
    if args.grid_only:
        return
    checkpoints = list(range(args.step, args.budget + 1, args.step))
    curves = []
    for seed in range(args.seed_start, args.seed_start + args.seeds):
        for design in args.designs.split(","):
            t = time.perf_counter()
            curve = learning_curve(prob, design, seed, checkpoints)  # type: ignore[arg-type]
            curves.append(curve)
            need = {k: sims_to_target(curve, v) for k, v in targets(prob).items()}
            print(
                f"  seed {seed} {design:8s}: RMSE at {args.budget} {curve.rmse[-1]:.4g}, "
                f"sims to targets {need}, {time.perf_counter() - t:.0f} s",
                flush=True,
            )
    summary = summarise(curves, targets(prob), args.designs.split(","))
    result = {
        "problem": prob.name,
        "output": prob.output,
        "targets": targets(prob),
        "floor": prob.floor,
        "test_std": float(np.std(prob.truth)),
        "budget": args.budget,
        "checkpoints": checkpoints,
        "seeds": args.seeds,
        "curves": [c.to_json() for c in curves],
        "summary": summary,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "wall_seconds": time.perf_counter() - t0,
    }
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
