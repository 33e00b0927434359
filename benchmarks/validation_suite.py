"""Wall time of the full validation suite (default config) on N vs N showers of a detector.

    .venv/bin/python benchmarks/validation_suite.py --detector siw --n 10000 --out suite.json

Both samples come from the synthetic test generator with different seeds (the timing does not
depend on where the showers come from; the metrics then sit at the noise floor). Pass
``--reference/--generated`` files to time real samples instead. Run by hand; figures go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from twinforge.detector import load_detector
from twinforge.showers import ShowerFile
from twinforge.showers.synthetic import SyntheticConfig, synthetic_showers
from twinforge.validation import ValidationConfig, run_validation


def synthetic(detector: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    det = load_detector(detector)
    cond = SyntheticConfig(detector=detector, n_events=n, seed=seed).conditions()
    return synthetic_showers(det, cond, seed), cond.energy


def from_file(path: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    with ShowerFile(path) as f:
        cond, showers = f.read(0, min(n, f.n_events))
    return showers, cond.energy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="siw")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--generated", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    readout = load_detector(args.detector).binning()
    if args.reference and args.generated:
        (s1, e1), (s2, e2) = from_file(args.reference, args.n), from_file(args.generated, args.n)
    else:
        (s1, e1), (s2, e2) = (
            synthetic(args.detector, args.n, 1),
            synthetic(args.detector, args.n, 2),
        )
    start = time.perf_counter()
    result = run_validation(
        s1, e1, s2, e2, readout, ValidationConfig(),
        progress=lambda m: print(f"[{time.perf_counter() - start:7.1f} s] {m}", flush=True),
    )  # fmt: skip
    wall = time.perf_counter() - start
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "showers": [len(s1), len(s2)],
        "wall_s": wall,
        "timing_s": result.metrics["timing_s"],
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
