"""Training throughput of 1 against 2 CPU processes (DDP, gloo) at the same global batch.

    .venv/bin/python benchmarks/train_throughput.py [--processes 1,2] [--epochs 6] \
        [--detector siw --events 4000] [--batch-size 256] [--hidden 512,256] [--out t.json]

Writes a synthetic shower file (``--detector``, ``--events``) into ``--workdir``, then for each
process count N runs ``twinforge``'s training (``run_training``, strategy ``ddp``: this script
runs again for every other process, in ``--run N`` mode) of a VAE for ``--epochs`` epochs at
global batch ``--batch-size`` (each process takes batch / N of every batch), each N in a fresh
interpreter. A callback on the first process times the training part of every epoch (first
batch to the start of validation: reading, the step, the gradient exchange) and counts its
showers (x N). The first epoch reads the file and fills the cache and is left out as warm-up;
the table gives the median showers/s of the others, their spread (min-max) and the speed-up
over one process. Torch threads: Lightning gives each process cores // N, unless
OMP_NUM_THREADS is set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L


class EpochTimer(L.Callback):
    """Times the training batches of each epoch on the first process; writes them as JSON."""

    def __init__(self, out: Path, world: int) -> None:
        self.out, self.world = out, world
        self.epochs: list[dict[str, float]] = []
        self._start: float | None = None
        self._showers = 0

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, idx: int) -> None:
        if self._start is None:
            self._start, self._showers = time.perf_counter(), 0
        self._showers += len(batch[0]) * self.world

    def on_validation_start(self, trainer: Any, module: Any) -> None:
        if self._start is not None:
            seconds = time.perf_counter() - self._start
            self.epochs.append({"seconds": seconds, "showers": self._showers})
            self._start = None

    def on_fit_end(self, trainer: Any, module: Any) -> None:
        if trainer.is_global_zero:
            import torch

            info = {"processes": self.world, "threads": torch.get_num_threads(),
                    "epochs": self.epochs}  # fmt: skip
            self.out.write_text(json.dumps(info, indent=1))


def run(args: argparse.Namespace) -> None:
    """``--run N``: one training with N processes (every process runs this)."""
    from twinforge.training.distributed import DistributedSpec
    from twinforge.training.train import TrainConfig, run_training

    n = args.run
    work = Path(args.workdir)
    config = TrainConfig.model_validate(
        {
            "name": f"throughput-{n}",
            "data": {"files": [str(work / "showers.h5")], "chunk_events": 2000},
            "model": {"family": "vae", "config": {"latent_dim": 10, "hidden": args.hidden}},
            # no early stop, no step limit before --epochs epochs
            "optim": {"batch_size": args.batch_size, "max_epochs": args.epochs,
                      "max_steps": 10**6, "patience": 10**6},
            "output": str(work / f"model-{n}"),
        }
    )  # fmt: skip
    spec = DistributedSpec(devices=n, strategy="ddp" if n > 1 else "auto", accelerator="cpu")
    timer = EpochTimer(work / f"times-{n}.json", n)
    run_training(config, quiet=True, overwrite=True, callbacks=[timer], distributed=spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,2", help="process counts to compare")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run (first: warm-up)")
    parser.add_argument("--detector", default="siw", help="synthetic detector preset")
    parser.add_argument("--events", type=int, default=4000, help="showers in the file")
    parser.add_argument("--batch-size", type=int, default=256, help="global batch")
    parser.add_argument("--hidden", default="512,256", help="VAE hidden layer widths")
    parser.add_argument("--workdir", default="benchmark-train-throughput")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)  # one run (internal)
    args = parser.parse_args()
    args.hidden = [int(h) for h in str(args.hidden).split(",")]
    if args.run is not None:
        run(args)
        return
    from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file

    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = work / "showers.h5"
    if not data.exists():
        synthetic = SyntheticConfig(detector=args.detector, n_events=args.events, seed=7)
        write_synthetic_file(synthetic, data)
    results = []
    for n in [int(p) for p in args.processes.split(",")]:
        for old in work.glob(f"model-{n}*"):  # no resume from an earlier run
            subprocess.run(["rm", "-rf", str(old)], check=True)
        started = time.perf_counter()
        command = [sys.executable, str(Path(__file__).resolve()), "--run", str(n),
                   "--workdir", str(work), "--epochs", str(args.epochs), "--batch-size",
                   str(args.batch_size), "--hidden", ",".join(map(str, args.hidden))]  # fmt: skip
        subprocess.run(command, check=True, env={**os.environ})
        wall = time.perf_counter() - started
        info = json.loads((work / f"times-{n}.json").read_text())
        rates = [e["showers"] / e["seconds"] for e in info["epochs"][1:]]  # after warm-up
        results.append({**info, "wall_seconds": wall, "rates": rates,
                        "median": statistics.median(rates)})  # fmt: skip
    base = results[0]["median"]
    print(f"VAE hidden {args.hidden}, {args.detector} ({args.events} showers), global batch "
          f"{args.batch_size}, {len(os.sched_getaffinity(0))} core(s)")  # fmt: skip
    print(f"{'processes':>9} {'threads':>7} {'showers/s':>10} {'min-max':>15} {'speed-up':>8} "
          f"{'wall s':>7}")  # fmt: skip
    for r in results:
        spread = f"{min(r['rates']):.0f}-{max(r['rates']):.0f}"
        print(f"{r['processes']:>9} {r['threads']:>7} {r['median']:>10.0f} {spread:>15} "
              f"{r['median'] / base:>8.2f} {r['wall_seconds']:>7.1f}")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
