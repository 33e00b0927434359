"""Train every model family on one shower file; report training time, parameters and a first
fidelity figure against the held-out (validation-split) showers of the same file.

    .venv/bin/python benchmarks/train_families.py DATA.h5 --steps 5000 --out families.json

Fidelity here is deliberately simple (the full CaloChallenge suite is twinforge.validation):
the separation power of E_vis/E_inc, the mean response per energy bin, and the worst relative
deviation of the mean longitudinal (layer) profile. Run by hand; figures go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from twinforge.detector.readout import Readout
from twinforge.models import Surrogate
from twinforge.showers import ShowerFile
from twinforge.training.data import is_validation
from twinforge.training.train import TrainConfig, run_training
from twinforge.validation.metrics import histogram_separation

#: CPU-sized configurations (the defaults of each family are larger)
FAMILIES: dict[str, dict[str, Any]] = {
    "vae": {"latent_dim": 10, "hidden": [512, 256, 128]},
    "flow-matching": {"hidden": 512, "blocks": 4, "steps": 20, "solver": "midpoint"},
    "gan": {},
    "flow": {},
}


def held_out(path: Path, fraction: float, limit: int) -> tuple[np.ndarray, np.ndarray, Readout]:
    with ShowerFile(path) as f:
        cond, showers = f.read()
        readout = f.readout
    assert readout is not None
    val = is_validation(np.arange(len(cond)), fraction)
    idx = np.flatnonzero(val)[:limit]
    return cond.energy[idx], showers[idx], readout


def fidelity(
    energy: np.ndarray, real: np.ndarray, fake: np.ndarray, readout: Readout
) -> dict[str, Any]:
    r_real = real.sum(axis=1) / energy
    r_fake = fake.sum(axis=1) / energy
    lo, hi = np.quantile(r_real, [0.001, 0.999])
    bins = np.linspace(lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo), 51)
    edges = np.quantile(energy, [0, 0.25, 0.5, 0.75, 1.0])
    response = {}
    for a, b in itertools.pairwise(edges):
        sel = (energy >= a) & (energy <= b)
        response[f"{a / 1e3:.0f}-{b / 1e3:.0f} GeV"] = {
            "real_mean": float(r_real[sel].mean()), "fake_mean": float(r_fake[sel].mean()),
            "real_std": float(r_real[sel].std()), "fake_std": float(r_fake[sel].std()),
        }  # fmt: skip
    prof_real = readout.layer_energies(real).mean(axis=0)
    prof_fake = readout.layer_energies(fake).mean(axis=0)
    significant = prof_real > 0.01 * prof_real.max()
    deviation = np.abs(prof_fake - prof_real)[significant] / prof_real[significant]
    return {
        "sep_power_response": histogram_separation(r_real, r_fake, bins),
        "response": response,
        "layer_profile_max_rel_dev": float(deviation.max()),
        "layer_profile_mean_rel_dev": float(deviation.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--eval", type=int, default=2000, help="held-out showers to compare")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    energy, real, readout = held_out(args.data, 0.1, args.eval)
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "data": str(args.data),
        "steps": args.steps,
        "held_out_showers": len(energy),
        "families": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            config = TrainConfig.model_validate(
                {
                    "name": family,
                    "data": {"files": [str(args.data)]},
                    "model": {"family": family, "config": FAMILIES.get(family, {})},
                    "optim": {"max_steps": args.steps, "batch_size": args.batch_size},
                    "output": str(Path(tmp) / family),
                }
            )
            t0 = time.perf_counter()
            out = run_training(config, quiet=True)
            train_s = time.perf_counter() - t0
            surrogate = Surrogate.load(out)
            params = sum(p.numel() for p in surrogate.model.parameters())
            t0 = time.perf_counter()
            fake = surrogate.sample(energy, seed=1)
            sample_s = time.perf_counter() - t0
            entry = {
                "parameters": params,
                "train_seconds": train_s,
                "best_val_loss": surrogate.provenance.get("best_val_loss"),
                "sample_ms_per_shower": 1e3 * sample_s / len(energy),
                **fidelity(energy, real, fake, readout),
            }
            result["families"][family] = entry
            print(
                f"{family:14s} params {params / 1e6:6.2f} M  train {train_s:7.1f} s  "
                f"sep(E/Einc) {entry['sep_power_response']:.4f}  layer profile max dev "
                f"{entry['layer_profile_max_rel_dev']:.3f}",
                flush=True,
            )
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
