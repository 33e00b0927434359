"""Seconds per training step of the shipped flow configs on this machine, from the cost record
each model now carries (docs/benchmarks.md, "The fidelity run"):

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/fidelity/step_cost.py TRAIN.h5 [--minutes 4]

TRAIN.h5: a siw training file (the 3000-shower set of ``benchmarks/model_ops/siw-train.yaml``).
Each config of ``examples/train`` named below trains on it for ``--minutes`` (its own data and
time budget replaced; everything else as shipped) in a fresh directory; the table gives steps,
wall seconds and seconds per step (validation passes included: a few per cent).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from twinforge.models import Surrogate

CONFIGS = ("flow-layerwise.yaml", "flow.yaml")
EXAMPLES = Path(__file__).parents[2] / "examples" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    args = parser.parse_args()
    if not args.train.is_file():
        raise SystemExit(f"{args.train}: no such shower file")
    print("| config | steps | wall s | s per step | threads |\n|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            config = yaml.safe_load((EXAMPLES / name).read_text())
            config["data"]["files"] = [str(args.train.resolve())]
            config["optim"]["max_minutes"] = args.minutes
            config["output"] = f"{tmp}/{{name}}"
            path = Path(tmp) / name
            path.write_text(yaml.safe_dump(config))
            cmd = [sys.executable, "-c", "from twinforge.cli import main; main()", "-q", "train",
                   str(path), "-c", f"{tmp}/catalog.sqlite", "--no-tracking"]  # fmt: skip
            subprocess.run(cmd, check=True)
            cost = Surrogate.load(Path(tmp) / config["name"]).provenance["cost"]
            threads = cost["hardware"][0].get("threads")
            print(f"| {name} | {cost['steps']} | {cost['wall_s']:.0f} | "
                  f"{cost['wall_s'] / max(cost['steps'], 1):.2f} | {threads} |")  # fmt: skip


if __name__ == "__main__":
    main()
