"""The report page: HTML sections, tables and the page template (figures from
:mod:`~twinforge.validation.report.figures`).

Every value that reaches the page is HTML-escaped; the style sheet and the image-counting
script are inline, the figures embedded as ``data:`` URIs.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from twinforge import __version__
from twinforge._json import json_default
from twinforge.detector.readout import Readout
from twinforge.validation.report._common import (
    MISSING,
    PER_LAYER,
    ShowerSample,
    finite_float,
    fmt,
    fmt_energy,
    fmt_pm,
    lookup,
    select_layers,
    separation_values,
)
from twinforge.validation.report.figures import (
    e_ratio_figure,
    energy_bins_figure,
    mean_shower_figure,
    per_layer_figure,
    profiles_figure,
    separation_per_layer_figure,
    voxel_spectrum_figure,
)

if TYPE_CHECKING:
    from twinforge.validation.suite import ValidationResult

__all__ = ["headline_metrics", "render_report"]

_SCALAR_OBS: Final[tuple[tuple[str, str], ...]] = (
    ("e_ratio", "E_tot / E_inc"),
    ("voxel_spectrum", "Voxel energy spectrum"),
    ("radial", "Radial profile"),
)


def headline_metrics(metrics: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(label, value, noise floor)`` texts of AUC low/high, FPD and KPD (overall).

    A metric that was not computed reads ``"not computed"``; a missing floor ``"—"``.
    """
    texts = _metric_texts(metrics.get("overall") or {}, lookup(metrics, "noise_floor", "overall"))
    rows = []
    has_floor = lookup(metrics, "noise_floor", "overall") is not None
    for key, label in _HEADLINE.items():
        value, floor = texts[key]
        if value == MISSING and _skip_reason(metrics, key):
            value = "not computed"
        if has_floor and floor == MISSING and _skip_reason(metrics, key, _FLOOR_SCOPE):
            floor = "not computed"
        rows.append((label, value, floor or MISSING))
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

        published = load_published(lookup(metrics, "readout", "calochallenge_dataset"))
    sections = [
        ("summary", "Summary", _summary_section(metrics)),
        ("messages", "Warnings", _messages_section(metrics)),
        ("per-energy", "Per energy", _per_energy_section(metrics)),
        ("separation", "Separation powers", _separation_section(metrics)),
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
        def text(b: Any) -> str:
            value, lo, hi = (lookup(b, key, k) for k in ("auc", "auc_min", "auc_max"))
            if (lookup(b, key, "n_seeds") or 1) > 1 and lo is not None and hi is not None:
                return f"{fmt(value)} ({fmt(lo)}-{fmt(hi)})"
            return fmt(value)

        return text

    def dist(key: str) -> Any:
        return lambda b: fmt_pm(lookup(b, key, "value"), lookup(b, key, "error"))

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
            f"<tr><th>{role.capitalize()}</th><td><code>{_e(info.get('path') or MISSING)}"
            f"</code></td><td class='num'>{_e(info.get('n_showers', MISSING))} showers</td></tr>"
        )
    dataset = lookup(metrics, "readout", "calochallenge_dataset")
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
    floor = lookup(metrics, "noise_floor", "overall")
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
    nf = metrics.get("noise_floor") or {}
    floor_note = (
        f"The noise floor is the same metric between Geant4 and Geant4 ({nf.get('method')}, "
        f"{nf.get('n_half')} showers each"
        + (
            ""
            if nf.get("same_size")
            else ", fewer than the comparison above: a floor at full size lies lower"
        )
        + (", from the cache" if nf.get("cached") else "")
        + "): a generated sample cannot be expected to score better, and differences smaller "
        "than the floor plus the seed spread are not significant."
        if floor is not None
        else "No noise floor was computed: "
        + (_skip_reason(metrics, "noise_floor", _FLOOR_SCOPE) or "disabled in the configuration")
        + "."
    )
    return (
        _protocol_note(metrics)
        + "<table class='summary'><thead><tr><th>Metric</th><th>Generated vs reference</th>"
        "<th>Noise floor</th><th>Details</th></tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table>\n<p class='explain'>{_e(floor_note)}</p>"
    )


def _protocol_note(metrics: Mapping[str, Any]) -> str:
    """What the classifiers ran, and a loud warning when their AUCs are not comparable."""
    protocol = metrics.get("protocol") or {}
    if not protocol:
        return ""
    seeds = protocol.get("classifier_seeds") or []
    text = (
        f"{protocol.get('name')}: voxels below {fmt(protocol.get('threshold_mev'))} MeV zeroed "
        f"({protocol.get('threshold_source')}); low-level budget "
        f"{protocol.get('low_budget')} ({protocol.get('low_budget_description')}), high-level "
        f"budget {protocol.get('high_budget')}; {protocol.get('n_high_level_features')} "
        f"high-level features; {len(seeds)} classifier seed(s), AUCs as mean (min-max)."
    )
    note = f"<p class='explain'>{_e(text)}</p>"
    if not protocol.get("comparable"):
        note = (
            "<p class='warning'><strong>Not comparable:</strong> the classifiers ran a quick or "
            "customised budget; their AUCs are for smoke tests, not for tables, and must not be "
            "set beside published figures.</p>" + note
        )
    return note


def _classifier_detail(block: Any) -> str:
    if not isinstance(block, Mapping):
        return ""
    parts = []
    if finite_float(block.get("jsd")) is not None:
        parts.append(f"JSD {fmt(block['jsd'])}")
    if finite_float(block.get("accuracy")) is not None:
        parts.append(f"accuracy {fmt(block['accuracy'])}")
    if block.get("n_train") is not None:
        parts.append(f"{block['n_train']} train / {block.get('n_test', '?')} test")
    seeds = block.get("seeds") or []
    if seeds:
        best = ", ".join(f"{s.get('best_epoch')}/{s.get('epochs_run')}" for s in seeds)
        parts.append(f"best epoch of run per seed {best}")
    if block.get("budget") is not None:
        parts.append(f"budget {block['budget']}")
    if block.get("converged") is False:
        parts.append("NOT CONVERGED (best epoch in the last 10 % of a run)")
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
    floors = lookup(metrics, "noise_floor", "per_energy") or []
    head = (
        "<tr><th>E_inc</th><th>N ref</th><th>N gen</th><th>AUC low</th><th>AUC high</th>"
        "<th>FPD</th><th>KPD</th><th>Sep. E_tot/E_inc</th></tr>"
    )
    rows = []
    for i, entry in enumerate(bins):
        lo, hi = (entry.get("energy_range_mev") or [None, None])[:2]
        block = entry.get("metrics") or {}
        floor_block = lookup(floors, i, "metrics") if i < len(floors) else None
        texts = _metric_texts(block, floor_block)
        sep = fmt(lookup(block, "separation", "e_ratio"))
        sep_floor = (
            fmt(lookup(floor_block, "separation", "e_ratio")) if floor_block is not None else None
        )
        scope = str(entry.get("label") or f"energy bin {i}")  # the suite's scope names
        cells = []
        for key in ("classifier_low", "classifier_high", "fpd", "kpd"):
            value, floor_text = texts[key]
            cells.append(_cell(value, floor_text, title=_skip_reason(metrics, key, scope)))
        rows.append(
            f"<tr><th>{_e(fmt_energy(lo))} &ndash; {_e(fmt_energy(hi))}</th>"
            f"{_cell(str(entry.get('n_reference', MISSING)))}"
            f"{_cell(str(entry.get('n_generated', MISSING)))}"
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


def _separation_section(metrics: Mapping[str, Any]) -> str:
    overall = metrics.get("overall") or {}
    if not isinstance(overall.get("separation"), Mapping):
        reason = _skip_reason(metrics, "separation")
        return f"<p>Not computed{': ' + _e(reason) if reason else '.'}</p>" if reason else ""
    floor = lookup(metrics, "noise_floor", "overall")
    rows = []
    names = dict(_SCALAR_OBS) | {key: title for key, _, title in PER_LAYER}
    for key in ("e_ratio", *(k for k, _, _ in PER_LAYER), "voxel_spectrum", "radial"):
        values = separation_values(overall, key)
        if values is None:
            continue
        floor_values = separation_values(floor, key)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        if values.size == 1:
            mean_text, worst_text = fmt(finite[0]), ""
        else:
            worst = int(np.nanargmax(values))
            mean_text = fmt(finite.mean())
            worst_text = f"{fmt(values[worst])} (layer {worst})"
        floor_text = (
            fmt(np.nanmean(floor_values))
            if floor_values is not None and np.isfinite(floor_values).any()
            else MISSING
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
    figure = separation_per_layer_figure(metrics)
    return table + (f"\n{_img(figure, 'Separation power per layer')}" if figure else "")


def _published_section(metrics: Mapping[str, Any], published: Sequence[Mapping[str, Any]]) -> str:
    if not published:
        return ""
    dataset = lookup(metrics, "readout", "calochallenge_dataset")
    overall = metrics.get("overall") or {}

    def row(entry: Mapping[str, Any], css: str = "") -> str:
        params = finite_float(entry.get("parameters"))
        cells = [
            _cell(f"{params / 1e6:.2f} M" if params else MISSING),
            _cell(fmt_pm(entry.get("kpd_e3"), entry.get("kpd_e3_std"))),
            _cell(fmt_pm(entry.get("fpd_e3"), entry.get("fpd_e3_std"))),
            _cell(fmt_pm(entry.get("auc_low"), entry.get("auc_low_std"))),
            _cell(fmt_pm(entry.get("auc_high"), entry.get("auc_high_std"))),
            *(
                _cell(fmt(entry.get(k)))
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
        "kpd_e3": _scaled(lookup(overall, "kpd", "value")),
        "kpd_e3_std": _scaled(lookup(overall, "kpd", "error")),
        "fpd_e3": _scaled(lookup(overall, "fpd", "value")),
        "fpd_e3_std": _scaled(lookup(overall, "fpd", "error")),
        "auc_low": lookup(overall, "classifier_low", "auc"),
        "auc_high": lookup(overall, "classifier_high", "auc"),
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
        "are the challenge's; otherwise read them as orders of magnitude."
        + (
            ""
            if lookup(metrics, "protocol", "comparable")
            else " <strong>This report's AUCs come from a budget that is not comparable.</strong>"
        )
        + "</p>\n"
        f"<div class='scroll'><table class='grid'><thead>{head}</thead><tbody>{body}"
        "</tbody></table></div>"
    )


def _scaled(value: Any) -> float | None:
    x = finite_float(value)
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
    parts.append(_titled("E_tot / E_inc", e_ratio_figure(metrics, ref, gen), narrow=True))
    energy_png = energy_bins_figure(metrics, ref, gen)
    if energy_png:
        parts.append(_titled("E_tot / E_inc per incident-energy bin", energy_png))
    for key, xlabel, title in PER_LAYER:
        ref_values, gen_values = getattr(ref, key, None), getattr(gen, key, None)
        if ref_values is None or gen_values is None:
            continue
        png = per_layer_figure(metrics, key, xlabel, ref_values, gen_values, layers)
        parts.append(_titled(title, png))
    spectrum = voxel_spectrum_figure(metrics, reference, generated)
    parts.append(_titled("Voxel energy spectrum", spectrum, narrow=True))
    parts.append(_titled("Longitudinal and radial profiles", profiles_figure(metrics, ref, gen)))
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


def _images_section(readout: Readout, reference: ShowerSample, generated: ShowerSample) -> str:
    if reference.mean_shower.size != readout.n_voxels or generated.mean_shower.size != (
        readout.n_voxels
    ):
        return ""
    layers = select_layers(readout)
    png, diff_range = mean_shower_figure(
        readout, layers, reference.mean_shower, generated.mean_shower
    )
    return (
        "<p class='explain'>Mean energy per voxel (MeV) in the transverse plane of each shown "
        "layer, on the readout's (r, &alpha;) bins: &alpha; = atan2(y, x), radius up to the "
        f"last r edge. {_e(_layer_selection_note(readout, layers))} Reference and generated "
        "share one logarithmic colour scale (white: no energy); the third image of each triple "
        "is (generated &minus; reference) / reference, colour scale clipped at "
        f"±{diff_range:.0%}.</p>\n"
        + _img(png, "Average shower per layer: reference, generated, relative difference")
    )


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
.warning { max-width: 980px; font-size: 15px; background: #fff3cd; border-left: 5px solid #c0392b;
  padding: 8px 12px; }
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
