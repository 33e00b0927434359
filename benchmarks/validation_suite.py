"""Wall time of the full validation suite (default: the CaloChallenge protocol) on N vs N showers.

    .venv/bin/python benchmarks/validation_suite.py --reference TEST.h5 --generated GEN.h5 \
        [--floor-reference SECOND_GEANT4.h5] [--budget challenge] [--seeds 3] \
        [--cache-dir DIR] [--metrics-out metrics.json] [--out suite.json]
    .venv/bin/python benchmarks/validation_suite.py --detector siw --n 10000 --out suite.json

With files: :func:`~twinforge.validation.validate_files` (the whole suite: separation powers,
both classifiers over the seeds, FPD/KPD, per energy bin, and the noise floor against
``--floor-reference`` or the reference halves); ``--metrics-out`` keeps the full metrics.json.
Without files both samples come from the synthetic test generator with different seeds (the
timing does not depend on where the showers come from). The classifiers use a GPU when torch sees
one. Run by hand; figures go to docs/benchmarks.md.
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
from twinforge.showers.io import atomic_write_text
from twinforge.simulation.synthetic import SyntheticConfig, synthetic_showers
from twinforge.validation import (
    ClassifierConfig,
    ValidationConfig,
    run_validation,
    validate_files,
)


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
    parser.add_argument("--floor-reference", type=Path)
    parser.add_argument(
        "--budget", default="challenge", choices=["challenge", "converged", "quick"]
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--no-floor", action="store_true", help="skip the noise floor")
    parser.add_argument("--metrics", nargs="+", help="only these metrics (default: all)")
    parser.add_argument("--blas-threads", type=int, default=1, help="NumPy BLAS threads")
    parser.add_argument("--metrics-out", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    classifier = ClassifierConfig(budget=args.budget)
    config = ValidationConfig(
        classifier=classifier,
        high_classifier=classifier,
        classifier_seeds=list(range(args.seeds)),
        cache_dir=None if args.cache_dir is None else str(args.cache_dir),
        noise_floor=not args.no_floor,
        blas_threads=args.blas_threads,
        **({"metrics": args.metrics} if args.metrics else {}),
    )
    start = time.perf_counter()

    def progress(message: str) -> None:
        if "epoch" not in message:
            print(f"[{time.perf_counter() - start:7.1f} s] {message}", flush=True)

    if args.reference and args.generated:
        result = validate_files(
            args.reference, args.generated, config, progress=progress,
            floor_reference=args.floor_reference,
        )  # fmt: skip
    else:
        readout = load_detector(args.detector).binning()
        (s1, e1), (s2, e2) = (
            synthetic(args.detector, args.n, 1),
            synthetic(args.detector, args.n, 2),
        )
        result = run_validation(s1, e1, s2, e2, readout, config, progress=progress)
    wall = time.perf_counter() - start
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    m = result.metrics
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "classifier_device": device,
        "showers": [m["reference"]["n_showers"], m["generated"]["n_showers"]],
        "wall_s": wall,
        "timing_s": m["timing_s"],
        "auc_low": m["overall"].get("classifier_low", {}).get("auc"),
        "auc_high": m["overall"].get("classifier_high", {}).get("auc"),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    if args.metrics_out:
        args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.metrics_out, result.to_json() + "\n")


if __name__ == "__main__":
    main()
