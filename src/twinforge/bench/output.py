"""Storing a benchmark result: JSON, a plot of time per shower against batch size, and an
evaluation record in the catalogue."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from twinforge._json import json_default

__all__ = ["register", "write_json", "write_plot"]


def write_json(result: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``result`` as indented JSON at ``path`` atomically; return the path."""
    from twinforge.showers.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=json_default) + "\n")
    return Path(path)


def write_plot(result: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """PNG of time per shower (ms) vs batch size, log-log, one line per backend / precision /
    device with its 16-84 % band as error bars, Geant4 as a horizontal line (and its mean over
    the spectrum as a dotted one, when timed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    from twinforge.showers.io import atomic_path, check_writable_target

    final = Path(path)
    check_writable_target(final, overwrite=True)  # before the figure is drawn
    fig = Figure(figsize=(9.0, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    series: dict[str, list[Mapping[str, Any]]] = {}
    for row in result.get("results", []):
        blocks = f" blocks of {row['block_size']}" if row.get("block_size") else ""
        key = (
            f"{row['backend']} {row['precision']} {row['device']}{blocks} "
            f"({row['threads']} threads)"
        )
        series.setdefault(key, []).append(row)
    for label, rows in series.items():
        rows = sorted(rows, key=lambda r: r["batch"])
        x = np.array([r["batch"] for r in rows], dtype=float)
        y = np.array([r["median_ms_per_shower"] for r in rows])
        lo = y - np.array([r["p16_ms_per_shower"] for r in rows])
        hi = np.array([r["p84_ms_per_shower"] for r in rows]) - y
        ax.errorbar(x, y, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], marker="o", capsize=3,
                    label=label)  # fmt: skip
    geant4 = result.get("geant4")
    if geant4:
        ax.axhline(
            geant4["median_s_per_shower"] * 1e3, color="black", linestyle="--",
            label=f"Geant4 ({geant4.get('physics', '')}, 1 thread, {geant4['n']} showers)",
        )  # fmt: skip
        spectrum = geant4.get("spectrum")
        if spectrum:
            ax.axhline(
                spectrum["mean_cpu_s_per_shower"] * 1e3, color="black", linestyle=":",
                label=f"Geant4, mean over {spectrum['low_MeV'] / 1e3:g}-"
                f"{spectrum['high_MeV'] / 1e3:g} GeV (log-uniform, {spectrum['n']} showers)",
            )  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    batches = sorted({int(r["batch"]) for r in result.get("results", [])})
    if batches:
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("batch size (showers per call)")
    ax.set_ylabel("time per shower [ms]")
    model = result.get("model", {})
    cond = result.get("conditions", {})
    cpu = result.get("machine", {}).get("cpu_model", "")
    ax.set_title(
        f"{model.get('family', '')} model, {cond.get('energy_MeV', 0) / 1e3:g} GeV, pdg "
        f"{cond.get('pdg', '')}\n{cpu}",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes
    with atomic_path(final) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return final


def register(
    catalog: Any,
    result: Mapping[str, Any],
    *,
    files: Iterable[str | os.PathLike[str]] = (),
    mlflow: Mapping[str, str] | None = None,
) -> Any:
    """Record ``result`` as an evaluation in ``catalog`` (a :class:`~twinforge.catalog.Catalog`).

    Linked to the model record whose path is the benchmarked model's, when there is one; the
    metrics are the timings, Geant4 and fidelity; the provenance holds the machine, the
    settings, the conditions and ``mlflow`` (the MLflow run,
    :meth:`twinforge.tracking.TrackedRun.link`) when given; ``files`` (the JSON, the plot) are
    checksummed with it.
    """
    model = result.get("model", {})
    model_path = str(model.get("path", ""))
    model_id = None
    for record in catalog.list("models"):
        if record.path and Path(record.path).resolve() == Path(model_path).resolve():
            model_id = record.global_id
    machine = result.get("machine", {})
    metrics = {
        "results": result.get("results", []),
        "geant4": result.get("geant4"),
        "fidelity": result.get("fidelity", {}),
        "skipped": result.get("skipped", []),
    }
    provenance = {
        "kind": "benchmark",
        "schema": f"{result.get('schema')} v{result.get('schema_version')}",
        "date": result.get("date"),
        "model": model,
        "conditions": result.get("conditions", {}),
        "settings": result.get("settings", {}),
        "machine": machine,
    }
    if mlflow is not None:
        provenance["mlflow"] = dict(mlflow)
    description = (
        f"benchmark of the {model.get('family', '?')} model {model_path} on "
        f"{machine.get('cpu_model', '?')} ({result.get('settings', {}).get('threads')} threads)"
    )
    clean = json.loads(json.dumps({"m": metrics, "p": provenance}, default=json_default))
    return catalog.add_evaluation(
        model_id=model_id,
        metrics=clean["m"],
        description=description,
        provenance=clean["p"],
        files=[str(f) for f in files],
    )
