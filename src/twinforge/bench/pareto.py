"""Fidelity against speed: the Pareto figure of low-level classifier AUC against CPU time per
shower, our models and Geant4 beside the published CaloChallenge points.

A model's point needs a bench result (``twinforge bench``: its time per shower) that carries a
low-level AUC (``twinforge bench --classifier METRICS.json``: the validation suite's metrics of
the model against an independent Geant4 test set). Its time is that of its fastest CPU
configuration at the given batch size (ms per shower); its training cost comes from the
model's provenance (:mod:`twinforge.training.cost`). Geant4 is drawn at AUC 0.5, the value of
Geant4 against itself by definition, at its CPU time per shower on one core (the mean over the
spectrum when the bench timed it, else at the fixed energy). The published points are the
CaloChallenge rows that quote a CPU time (batch 10000, else 100): other CPUs, other energies,
labelled so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinforge.errors import TwinforgeError

__all__ = [
    "ParetoPoint",
    "classifier_low",
    "geant4_point",
    "model_point",
    "pareto_table",
    "published_points",
    "write_pareto",
]


@dataclass(frozen=True)
class ParetoPoint:
    """One point of the figure: AUC (mean and min-max over classifier seeds) against CPU ms
    per shower. ``source`` is ``"ours"``, ``"geant4"`` or ``"published"``; ``note`` says how
    it was timed, ``training`` what its training cost (free text, may be empty)."""

    name: str
    auc: float
    auc_min: float
    auc_max: float
    ms: float
    source: str
    note: str = ""
    training: str = ""


def classifier_low(metrics: str | os.PathLike[str]) -> dict[str, Any]:
    """The low-level classifier result of a validation ``metrics.json``, for a bench result.

    Returns ``{"auc", "auc_min", "auc_max", "seeds", "budget", "n_test", "metrics"}``.

    Raises:
        TwinforgeError: the file is not a readable validation metrics file, or has no low-level
            classifier result of a comparable budget (the quick budget is not a fidelity
            figure).
    """
    from twinforge.validation.schema import load_metrics

    path = Path(metrics)
    low = load_metrics(path).overall.classifier_low  # a clear TwinforgeError when unreadable
    if low is None:
        raise TwinforgeError(f"{path}: no low-level classifier result")
    if not low.comparable:
        raise TwinforgeError(
            f"{path}: the low-level classifier ran on the {low.budget!r} budget, which is not "
            "comparable (use the challenge or converged budget)"
        )
    return {
        "auc": low.auc,
        "auc_min": low.auc_min,
        "auc_max": low.auc_max,
        "seeds": low.n_seeds,
        "budget": low.budget,
        "n_test": low.n_test,
        "metrics": str(path.resolve()),
    }


def _training(result: Mapping[str, Any]) -> str:
    cost = result.get("model", {}).get("training_cost") or {}
    if not cost:
        return ""
    parts = []
    if cost.get("core_hours"):
        parts.append(f"{cost['core_hours']:.2g} core-h")
    if cost.get("gpu_hours"):
        parts.append(f"{cost['gpu_hours']:.2g} GPU-h")
    return ", ".join(parts) + f", {cost.get('steps', 0)} steps"


def model_point(
    result: Mapping[str, Any], *, name: str | None = None, batch: int = 1000
) -> ParetoPoint | None:
    """The model of a bench result at its fastest CPU configuration for ``batch``; None
    without a low-level AUC or without a CPU timing at that batch size."""
    low = result.get("fidelity", {}).get("classifier_low")
    rows = [
        r for r in result.get("results", []) if r.get("device") == "cpu" and r["batch"] == batch
    ]
    if not low or not rows:
        return None
    best = min(rows, key=lambda r: r["median_ms_per_shower"])
    seeds = low.get("seeds")
    over = f"; AUC over {seeds} classifier seeds" if isinstance(seeds, int) else ""
    blocked = f", blocks of {best['block_size']}" if best.get("block_size") else ""
    model = result.get("model", {})
    return ParetoPoint(
        name=name or Path(str(model.get("path", "model"))).name,
        auc=float(low["auc"]),
        auc_min=float(low["auc_min"]),
        auc_max=float(low["auc_max"]),
        ms=float(best["median_ms_per_shower"]),
        source="ours",
        note=(
            f"{best['backend']} {best['precision']}{blocked}, batch {batch}, "
            f"{best['threads']} threads{over}"
        ),
        training=_training(result),
    )


def geant4_point(result: Mapping[str, Any]) -> ParetoPoint | None:
    """Geant4 of a bench result at AUC 0.5: CPU ms per shower on one core, the spectrum's
    mean when timed, else the fixed energy's median; None when Geant4 was not timed."""
    geant4 = result.get("geant4")
    if not geant4:
        return None
    spectrum = geant4.get("spectrum")
    if spectrum:
        ms = spectrum["mean_cpu_s_per_shower"] * 1e3
        note = (
            f"mean CPU over {spectrum['low_MeV'] / 1e3:g}-{spectrum['high_MeV'] / 1e3:g} GeV "
            f"({spectrum['scale']}), 1 core"
        )
    else:
        ms = geant4["median_cpu_s_per_shower"] * 1e3
        note = f"median CPU at {geant4['energy_MeV'] / 1e3:g} GeV, 1 core"
    return ParetoPoint(
        f"Geant4 ({geant4.get('detector', '')})", 0.5, 0.5, 0.5, ms, "geant4", note=note
    )


def published_points(dataset: str = "2") -> list[ParetoPoint]:
    """The CaloChallenge submissions of ``dataset`` that quote a low-level AUC and a CPU time
    (batch 10000, else 100); min-max is the published mean -/+ its standard deviation."""
    from twinforge.validation.published import load_published

    out = []
    for row in load_published(dataset):
        auc, std = row.get("auc_low"), row.get("auc_low_std") or 0.0
        batch, ms = 10000, row.get("time_cpu_10000_ms")
        if ms is None:
            batch, ms = 100, row.get("time_cpu_100_ms")
        if not isinstance(auc, float) or not isinstance(ms, float) or not math.isfinite(ms):
            continue
        assert isinstance(std, float)
        out.append(ParetoPoint(
            str(row["submission"]), auc, auc - std, auc + std, ms, "published",
            note=f"CaloChallenge dataset {dataset}, its CPU, batch {batch}",
        ))  # fmt: skip
    return out


def pareto_table(points: Sequence[ParetoPoint]) -> str:
    """A Markdown table of the points, fastest first within each source."""
    lines = [
        "| point | source | AUC low (ours: mean, min-max of the seeds; published: +- std) "
        "| CPU ms / shower | timed | training |",
        "|---|---|---:|---:|---|---|",
    ]
    order = {"ours": 0, "geant4": 1, "published": 2}
    for p in sorted(points, key=lambda p: (order.get(p.source, 3), p.ms)):
        lines.append(
            f"| {p.name} | {p.source} | {p.auc:.4f} ({p.auc_min:.4f}-{p.auc_max:.4f}) | "
            f"{p.ms:.3g} | {p.note} | {p.training or '-'} |"
        )
    return "\n".join(lines)


def write_pareto(
    points: Sequence[ParetoPoint], path: str | os.PathLike[str], *, title: str = ""
) -> Path:
    """PNG of AUC (linear) against CPU ms per shower (log): ours red with the min-max of the
    classifier seeds, Geant4 green, published grey squares. Written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from twinforge.showers.io import atomic_path

    if not points:
        raise TwinforgeError(f"{path}: no point to draw (no model with a low-level AUC)")
    fig = Figure(figsize=(8.0, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = {"ours": "tab:red", "geant4": "tab:green", "published": "0.5"}
    placed: list[float] = []  # our labels: one line lower per point of ours within a decade
    for p in points:
        colour = colours.get(p.source, "black")
        if p.source == "published":
            ax.scatter(p.ms, p.auc, color=colour, marker="s", s=22)
        else:
            ax.errorbar(
                p.ms, p.auc, yerr=[[p.auc - p.auc_min], [p.auc_max - p.auc]], fmt="o",
                color=colour, capsize=3,
            )  # fmt: skip
        offset = 2 if p.source == "published" else -10
        if p.source == "ours":
            offset -= 9 * sum(abs(math.log10(p.ms / ms)) < 1 for ms in placed)
            placed.append(p.ms)
        ax.annotate(
            p.name, (p.ms, p.auc), fontsize=7 if p.source == "published" else 8, color=colour,
            xytext=(4, offset), textcoords="offset points",
        )  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("CPU time per shower [ms] (ours: batch 1000, 2 threads; Geant4: 1 core)")
    ax.set_ylabel("low-level classifier AUC (CaloChallenge protocol)")
    ax.set_ylim(0.45, 1.02)
    ax.axhline(0.5, color="0.8", lw=0.8)
    ax.set_title(
        title
        or "ours (red) and Geant4 (green) on this machine; CaloChallenge ds2 (grey): "
        "other CPUs, 1 GeV-1 TeV",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return Path(path)
