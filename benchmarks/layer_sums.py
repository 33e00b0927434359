"""How far a ``layers`` model's voxel fractions are from summing to one in each layer.

    .venv/bin/python benchmarks/layer_sums.py models/NAME REF.h5 --n 1000

The ``layers`` transform generates the layer energies and each voxel's fraction of its layer
separately; the inverse keeps the fractions whose energy reaches the readout threshold and
renormalises them to sum to one. For Geant4 the kept fractions sum to exactly one; a model
that misses the constraint gets every voxel of a layer rescaled by ``1 / sum`` on the way out.
This samples the model at the first ``--n`` conditions of ``REF.h5`` and prints the median and
16-84 % range of that sum per bin of generated layer energy (layers under 10 x threshold are
left out). Run by hand; figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch

from twinforge.models import Surrogate
from twinforge.showers import Conditions, ShowerFile

BINS_MEV = (0.0, 1.0, 10.0, 100.0, np.inf)  # of the generated layer energy


def kept_fraction_sums(
    surrogate: Surrogate, energy: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Generated layer energies (MeV) and the sums of their kept fractions, both
    ``(N, n_layers)``, for ``N`` incident energies (MeV)."""
    model, t = surrogate.model, surrogate.transform
    if t.kind != "layers":
        raise SystemExit(f"transform kind {t.kind!r}: only 'layers' models split the layer energy")
    c = torch.from_numpy(t.encode_conditions(Conditions.make(energy)))
    with torch.no_grad():
        features = model.decode(model.noise(len(energy), torch.Generator().manual_seed(seed)), c)
    y = features.numpy() * t.std + t.mean
    n_layers = t.n_layer_features
    layer = np.clip(np.exp(y[:, :n_layers]) - t.eps, 0, None) * (t.scale * energy[:, None])
    frac = np.clip((1 / (1 + np.exp(-y[:, n_layers:])) - t.eps) / (1 - 2 * t.eps), 0, None)
    frac = frac.reshape(len(y), n_layers, -1)  # equal layer sizes (checked by the caller)
    kept = frac * (frac * layer[:, :, None] >= t.threshold)
    return layer, kept.sum(axis=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("reference", type=Path, help="shower file whose conditions are sampled")
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    surrogate = Surrogate.load(args.model)
    t = surrogate.transform
    sizes = {b - a for a, b in itertools.pairwise(t.layer_offsets or []) if b > a}
    if len(sizes) != 1:
        raise SystemExit(f"{args.model}: needs layers of equal voxel count, got sizes {sizes}")
    with ShowerFile(args.reference) as f:
        cond, _ = f.read(0, min(args.n, f.n_events))
    layer, sums = kept_fraction_sums(surrogate, cond.energy.astype(np.float64))
    print(f"{args.model.name}: sum of the kept voxel fractions per layer (Geant4: 1)")
    print("layer energy MeV | layers | median | 16-84 %")
    for lo, hi in itertools.pairwise(BINS_MEV):
        sel = (layer >= max(lo, 10 * t.threshold)) & (layer < hi)
        if sel.any():
            q16, q50, q84 = np.percentile(sums[sel], [16, 50, 84])
            print(f"{lo:g}-{hi:g} | {sel.sum()} | {q50:.2f} | {q16:.2f}-{q84:.2f}")


if __name__ == "__main__":
    main()
