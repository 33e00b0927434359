"""What the low-level classifier can see at a given sample size: AUC of known distortions.

    .venv/bin/python benchmarks/classifier_sensitivity.py REFERENCE.h5 --n 1000 --out sens.json

Splits the reference (e.g. Geant4 showers of the siw detector) into two random halves of
``--n`` showers, distorts the second half in known ways and trains the suite's default low-level
classifier (CaloChallenge protocol, :mod:`twinforge.validation.classifier`) on half A vs
distorted half B. The undistorted row is the noise floor. A distortion with an AUC near the
floor is invisible to the classifier at this size: read a model's low-level AUC with that in
mind. Run by hand (a few seconds per row on 2 cores); figures go to docs/benchmarks.md.

Distortions (physics-motivated, each on every shower of half B):

* voxel-wise log-normal noise of 5 % and 20 % (uncorrelated voxel fluctuations);
* voxels below 3x and 10x the readout threshold dropped (lost sparse hits);
* each shower rotated by a random number of alpha bins (a symmetry of the detector at normal
  incidence: must stay at the floor);
* the alpha bins of every (layer, r) ring averaged (no azimuthal fluctuations);
* every voxel scaled by 1.02 and 1.05 (energy-scale errors).

``--standardise`` scales every input column to zero mean and unit variance over both halves
first (not part of the CaloChallenge protocol): it shows how much of the classifier's blindness
comes from its unscaled inputs (``100 * voxels / E_inc`` of order 1e-3-0.1) within the suite's
5 epochs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from twinforge.showers import ShowerFile
from twinforge.validation.classifier import (
    ClassifierConfig,
    low_level_features,
    train_classifier,
)

Distortion = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def standardised(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` with every column scaled to zero mean, unit variance over both."""
    both = np.concatenate([a, b])
    mean, std = both.mean(axis=0), both.std(axis=0)
    std[std < 1e-12] = 1.0
    return (a - mean) / std, (b - mean) / std


def distortions(shape: tuple[int, int, int], threshold: float) -> dict[str, Distortion]:
    """Named distortions of ``(N, V)`` showers; ``shape`` is ``(layers, alpha, r)``."""

    def rings(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), *shape)

    def rotate(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        k = rng.integers(shape[1], size=len(x))
        idx = (np.arange(shape[1])[None, :] - k[:, None]) % shape[1]  # (N, alpha)
        return np.take_along_axis(rings(x), idx[:, None, :, None], axis=2).reshape(x.shape)

    def lognormal(sigma: float) -> Distortion:
        return lambda x, rng: x * np.exp(sigma * rng.standard_normal(x.shape)).astype(x.dtype)

    return {
        "none (noise floor)": lambda x, rng: x,
        "voxel noise 5 %": lognormal(0.05),
        "voxel noise 20 %": lognormal(0.20),
        "drop voxels < 3 x threshold": lambda x, rng: np.where(x < 3 * threshold, 0, x),
        "drop voxels < 10 x threshold": lambda x, rng: np.where(x < 10 * threshold, 0, x),
        "random alpha rotation (symmetry)": rotate,
        "alpha-averaged rings": lambda x, rng: np.broadcast_to(
            rings(x).mean(axis=2, keepdims=True), (len(x), *shape)
        ).reshape(x.shape),
        "energy scale x 1.02": lambda x, rng: x * 1.02,
        "energy scale x 1.05": lambda x, rng: x * 1.05,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("--n", type=int, default=1000, help="showers per half")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--standardise", action="store_true", help="unit-variance inputs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    with ShowerFile(args.reference) as f:
        if f.n_events < 2 * args.n:
            parser.error(f"{args.reference}: {f.n_events} showers, need 2 x {args.n}")
        cond, showers = f.read()
        readout = f.readout
        threshold = float(
            f.provenance.get("detector_config", {}).get("readout", {}).get("threshold", 0.0)
        )
    if readout is None or not readout.is_regular:
        parser.error(f"{args.reference}: needs a regular (layer, alpha, r) readout")
    shape = readout.grid_shape
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(showers))
    a, b = order[: args.n], order[args.n : 2 * args.n]
    feat_a = low_level_features(showers[a], cond.energy[a])
    rows = []
    for name, distort in distortions(shape, threshold).items():
        distorted = distort(showers[b].astype(np.float32), np.random.default_rng(args.seed + 1))
        feat_b = low_level_features(distorted, cond.energy[b])
        if args.standardise:
            result = train_classifier(*standardised(feat_a, feat_b), ClassifierConfig())
        else:
            result = train_classifier(feat_a, feat_b, ClassifierConfig())
        rows.append({"distortion": name, "auc": result.auc})
        print(f"{name:36s} AUC {result.auc:.3f}")
    if args.out:
        summary = {"reference": str(args.reference), "n": args.n,
                   "standardise": args.standardise, "rows": rows}  # fmt: skip
        args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
