"""How far a ``layers`` model's voxel fractions are from summing to one in each layer.

    .venv/bin/python benchmarks/layer_sums.py models/NAME REF.h5 --n 1000

The ``layers`` transform generates the layer energies and each voxel's fraction of its layer
separately; the inverse keeps the fractions whose energy reaches the readout threshold and
renormalises them to sum to one (:meth:`ShowerTransform.layer_sums_torch`). For Geant4 the
kept fractions sum to exactly one; a model that misses the constraint gets every voxel of a
layer rescaled by ``1 / sum`` on the way out. This samples the model at the first ``--n``
conditions of ``REF.h5`` and prints the median and 16-84 % range of that sum per bin of
generated layer energy (layers under 10 x threshold are left out). Run by hand; figures go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch

from twinforge.errors import TwinforgeError
from twinforge.models import Surrogate
from twinforge.showers import ShowerFile

BINS_MEV = (0.0, 1.0, 10.0, 100.0, np.inf)  # of the generated layer energy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("reference", type=Path, help="shower file whose conditions are sampled")
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    try:
        surrogate = Surrogate.load(args.model)
        with ShowerFile(args.reference) as f:
            cond, _ = f.read(0, min(args.n, f.n_events))
        model, t = surrogate.model, surrogate.transform
        c = torch.from_numpy(t.encode_conditions(cond))
        with torch.no_grad():
            z = model.noise(len(c), torch.Generator().manual_seed(0))
            layer, sums = t.layer_sums_torch(
                model.decode(z, c), torch.tensor(cond.energy, dtype=torch.float32)
            )
    except TwinforgeError as exc:
        raise SystemExit(f"error: {exc}") from None
    layer, sums = layer.numpy(), sums.numpy()
    print(f"{args.model.name}: sum of the kept voxel fractions per layer (Geant4: 1)")
    print("layer energy MeV | layers | median | 16-84 %")
    for lo, hi in itertools.pairwise(BINS_MEV):
        sel = (layer >= max(lo, 10 * t.threshold)) & (layer < hi)
        if sel.any():
            q16, q50, q84 = np.percentile(sums[sel], [16, 50, 84])
            print(f"{lo:g}-{hi:g} | {sel.sum()} | {q50:.2f} | {q16:.2f}-{q84:.2f}")


if __name__ == "__main__":
    main()
