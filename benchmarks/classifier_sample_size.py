"""How the classifier AUC moves with the sample size, for several generated samples and the floor.

    .venv/bin/python benchmarks/classifier_sample_size.py REFERENCE.h5 GEN_A.h5 [GEN_B.h5 ...] \
        --floor-reference SECOND_GEANT4.h5 --sizes 2000 5000 10000 --seeds 3 \
        --budgets challenge converged --out sizes.json

For each size n, each generated file (and the floor: the reference against a second, independent
Geant4 file) is compared on n showers of each sample (seeded random subsets, the same reference
subset for every file), low and high level, with the suite's inputs (threshold applied) and the
CaloChallenge protocol at each budget, over ``--seeds`` classifier seeds. Prints a markdown table
(mean and min-max) and writes the JSON after every classifier (``seeds_done`` in each row: a
stopped run keeps the seeds it finished). Use a GPU: at 10k showers the challenge budget is about
13 minutes per classifier on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from twinforge.showers import ShowerFile
from twinforge.showers.io import atomic_write_text
from twinforge.validation.classifier import ClassifierConfig, low_level_features, train_classifier
from twinforge.validation.observables import compute_observables
from twinforge.validation.suite import ValidationConfig, apply_threshold, resolve_threshold


def load(path: Path, n: int, seed: int, threshold: float | None) -> dict[str, np.ndarray]:
    """Low- and high-level inputs of ``n`` showers of ``path`` in a random order (the first k
    rows are a random subset of k), the threshold applied (None: the file's own)."""
    with ShowerFile(path) as f:
        cond, showers = f.read()
        readout, recorded = f.readout, f.threshold
    assert readout is not None, f"{path}: no binning stored"
    if len(showers) < n:
        raise SystemExit(f"{path}: {len(showers)} showers, fewer than the largest size {n}")
    keep = np.random.default_rng([seed, 3]).permutation(len(showers))[:n]
    showers, energy = showers[keep], cond.energy[keep]
    if threshold is None:
        threshold, _ = resolve_threshold(ValidationConfig(), readout, recorded)
    showers = apply_threshold(showers, threshold)
    obs = compute_observables(showers, energy, readout)
    return {
        "low": low_level_features(showers, energy),
        "high": obs.high_level_matrix().astype(np.float32),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("generated", type=Path, nargs="+")
    parser.add_argument("--floor-reference", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--budgets", nargs="+", default=["challenge"], choices=["challenge", "converged"]
    )
    parser.add_argument("--levels", nargs="+", default=["low", "high"], choices=["low", "high"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    n_max = max(args.sizes)
    with ShowerFile(args.reference) as f:  # the reference's threshold applies to every file
        threshold, _ = resolve_threshold(ValidationConfig(), f.readout, f.threshold)
    ref = load(args.reference, n_max, 0, threshold)
    others = {path.name: load(path, n_max, 1, threshold) for path in args.generated}
    if args.floor_reference is not None:
        others["Geant4 floor"] = load(args.floor_reference, n_max, 2, threshold)
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"

    def save() -> None:
        if args.out:
            text = json.dumps(
                {
                    "date": time.strftime("%Y-%m-%d"),
                    "device": device,
                    "threshold_mev": threshold,
                    "rows": rows,
                },
                indent=2,
            )
            atomic_write_text(args.out, text)

    rows: list[dict[str, Any]] = []
    for name, sample in others.items():
        for n in sorted(args.sizes):
            for budget in args.budgets:
                for level in args.levels:
                    row: dict[str, Any] = {"sample": name, "n": n, "budget": budget,
                                           "level": level, "seeds_done": 0}  # fmt: skip
                    rows.append(row)
                    aucs, steps, seconds, converged = [], [], [], []
                    for seed in range(args.seeds):  # saved after each: a stop keeps the seeds
                        config = ClassifierConfig(budget=budget, seed=seed)
                        result = train_classifier(ref[level][:n], sample[level][:n], config)
                        aucs.append(result.auc)
                        steps.append(result.steps)
                        seconds.append(result.seconds)
                        converged.append(result.converged)
                        row.update(
                            auc=aucs, mean=float(np.mean(aucs)), min=float(min(aucs)),
                            max=float(max(aucs)), steps=steps, seconds=seconds,
                            converged=converged, seeds_done=seed + 1,
                        )  # fmt: skip
                        save()
                    print(
                        f"{name} n={n} {budget} {level}: AUC {row['mean']:.3f} "
                        f"({row['min']:.3f}-{row['max']:.3f}), {steps[0]} steps, "
                        f"{np.mean(seconds):.1f} s/seed",
                        flush=True,
                    )
    print("\n| sample | budget | level | " + " | ".join(f"{n} showers" for n in args.sizes) + " |")
    print("|---|---|---|" + "---:|" * len(args.sizes))
    for name in others:
        for budget in args.budgets:
            for level in args.levels:
                cells = []
                for n in args.sizes:
                    row = next(
                        r
                        for r in rows
                        if (r["sample"], r["n"], r["budget"], r["level"])
                        == (name, n, budget, level)
                    )
                    cells.append(f"{row['mean']:.3f} ({row['min']:.3f}-{row['max']:.3f})")
                print(f"| {name} | {budget} | {level} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
