"""Error-against-simulations figures from benchmarks/active_learning.py's JSON files.

    .venv/bin/python benchmarks/plot_active_learning.py al-xsuite.json al-ishigami.json \
        --out docs/figures/

One PNG per problem: the surrogate's RMSE on the test grid against the simulations spent, the
median over seeds of each design with its min-max band, the targets and the noise floor.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

COLOURS = {"adaptive": "C3", "sobol": "C0", "random": "C7", "lhs": "C2"}


def figure(data: dict, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    designs = sorted({c["design"] for c in data["curves"]}, key=list(COLOURS).index)
    for design in designs:
        curves = [c for c in data["curves"] if c["design"] == design]
        n = np.asarray(curves[0]["n"])
        r = np.asarray([c["rmse"] for c in curves], dtype=float)
        ax.plot(n, np.nanmedian(r, axis=0), color=COLOURS[design],
                label=f"{design} (median of {len(curves)} seeds)")  # fmt: skip
        ax.fill_between(n, np.nanmin(r, axis=0), np.nanmax(r, axis=0), color=COLOURS[design],
                        alpha=0.2, lw=0)  # fmt: skip
    labels: dict[float, list[str]] = {}
    for label, value in data["targets"].items():  # targets held at 3 x the floor may coincide
        labels.setdefault(value, []).append(label)
    for value, names in labels.items():
        floor_bound = data["floor"] > 0 and np.isclose(value, 3 * data["floor"])
        text = "3 x the floor" if floor_bound else f"{', '.join(names)} of std"
        ax.axhline(value, color="k", ls="--", lw=0.8)
        ax.text(n[-1], value, f" target: {text}", va="bottom", ha="right", fontsize=7)
    if data["floor"] > 0:
        ax.axhline(data["floor"], color="k", ls=":", lw=0.8)
        ax.text(n[0], data["floor"], " test-grid noise floor", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("simulations")
    ax.set_ylabel(f"RMSE of {data['output']} on the test grid")
    ax.set_title(f"{data['problem']}: surrogate error against simulations", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / f"active-learning-{data['problem']}.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        print(figure(json.loads(path.read_text()), args.out))


if __name__ == "__main__":
    main()
