"""The validation report: ``metrics.json`` and a self-contained ``report.html``.

The HTML page needs no network and no other file: every figure is a PNG embedded as a
``data:`` URI, the style sheet and a three-line script (it counts the images that loaded, for the
headless-browser test) are inline. Sections, top to bottom:

1. Summary: classifier AUCs (low-level voxels, high-level observables), FPD and KPD with their
   errors, each next to its *noise floor* (the same metric between two halves of the reference).
2. Warnings and metrics that could not be computed, with the reason.
3. Per incident-energy bin: the same metrics, plus the separation power of E_tot/E_inc.
4. Separation powers of every observable (overall, worst layer) and per layer.
5. Published CaloChallenge 2022 numbers for the same readout, when the readout is one of the
   challenge's (:mod:`twinforge.validation.published`).
6. Histograms, reference filled, generated as a line, with a generated/reference ratio panel:
   E_tot/E_inc (all energies and per energy bin), energy per layer, centres and widths of energy
   in x and y per layer, sparsity per layer, the voxel energy spectrum, and the longitudinal and
   radial profiles. Histograms are normalised to unit sum; the first and last bins hold the
   under- and overflow; the separation power quoted on a panel is the metric's own number
   (computed on the metric's binning), its noise floor in brackets.
7. Average shower per layer (polar r-alpha images) for reference and generated, and their
   relative difference.
8. Provenance of both inputs, the configuration and the timings (collapsible).

Readouts with many layers show a selection of layers in the per-layer figures: every k-th
non-empty layer with k = ceil(n / 9), starting at the first (every 5th for the 45 layers of
CaloChallenge dataset 2). Tables always cover every layer.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from twinforge import __version__
from twinforge._json import json_default
from twinforge.detector.readout import Readout
from twinforge.showers.io import commit, temporary_name

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from twinforge.validation.observables import Observables
    from twinforge.validation.suite import ValidationResult

__all__ = [
    "MAX_LAYER_PANELS",
    "ShowerSample",
    "headline_metrics",
    "render_report",
    "select_layers",
    "write_report",
]

log = logging.getLogger(__name__)

MAX_LAYER_PANELS: Final = 9
"""At most this many layers in a per-layer figure (tables list them all)."""

REF_COLOUR: Final = "#9c9ca1"
REF_EDGE: Final = "#4d4d52"
GEN_COLOUR: Final = "#e42536"
_DPI: Final = 80
_NDASH: Final = "\N{EN DASH}"
_MINUS: Final = "\N{MINUS SIGN}"
_RATIO_LO: Final = 0.5
_RATIO_HI: Final = 1.5
_MISSING: Final = "—"

_PER_LAYER: Final[tuple[tuple[str, str, str], ...]] = (
    # (observable key, axis label, panel title)
    ("layer_energy", "E_layer [MeV]", "Energy in layer"),
    ("centre_x", "centre x [mm]", "Centre of energy in x"),
    ("centre_y", "centre y [mm]", "Centre of energy in y"),
    ("width_x", "\N{GREEK SMALL LETTER SIGMA}_x [mm]", "Width in x"),
    ("width_y", "\N{GREEK SMALL LETTER SIGMA}_y [mm]", "Width in y"),
    ("sparsity", "fraction of voxels > 0", "Sparsity"),
)
_SCALAR_OBS: Final[tuple[tuple[str, str], ...]] = (
    ("e_ratio", "E_tot / E_inc"),
    ("voxel_spectrum", "Voxel energy spectrum"),
    ("radial", "Radial profile"),
)


# ============================================================================ public API
@dataclass(frozen=True)
class ShowerSample:
    """What the report needs from the raw showers of one sample, beyond the observables.

    Attributes:
        mean_shower: average shower, ``(V,)`` MeV per voxel.
        voxel_energies: energies of non-zero voxels, ``(M,)`` MeV (possibly a random subset).
        n_showers: number of showers averaged.
    """

    mean_shower: NDArray[np.float64]
    voxel_energies: NDArray[np.float64]
    n_showers: int

    @classmethod
    def from_showers(
        cls, showers: NDArray[np.floating], *, max_voxels: int = 2_000_000, seed: int = 0
    ) -> ShowerSample:
        """Summarise ``(N, V)`` showers (MeV); keep at most ``max_voxels`` voxel energies.

        The mean is over all showers; the voxel energies come from a random subset of showers
        (at most ``4 * max_voxels`` voxels' worth), then from a random subset of their non-zero
        voxels, so memory stays bounded for large files.
        """
        from twinforge.validation.observables import voxel_spectrum

        showers = np.asarray(showers)
        n, n_voxels = showers.shape if showers.ndim == 2 else (0, 0)
        if n == 0:
            return cls(np.zeros(n_voxels), np.zeros(0), 0)
        rng = np.random.default_rng(seed)
        mean = showers.mean(axis=0, dtype=np.float64)
        rows = min(n, max(1, math.ceil(4 * max_voxels / max(n_voxels, 1))))
        subset = showers if rows == n else showers[np.sort(rng.choice(n, rows, replace=False))]
        voxels = np.asarray(voxel_spectrum(subset), dtype=np.float64)
        if voxels.size > max_voxels:
            voxels = rng.choice(voxels, max_voxels, replace=False)
        return cls(mean_shower=mean, voxel_energies=voxels, n_showers=n)


def select_layers(readout: Readout, max_layers: int = MAX_LAYER_PANELS) -> list[int]:
    """Indices of the layers shown in per-layer figures: every k-th non-empty layer.

    ``k = ceil(n / max_layers)`` for ``n`` layers with voxels, so at most ``max_layers``.
    """
    filled = [i for i, layer in enumerate(readout.layers) if layer.n_voxels > 0]
    step = max(1, math.ceil(len(filled) / max_layers))
    return filled[::step]


def write_report(
    directory: str | Path,
    result: ValidationResult,
    readout: Readout,
    *,
    reference: ShowerSample,
    generated: ShowerSample,
    published: Sequence[Mapping[str, Any]] | None = None,
    title: str = "twinforge validation report",
) -> Path:
    """Write ``metrics.json`` and ``report.html`` into ``directory``; return the HTML's path.

    Both files are rendered in memory first, then written under temporary names and renamed
    (report last): an exception leaves no partial file, neither of the two new files, and no
    directory this call created.

    Args:
        directory: the report directory (created when missing).
        result: the metrics and observables of :func:`~twinforge.validation.run_validation`.
        readout: the binning of both samples.
        reference: mean shower and voxel energies of the reference sample.
        generated: the same for the generated sample.
        published: CaloChallenge rows to compare with; None looks them up for the readout's
            CaloChallenge dataset (none when it is not one); ``[]`` leaves the section out.
        title: the page title.
    """
    directory = Path(directory)
    page = render_report(
        result, readout, reference=reference, generated=generated, published=published, title=title
    )
    texts = {directory / "metrics.json": result.to_json(), directory / "report.html": page}
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    temporaries: list[Path] = []
    committed: list[Path] = []
    try:
        for final, text in texts.items():
            tmp = temporary_name(final)
            temporaries.append(tmp)
            tmp.write_text(text, encoding="utf-8")
        for tmp, final in zip(temporaries, texts, strict=True):
            commit(tmp, final)
            committed.append(final)
    except BaseException:
        for path in (*temporaries, *committed):
            path.unlink(missing_ok=True)
        if created and not any(directory.iterdir()):
            directory.rmdir()
        raise
    log.info("wrote %s", directory / "report.html")
    return directory / "report.html"


def headline_metrics(metrics: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(label, value, noise floor)`` texts of AUC low/high, FPD and KPD (overall).

    A metric that was not computed reads ``"not computed"``; a missing floor ``"—"``.
    """
    texts = _metric_texts(metrics.get("overall") or {}, _get(metrics, "noise_floor", "overall"))
    rows = []
    has_floor = _get(metrics, "noise_floor", "overall") is not None
    for key, label in _HEADLINE.items():
        value, floor = texts[key]
        if value == _MISSING and _skip_reason(metrics, key):
            value = "not computed"
        if has_floor and floor == _MISSING and _skip_reason(metrics, key, _FLOOR_SCOPE):
            floor = "not computed"
        rows.append((label, value, floor or _MISSING))
    return rows


_FLOOR_SCOPE: Final = "noise floor"  # the suite's scope name of the overall noise floor

_HEADLINE: Final = {
    "classifier_low": "Classifier AUC, low level",
    "classifier_high": "Classifier AUC, high level",
    "fpd": "FPD",
    "kpd": "KPD",
}


def render_report(
    result: ValidationResult,
    readout: Readout,
    *,
    reference: ShowerSample,
    generated: ShowerSample,
    published: Sequence[Mapping[str, Any]] | None = None,
    title: str = "twinforge validation report",
) -> str:
    """The report as HTML text (see the module docstring for its sections)."""
    metrics = result.metrics
    if published is None:
        from twinforge.validation.published import load_published

        published = load_published(_get(metrics, "readout", "calochallenge_dataset"))
    sections = [
        ("summary", "Summary", _summary_section(metrics)),
        ("messages", "Warnings", _messages_section(metrics)),
        ("per-energy", "Per energy", _per_energy_section(metrics)),
        ("separation", "Separation powers", _separation_section(metrics, readout)),
        ("published", "CaloChallenge", _published_section(metrics, published)),
        ("histograms", "Histograms", _histograms_section(result, readout, reference, generated)),
        ("images", "Average showers", _images_section(readout, reference, generated)),
        ("provenance", "Provenance", _provenance_section(metrics, readout)),
    ]
    sections = [s for s in sections if s[2]]
    nav = " ".join(f'<a href="#{key}">{_e(name)}</a>' for key, name, _ in sections)
    body = "\n".join(
        f'<section id="{key}">\n<h2>{_e(name)}</h2>\n{content}\n</section>'
        for key, name, content in sections
    )
    return _PAGE.format(
        title=_e(title),
        header=_header(metrics, readout, title),
        nav=nav,
        body=body,
        css=_CSS,
        script=_SCRIPT,
    )


# ============================================================================ small helpers
def _e(value: object) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(value), quote=True)


def _get(data: Any, *keys: str | int) -> Any:
    """``data[k0][k1]...`` or None when any step is missing."""
    for key in keys:
        in_mapping = isinstance(data, Mapping) and key in data
        in_list = isinstance(data, list | tuple) and isinstance(key, int) and key < len(data)
        if in_mapping or in_list:
            data = data[key]
        else:
            return None
    return data


def _num(value: Any) -> float | None:
    """A finite float, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (scientific when very small or large)."""
    x = _num(value)
    if x is None:
        return _MISSING
    if abs(x) < 1e-12:  # round-off (e.g. a JSD of -1e-16)
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
        return f"{x:.{decimals}f}"
    return f"{x:.{digits - 1}e}"


def _fmt_pm(value: Any, error: Any, scale: float = 1.0) -> str:
    """``value ± error`` (each times ``scale``), or just the value when there is no error."""
    x, err = _num(value), _num(error)
    if x is None:
        return _MISSING
    if err is None:
        return _fmt(x * scale)
    return f"{_fmt(x * scale)} ± {_fmt(err * scale, 2)}"


def _fmt_energy(mev: Any) -> str:
    """An energy in MeV as GeV or MeV text."""
    x = _num(mev)
    if x is None:
        return _MISSING
    return f"{_fmt(x / 1000)} GeV" if x >= 1000 else f"{_fmt(x)} MeV"


def _skip_reason(metrics: Mapping[str, Any], metric: str, scope: str = "overall") -> str | None:
    """Why ``metric`` was skipped in ``scope`` (the suite's ``skipped`` list), if it was."""
    for item in metrics.get("skipped") or []:
        if not isinstance(item, Mapping) or item.get("metric") != metric:
            continue
        if item.get("scope") in (scope, None, "all"):
            return str(item.get("reason", "skipped"))
    return None


def _cell(value: str, floor: str | None = None, *, title: str | None = None) -> str:
    """A numeric table cell; the noise floor, when given, on a second muted line."""
    attr = f' title="{_e(title)}"' if title else ""
    floor_html = f'<span class="floor">floor {_e(floor)}</span>' if floor is not None else ""
    return f'<td class="num"{attr}>{_e(value)}{floor_html}</td>'


def _metric_texts(
    block: Mapping[str, Any] | None, floor: Mapping[str, Any] | None
) -> dict[str, tuple[str, str | None]]:
    """Formatted (value, floor) of AUC low/high, FPD, KPD of one METRICS block."""
    floor = floor if isinstance(floor, Mapping) else None

    def pair(get_value: Any, get_floor: Any) -> tuple[str, str | None]:
        return get_value(block), (get_floor(floor) if floor is not None else None)

    def auc(key: str) -> Any:
        return lambda b: _fmt(_get(b, key, "auc"))

    def dist(key: str) -> Any:
        return lambda b: _fmt_pm(_get(b, key, "value"), _get(b, key, "error"))

    return {
        "classifier_low": pair(auc("classifier_low"), auc("classifier_low")),
        "classifier_high": pair(auc("classifier_high"), auc("classifier_high")),
        "fpd": pair(dist("fpd"), dist("fpd")),
        "kpd": pair(dist("kpd"), dist("kpd")),
    }


# ============================================================================ HTML sections
def _header(metrics: Mapping[str, Any], readout: Readout, title: str) -> str:
    rows = []
    for role in ("reference", "generated"):
        info = metrics.get(role) or {}
        rows.append(
            f"<tr><th>{role.capitalize()}</th><td><code>{_e(info.get('path') or _MISSING)}"
            f"</code></td><td class='num'>{_e(info.get('n_showers', _MISSING))} showers</td></tr>"
        )
    dataset = _get(metrics, "readout", "calochallenge_dataset")
    readout_text = readout.describe() + (
        f" — CaloChallenge dataset {dataset}" if dataset is not None else ""
    )
    rows.append(f"<tr><th>Readout</th><td colspan='2'>{_e(readout_text)}</td></tr>")
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<h1>{_e(title)}</h1>\n<p class='meta'>twinforge {_e(__version__)} · {_e(created)} · "
        "metrics in <a href='metrics.json'>metrics.json</a></p>\n"
        f"<table class='inputs'>{''.join(rows)}</table>"
    )


_HELP: Final = {
    "classifier_low": "DNN on voxels / E_inc and log10 E_inc; 0.5 = indistinguishable, "
    "1 = always told apart",
    "classifier_high": "DNN on the high-level observables; 0.5 = indistinguishable",
    "fpd": "Fréchet distance of Gaussian fits to the high-level observables, extrapolated to "
    "infinite sample size; 0 = identical",
    "kpd": "kernel physics distance: unbiased MMD² with a polynomial kernel on the high-level "
    "observables; 0 = identical",
}


def _summary_section(metrics: Mapping[str, Any]) -> str:
    overall = metrics.get("overall") or {}
    floor = _get(metrics, "noise_floor", "overall")
    rows = []
    for key, (label, value, floor_text) in zip(_HEADLINE, headline_metrics(metrics), strict=True):
        reason = _skip_reason(metrics, key)
        extra = _classifier_detail(overall.get(key)) if key.startswith("classifier") else ""
        floor_reason = _skip_reason(metrics, key, _FLOOR_SCOPE) if floor is not None else None
        note = _e(reason or extra)
        if floor_reason:
            note += f"<br>noise floor not computed: {_e(floor_reason)}"
        rows.append(
            f"<tr><th>{_e(label)}<span class='help'>{_e(_HELP[key])}</span></th>"
            f"<td class='num big'>{_e(value)}</td><td class='num'>{_e(floor_text)}</td>"
            f"<td class='note'>{note}</td></tr>"
        )
    floor_note = (
        "The noise floor is the same metric between two independent halves of the reference: a "
        "generated sample cannot be expected to score better, and differences smaller than the "
        "floor (plus the quoted errors) are not significant."
        if floor is not None
        else "No noise floor was computed: "
        + (_skip_reason(metrics, "noise_floor", _FLOOR_SCOPE) or "disabled in the configuration")
        + "."
    )
    return (
        "<table class='summary'><thead><tr><th>Metric</th><th>Generated vs reference</th>"
        "<th>Noise floor</th><th>Details</th></tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table>\n<p class='explain'>{_e(floor_note)}</p>"
    )


def _classifier_detail(block: Any) -> str:
    if not isinstance(block, Mapping):
        return ""
    parts = []
    if _num(block.get("jsd")) is not None:
        parts.append(f"JSD {_fmt(block['jsd'])}")
    if _num(block.get("accuracy")) is not None:
        parts.append(f"accuracy {_fmt(block['accuracy'])}")
    if block.get("n_train") is not None:
        parts.append(f"{block['n_train']} train / {block.get('n_test', '?')} test")
    if block.get("best_epoch") is not None:
        parts.append(f"best epoch {block['best_epoch']} of {block.get('epochs_run', '?')}")
    return ", ".join(parts)


def _messages_section(metrics: Mapping[str, Any]) -> str:
    warnings = [str(w) for w in metrics.get("warnings") or []]
    skipped = [s for s in metrics.get("skipped") or [] if isinstance(s, Mapping)]
    if not warnings and not skipped:
        return ""
    parts = []
    if warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
        parts.append(f"<div class='callout warn'><strong>Warnings</strong><ul>{items}</ul></div>")
    if skipped:
        items = "".join(
            f"<li><code>{_e(s.get('metric', '?'))}</code> ({_e(s.get('scope', 'overall'))}): "
            f"{_e(s.get('reason', ''))}</li>"
            for s in skipped
        )
        parts.append(
            f"<div class='callout skip'><strong>Not computed</strong><ul>{items}</ul></div>"
        )
    return "\n".join(parts)


def _per_energy_section(metrics: Mapping[str, Any]) -> str:
    bins = [b for b in metrics.get("per_energy") or [] if isinstance(b, Mapping)]
    if not bins:
        return ""
    floors = _get(metrics, "noise_floor", "per_energy") or []
    head = (
        "<tr><th>E_inc</th><th>N ref</th><th>N gen</th><th>AUC low</th><th>AUC high</th>"
        "<th>FPD</th><th>KPD</th><th>Sep. E_tot/E_inc</th></tr>"
    )
    rows = []
    for i, entry in enumerate(bins):
        lo, hi = (entry.get("energy_range_mev") or [None, None])[:2]
        block = entry.get("metrics") or {}
        floor_block = _get(floors, i, "metrics") if i < len(floors) else None
        texts = _metric_texts(block, floor_block)
        sep = _fmt(_get(block, "separation", "e_ratio"))
        sep_floor = (
            _fmt(_get(floor_block, "separation", "e_ratio")) if floor_block is not None else None
        )
        scope = str(entry.get("label") or f"energy bin {i}")  # the suite's scope names
        cells = []
        for key in ("classifier_low", "classifier_high", "fpd", "kpd"):
            value, floor_text = texts[key]
            cells.append(_cell(value, floor_text, title=_skip_reason(metrics, key, scope)))
        rows.append(
            f"<tr><th>{_e(_fmt_energy(lo))} &ndash; {_e(_fmt_energy(hi))}</th>"
            f"{_cell(str(entry.get('n_reference', _MISSING)))}"
            f"{_cell(str(entry.get('n_generated', _MISSING)))}"
            + "".join(cells)
            + _cell(sep, sep_floor)
            + "</tr>"
        )
    return (
        f"<table class='grid'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>\n"
        "<p class='explain'>Each metric recomputed on the showers whose incident energy falls in "
        "the bin; the noise floor (muted) from two halves of the reference in the same bin. "
        "Few showers per bin make the classifiers and distances noisier than the overall "
        "numbers; hover a dash to see why a metric is missing.</p>"
    )


def _separation_values(block: Mapping[str, Any] | None, key: str) -> NDArray[np.float64] | None:
    raw = _get(block, "separation", key)
    if raw is None:
        return None
    values = np.asarray(
        [_num(v) if _num(v) is not None else np.nan for v in np.ravel(raw)], dtype=np.float64
    )
    return values if values.size else None


def _separation_section(metrics: Mapping[str, Any], readout: Readout) -> str:
    overall = metrics.get("overall") or {}
    if not isinstance(overall.get("separation"), Mapping):
        reason = _skip_reason(metrics, "separation")
        return f"<p>Not computed{': ' + _e(reason) if reason else '.'}</p>" if reason else ""
    floor = _get(metrics, "noise_floor", "overall")
    rows = []
    names = dict(_SCALAR_OBS) | {key: title for key, _, title in _PER_LAYER}
    for key in ("e_ratio", *(k for k, _, _ in _PER_LAYER), "voxel_spectrum", "radial"):
        values = _separation_values(overall, key)
        if values is None:
            continue
        floor_values = _separation_values(floor, key)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        if values.size == 1:
            mean_text, worst_text = _fmt(finite[0]), ""
        else:
            worst = int(np.nanargmax(values))
            mean_text = _fmt(finite.mean())
            worst_text = f"{_fmt(values[worst])} (layer {worst})"
        floor_text = (
            _fmt(np.nanmean(floor_values))
            if floor_values is not None and np.isfinite(floor_values).any()
            else _MISSING
        )
        rows.append(
            f"<tr><th>{_e(names[key])}</th>{_cell(mean_text)}{_cell(worst_text)}"
            f"{_cell(floor_text)}</tr>"
        )
    table = (
        "<table class='grid'><thead><tr><th>Observable</th><th>Separation (mean over layers)"
        "</th><th>Worst layer</th><th>Noise floor (mean)</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>\n<p class='explain'>Separation power "
        "S = ½ Σ (h_gen &minus; h_ref)² / (h_gen + h_ref) over the bins of normalised "
        "histograms: 0 for identical, 1 for disjoint distributions.</p>"
    )
    figure = _separation_per_layer_figure(metrics, readout)
    return table + (f"\n{_img(figure, 'Separation power per layer')}" if figure else "")


def _published_section(metrics: Mapping[str, Any], published: Sequence[Mapping[str, Any]]) -> str:
    if not published:
        return ""
    dataset = _get(metrics, "readout", "calochallenge_dataset")
    overall = metrics.get("overall") or {}

    def row(entry: Mapping[str, Any], css: str = "") -> str:
        params = _num(entry.get("parameters"))
        cells = [
            _cell(f"{params / 1e6:.2f} M" if params else _MISSING),
            _cell(_fmt_pm(entry.get("kpd_e3"), entry.get("kpd_e3_std"))),
            _cell(_fmt_pm(entry.get("fpd_e3"), entry.get("fpd_e3_std"))),
            _cell(_fmt_pm(entry.get("auc_low"), entry.get("auc_low_std"))),
            _cell(_fmt_pm(entry.get("auc_high"), entry.get("auc_high_std"))),
            *(
                _cell(_fmt(entry.get(k)))
                for k in (
                    "time_cpu_1_ms",
                    "time_cpu_100_ms",
                    "time_gpu_100_ms",
                    "time_gpu_10000_ms",
                )
            ),
        ]
        return f"<tr{css}><th>{_e(entry.get('submission', '?'))}</th>{''.join(cells)}</tr>"

    ours = {
        "submission": "this report",
        "kpd_e3": _scaled(_get(overall, "kpd", "value")),
        "kpd_e3_std": _scaled(_get(overall, "kpd", "error")),
        "fpd_e3": _scaled(_get(overall, "fpd", "value")),
        "fpd_e3_std": _scaled(_get(overall, "fpd", "error")),
        "auc_low": _get(overall, "classifier_low", "auc"),
        "auc_high": _get(overall, "classifier_high", "auc"),
    }
    head = (
        "<tr><th rowspan='2'>Submission</th><th rowspan='2'>Parameters</th>"
        "<th rowspan='2'>KPD &times; 10³</th><th rowspan='2'>FPD &times; 10³</th>"
        "<th rowspan='2'>AUC low</th>"
        "<th rowspan='2'>AUC high</th><th colspan='4'>Time per shower [ms] (batch size)</th></tr>"
        "<tr><th>CPU 1</th><th>CPU 100</th><th>GPU 100</th><th>GPU 10⁴</th></tr>"
    )
    body = row(ours, " class='ours'") + "".join(row(p) for p in published)
    return (
        f"<p class='explain'>Published results of the CaloChallenge 2022 for dataset "
        f"{_e(dataset)} (arXiv:2410.21611), KPD and FPD times 10³ as published. The "
        "<em>GEANT4</em> row compares two Geant4 samples: the published noise floor. The numbers "
        "are comparable with this report's only when the reference is the challenge's "
        "evaluation sample, the generated sample has the same size, and the high-level features "
        "are the challenge's; otherwise read them as orders of magnitude.</p>\n"
        f"<div class='scroll'><table class='grid'><thead>{head}</thead><tbody>{body}"
        "</tbody></table></div>"
    )


def _scaled(value: Any) -> float | None:
    x = _num(value)
    return None if x is None else x * 1e3


def _provenance_section(metrics: Mapping[str, Any], readout: Readout) -> str:
    blocks = []
    for role in ("reference", "generated"):
        info = metrics.get(role) or {}
        blocks.append((f"{role.capitalize()} sample", info))
    blocks += [
        ("Validation configuration", metrics.get("config") or {}),
        ("Readout", {**(metrics.get("readout") or {}), "binning_xml": readout.to_xml()}),
        ("Timing [s]", metrics.get("timing_s") or {}),
    ]
    parts = []
    for name, data in blocks:
        text = json.dumps(data, indent=2, sort_keys=True, default=json_default)
        parts.append(f"<details><summary>{_e(name)}</summary><pre>{_e(text)}</pre></details>")
    return "\n".join(parts)


def _img(data: str, alt: str) -> str:
    return (
        f"<figure><img alt='{_e(alt)}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{_e(alt)}</figcaption></figure>"
    )


# ============================================================================ figures
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
        floor = _get(metrics, "noise_floor", "overall")
    else:
        block = _get(metrics, "per_energy", energy_bin, "metrics")
        floor = _get(metrics, "noise_floor", "per_energy", energy_bin, "metrics")
    values, floors = _separation_values(block, key), _separation_values(floor, key)
    index = 0 if layer is None else layer
    if values is None or index >= values.size or not np.isfinite(values[index]):
        return ""
    text = f"S = {_fmt(values[index], 2)}"
    if floors is not None and index < floors.size and np.isfinite(floors[index]):
        text += f"\n(floor {_fmt(floors[index], 2)})"
    return text


def _column(values: NDArray[np.floating], layer: int) -> NDArray[np.float64]:
    """Finite entries of column ``layer`` of an (N, L) array."""
    col = np.asarray(values, dtype=np.float64)[:, layer]
    return col[np.isfinite(col)]


def _finite(values: NDArray[np.floating]) -> NDArray[np.float64]:
    flat = np.asarray(values, dtype=np.float64).ravel()
    return flat[np.isfinite(flat)]


def _histograms_section(
    result: ValidationResult, readout: Readout, reference: ShowerSample, generated: ShowerSample
) -> str:
    metrics = result.metrics
    ref, gen = result.reference, result.generated
    layers = [i for i in select_layers(readout) if i < np.shape(ref.layer_energy)[1]]
    layer_note = _layer_selection_note(readout, layers)
    parts = [
        "<p class='explain'>Reference filled grey, generated red; each histogram normalised to "
        "unit sum, under- and overflow in the first and last bins. Ratio panels: generated / "
        "reference with statistical errors, the grey band the reference's own statistical "
        "error; triangles mark ratios outside 0.5&ndash;1.5. S is the metric's separation power, "
        f"the noise floor in brackets. {_e(layer_note)}</p>"
    ]
    e_panel = _Panel(
        "All energies",
        "E_tot / E_inc",
        _finite(ref.e_ratio),
        _finite(gen.e_ratio),
        note=_separation_note(metrics, "e_ratio"),
    )
    parts.append(_titled("E_tot / E_inc", _small_multiples([e_panel], 1), narrow=True))
    energy_panels = _energy_bin_panels(metrics, ref, gen)
    if energy_panels:
        parts.append(
            _titled("E_tot / E_inc per incident-energy bin", _small_multiples(energy_panels))
        )
    for key, xlabel, title in _PER_LAYER:
        ref_values, gen_values = getattr(ref, key, None), getattr(gen, key, None)
        if ref_values is None or gen_values is None:
            continue
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
        parts.append(_titled(title, _small_multiples(panels)))
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
    parts.append(_titled("Voxel energy spectrum", _small_multiples([spectrum], 1), narrow=True))
    parts.append(_titled("Longitudinal and radial profiles", _profiles_figure(metrics, ref, gen)))
    return "\n".join(parts)


def _layer_selection_note(readout: Readout, layers: Sequence[int]) -> str:
    filled = sum(1 for layer in readout.layers if layer.n_voxels > 0)
    if len(layers) == filled:
        return "All layers are shown."
    step = layers[1] - layers[0] if len(layers) > 1 else 1
    return (
        f"Per-layer figures show one layer in {step} of the {filled} layers with voxels "
        f"(layers {', '.join(map(str, layers))}); the tables cover all of them."
    )


def _titled(title: str, png: str, *, narrow: bool = False) -> str:
    css = " class='narrow'" if narrow else ""
    return f"<h3>{_e(title)}</h3>\n<div{css}>{_img(png, title)}</div>"


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
        if _num(lo) is None or _num(hi) is None:
            continue
        last = i == len(bins) - 1

        def select(obs: Observables, lo: float = lo, hi: float = hi, last: bool = last) -> Any:
            energy = np.asarray(obs.energy)
            mask = (energy >= lo) & ((energy <= hi) if last else (energy < hi))
            return _finite(np.asarray(obs.e_ratio)[mask])

        panels.append(
            _Panel(
                f"{_fmt_energy(lo)} {_NDASH} {_fmt_energy(hi)}",
                "E_tot / E_inc",
                select(ref),
                select(gen),
                note=_separation_note(metrics, "e_ratio", energy_bin=i),
            )
        )
    return panels


def _profiles_figure(metrics: Mapping[str, Any], ref: Observables, gen: Observables) -> str:
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


def _separation_per_layer_figure(metrics: Mapping[str, Any], readout: Readout) -> str | None:
    """Separation power against layer for each per-layer observable, noise floor dashed."""
    overall = metrics.get("overall") or {}
    floor = _get(metrics, "noise_floor", "overall")
    series = []
    for key, _, title in _PER_LAYER:
        values = _separation_values(overall, key)
        if values is not None and values.size > 1 and np.isfinite(values).any():
            series.append((title, values, _separation_values(floor, key)))
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


def _positive(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """``values`` with zeros (both histograms empty or identical) as NaN, for a log axis."""
    return np.where(values > 0, values, np.nan)


def _images_section(readout: Readout, reference: ShowerSample, generated: ShowerSample) -> str:
    if reference.mean_shower.size != readout.n_voxels or generated.mean_shower.size != (
        readout.n_voxels
    ):
        return ""
    layers = select_layers(readout)
    images = _layer_images(readout, layers, reference.mean_shower, generated.mean_shower)
    diff_range = _diff_range(images)
    png = _images_figure(images, diff_range)
    return (
        "<p class='explain'>Mean energy per voxel (MeV) in the transverse plane of each shown "
        "layer, on the readout's (r, &alpha;) bins: &alpha; = atan2(y, x), radius up to the "
        f"last r edge. {_e(_layer_selection_note(readout, layers))} Reference and generated "
        "share one logarithmic colour scale (white: no energy); the third image of each triple "
        "is (generated &minus; reference) / reference, colour scale clipped at "
        f"±{diff_range:.0%}.</p>\n"
        + _img(png, "Average shower per layer: reference, generated, relative difference")
    )


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


# ============================================================================ page template
_CSS: Final = """
:root { --ink: #1d1d1f; --muted: #6e6e73; --line: #d9d9de; --band: #f5f5f7;
        --accent: #b3261e; --ours: #fff4d6; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color: var(--ink); margin: 0; background: #fff; }
header, main { max-width: 1240px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 20px; border-bottom: 1px solid var(--line); }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 36px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--ink); }
h3 { font-size: 16px; margin: 26px 0 6px; }
.meta { color: var(--muted); margin: 0 0 10px; }
nav { position: sticky; top: 0; background: rgba(255,255,255,.96); padding: 8px 0;
      border-bottom: 1px solid var(--line); z-index: 2; }
nav a { margin-right: 16px; color: var(--ink); text-decoration: none; font-weight: 600; }
nav a:hover { color: var(--accent); }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 5px 10px; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); font-weight: 600; white-space: nowrap; }
tbody tr { border-bottom: 1px solid var(--line); }
tbody tr:nth-child(even) { background: var(--band); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.big { font-size: 18px; font-weight: 600; }
td.note { color: var(--muted); font-size: 13px; }
.floor { display: block; color: var(--muted); font-size: 12px; font-weight: 400; }
.help { display: block; color: var(--muted); font-size: 12px; font-weight: 400; max-width: 420px; }
table.inputs th { padding-left: 0; width: 110px; }
table.inputs tr { border: 0; background: none; }
tr.ours { background: var(--ours) !important; font-weight: 600; }
.explain { color: #3a3a3c; max-width: 980px; font-size: 14px; }
.callout { border-left: 4px solid; padding: 6px 14px; margin: 10px 0; background: var(--band); }
.callout ul { margin: 4px 0; padding-left: 20px; }
.warn { border-color: #c77c02; } .skip { border-color: var(--muted); }
figure { margin: 4px 0 12px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { display: none; }
.narrow { max-width: 520px; }
.scroll { overflow-x: auto; }
details { margin: 6px 0; border: 1px solid var(--line); border-radius: 4px; padding: 4px 10px; }
summary { cursor: pointer; font-weight: 600; }
pre { font-size: 12px; overflow-x: auto; background: var(--band); padding: 8px; }
code { font-size: 13px; }
footer { max-width: 1240px; margin: 40px auto 20px; padding: 0 24px; color: var(--muted);
         font-size: 12px; }
"""

_SCRIPT: Final = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (img) { return img.complete && img.naturalWidth > 0; });
  document.body.dataset.imagesTotal = String(images.length);
  document.body.dataset.imagesLoaded = String(loaded.length);
});
"""

_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
<script>{script}</script>
</head>
<body>
<header>
{header}
</header>
<main>
<nav>{nav}</nav>
{body}
</main>
<footer>Written by twinforge. Self-contained: figures are embedded, no network access needed.
</footer>
</body>
</html>
"""
