"""Geant4 seconds per shower for electrons in a detector (default: siw), on one core.

Runs the per-process Geant4 session in this (single-threaded) process, one run per energy after
a warm-up shower (physics tables are built on the first run), and reports the median time per
shower, wall and CPU, from primary generation to the end of scoring.

    .venv/bin/python benchmarks/geant4_per_shower.py --out benchmark.json
    .venv/bin/python benchmarks/geant4_per_shower.py --energies 1,10,100 --showers 20,10,3
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from twinforge.detector import load_detector
from twinforge.showers.conditions import Conditions
from twinforge.simulation.geant4 import Geant4Options, get_session

log = logging.getLogger("benchmarks.geant4_per_shower")


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def run(
    detector_name: str, energies_gev: list[float], showers: list[int], pdg: int, seed: int
) -> dict[str, Any]:
    """Time ``showers[k]`` showers at ``energies_gev[k]`` GeV; returns the result record."""
    if len(showers) == 1:
        showers = showers * len(energies_gev)
    if len(showers) != len(energies_gev):
        raise SystemExit("--showers needs one count, or one per energy")
    session = get_session(load_detector(detector_name), Geant4Options())
    session.simulate(Conditions.make([1000.0], pdg), seed)  # warm-up: physics tables
    rows = []
    for k, (energy, n) in enumerate(zip(energies_gev, showers, strict=True)):
        conditions = Conditions.make(np.full(n, energy * 1000.0), pdg)
        result = session.simulate(conditions, seed + 1 + k)
        wall, cpu = session.last_timings.wall, session.last_timings.cpu
        rows.append(
            {
                "energy_GeV": energy,
                "showers": n,
                "median_wall_s": float(np.median(wall)),
                "median_cpu_s": float(np.median(cpu)),
                "min_wall_s": float(wall.min()),
                "max_wall_s": float(wall.max()),
                "mean_recorded_MeV": float(result.sum(axis=1).mean()),
            }
        )
    return {
        "benchmark": "geant4_per_shower",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "detector": detector_name,
        "pdg": pdg,
        "seed": seed,
        "cores": 1,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "provenance": session.provenance(),
        "results": rows,
    }


def _table(record: dict[str, Any]) -> str:
    lines = [
        f"Geant4 per shower, {record['detector']}, pdg {record['pdg']}, one core "
        f"({record['provenance']['physics']})",
        f"{'E [GeV]':>8} {'N':>4} {'median wall [s]':>16} {'median CPU [s]':>15} "
        f"{'min-max wall [s]':>18}",
    ]
    for row in record["results"]:
        lines.append(
            f"{row['energy_GeV']:>8g} {row['showers']:>4d} {row['median_wall_s']:>16.4f} "
            f"{row['median_cpu_s']:>15.4f} "
            f"{row['min_wall_s']:>8.4f}-{row['max_wall_s']:<9.4f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="siw", help="preset name or YAML file")
    parser.add_argument("--energies", type=_floats, default=[1.0, 10.0, 100.0], help="GeV")
    parser.add_argument("--showers", type=_ints, default=[20, 10, 3], help="per energy")
    parser.add_argument("--pdg", type=int, default=11)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the JSON record there")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    record = run(args.detector, args.energies, args.showers, args.pdg, args.seed)
    sys.stdout.write(_table(record) + "\n")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        sys.stdout.write(f"wrote {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
