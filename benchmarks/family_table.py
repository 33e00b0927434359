"""Markdown table of trained models and their validation reports (for docs/benchmarks.md).

    .venv/bin/python benchmarks/family_table.py models/siw-electrons-{vae,gan,flow,flow-matching} \
        --reports reports/

For each model directory: family, parameters, training steps/epochs and wall time (from its
provenance), and, when ``REPORTS/<model name>/metrics.json`` exists (``twinforge validate
--model MODEL -o REPORTS/<model name>``), the classifier AUCs, FPD, KPD, separation of
E_tot/E_inc and the per-energy low-level AUC, each beside its Geant4-vs-Geant4 noise floor;
AUCs as the mean (min-max) over the classifier seeds.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from twinforge.models import Surrogate
from twinforge.validation.schema import ValidationMetrics, load_metrics


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def model_row(path: Path) -> dict[str, Any]:
    surrogate = Surrogate.load(path)
    prov = surrogate.provenance
    seconds = (
        dt.datetime.fromisoformat(prov["finished"]) - dt.datetime.fromisoformat(prov["started"])
    ).total_seconds()
    return {
        "name": path.name,
        "family": surrogate.family,
        "parameters": sum(p.numel() for p in surrogate.model.parameters()),
        "steps": prov.get("steps"),
        "epochs": prov.get("epochs"),
        "train_minutes": seconds / 60,
        "transform": surrogate.transform.kind,
    }


def report_cells(metrics: ValidationMetrics) -> dict[str, str]:
    """Table cells of one metrics.json: AUC mean (min-max over classifier seeds) and the floor
    in brackets, FPD/KPD with the floor, E_tot/E_inc separation, per-energy low-level AUC."""
    overall = metrics.overall
    floor = metrics.noise_floor.overall if metrics.noise_floor is not None else None

    def auc(key: str) -> str:
        block = getattr(overall, key)
        base = getattr(floor, key) if floor is not None else None
        if block is None:
            return "-"
        text = f"{_fmt(block.auc)} ({_fmt(block.auc_min)}-{_fmt(block.auc_max)})"
        if not block.comparable:
            text += " NOT COMPARABLE"
        return text + (f" [{_fmt(base.auc)}]" if base is not None else "")

    def dist(key: str) -> str:
        block = getattr(overall, key)
        base = getattr(floor, key) if floor is not None else None
        if block is None:
            return "-"
        return f"{_fmt(block.value)}" + (f" [{_fmt(base.value)}]" if base is not None else "")

    per_energy = ", ".join(
        f"{b.label.removeprefix('E ')}: "
        f"{_fmt(b.metrics.classifier_low.auc if b.metrics.classifier_low else None)}"
        for b in metrics.per_energy
    )
    sep = overall.separation.summary if overall.separation is not None else {}
    return {
        "auc_low": auc("classifier_low"),
        "auc_high": auc("classifier_high"),
        "fpd": dist("fpd"),
        "kpd": dist("kpd"),
        "sep_e_ratio": _fmt(sep.get("e_ratio")),
        "per_energy": per_energy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    args = parser.parse_args()
    print(
        "| model | family | parameters | steps (epochs) | training min | AUC low mean (min-max) "
        "[floor] | AUC high [floor] | FPD [floor] | KPD [floor] | sep. E_tot/E_inc |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    per_energy = []
    for path in args.models:
        row = model_row(path)
        metrics_file = args.reports / path.name / "metrics.json"
        cells = report_cells(load_metrics(metrics_file)) if metrics_file.exists() else {}
        print(
            f"| {row['name']} | {row['family']} ({row['transform']}) | "
            f"{row['parameters'] / 1e6:.2f} M | {row['steps']} ({row['epochs']}) | "
            f"{row['train_minutes']:.1f} | {cells.get('auc_low', '-')} | "
            f"{cells.get('auc_high', '-')} | {cells.get('fpd', '-')} | {cells.get('kpd', '-')} | "
            f"{cells.get('sep_e_ratio', '-')} |"
        )
        if cells.get("per_energy"):
            per_energy.append(f"- {row['name']}: {cells['per_energy']}")
    if per_energy:
        print("\nLow-level AUC per incident-energy bin:\n")
        print("\n".join(per_energy))


if __name__ == "__main__":
    main()
