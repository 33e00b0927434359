"""Fidelity against speed: classifier AUC against CPU time per shower, ours beside the published.

    .venv/bin/python benchmarks/pareto.py \
        --ours "flow=reports/flow/metrics.json@4.2" "vae-par04=reports/vae/metrics.json@0.036" \
        --geant4 "reports/flow/metrics.json@260" --out docs/figures/pareto.png

``--ours NAME=METRICS@MS``: a model's metrics.json (low-level AUC, mean and min-max over the
classifier seeds), or ``NAME=AUC[:MIN:MAX]@MS`` with the AUC as numbers, and its time per shower
in ms (CPU, 2 cores, batch 1000, from
``twinforge bench``). ``--geant4 METRICS@MS``: the Geant4 point, at its noise floor's AUC, with
our Geant4 time per shower (one core). Published CaloChallenge dataset-2 points
(``../shared/calochallenge/results/CaloChallenge_results_ds2.csv`` or ``--published``) are drawn
where they quote a CPU time (batch 10000, else 100). Prints the table; writes the figure
(log x). Our figures use the siw detector at 1-64 GeV, the published ones 1 GeV-1 TeV: the
protocol is the same, the values are not directly comparable.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from twinforge.validation.schema import load_metrics

_PUBLISHED = Path(__file__).parents[2] / "shared" / "calochallenge" / "results"


def _point(text: str) -> tuple[str, Path, float]:
    name, _, rest = text.rpartition("=") if "=" in text else ("Geant4", "", text)
    path, _, ms = rest.rpartition("@")
    return name, Path(path), float(ms)


def published(path: Path) -> list[tuple[str, float, float]]:
    """(name, low-level AUC, CPU ms per shower) of every row that quotes a CPU time."""
    out = []
    with path.open() as f:
        for row in csv.DictReader(f):
            auc = row.get("binary cls low") or ""
            ms = row.get("time CPU 10000") or row.get("time CPU 100") or ""
            try:
                auc_v, ms_v = float(auc), float(ms)
            except ValueError:
                continue
            if math.isfinite(auc_v) and math.isfinite(ms_v):
                out.append((row["submission name"], auc_v, ms_v))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", nargs="+", default=[], help="NAME=METRICS.json@MS")
    parser.add_argument("--geant4", help="METRICS.json@MS: the floor's AUC, Geant4's time")
    parser.add_argument(
        "--published", type=Path, default=_PUBLISHED / "CaloChallenge_results_ds2.csv"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    ours = []
    for text in args.ours:
        name, path, ms = _point(text)
        if path.suffix != ".json":  # AUC[:MIN:MAX] given as numbers
            values = [float(v) for v in str(path).split(":")]
            auc, lo, hi = (values * 3)[:3] if len(values) == 1 else values
            ours.append((name, auc, lo, hi, ms))
            continue
        low = load_metrics(path).overall.classifier_low
        if low is None or not low.comparable:
            raise SystemExit(f"{path}: no comparable low-level AUC")
        ours.append((name, low.auc, low.auc_min, low.auc_max, ms))
    g4 = None
    if args.geant4:
        _, path, ms = _point(args.geant4)
        floor = load_metrics(path).noise_floor
        if floor is None or floor.overall.classifier_low is None:
            raise SystemExit(f"{path}: no noise floor")
        low = floor.overall.classifier_low
        g4 = ("Geant4 (ours, floor)", low.auc, low.auc_min, low.auc_max, ms)
    pub = published(args.published) if args.published.exists() else []

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, auc, ms in pub:
        ax.scatter(ms, auc, color="0.55", marker="s", s=22)
        ax.annotate(
            name, (ms, auc), fontsize=7, color="0.35", xytext=(3, 2), textcoords="offset points"
        )
    for name, auc, lo, hi, ms in ours + ([g4] if g4 else []):
        color = "tab:green" if name.startswith("Geant4") else "tab:red"
        ax.errorbar(ms, auc, yerr=[[auc - lo], [hi - auc]], fmt="o", color=color, capsize=3)
        ax.annotate(
            name, (ms, auc), fontsize=8, color=color, xytext=(4, -10), textcoords="offset points"
        )
    ax.set_xscale("log")
    ax.set_xlabel("time per shower on a CPU [ms] (ours: 2 cores, batch 1000)")
    ax.set_ylabel("low-level classifier AUC (CaloChallenge protocol)")
    ax.set_ylim(0.45, 1.02)
    ax.axhline(0.5, color="0.8", lw=0.8)
    ax.set_title(
        "ours (red, siw 1-64 GeV, 10k test showers) vs CaloChallenge ds2 (grey)", fontsize=9
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print("| point | AUC low mean (min-max) | ms / shower (CPU) |\n|---|---:|---:|")
    for name, auc, lo, hi, ms in ours + ([g4] if g4 else []):
        print(f"| {name} | {auc:.3f} ({lo:.3f}-{hi:.3f}) | {ms:.3g} |")
    for name, auc, ms in pub:
        print(f"| {name} (published) | {auc:.3f} | {ms:.3g} |")


if __name__ == "__main__":
    main()
