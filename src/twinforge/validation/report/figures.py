"""The report's matplotlib figures, each returned as base64 PNG text for a ``data:`` URI.

matplotlib and mplhep are imported inside the functions that draw, never when this module is
imported. Figures are built outside pyplot (no global state) in mplhep's HEP style, applied as
a context. Histograms: reference filled, generated as a line, with a generated/reference ratio
panel; normalised to unit sum, the first and last bins holding the under- and overflow.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from twinforge.validation.report._common import (
    NDASH,
    PER_LAYER,
    finite_float,
    fmt,
    fmt_energy,
    lookup,
    separation_values,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from twinforge.detector.readout import Readout
    from twinforge.validation.observables import Observables
    from twinforge.validation.report._common import ShowerSample

__all__ = [
    "e_ratio_figure",
    "energy_bins_figure",
    "mean_shower_figure",
    "per_layer_figure",
    "profiles_figure",
    "separation_per_layer_figure",
    "voxel_spectrum_figure",
]

REF_COLOUR: Final = "#9c9ca1"
REF_EDGE: Final = "#4d4d52"
GEN_COLOUR: Final = "#e42536"
_DPI: Final = 80
_MINUS: Final = "\N{MINUS SIGN}"
_RATIO_LO: Final = 0.5
_RATIO_HI: Final = 1.5


# ============================================================================ the figures
def e_ratio_figure(metrics: Mapping[str, Any], ref: Observables, gen: Observables) -> str:
    """E_tot / E_inc of all showers, one panel."""
    panel = _Panel(
        "All energies",
        "E_tot / E_inc",
        _finite(ref.e_ratio),
        _finite(gen.e_ratio),
        note=_separation_note(metrics, "e_ratio"),
    )
    return _small_multiples([panel], 1)


def energy_bins_figure(
    metrics: Mapping[str, Any], ref: Observables, gen: Observables
) -> str | None:
    """E_tot / E_inc per incident-energy bin of the metrics; None for a single bin."""
    panels = _energy_bin_panels(metrics, ref, gen)
    return _small_multiples(panels) if panels else None


def per_layer_figure(
    metrics: Mapping[str, Any],
    key: str,
    xlabel: str,
    ref_values: NDArray[np.floating],
    gen_values: NDArray[np.floating],
    layers: Sequence[int],
) -> str:
    """Histograms of the per-layer observable ``key`` (``(N, L)`` arrays), one panel a layer."""
    panels = [
        _Panel(
            f"layer {i}",
            xlabel,
            _column(ref_values, i),
            _column(gen_values, i),
            log_x=key == "layer_energy",
            fixed_range=(0.0, 1.0) if key == "sparsity" else None,
            note=_separation_note(metrics, key, layer=i),
        )
        for i in layers
    ]
    return _small_multiples(panels)


def voxel_spectrum_figure(
    metrics: Mapping[str, Any], reference: ShowerSample, generated: ShowerSample
) -> str:
    """The energy spectrum of non-zero voxels (MeV), log-log."""
    spectrum = _Panel(
        "All voxels",
        "voxel energy [MeV]",
        reference.voxel_energies,
        generated.voxel_energies,
        log_x=True,
        log_y=True,
        note=_separation_note(metrics, "voxel_spectrum"),
        ylabel="fraction of voxels",
    )
    return _small_multiples([spectrum], 1)


def profiles_figure(metrics: Mapping[str, Any], ref: Observables, gen: Observables) -> str:
    """Mean energy per layer and per radial bin, with generated/reference ratio panels."""
    n_layers = np.shape(ref.layer_energy)[1]
    profiles = [
        (
            "Longitudinal profile",
            "layer",
            np.arange(n_layers + 1) - 0.5,
            np.nanmean(ref.layer_energy, axis=0),
            np.nanmean(gen.layer_energy, axis=0),
            "",
        ),
        (
            "Radial profile",
            "r [mm]",
            np.asarray(ref.radial_edges, dtype=np.float64),
            np.nanmean(ref.radial, axis=0),
            np.nanmean(gen.radial, axis=0),
            _separation_note(metrics, "radial"),
        ),
    ]
    with _style():
        fig = _new_figure(11, 4.4)
        outer = fig.add_gridspec(1, 2, wspace=0.28, **_grid_margins(11, 4.4))
        for i, (title, xlabel, edges, m_ref, m_gen, note) in enumerate(profiles):
            inner = outer[0, i].subgridspec(2, 1, height_ratios=[3, 1], hspace=0)
            ax = fig.add_subplot(inner[0])
            ax_ratio = fig.add_subplot(inner[1], sharex=ax)
            ax.tick_params(labelbottom=False)
            _draw_profile(ax, ax_ratio, edges, np.nan_to_num(m_ref), np.nan_to_num(m_gen))
            ax.set_title(title, loc="left")
            if note:
                ax.text(0.97, 0.95, note, ha="right", va="top", transform=ax.transAxes)
            if i == 0:
                ax.legend(loc="upper right")
            ax_ratio.set_xlabel(xlabel)
        return _png(fig)


def separation_per_layer_figure(metrics: Mapping[str, Any]) -> str | None:
    """Separation power against layer for each per-layer observable, noise floor dashed."""
    overall = metrics.get("overall") or {}
    floor = lookup(metrics, "noise_floor", "overall")
    series = []
    for key, _, title in PER_LAYER:
        values = separation_values(overall, key)
        if values is not None and values.size > 1 and np.isfinite(values).any():
            series.append((title, values, separation_values(floor, key)))
    if not series:
        return None
    ncols = min(3, len(series))
    nrows = math.ceil(len(series) / ncols)
    width, height = 4.6 * ncols, 3.0 * nrows
    with _style():
        fig = _new_figure(width, height)
        grid = fig.add_gridspec(
            nrows, ncols, wspace=0.32, hspace=0.55, **_grid_margins(width, height)
        )
        for i, (title, values, floors) in enumerate(series):
            ax = fig.add_subplot(grid[i // ncols, i % ncols])
            layers = np.arange(values.size)
            ax.plot(
                layers,
                _positive(values),
                "o-",
                color=GEN_COLOUR,
                ms=3,
                label="gen vs ref",
            )
            if floors is not None and floors.size == values.size:
                ax.plot(layers, _positive(floors), "--", color=REF_EDGE, label="noise floor")
            ax.set_yscale("log")
            ax.set_title(title, loc="left")
            ax.set_xlabel("layer")
            ax.set_ylabel("separation power")
            if i == 0:
                ax.legend(loc="best")
        return _png(fig)


def mean_shower_figure(
    readout: Readout,
    layers: Sequence[int],
    ref_mean: NDArray[np.float64],
    gen_mean: NDArray[np.float64],
) -> tuple[str, float]:
    """Polar images of the mean showers (``(V,)``, MeV) in ``layers`` and the colour range of
    their relative differences (a fraction: 0.05 is ±5 %)."""
    images = _layer_images(readout, layers, ref_mean, gen_mean)
    diff_range = _diff_range(images)
    return _images_figure(images, diff_range), diff_range


# ============================================================================ style, output
@contextmanager
def _style() -> Iterator[None]:
    """mplhep's HEP look (ticks inside on all sides, minor ticks), sized for small multiples.

    Applied as a context: matplotlib's global settings are unchanged afterwards.
    """
    import matplotlib
    import mplhep

    overrides = {
        "font.size": 10,
        "axes.linewidth": 1.0,
        "xtick.major.size": 5,
        "ytick.major.size": 5,
        "xtick.minor.size": 2.5,
        "ytick.minor.size": 2.5,
        "xtick.major.pad": 3,
        "legend.fontsize": 9,
        "axes.titlesize": 10,
        "axes.titley": 1.0,  # fixed title position: the automatic one costs a layout pass
        "axes.titlepad": 3.0,
        "figure.dpi": _DPI,
        "savefig.dpi": _DPI,
        "axes.formatter.limits": (-3, 4),
        "xtick.minor.visible": False,
        "ytick.minor.visible": False,
    }
    with matplotlib.style.context([mplhep.style.CMS, overrides]):
        yield


def _new_figure(width: float, height: float) -> Figure:
    """A figure outside pyplot (no global state); layout by explicit grid margins, which is
    several times faster than matplotlib's constrained layout for dozens of axes."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _grid_margins(
    width: float,
    height: float,
    *,
    top: float = 0.35,
    bottom: float = 0.55,
    left: float = 0.75,
    right: float = 0.15,
) -> dict[str, float]:
    """``add_gridspec`` margins (figure fractions) for fixed margins in inches."""
    return {
        "left": left / width,
        "right": 1 - right / width,
        "top": 1 - top / height,
        "bottom": bottom / height,
    }


def _png(fig: Figure) -> str:
    """The figure as base64 PNG text."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, facecolor="white")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# ============================================================================ histograms
@dataclass
class _Panel:
    """One histogram panel: reference and generated values of one observable."""

    title: str
    xlabel: str
    reference: NDArray[np.float64]
    generated: NDArray[np.float64]
    log_x: bool = False
    log_y: bool = False
    note: str = ""
    fixed_range: tuple[float, float] | None = None
    ylabel: str = "fraction of showers"


def _edges(panel: _Panel) -> NDArray[np.float64] | None:
    """Common bin edges for both samples: robust range (0.1-99.9 % quantiles of each)."""
    ref, gen = panel.reference, panel.generated
    if panel.log_x:
        ref, gen = ref[ref > 0], gen[gen > 0]
    if ref.size == 0 and gen.size == 0:
        return None
    n_bins = int(np.clip(np.sqrt(max(min(ref.size or gen.size, gen.size or ref.size), 1)), 10, 50))
    if panel.fixed_range is not None:
        lo, hi = panel.fixed_range
    else:
        quantiles = [np.quantile(v, [0.001, 0.999]) for v in (ref, gen) if v.size]
        lo = float(min(q[0] for q in quantiles))
        hi = float(max(q[1] for q in quantiles))
    if panel.log_x:
        lo, hi = math.log10(lo), math.log10(hi)
    if not hi > lo:
        pad = 0.5 if lo == 0 else abs(lo) * 0.05
        lo, hi = lo - pad, hi + pad
    edges = np.linspace(lo, hi, n_bins + 1)
    return 10.0**edges if panel.log_x else edges


def _histogram(values: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.float64]:
    """Counts with under- and overflow folded into the first and last bins."""
    return np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0].astype(np.float64)


def _draw_panel(ax: Axes, ax_ratio: Axes, panel: _Panel, legend: bool) -> None:
    """Overlay reference (filled) and generated (line) with a generated/reference ratio below."""
    edges = _edges(panel)
    ax_ratio.set_xlabel(panel.xlabel)
    ax.set_title(panel.title, loc="left")
    if edges is None:
        ax.text(0.5, 0.5, "no entries", ha="center", va="center", transform=ax.transAxes)
        return
    ref_values, gen_values = panel.reference, panel.generated
    note = panel.note
    if panel.log_x:  # zeros have no place on a log axis: left out, their fraction quoted
        ref_values, gen_values = ref_values[ref_values > 0], gen_values[gen_values > 0]
        zero_ref = 1 - ref_values.size / max(panel.reference.size, 1)
        zero_gen = 1 - gen_values.size / max(panel.generated.size, 1)
        if zero_ref > 0 or zero_gen > 0:
            note = f"{note}\nzero: ref {zero_ref:.1%}, gen {zero_gen:.1%}".lstrip()
    h_ref, h_gen = _histogram(ref_values, edges), _histogram(gen_values, edges)
    # normalised to all entries, so that left-out zeros show as a missing fraction
    n_ref, n_gen = max(panel.reference.size, 1), max(panel.generated.size, 1)
    f_ref, f_gen = h_ref / n_ref, h_gen / n_gen
    ax.stairs(f_ref, edges, fill=True, color=REF_COLOUR, alpha=0.55, label="Reference")
    ax.stairs(f_ref, edges, color=REF_EDGE, linewidth=1.0)
    ax.stairs(f_gen, edges, color=GEN_COLOUR, linewidth=1.6, label="Generated")
    ax.set_ylabel(panel.ylabel)
    if panel.log_y:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, max(f_ref.max(), f_gen.max(), 1e-12) * 1.35)
    if note:
        ax.text(0.97, 0.95, note, ha="right", va="top", transform=ax.transAxes, fontsize=9)
    if legend:
        ax.legend(loc="lower left" if panel.log_y else "upper left")
    _draw_ratio(ax_ratio, edges, h_ref, h_gen, n_ref, n_gen, log=panel.log_x)
    if panel.log_x:
        ax.set_xscale("log")
        ax_ratio.set_xscale("log")
    ax.set_xlim(edges[0], edges[-1])


def _draw_ratio(
    ax: Axes,
    edges: NDArray[np.float64],
    h_ref: NDArray[np.float64],
    h_gen: NDArray[np.float64],
    n_ref: float,
    n_gen: float,
    *,
    log: bool = False,
) -> None:
    """Generated/reference ratio with statistical errors; grey band = reference's error."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (h_gen / n_gen) / (h_ref / n_ref)
        error = ratio * np.sqrt(1 / h_gen + 1 / h_ref)
        band = 1 / np.sqrt(h_ref)
    band = np.where(h_ref > 0, np.minimum(band, 1.0), np.nan)
    ax.fill_between(
        edges,
        np.append(1 - band, np.nan),
        np.append(1 + band, np.nan),
        step="post",
        color=REF_COLOUR,
        alpha=0.45,
        linewidth=0,
    )
    centres = _centres(edges, log=log)
    ok = np.isfinite(ratio) & (h_gen > 0)
    inside = ok & (ratio >= _RATIO_LO) & (ratio <= _RATIO_HI)
    ax.errorbar(
        centres[inside],
        ratio[inside],
        yerr=error[inside],
        fmt="o",
        color=GEN_COLOUR,
        markersize=2.5,
        elinewidth=1,
        capsize=0,
    )
    _ratio_frame(ax, centres, np.where(ok, ratio, np.nan))
    ax.set_xlim(edges[0], edges[-1])


def _centres(edges: NDArray[np.float64], *, log: bool) -> NDArray[np.float64]:
    """Bin centres (geometric on a log axis)."""
    if log:
        return np.sqrt(edges[1:] * edges[:-1])
    return 0.5 * (edges[1:] + edges[:-1])


def _ratio_frame(ax: Axes, centres: NDArray[np.float64], ratio: NDArray[np.float64]) -> None:
    """Fixed ratio range, a line at 1, triangles where a ratio lies outside the range."""
    above, below = ratio > _RATIO_HI, ratio < _RATIO_LO
    ax.plot(centres[above], np.full(above.sum(), _RATIO_HI - 0.05), "^", color=GEN_COLOUR, ms=4)
    ax.plot(centres[below], np.full(below.sum(), _RATIO_LO + 0.05), "v", color=GEN_COLOUR, ms=4)
    ax.axhline(1.0, color=REF_EDGE, linewidth=0.8)
    ax.set_ylim(_RATIO_LO, _RATIO_HI)
    ax.set_yticks([0.75, 1.0, 1.25])
    ax.set_ylabel("gen / ref")


def _small_multiples(panels: Sequence[_Panel], ncols: int = 3) -> str:
    """A grid of histogram panels, each with its ratio panel; returns base64 PNG."""
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    width, height = 4.6 * ncols, 3.9 * nrows
    with _style():
        fig = _new_figure(width, height)
        outer = fig.add_gridspec(
            nrows, ncols, wspace=0.32, hspace=0.42, **_grid_margins(width, height)
        )
        for i, panel in enumerate(panels):
            inner = outer[i // ncols, i % ncols].subgridspec(2, 1, height_ratios=[3, 1], hspace=0)
            ax = fig.add_subplot(inner[0])
            ax_ratio = fig.add_subplot(inner[1], sharex=ax)
            ax.tick_params(labelbottom=False)
            _draw_panel(ax, ax_ratio, panel, legend=i == 0)
        return _png(fig)


def _separation_note(
    metrics: Mapping[str, Any], key: str, layer: int | None = None, energy_bin: int | None = None
) -> str:
    """``S = value (floor f)`` for an observable (and layer or energy bin), '' when unknown."""
    if energy_bin is None:
        block = metrics.get("overall")
        floor = lookup(metrics, "noise_floor", "overall")
    else:
        block = lookup(metrics, "per_energy", energy_bin, "metrics")
        floor = lookup(metrics, "noise_floor", "per_energy", energy_bin, "metrics")
    values, floors = separation_values(block, key), separation_values(floor, key)
    index = 0 if layer is None else layer
    if values is None or index >= values.size or not np.isfinite(values[index]):
        return ""
    text = f"S = {fmt(values[index], 2)}"
    if floors is not None and index < floors.size and np.isfinite(floors[index]):
        text += f"\n(floor {fmt(floors[index], 2)})"
    return text


def _column(values: NDArray[np.floating], layer: int) -> NDArray[np.float64]:
    """Finite entries of column ``layer`` of an (N, L) array."""
    col = np.asarray(values, dtype=np.float64)[:, layer]
    return col[np.isfinite(col)]


def _finite(values: NDArray[np.floating]) -> NDArray[np.float64]:
    flat = np.asarray(values, dtype=np.float64).ravel()
    return flat[np.isfinite(flat)]


def _energy_bin_panels(
    metrics: Mapping[str, Any], ref: Observables, gen: Observables
) -> list[_Panel]:
    """E_tot/E_inc panels, one per energy bin of the metrics (empty for a single bin)."""
    bins = [b for b in metrics.get("per_energy") or [] if isinstance(b, Mapping)]
    if len(bins) < 2:
        return []
    panels = []
    for i, entry in enumerate(bins):
        lo, hi = (entry.get("energy_range_mev") or [None, None])[:2]
        if finite_float(lo) is None or finite_float(hi) is None:
            continue
        last = i == len(bins) - 1

        def select(obs: Observables, lo: float = lo, hi: float = hi, last: bool = last) -> Any:
            energy = np.asarray(obs.energy)
            mask = (energy >= lo) & ((energy <= hi) if last else (energy < hi))
            return _finite(np.asarray(obs.e_ratio)[mask])

        panels.append(
            _Panel(
                f"{fmt_energy(lo)} {NDASH} {fmt_energy(hi)}",
                "E_tot / E_inc",
                select(ref),
                select(gen),
                note=_separation_note(metrics, "e_ratio", energy_bin=i),
            )
        )
    return panels


def _draw_profile(
    ax: Axes,
    ax_ratio: Axes,
    edges: NDArray[np.float64],
    m_ref: NDArray[np.float64],
    m_gen: NDArray[np.float64],
) -> None:
    """Mean energy per bin (log y, five decades at most) and the generated/reference ratio."""
    ax.stairs(m_ref, edges, fill=True, color=REF_COLOUR, alpha=0.55, label="Reference")
    ax.stairs(m_ref, edges, color=REF_EDGE, linewidth=1.0)
    ax.stairs(m_gen, edges, color=GEN_COLOUR, linewidth=1.6, label="Generated")
    top = max(float(m_ref.max(initial=0)), float(m_gen.max(initial=0)))
    if top > 0:
        positive = np.concatenate([m_ref[m_ref > 0], m_gen[m_gen > 0]])
        ax.set_yscale("log")
        ax.set_ylim(max(float(positive.min()), top * 1e-5) / 1.5, top * 3)
    ax.set_ylabel("mean energy per shower [MeV]")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(m_ref > 0, m_gen / m_ref, np.nan)
    shown = np.where((ratio >= _RATIO_LO) & (ratio <= _RATIO_HI), ratio, np.nan)
    ax_ratio.stairs(shown, edges, color=GEN_COLOUR, linewidth=1.4, baseline=None)
    _ratio_frame(ax_ratio, _centres(edges, log=False), ratio)
    ax.set_xlim(edges[0], edges[-1])


def _positive(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """``values`` with zeros (both histograms empty or identical) as NaN, for a log axis."""
    return np.where(values > 0, values, np.nan)


# ============================================================================ mean showers
_Image = tuple[int, Any, NDArray[np.float64], NDArray[np.float64]]


def _layer_images(
    readout: Readout,
    layers: Sequence[int],
    ref_mean: NDArray[np.float64],
    gen_mean: NDArray[np.float64],
) -> list[_Image]:
    """``(layer, binning, ref (n_alpha, n_r), gen (n_alpha, n_r))`` of each layer, MeV."""
    images = []
    for i in layers:
        lo, hi = int(readout.offsets[i]), int(readout.offsets[i + 1])
        binning = readout.layers[i]
        shape = (binning.n_alpha, binning.n_r)
        images.append((i, binning, ref_mean[lo:hi].reshape(shape), gen_mean[lo:hi].reshape(shape)))
    return images


def _diff_range(images: Sequence[_Image]) -> float:
    """Colour range of the relative-difference images: a round number above the 75th
    percentile of |gen - ref| / ref over voxels holding at least 1 % of their layer's peak
    (noisy outer voxels then saturate instead of washing out the typical difference)."""
    rel = []
    for _, _, ref, gen in images:
        peak = float(ref.max(initial=0))
        if peak <= 0:
            continue
        keep = ref >= 1e-2 * peak
        rel.append(np.abs(gen[keep] - ref[keep]) / ref[keep])
    values = np.concatenate(rel) if rel else np.zeros(0)
    level = float(np.quantile(values, 0.75)) if values.size else 1.0
    return next((r for r in (0.02, 0.05, 0.1, 0.2, 0.5) if level <= r), 1.0)


def _fine_alpha(image: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Split each alpha bin of an ``(n_alpha, n_r)`` image into equal sub-bins (>= 64 in all).

    Polar meshes draw straight edges between their corners: a bin spanning the whole circle
    (``n_alpha = 1``) would vanish and coarse bins would look polygonal.
    """
    n_alpha = image.shape[0]
    k = max(1, math.ceil(64 / n_alpha))
    return np.linspace(-math.pi, math.pi, n_alpha * k + 1), np.repeat(image, k, axis=0)


def _images_figure(images: Sequence[_Image], diff_range: float) -> str:
    """Polar images of mean showers, two (reference, generated, difference) triples a row."""
    from matplotlib.colors import LogNorm, Normalize

    blocks = 2 if len(images) > 1 else 1
    nrows = math.ceil(len(images) / blocks)
    positive = np.concatenate([np.concatenate([r.ravel(), g.ravel()]) for _, _, r, g in images])
    positive = positive[positive > 0]
    vmax = float(positive.max()) if positive.size else 1.0
    vmin = max(float(positive.min()) if positive.size else 1e-6, vmax * 1e-6)
    norms = (LogNorm(vmin=vmin, vmax=vmax),) * 2 + (Normalize(-diff_range, diff_range),)
    cmaps = ("viridis", "viridis", "RdBu_r")
    width, height = 5.4 * blocks + 1.6, 2.1 * nrows + 0.3
    with _style():
        fig = _new_figure(width, height)
        margins = _grid_margins(width, height, top=0.3, bottom=0.1, left=0.1, right=1.5)
        grid = fig.add_gridspec(nrows, 3 * blocks, wspace=0.15, hspace=0.3, **margins)
        artists: list[Any] = [None, None, None]
        for k, (i, binning, ref_img, gen_img) in enumerate(images):
            row, col = divmod(k, blocks)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(ref_img > 0, (gen_img - ref_img) / ref_img, np.nan)
            shown = (
                np.where(ref_img > 0, ref_img, np.nan),
                np.where(gen_img > 0, gen_img, np.nan),
                rel,
            )
            titles = (f"layer {i}: reference", "generated", f"(gen {_MINUS} ref) / ref")
            for j in range(3):
                ax = fig.add_subplot(grid[row, 3 * col + j], projection="polar")
                alpha_edges, image = _fine_alpha(shown[j])
                artists[j] = ax.pcolormesh(
                    alpha_edges,
                    binning.r_edges,
                    np.ma.masked_invalid(image).T,
                    cmap=cmaps[j],
                    norm=norms[j],
                    shading="flat",
                )
                ax.set_title(titles[j], fontsize=9)
                ax.set_xticklabels([])
                ax.set_yticklabels([])
                ax.grid(False)
                ax.set_ylim(0, binning.r_edges[-1])
        bar_x, bar_h = margins["right"] + 0.25 / width, 0.5 * (margins["top"] - margins["bottom"])
        cax = fig.add_axes((bar_x, margins["bottom"] + bar_h * 1.1, 0.15 / width, bar_h * 0.9))
        fig.colorbar(artists[0], cax=cax, label="MeV per voxel")
        cax = fig.add_axes((bar_x, margins["bottom"], 0.15 / width, bar_h * 0.9))
        fig.colorbar(artists[2], cax=cax, label=f"(gen {_MINUS} ref) / ref")
        return _png(fig)
