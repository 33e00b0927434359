"""Print the model-operations studies' figures as the Markdown tables of docs/benchmarks.md.

    python benchmarks/model_ops/summarise.py WORKDIR

WORKDIR is where benchmarks/model_ops/run.sh ran. Each point's figure is quoted with the error
the suite gives it (the FPD's and KPD's bootstrap errors, from the point's metrics.json);
with several seeds, the median and the min-max over seeds.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

AXES = {"data": "training showers", "model": "parameters", "steps": "max steps"}


def _error(point_dir: Path, figure: str) -> float | None:
    metrics = json.loads((point_dir / "validation" / "metrics.json").read_text())
    entry = (metrics.get("overall") or {}).get(figure)
    return entry.get("error") if isinstance(entry, dict) else None


def _cell(values: list[float], errors: list[float | None]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        err = errors[0]
        return f"{values[0]:.4g}" + (f" ± {err:.2g}" if err is not None else "")
    return f"{statistics.median(values):.4g} [{min(values):.4g}, {max(values):.4g}]"


def scaling_tables(study: Path) -> str:
    summary = json.loads((study / "results.json").read_text())
    figures = summary["config"]["figures"]
    out = [f"#### {summary['study']}"]
    for axis, unit in AXES.items():
        rows = [r for r in summary["results"] if r["axis"] == axis]
        if not rows:
            continue
        x_of = {r["label"]: r["x"] for r in rows}
        labels = sorted(x_of, key=x_of.__getitem__)
        head = " | ".join(figures)
        out += ["", f"| {axis} | {unit} | {head} | training s | steps |",
                "|---|---:|" + "---:|" * len(figures) + "---:|---:|"]  # fmt: skip
        for label in labels:
            members = [r for r in rows if r["label"] == label]
            cells = []
            for f in figures:
                pairs = [(m["figures"][f], _error(study / "points" / m["id"], f))
                         for m in members if m["figures"].get(f) is not None]  # fmt: skip
                cells.append(_cell([p[0] for p in pairs], [p[1] for p in pairs]))
            seconds = statistics.median(m["train_seconds"] for m in members)
            steps = statistics.median(m["steps"] for m in members)
            out.append(f"| {label} | {members[0]['x']:.4g} | {' | '.join(cells)} | "
                       f"{seconds:.0f} | {steps:.0f} |")  # fmt: skip
    return "\n".join(out)


def main(workdir: Path) -> None:
    for study in sorted((workdir / "scaling").glob("*/results.json")):
        print(scaling_tables(study.parent), end="\n\n")
    for metrics in sorted((workdir / "auc").glob("*/metrics.json")):
        clf = json.loads(metrics.read_text())["overall"]["classifier_high"]
        print(f"auc_high {metrics.parent.name}: {clf['auc']:.4f} "
              f"[{clf['auc_min']:.3f}, {clf['auc_max']:.3f}]")  # fmt: skip
    for study in sorted((workdir / "studies").glob("*/study.json")):
        data = json.loads(study.read_text())
        print(f"#### study {study.parent.name}\n\n```\n{json.dumps(data, indent=1)[:3000]}\n```")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path())
