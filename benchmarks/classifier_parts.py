"""Which part of a shower a classifier uses to tell a generated sample from Geant4.

    .venv/bin/python benchmarks/classifier_parts.py REF.h5 GEN.h5 [--parts layers shapes rings]

Trains the suite's classifier (CaloChallenge network, :mod:`twinforge.validation.classifier`)
to convergence (``--epochs 30 --patience 5`` by default) on parts of the showers, each with
``log10(E_inc / MeV)`` in front:

* ``all``: the CaloChallenge low-level input, ``100 * voxels / E_inc``;
* ``layers``: the layer energies only, ``100 * E_layer / E_inc`` (the longitudinal profile);
* ``shapes``: each voxel's fraction of its layer's energy (the normalised shape, no energy);
* ``rings``: each ``(layer, r)`` ring's fraction of its layer (alpha summed).

A part whose AUC sits near the floor is modelled well; the one that stays high is where the
model's error lives. Both files need the same readout. Run by hand; figures go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from twinforge.detector.readout import Readout
from twinforge.errors import TwinforgeError
from twinforge.showers import ShowerFile
from twinforge.validation.classifier import ClassifierConfig, low_level_features, train_classifier

PARTS = ("all", "layers", "shapes", "rings")


def read(path: Path) -> tuple[NDArray[np.float64], NDArray[np.float32], Readout]:
    with ShowerFile(path) as f:
        cond, showers = f.read()
        readout = f.readout
    if readout is None:
        raise TwinforgeError(f"{path}: no binning in the file")
    return cond.energy.astype(np.float64), showers, readout


def part(name: str, energy: NDArray, showers: NDArray, readout: Readout) -> NDArray[np.float32]:
    """Classifier input ``(N, 1 + features)`` of one part (see the module docstring)."""
    if name == "all":
        return low_level_features(showers, energy)
    if name == "layers":
        values = 100.0 * readout.layer_energies(showers) / energy[:, None]
    else:  # per layer: (N, alpha, r) voxels, or (N, r) rings, over the layer's energy
        columns = []
        for layer in readout.split_layers(showers.astype(np.float64)):
            cells = layer.sum(axis=1) if name == "rings" else layer
            total = layer.sum(axis=(1, 2)).reshape(-1, *[1] * (cells.ndim - 1))
            frac = np.divide(cells, total, out=np.zeros_like(cells), where=total > 0)
            columns.append(frac.reshape(len(frac), -1))
        values = np.concatenate(columns, axis=1)
    return np.concatenate([np.log10(energy)[:, None], values], axis=1).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("generated", type=Path)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=["layers", "shapes", "rings"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        e_ref, s_ref, readout = read(args.reference)
        e_gen, s_gen, other = read(args.generated)
        if other != readout:
            raise TwinforgeError(f"{args.generated}: another readout than {args.reference}")
        config = ClassifierConfig(epochs=args.epochs, patience=args.patience, seed=args.seed)
        for name in args.parts:
            start = time.perf_counter()
            ref, gen = part(name, e_ref, s_ref, readout), part(name, e_gen, s_gen, readout)
            result = train_classifier(ref, gen, config)
            print(f"{name}: {ref.shape[1] - 1} inputs, AUC {result.auc:.3f} (best epoch "
                  f"{result.best_epoch} of {result.epochs_run}, "
                  f"{time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    except (TwinforgeError, ValueError) as exc:  # ValueError: too few showers to classify
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
