"""The objective of a study: a named figure of the validation suite, or a weighted sum of them.

Every figure is read from the metrics the suite computes for the trial's model against the
held-out reference (overall scope), with the steps of ``twinforge validate --model``
(:func:`evaluate_model`: the same reference subset, sampling and
:func:`~twinforge.validation.run_validation` call), so a trial's objective is the number
``twinforge validate`` reports with the same settings. All are minimised (0.5 is the ideal
AUC; a calibrated AUC below it is noise).

Names (:data:`FIGURES`): ``fpd``, ``kpd`` (raw, not x 1e3), ``auc_high``, ``auc_low``,
``jsd_high``, ``jsd_low`` (mean over ``classifier_seeds``), and ``separation.<observable>``
(the separation power of an observable; per-layer ones averaged over layers, as the summary).

Cost per trial at the default suite settings (docs/tune.md has the measured seconds): FPD,
KPD and separation powers run on the high-level features, seconds to tens of seconds; the
classifier AUCs train the CaloChallenge network for every seed, minutes on a CPU for
``auc_high`` and several times that for ``auc_low`` (use a GPU or a smaller budget for them,
see :class:`~twinforge.validation.ClassifierConfig`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from twinforge.config import StrictModel
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.validation.suite import (
    MIN_FPD,
    MIN_KPD,
    MIN_SEPARATION,
    PER_LAYER,
    ValidationConfig,
    check_classifiers,
)

__all__ = [
    "FIGURES",
    "Figure",
    "ObjectiveError",
    "ObjectiveSpec",
    "WeightedObjective",
    "check_objective",
    "check_reference",
    "describe_objective",
    "evaluate_model",
    "objective_terms",
    "objective_value",
    "read_figures",
    "suite_config",
]

log = logging.getLogger(__name__)


class ObjectiveError(TwinforgeError):
    """The suite did not compute a figure the objective needs (too few showers, say)."""


@dataclass(frozen=True)
class Figure:
    """A number of the suite's overall scope: the metric that computes it (a name of
    :data:`~twinforge.validation.suite.ALL_METRICS`) and where it is in ``metrics["overall"]``."""

    name: str
    metric: str
    key: tuple[str, ...]
    description: str


def _figures() -> dict[str, Figure]:
    out = {
        "fpd": Figure("fpd", "fpd", ("fpd", "value"), "Frechet physics distance (high level)"),
        "kpd": Figure("kpd", "kpd", ("kpd", "value"), "kernel physics distance (high level)"),
    }
    for level in ("high", "low"):
        metric = f"classifier_{level}"
        for what in ("auc", "jsd"):
            name = f"{what}_{level}"
            text = f"{what.upper()} of the {level}-level classifier (mean over seeds)"
            out[name] = Figure(name, metric, (metric, what), text)
    for observable in ("e_ratio", *PER_LAYER, "voxel_spectrum", "radial"):
        name = f"separation.{observable}"
        out[name] = Figure(
            name,
            "separation",
            ("separation", "summary", observable),
            f"separation power of {observable}"
            + (" (mean over layers)" if observable in PER_LAYER else ""),
        )
    return out


FIGURES: dict[str, Figure] = _figures()
"""Every figure an objective may name."""


class WeightedObjective(StrictModel):
    """``{weighted: {fpd: 1.0, auc_high: 10.0}}``: the sum of weight x figure."""

    weighted: dict[str, float] = Field(min_length=1)


ObjectiveSpec = str | WeightedObjective


def objective_terms(objective: ObjectiveSpec) -> dict[str, float]:
    """The figures of an objective and their weights."""
    if isinstance(objective, str):
        return {objective: 1.0}
    return dict(objective.weighted)


def check_objective(objective: ObjectiveSpec) -> None:
    """Raise ``ValueError`` (a one-line config error) for figures the suite does not compute
    or weights that are not finite and non-zero."""
    for name, weight in objective_terms(objective).items():
        if name not in FIGURES:
            raise ValueError(
                f"the validation suite computes no figure {name!r}; it computes: "
                f"{', '.join(FIGURES)}"
            )
        if not math.isfinite(weight) or weight == 0:
            raise ValueError(f"weight of {name!r} must be finite and non-zero, got {weight}")


def describe_objective(objective: ObjectiveSpec) -> str:
    """``fpd`` or ``1 x fpd + 10 x auc_high``."""
    terms = objective_terms(objective)
    if isinstance(objective, str):
        return objective
    return " + ".join(f"{w:g} x {name}" for name, w in terms.items())


def suite_config(objective: ObjectiveSpec, base: ValidationConfig | None) -> ValidationConfig:
    """The suite settings a trial is validated with: ``base`` (default settings when None) with
    ``metrics`` the objective's (plus any the user listed), and, unless set in ``base``, no
    noise floor and no per-energy breakdown (neither changes the objective; both cost)."""
    base = base or ValidationConfig()
    needed = [FIGURES[name].metric for name in objective_terms(objective)]
    given = list(base.metrics) if "metrics" in base.model_fields_set else []
    data = base.model_dump(mode="json", exclude_unset=True)
    data["metrics"] = list(dict.fromkeys(needed + given))
    data.setdefault("noise_floor", False)
    data.setdefault("energy_bins", 0)
    return ValidationConfig.model_validate(data)


def read_figures(
    metrics: dict[str, Any], names: list[str] | None = None
) -> dict[str, float | None]:
    """The named figures (default: all) from a ``metrics.json`` mapping; None where absent or
    undefined."""
    overall = metrics.get("overall") or {}
    out: dict[str, float | None] = {}
    for name in names or list(FIGURES):
        node: Any = overall
        for part in FIGURES[name].key:
            node = node.get(part) if isinstance(node, dict) else None
        out[name] = float(node) if isinstance(node, int | float) and math.isfinite(node) else None
    return out


def objective_value(
    metrics: dict[str, Any], objective: ObjectiveSpec
) -> tuple[float, dict[str, float]]:
    """The objective and the figures it is made of.

    Raises:
        ObjectiveError: a figure is missing or undefined (the suite's reason when it skipped it).
    """
    terms = objective_terms(objective)
    figures = read_figures(metrics, list(terms))
    missing = [name for name, value in figures.items() if value is None]
    if missing:
        name = missing[0]
        metric = FIGURES[name].metric
        reasons = [
            s.get("reason", "")
            for s in metrics.get("skipped") or []
            if s.get("metric") == metric and s.get("scope") == "overall"
        ]
        why = reasons[0] if reasons else "undefined (no finite value)"
        raise ObjectiveError(f"objective figure {name} not computed: {why}")
    values = {name: float(v) for name, v in figures.items() if v is not None}
    return sum(terms[name] * values[name] for name in terms), values


def check_reference(
    reference: Path,
    training_files: list[Path],
    suite: ValidationConfig,
    max_showers: int | None,
) -> int:
    """Check before any training that the reference can give the objective; return how many
    reference showers each trial compares.

    Raises:
        ConfigError: missing or unreadable file, one of the training files, another binning
            than the training files', or too few showers for a metric the objective needs.
    """
    from twinforge.showers.file import ShowerFile
    from twinforge.validation.observables import compute_observables

    if not reference.is_file():
        raise ConfigError(f"reference {reference}: shower file not found")
    resolved = reference.resolve()
    if any(Path(f).resolve() == resolved for f in training_files):
        raise ConfigError(
            f"reference {reference} is a training file: validate on held-out showers "
            "(e.g. twinforge showers split --split val, or an independent campaign)"
        )
    try:
        with ShowerFile(reference) as f:
            readout, n_events = f.readout, f.n_events
            cond, showers = f.read(0, min(n_events, 2))
        with ShowerFile(training_files[0]) as f:
            train_readout = f.readout
    except TwinforgeError as exc:
        raise ConfigError(f"reference: {exc}") from None
    if readout is None:
        raise ConfigError(f"reference {reference}: the file does not store its binning")
    if train_readout is not None and train_readout != readout:
        raise ConfigError(
            f"reference {reference} ({readout.describe()}) and training file "
            f"{training_files[0]} ({train_readout.describe()}) have different binnings"
        )
    n = n_events if max_showers is None else min(n_events, max_showers)
    if n == 0:
        raise ConfigError(f"reference {reference}: holds no showers")
    try:
        check_classifiers(suite, n)
    except TwinforgeError as exc:
        raise ConfigError(f"reference {reference}: {exc}") from None
    if "fpd" in suite.metrics:
        n_features = compute_observables(showers, cond.energy, readout).high_level_matrix().shape[1]
        need = max(MIN_FPD, 2 * n_features)
        if n < need:
            raise ConfigError(
                f"reference {reference}: {n} showers, FPD needs at least {need} (twice the "
                f"{n_features} high-level features, and >= {MIN_FPD})"
            )
    for metric, need in (("kpd", MIN_KPD), ("separation", MIN_SEPARATION)):
        if metric in suite.metrics and n < need:
            raise ConfigError(f"reference {reference}: {n} showers, {metric} needs {need}")
    return n


def evaluate_model(
    model: Path,
    reference: Path,
    output: Path,
    suite: ValidationConfig,
    *,
    max_showers: int | None,
    title: str,
    report: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Validate ``model`` against ``reference`` as ``twinforge validate --model`` does and
    return the metrics mapping (also written to ``output/metrics.json``).

    It is :func:`twinforge.validation.evaluate` itself; without ``report`` it writes no
    ``report.html``, whose figures cost far more than the objective's metrics (about 20 s on
    the 96-voxel test detector).
    """
    from twinforge.validation.evaluate import evaluate

    outcome = evaluate(
        reference, output, model=model, config=suite, max_showers=max_showers,
        overwrite=True, progress=progress, title=title, report=report,
    )  # fmt: skip
    return outcome.result.metrics
