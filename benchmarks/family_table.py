"""Markdown table of trained models and their validation reports (for docs/benchmarks.md).

    .venv/bin/python benchmarks/family_table.py models/siw-electrons-{vae,gan,flow,flow-matching} \
        --reports reports/

For each model directory: family, parameters, training steps/epochs and wall time (from its
provenance), and, when ``REPORTS/<model name>/metrics.json`` exists (``twinforge validate
--model MODEL -o REPORTS/<model name>``), the classifier AUCs, FPD, KPD, separation of
E_tot/E_inc and the per-energy low-level AUC, each beside its Geant4-vs-Geant4 noise floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from twinforge.models import Surrogate


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


def report_cells(metrics: dict[str, Any]) -> dict[str, str]:
    overall, floor = metrics["overall"], (metrics.get("noise_floor") or {}).get("overall", {})

    def pair(key: str, field: str = "auc", digits: int = 3) -> str:
        value = overall.get(key, {}).get(field)
        base = floor.get(key, {}).get(field)
        return f"{_fmt(value, digits)} ({_fmt(base, digits)})"

    per_energy = ", ".join(
        f"{b['label'].removeprefix('E ')}: {_fmt(b['metrics'].get('classifier_low', {}).get('auc'))}"  # noqa: E501
        for b in metrics.get("per_energy", [])
    )
    sep = overall.get("separation", {}).get("summary", {})
    return {
        "auc_low": pair("classifier_low"),
        "auc_high": pair("classifier_high"),
        "fpd": pair("fpd", "value"),
        "kpd": pair("kpd", "value"),
        "sep_e_ratio": _fmt(sep.get("e_ratio")),
        "per_energy": per_energy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    args = parser.parse_args()
    print(
        "| model | family | parameters | steps (epochs) | training min | AUC low (floor) "
        "| AUC high (floor) | FPD (floor) | KPD (floor) | sep. E_tot/E_inc |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    per_energy = []
    for path in args.models:
        row = model_row(path)
        metrics_file = args.reports / path.name / "metrics.json"
        cells = report_cells(json.loads(metrics_file.read_text())) if metrics_file.exists() else {}
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
