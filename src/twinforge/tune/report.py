"""The study report: one self-contained HTML file (figures inline as SVG, no script, nothing
loaded from the network).

Sections: the study (objective, sampler, pruner, budgets, storage, what stopped it), the best
trial, the optimisation history, the parameter importances, the parallel coordinates, the
validation loss per epoch (what the pruner saw) and the table of every trial with links to each
trial's validation report.

Parameter importances are fANOVA's (:class:`optuna.importance.FanovaImportanceEvaluator`, a
random forest fitted to the completed trials, seed 0): the share of the objective's variance
each parameter explains on its own. With few trials they are rough; they need at least two
completed trials whose parameters differ.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twinforge import __version__
from twinforge.showers.io import atomic_write_text
from twinforge.tune.config import Param, TuneConfig, decode_choice
from twinforge.tune.objective import FIGURES, describe_objective, objective_terms

__all__ = ["IMPORTANCE_EVALUATOR", "parameter_importances", "write_report"]

log = logging.getLogger(__name__)

IMPORTANCE_EVALUATOR = (
    "fANOVA (optuna.importance.FanovaImportanceEvaluator: a random forest of 64 trees fitted "
    "to the completed trials, seed 0)"
)

_STATE_COLOURS = {"COMPLETE": "#1f77b4", "PRUNED": "#ff7f0e", "FAIL": "#d62728"}


def write_report(
    path: Path,
    config: TuneConfig,
    trials: Sequence[Any],
    *,
    storage: str,
    executor: str,
    stopped: str,
) -> Path:
    """Write the study report for ``trials`` (Optuna ``FrozenTrial`` s) to ``path``
    atomically; return ``path``."""
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    best = min(complete, key=lambda t: (t.value, t.number)) if complete else None
    importances, importance_note = parameter_importances(complete, config)
    sections = [
        _study_section(config, trials, storage=storage, executor=executor, stopped=stopped),
        _best_section(config, best, path.parent),
        _figure_section(
            "Optimisation history",
            _history_figure(trials, config),
            "Objective of every completed trial (points) and the best so far (line); pruned "
            "and failed trials are marked below the axis.",
        ),
        _figure_section(
            "Parameter importances",
            _importance_figure(importances) if importances else None,
            f"Evaluator: {IMPORTANCE_EVALUATOR}. " + importance_note,
        ),
        _figure_section(
            "Parallel coordinates",
            _parallel_figure(complete, config),
            "One line per completed trial through its parameter values (each axis spans the "
            "search range; log axes for log parameters) and its objective, coloured by the "
            "objective (dark: better); the best trial is drawn thick.",
        ),
        _figure_section(
            "Validation loss per epoch",
            _intermediate_figure(trials),
            "The validation loss each trial reported to the pruner after every epoch; pruned "
            "trials dashed. Losses compare between trials only when the space leaves the "
            "loss's definition alone (a VAE's beta or the feature transform change it).",
        ),
        _trials_section(config, trials, path.parent),
    ]
    title = f"Study {config.study}"
    page = PAGE.format(
        command="twinforge tune",
        title=_e(title),
        body="\n".join(s for s in sections if s),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=_e(__version__),
    )
    atomic_write_text(path, page)
    return path


# --------------------------------------------------------------------------- sections
def _study_section(
    config: TuneConfig, trials: Sequence[Any], *, storage: str, executor: str, stopped: str
) -> str:
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    terms = objective_terms(config.objective)
    explain = "; ".join(f"{name}: {FIGURES[name].description}" for name in terms)
    suite = config.suite_config()
    rows = [
        ("Objective (minimised)", describe_objective(config.objective)),
        ("Figures", explain),
        ("Validated against", f"{config.reference}"
         + (f" (at most {config.max_showers} showers)" if config.max_showers else "")),
        ("Suite metrics", ", ".join(suite.metrics)),
        ("Sampler", f"{config.sampler.kind} (seed {config.sampler.seed}, "
                    f"{config.sampler.startup_trials} random start-up trials)"),
        ("Pruner", "none" if config.pruner.kind == "none" else
         f"median of val/loss after {config.pruner.warmup_epochs} warm-up epochs, "
         f"{config.pruner.startup_trials} start-up trials"),
        ("Budget", f"{config.n_trials} finished trials"
         + (f", {config.timeout_minutes:g} min per run" if config.timeout_minutes else "")),
        ("Trials", ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "none"),
        ("Stopped", stopped or "-"),
        ("Executor", executor),
        ("Storage", storage),
        ("Search space", "; ".join(f"{k}: {p.describe()}" for k, p in config.space.items())),
    ]  # fmt: skip
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<h2>Study</h2><table class='meta'>{body}</table>"


def _best_section(config: TuneConfig, best: Any, here: Path) -> str:
    if best is None:
        return "<h2>Best trial</h2><p class='note'>No trial has completed yet.</p>"
    params = {k: _decoded(config, k, v) for k, v in best.params.items()}
    figures = best.user_attrs.get("figures") or {}
    rows = [("Trial", str(best.number)), ("Objective", _num(best.value))]
    rows += [(name, _num(value)) for name, value in figures.items()]
    rows += [(k, json.dumps(v)) for k, v in params.items()]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    links = ["<a href='best-train.yaml'>best-train.yaml</a> (train it with <code>twinforge "
             "train best-train.yaml</code>)"]  # fmt: skip
    for key, text in (("report", "its validation report"), ("metrics", "its metrics.json")):
        target = best.user_attrs.get(key)
        if target:
            links.append(f"<a href='{_e(_relative(target, here))}'>{text}</a>")
            break
    model = best.user_attrs.get("model")
    if model:
        links.append(f"its model: <code>{_e(model)}</code>")
    return f"<h2>Best trial</h2><table class='meta'>{body}</table><p>{'; '.join(links)}</p>"


def _figure_section(title: str, svg: str | None, caption: str) -> str:
    if svg is None:
        figure = "<p class='note'>Not enough trials for this figure yet.</p>"
    else:
        figure = f"<img alt='{_e(title)}' src='data:image/svg+xml;base64,{svg}'>"
    return f"<h2>{_e(title)}</h2><figure>{figure}<figcaption>{_e(caption)}</figcaption></figure>"


def _trials_section(config: TuneConfig, trials: Sequence[Any], here: Path) -> str:
    names = list(config.space)
    figures = list(objective_terms(config.objective))
    head = "".join(
        f"<th>{_e(h)}</th>"
        for h in ["#", "state", "objective", *figures, *names, "epochs", "time [s]", "note",
                  "report"]
    )  # fmt: skip
    rows = []
    for t in trials:
        state = t.state.name
        values = t.user_attrs.get("figures") or {}
        note = t.user_attrs.get("error") or ""
        if t.user_attrs.get("resumes_trial") is not None:
            note = f"resumes trial {t.user_attrs['resumes_trial']}" + (f"; {note}" if note else "")
        if state == "PRUNED" and t.intermediate_values:
            last = max(t.intermediate_values)
            note = note or f"pruned after epoch {last}"
        link = ""
        for key, text in (("report", "report"), ("metrics", "metrics.json")):
            target = t.user_attrs.get(key)
            if target and state == "COMPLETE":
                link = f"<a href='{_e(_relative(target, here))}'>{text}</a>"
                break
        cells = [
            str(t.number),
            f"<span class='s-{state.lower()}'>{state.lower()}</span>",
            _num(t.value),
            *(_num(values.get(f)) for f in figures),
            *(_e(_compact(_decoded(config, n, t.params[n]))) if n in t.params else ""
              for n in names),
            str(len(t.intermediate_values)),
            _num(t.user_attrs.get("seconds"), 4),
            _e(note),
            link,
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        "<h2>Trials</h2><div class='scroll'><table class='grid'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


# --------------------------------------------------------------------------- importances
def parameter_importances(
    complete: Sequence[Any], config: TuneConfig
) -> tuple[dict[str, float], str]:
    """fANOVA importances of the completed trials (empty when they cannot be computed) and a
    sentence saying so or how many trials they rest on."""
    import optuna

    usable = [t for t in complete if set(config.space) <= set(t.params)]
    distinct = {json.dumps(t.params, sort_keys=True, default=str) for t in usable}
    if len(usable) < 2 or len(distinct) < 2:
        return {}, "They need at least two completed trials with different parameters."
    study = optuna.create_study(direction="minimize")
    study.add_trials(usable)
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError) as exc:
        return {}, f"Not computed: {exc}"
    note = f"From {len(usable)} completed trials"
    if len(usable) < 10:
        note += " (few: read them as a rough guide)"
    return {k: float(v) for k, v in values.items()}, note + "."


# --------------------------------------------------------------------------- figures
def _figure(width: float = 8.0, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Any) -> str:
    """The figure as base64 SVG text (text kept as text: small files)."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "twinforge"}):
        fig.savefig(buffer, format="svg")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _history_figure(trials: Sequence[Any], config: TuneConfig) -> str | None:
    from matplotlib.ticker import MaxNLocator

    complete = sorted(
        (t for t in trials if t.state.name == "COMPLETE" and t.value is not None),
        key=lambda t: t.number,
    )
    if not complete:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    xs = [t.number for t in complete]
    ys = [t.value for t in complete]
    best, running = [], math.inf
    for y in ys:
        running = min(running, y)
        best.append(running)
    ax.plot(xs, ys, "o", color=_STATE_COLOURS["COMPLETE"], label="trial")
    ax.step(xs, best, where="post", color="black", lw=1.5, label="best so far")
    others = [t for t in trials if t.state.name in ("PRUNED", "FAIL")]
    for state in ("PRUNED", "FAIL"):
        numbers = [t.number for t in others if t.state.name == state]
        if numbers:
            ax.plot(
                numbers, [0.0] * len(numbers), "|", ms=14, mew=2, color=_STATE_COLOURS[state],
                transform=ax.get_xaxis_transform(), clip_on=False,
                label=state.lower(),
            )  # fmt: skip
    positive = all(y > 0 for y in ys)
    if positive and max(ys) / min(ys) > 30:
        ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(describe_objective(config.objective))
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)
    return _svg(fig)


def _importance_figure(importances: dict[str, float]) -> str:
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig = _figure(8.0, 0.6 + 0.45 * len(items))
    ax = fig.add_subplot()
    names = [k for k, _ in items]
    values = [v for _, v in items]
    bars = ax.barh(range(len(items)), values, color="#1f77b4")
    ax.set_yticks(range(len(items)), names)
    for bar, value in zip(bars, values, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.2f}",
                va="center", fontsize="small")  # fmt: skip
    ax.set_xlim(0, max(1.0, max(values) * 1.15))
    ax.set_xlabel("importance (share of the objective's variance)")
    return _svg(fig)


def _axis_position(param: Param, value: Any) -> float:
    """``value`` on ``param``'s axis, 0 (low end) to 1 (high end)."""
    if param.type == "categorical":
        assert param.choices is not None
        labels = [json.dumps(c, sort_keys=True) for c in param.choices]
        text = json.dumps(decode_choice(param, value), sort_keys=True)
        index = labels.index(text) if text in labels else 0
        return 0.5 if len(labels) == 1 else index / (len(labels) - 1)
    assert param.low is not None and param.high is not None
    lo, hi, x = float(param.low), float(param.high), float(value)
    if hi == lo:
        return 0.5
    if param.log:
        return (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (x - lo) / (hi - lo)


def _axis_labels(param: Param) -> list[tuple[float, str]]:
    if param.type == "categorical":
        assert param.choices is not None
        n = len(param.choices)
        return [
            (0.5 if n == 1 else i / (n - 1), json.dumps(c)) for i, c in enumerate(param.choices)
        ]
    return [(0.0, f"{param.low:g}"), (1.0, f"{param.high:g}")]


def _parallel_figure(complete: Sequence[Any], config: TuneConfig) -> str | None:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    usable = [t for t in complete if set(config.space) <= set(t.params)]
    if not usable:
        return None
    names = list(config.space)
    values = [t.value for t in usable]
    lo, hi = min(values), max(values)
    norm = Normalize(lo, hi if hi > lo else lo + 1.0)
    cmap = colormaps["viridis"]
    fig = _figure(max(6.0, 1.6 * (len(names) + 1)), 4.2)
    ax = fig.add_subplot()
    xs = list(range(len(names) + 1))
    best = min(usable, key=lambda t: (t.value, t.number))
    for t in sorted(usable, key=lambda t: -t.value):  # best drawn last, on top
        ys = [norm(t.value) if hi > lo else 0.5]
        ys += [_axis_position(config.space[n], t.params[n]) for n in names]
        thick = t is best
        ax.plot(xs, ys, color=cmap(norm(t.value)), lw=3.0 if thick else 1.2,
                alpha=1.0 if thick else 0.8, zorder=3 if thick else 2)  # fmt: skip
    for x in xs:
        ax.axvline(x, color="grey", lw=0.8, zorder=1)
    axes_labels = [[(0.0, f"{lo:.4g}"), (1.0, f"{hi:.4g}")]]
    axes_labels += [_axis_labels(config.space[n]) for n in names]
    for x, labels in zip(xs, axes_labels, strict=True):
        for y, text in labels:
            ax.text(x + 0.03, y, text, fontsize="x-small", va="center", ha="left")
    ax.set_xticks(xs, ["objective", *names], rotation=15, ha="right", fontsize="small")
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, len(names) + 0.6)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                 label=describe_objective(config.objective))  # fmt: skip
    return _svg(fig)


def _intermediate_figure(trials: Sequence[Any]) -> str | None:
    from matplotlib.ticker import MaxNLocator

    reported = [t for t in trials if t.intermediate_values]
    if not reported:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    for t in reported:
        steps = sorted(t.intermediate_values)
        state = t.state.name
        ax.plot(
            steps, [t.intermediate_values[s] for s in steps],
            ls="--" if state == "PRUNED" else "-", marker=".",
            color=_STATE_COLOURS.get(state, "grey"), alpha=0.8, lw=1.0,
        )  # fmt: skip
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("val/loss")
    ax.grid(alpha=0.3)
    return _svg(fig)


# --------------------------------------------------------------------------- helpers
def _decoded(config: TuneConfig, name: str, value: Any) -> Any:
    param = config.space.get(name)
    return value if param is None else decode_choice(param, value)


def _compact(value: Any) -> str:
    """A parameter value for the table: floats to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value)


def _relative(path: str, here: Path) -> str:
    try:
        return Path(path).resolve().relative_to(here.resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_uri()


def _num(value: Any, digits: int = 5) -> str:
    if value is None or isinstance(value, bool):
        return "-"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return _e(str(value))
    return f"{x:.{digits}g}" if math.isfinite(x) else str(x)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.6rem; }} h2 {{ font-size: 1.25rem; margin-top: 2rem; }}
table {{ border-collapse: collapse; }}
table.meta th {{ text-align: left; padding: 0.2rem 1rem 0.2rem 0; vertical-align: top; }}
table.grid th, table.grid td {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem;
                                font-size: 0.85rem; text-align: right; }}
table.grid th {{ background: #f4f4f4; }}
.scroll {{ overflow-x: auto; }}
figure {{ margin: 0; }} figure img {{ max-width: 100%; }}
figcaption, .note {{ color: #555; font-size: 0.9rem; }}
.s-complete {{ color: #1f77b4; }} .s-pruned {{ color: #c25e00; }} .s-fail {{ color: #d62728; }}
footer {{ margin-top: 3rem; color: #777; font-size: 0.8rem; }}
</style></head>
<body><h1>{title}</h1>
{body}
<footer>Written {generated} by twinforge {version} ({command}).</footer>
</body></html>
"""
"""The page of a study report (tune and scale): no script, nothing from the network."""
