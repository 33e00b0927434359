"""Low-level classifier AUC of a generated sample over several classifier seeds and budgets.

    .venv/bin/python benchmarks/classifier_seeds.py REF.h5 GEN.h5 --seeds 0 1 2 3
    .venv/bin/python benchmarks/classifier_seeds.py REF.h5 GEN.h5 --epochs 30 --patience 5
    .venv/bin/python benchmarks/classifier_seeds.py REF.h5 GEN.h5 --standardise

One AUC of the suite's classifier (CaloChallenge protocol, :mod:`twinforge.validation.classifier`)
moves with the seed of its split and initialisation, and with its epoch budget; this script
measures both on whole files (no noise floor, no other metric), so a model's AUC is quoted as
a mean and spread. ``--standardise`` scales every input column to zero mean and unit variance
over both files first (not the CaloChallenge protocol; see ``classifier_sensitivity.py``, which
shows that the default classifier is blind without it). Run by hand; figures go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from classifier_sensitivity import standardised  # the script beside this one

from twinforge.showers import ShowerFile
from twinforge.validation.classifier import (
    ClassifierConfig,
    low_level_features,
    train_classifier,
)


def features(path: Path) -> np.ndarray:
    with ShowerFile(path) as f:
        cond, showers = f.read()
    return low_level_features(showers, cond.energy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("generated", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=ClassifierConfig().epochs)
    parser.add_argument("--patience", type=int, default=ClassifierConfig().patience)
    parser.add_argument("--standardise", action="store_true", help="unit-variance inputs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    ref, gen = features(args.reference), features(args.generated)
    if args.standardise:
        ref, gen = standardised(ref, gen)
    rows = []
    for seed in args.seeds:
        config = ClassifierConfig(seed=seed, epochs=args.epochs, patience=args.patience)
        start = time.perf_counter()
        result = train_classifier(ref, gen, config)
        rows.append({"seed": seed, **result.summary(), "seconds": time.perf_counter() - start})
        print(
            f"seed {seed}: AUC {result.auc:.3f} (best epoch {result.best_epoch} of "
            f"{result.epochs_run}, {rows[-1]['seconds']:.0f} s)"
        )
    aucs = np.array([r["auc"] for r in rows])
    print(f"AUC mean {aucs.mean():.3f}, min {aucs.min():.3f}, max {aucs.max():.3f}")
    if args.out:
        summary = {"reference": str(args.reference), "generated": str(args.generated),
                   "epochs": args.epochs, "patience": args.patience,
                   "standardise": args.standardise, "rows": rows}  # fmt: skip
        args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
