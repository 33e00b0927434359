"""The pages' figures, as inline SVG: classifier AUC against time per shower (the comparison
page), and an adaptive campaign's predicted error against simulations (its landing page).

Drawn here rather than with matplotlib so that the pages are light, need no file and no
network, and scale. Models whose AUC comes from a budget that is not comparable (``quick``,
custom) are drawn hollow and say so in the legend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Point", "auc_speed_svg", "error_curve_svg"]


@dataclass(frozen=True)
class Point:
    """One model on the plot: time per shower (ms, > 0) and AUC (0.5 = indistinguishable)."""

    label: str
    ms_per_shower: float
    auc: float
    comparable: bool
    href: str | None = None


_W, _H = 680, 420
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 170, 30, 55


def _start(title: str) -> list[str]:
    """The opening of an SVG document of the pages' size, white, with its ``title``."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" '
        f'width="{_W}" height="{_H}" role="img" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
    ]


def _frame(plot_w: float, plot_h: float) -> str:
    """The plot area's border."""
    return (f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
            'stroke="#333"/>')  # fmt: skip


def _decades(values: Sequence[float]) -> tuple[int, int]:
    lo = math.floor(math.log10(min(values)))
    hi = math.ceil(math.log10(max(values)))
    return lo, max(hi, lo + 1)


def auc_speed_svg(points: Sequence[Point], *, geant4_ms: float | None = None, level: str) -> str:
    """An SVG document: AUC (``level`` classifier) against ms per shower (log scale).

    ``geant4_ms`` draws Geant4's time per shower as a vertical line (Geant4 against itself
    sits at AUC 0.5 by definition). With no point, the figure says there is nothing to plot.
    """
    xs = [p.ms_per_shower for p in points if p.ms_per_shower > 0]
    if geant4_ms:
        xs.append(geant4_ms)
    parts = _start(f"{level} classifier AUC against time per shower")
    if not xs:
        parts.append(
            f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle">no model has both a '
            "validation and a benchmark yet</text></svg>"
        )
        return "".join(parts)
    lo, hi = _decades(xs)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def sx(ms: float) -> float:
        return _LEFT + (math.log10(ms) - lo) / (hi - lo) * plot_w

    def sy(auc: float) -> float:
        return _TOP + (1.0 - min(max(auc, 0.5), 1.0)) / 0.5 * plot_h

    parts.append(_frame(plot_w, plot_h))
    for decade in range(lo, hi + 1):
        x = sx(10.0**decade)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + plot_h}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle">'
            f"{10.0**decade:g}</text>"
        )
    for tick in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        y = sy(tick)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:.1f}</text>'
        )
    parts.append(
        f'<text x="{_LEFT + plot_w / 2}" y="{_H - 12}" text-anchor="middle">'
        "time per shower [ms] (log scale)</text>"
        f'<text transform="translate(18 {_TOP + plot_h / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(level)} classifier AUC</text>'
    )
    if geant4_ms:
        x = sx(geant4_ms)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + plot_h}" stroke="#000" '
            f'stroke-dasharray="5 4"/><text x="{x + 4:.1f}" y="{_TOP + 14}">Geant4</text>'
        )
    for p in points:
        if p.ms_per_shower <= 0:
            continue
        x, y = sx(p.ms_per_shower), sy(p.auc)
        fill = "#1f77b4" if p.comparable else "white"
        dot = (
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{fill}" stroke="#1f77b4" '
            f'stroke-width="2"><title>{escape(p.label)}: AUC {p.auc:.3f}, '
            f"{p.ms_per_shower:.3g} ms/shower</title></circle>"
            f'<text x="{x + 9:.1f}" y="{y + 4:.1f}">{escape(p.label)}</text>'
        )
        parts.append(f'<a href="{escape(p.href)}">{dot}</a>' if p.href else dot)
    lx = _LEFT + plot_w + 14
    parts.append(
        f'<circle cx="{lx}" cy="{_TOP + 10}" r="6" fill="#1f77b4" stroke="#1f77b4"/>'
        f'<text x="{lx + 10}" y="{_TOP + 14}">comparable budget</text>'
        f'<circle cx="{lx}" cy="{_TOP + 32}" r="6" fill="white" stroke="#1f77b4" '
        'stroke-width="2"/>'
        f'<text x="{lx + 10}" y="{_TOP + 36}">quick/custom budget:</text>'
        f'<text x="{lx + 10}" y="{_TOP + 50}">not comparable</text>'
        f'<text x="{lx - 6}" y="{_TOP + 74}">lower-left is better</text>'
        "</svg>"
    )
    return "".join(parts)


_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def error_curve_svg(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    targets: Mapping[str, float] | None = None,
) -> str:
    """An SVG document: per output, the surrogate's predicted RMSE (log scale) against the
    simulations done (:func:`twinforge.campaign.figures.error_curve`), with each output's
    ``targets`` (the campaign's stop rule) as a dashed line of its colour."""
    targets = dict(targets or {})
    values = [e for _, errs in curves.values() for e in errs if e > 0]
    values += [t for name, t in targets.items() if name in curves and t > 0]
    counts = [n for ns, _ in curves.values() for n in ns]
    parts = _start("predicted RMSE against simulations")
    if not values or not counts:
        parts.append(f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle">no predicted '
                     "error recorded yet</text></svg>")  # fmt: skip
        return "".join(parts)
    lo, hi = _decades(values)
    n_max = max(max(counts), 1)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def sx(n: float) -> float:
        return _LEFT + n / n_max * plot_w

    def sy(err: float) -> float:
        return _TOP + (hi - math.log10(err)) / (hi - lo) * plot_h

    parts.append(_frame(plot_w, plot_h))
    for decade in range(lo, hi + 1):
        y = sy(10.0**decade)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{10.0**decade:g}</text>'
        )
    for i in range(5):
        n = n_max * i / 4
        parts.append(f'<text x="{sx(n):.1f}" y="{_TOP + plot_h + 16}" '
                     f'text-anchor="middle">{n:.0f}</text>')  # fmt: skip
    parts.append(
        f'<text x="{_LEFT + plot_w / 2}" y="{_H - 12}" text-anchor="middle">'
        "simulations done</text>"
        f'<text transform="translate(18 {_TOP + plot_h / 2}) rotate(-90)" '
        'text-anchor="middle">predicted RMSE (log scale)</text>'
    )
    lx = _LEFT + plot_w + 14
    for i, (name, (ns, errs)) in enumerate(curves.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        points = " ".join(f"{sx(n):.1f},{sy(e):.1f}" for n, e in zip(ns, errs, strict=True)
                          if e > 0)  # fmt: skip
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                     'stroke-width="2"/>')  # fmt: skip
        if name in targets and targets[name] > 0:
            y = sy(targets[name])
            parts.append(
                f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" '
                f'stroke="{colour}" stroke-dasharray="5 4"><title>target of {escape(name)}: '
                f"{targets[name]:.3g}</title></line>"
            )
        last = f"{errs[-1]:.3g} after {ns[-1]:.0f}" if len(errs) else ""
        y = _TOP + 14 + 36 * i
        parts.append(
            f'<line x1="{lx - 8}" y1="{y - 4}" x2="{lx + 8}" y2="{y - 4}" stroke="{colour}" '
            f'stroke-width="2"/><text x="{lx + 12}" y="{y}">{escape(name)}</text>'
            f'<text x="{lx + 12}" y="{y + 14}" class="muted">{escape(last)}</text>'
        )
    if targets:
        y = _TOP + 14 + 36 * len(curves)
        parts.append(
            f'<line x1="{lx - 8}" y1="{y - 4}" x2="{lx + 8}" y2="{y - 4}" stroke="#333" '
            f'stroke-dasharray="5 4"/><text x="{lx + 12}" y="{y}">stop target</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
