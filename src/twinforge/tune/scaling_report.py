"""The scaling study's report: one self-contained HTML file (figures inline as SVG, no script,
nothing loaded from the network): per axis, every figure against the axis (median over seeds,
min-max bars) and the training cost, then the table of every point."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

from twinforge import __version__
from twinforge.showers.io import atomic_write_text
from twinforge.tune.objective import FIGURES
from twinforge.tune.report import PAGE, _figure, _svg

__all__ = ["write_report"]


def write_report(summary: dict[str, Any], path: Path) -> Path:
    """Write the report of ``summary`` (the ``results.json`` mapping) to ``path`` atomically."""
    from twinforge.tune.scaling import AXES, summarise

    results = summary["results"]
    figures = summary["config"]["figures"]
    sections = [_intro(summary)]
    for axis, unit in AXES.items():
        if not any(r["axis"] == axis for r in results):
            continue
        svg = _axis_figure(results, axis, unit, figures, summarise)
        rows = {f: summarise(results, axis, f) for f in figures}
        sections.append(
            f"<h2>{_e(unit.capitalize())}</h2>"
            f'<figure><img alt="{_e(axis)}" src="data:image/svg+xml;base64,{svg}">'
            "<figcaption>Median over training seeds, bars from the lowest to the highest seed; "
            "grey: median training seconds (right axis).</figcaption></figure>"
            + _table(rows, figures)
        )
    if summary.get("failed"):
        items = "".join(
            f"<li><code>{_e(k)}</code>: {_e(v)}</li>" for k, v in summary["failed"].items()
        )
        sections.append(f"<h2>Failed points</h2><ul>{items}</ul>")
    page = PAGE.format(
        command="twinforge scale",
        title=_e(f"Scaling study {summary['study']}"),
        body="\n".join(sections),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=_e(__version__),
    )
    atomic_write_text(path, page)
    return path


def _intro(summary: dict[str, Any]) -> str:
    config, train = summary["config"], summary["train_config"]
    rows = [
        ("base training config", f"{train['model']['family']} {train['model'].get('config')}"),
        ("training files", ", ".join(train["data"]["files"])),
        ("reference", config["reference"]),
        ("figures", ", ".join(f"{f} ({FIGURES[f].description})" for f in config["figures"])),
        ("seeds", ", ".join(str(s) for s in config["seeds"])),
        ("points", f"{len(summary['results'])} done, {len(summary.get('failed') or {})} failed"),
        ("machine", summary["machine"].get("node") or ""),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="meta">{body}</table>'


def _axis_figure(
    results: list[dict[str, Any]], axis: str, unit: str, figures: list[str], summarise: Any
) -> str:
    from matplotlib.ticker import NullFormatter

    fig = _figure(width=4.2 * len(figures), height=3.4)
    axes = fig.subplots(1, len(figures), squeeze=False)[0]
    for ax, name in zip(axes, figures, strict=True):
        rows = [r for r in summarise(results, axis, name) if r["median"] is not None]
        if not rows:
            ax.set_title(f"{name}: no values")
            continue
        x = [r["x"] for r in rows]
        y = [r["median"] for r in rows]
        low = [r["median"] - r["min"] for r in rows]
        high = [r["max"] - r["median"] for r in rows]
        ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, color="#1f77b4")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # (2 x 10^2 3 x 10^2 ... overlap)
        ax.set_xticks(x, [f"{v:.3g}" for v in x])
        ax.set_xlabel(unit)
        ax.set_ylabel(name)
        if name.startswith("auc"):
            ax.axhline(0.5, color="#999", lw=0.8, ls=":")
        cost = ax.twinx()
        cost.plot(x, [r["train_seconds"] for r in rows], marker="s", color="#999", lw=1)
        cost.set_ylabel("training s", color="#777")
    return _svg(fig)


def _table(rows: dict[str, list[dict[str, Any]]], figures: list[str]) -> str:
    first = next(iter(rows.values()))
    head = "".join(f"<th>{_e(f)} median [min, max]</th>" for f in figures)
    lines = []
    for i, row in enumerate(first):
        cells = []
        for f in figures:
            r = rows[f][i]
            cells.append(
                f"<td>{_num(r['median'])} [{_num(r['min'])}, {_num(r['max'])}]</td>"
                if r["median"] is not None
                else "<td>-</td>"
            )
        lines.append(
            f"<tr><td>{_e(row['label'])}</td><td>{_num(row['x'])}</td>{''.join(cells)}"
            f"<td>{_num(row['train_seconds'])}</td><td>{row['n']}</td></tr>"
        )
    return (
        '<div class="scroll"><table class="grid"><tr><th>point</th><th>x</th>'
        f"{head}<th>training s (median)</th><th>seeds</th></tr>{''.join(lines)}</table></div>"
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
