"""``metrics.json``: the validation suite's result as typed, versioned pydantic models.

The suite (:func:`~twinforge.validation.run_validation`) builds its result through
:class:`ValidationMetrics`, so every file it writes satisfies this schema;
:func:`load_metrics` reads one back with the same checks. The JSON schema,
``ValidationMetrics.model_json_schema()``, is committed as ``docs/validation-metrics.schema.json``
(a test keeps the two equal).

Units: energies in MeV, times in seconds. Undefined numbers (an empty layer's separation power,
a metric without entries) are ``null``. FPD and KPD are raw values (CaloChallenge tables quote
them x 1e3). Classifier figures are the mean over ``classifier_seeds`` with their min, max and
standard deviation; ``seeds`` holds each seed's own figures.

Format history: version 1 (one classifier seed, 226 high-level features, unnamed budgets, a
factor 100 in the low-level input) is not comparable and not read by :func:`load_metrics`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twinforge.errors import TwinforgeError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ClassifierMetric",
    "ClassifierSeed",
    "Distance",
    "EnergyBin",
    "NoiseFloor",
    "Protocol",
    "ScopeMetrics",
    "Separation",
    "ValidationMetrics",
    "load_metrics",
]

FORMAT_NAME = "twinforge-validation"
FORMAT_VERSION = 2

Number = float | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassifierSeed(_Model):
    """One classifier seed: calibrated held-out scores and how its training went."""

    auc: Number = Field(description="ROC AUC of the calibrated held-out probabilities")
    jsd: Number = Field(description="(ln 2 - BCE) / ln 2 on the held-out split")
    accuracy: Number
    n_train: int = Field(description="training showers, both classes together")
    n_test: int = Field(description="held-out showers scored (in this scope)")
    best_epoch: int = Field(description="epoch kept (best selection accuracy)")
    epochs_run: int
    epochs_planned: int
    budget: str
    comparable: bool
    steps: int = Field(description="optimiser steps run")
    converged: bool = Field(description="False when the best epoch is in the last 10 % of the run")
    seed: int
    device: str
    seconds: float = Field(description="wall time of training and scoring, s")


class ClassifierMetric(_Model):
    """A classifier two-sample test over its seeds (see the module docstring)."""

    auc: Number = Field(description="mean AUC over the seeds")
    auc_min: Number
    auc_max: Number
    auc_std: Number
    jsd: Number
    jsd_min: Number
    jsd_max: Number
    jsd_std: Number
    accuracy: Number
    n_train: int
    n_test: int
    budget: str = Field(description="challenge, converged, quick, or '<budget> (custom)'")
    comparable: bool = Field(description="False for the quick budget and custom overrides")
    converged: bool = Field(description="every seed converged")
    input: str
    n_seeds: int
    seeds: list[ClassifierSeed]


class Distance(_Model):
    """FPD or KPD on the high-level features (raw, not x 1e3)."""

    value: Number
    error: Number


class Separation(_Model):
    """Separation powers 1/2 sum (h1 - h2)^2 / (h1 + h2); per-layer lists have L entries."""

    e_ratio: Number
    layer_energy: list[Number]
    centre_x: list[Number]
    centre_y: list[Number]
    width_x: list[Number]
    width_y: list[Number]
    sparsity: list[Number]
    voxel_spectrum: Number
    radial: Number
    summary: dict[str, Number] = Field(description="per-layer ones as their mean over layers")


class ScopeMetrics(_Model):
    """The metrics of one scope (overall, an energy bin, the floor); absent when skipped."""

    separation: Separation | None = None
    classifier_low: ClassifierMetric | None = None
    classifier_high: ClassifierMetric | None = None
    fpd: Distance | None = None
    kpd: Distance | None = None


class EnergyBin(_Model):
    """One incident-energy bin (``lo <= E < hi``, the last bin includes ``hi``)."""

    energy_range_mev: list[float] = Field(min_length=2, max_length=2)
    label: str
    n_reference: int
    n_generated: int
    metrics: ScopeMetrics


class SampleInfo(_Model):
    """Where a sample came from."""

    model_config = ConfigDict(extra="allow")

    path: str | None
    n_showers: int
    provenance: dict[str, Any]


class NoiseFloor(_Model):
    """Geant4 vs Geant4 with the same metrics: what a perfect generator would score."""

    method: str
    n_half: int = Field(description="showers of each sample compared")
    same_size: bool = Field(description="as many showers as the main comparison")
    floor_reference: SampleInfo | None = None
    cached: bool = Field(description="read from the cache rather than computed in this run")
    overall: ScopeMetrics
    per_energy: list[EnergyBin]


class Protocol(_Model):
    """What was run: the threshold, the budgets and whether the figures are comparable."""

    name: str
    threshold_mev: float = Field(description="voxels below it were zeroed in both samples")
    threshold_source: str
    n_high_level_features: int = Field(description="362 for CaloChallenge dataset 2")
    classifier_seeds: list[int]
    low_budget: str
    low_budget_description: str
    high_budget: str
    high_budget_description: str
    low_level_input: Literal["voxels", "normed"]
    comparable: bool = Field(description="both budgets comparable (not quick, not custom)")


class ReadoutInfo(_Model):
    """The binning compared."""

    n_layers: int
    n_voxels: int
    calochallenge_dataset: str | None
    description: str


class Skipped(_Model):
    """A metric not computed in a scope, and why."""

    metric: str
    scope: str
    reason: str


class ValidationMetrics(_Model):
    """The whole of ``metrics.json``."""

    format: Literal["twinforge-validation"] = FORMAT_NAME
    format_version: Literal[2] = FORMAT_VERSION
    reference: SampleInfo
    generated: SampleInfo
    readout: ReadoutInfo
    protocol: Protocol
    config: dict[str, Any] = Field(description="the ValidationConfig, as run")
    overall: ScopeMetrics
    per_energy: list[EnergyBin]
    noise_floor: NoiseFloor | None
    skipped: list[Skipped]
    warnings: list[str]
    timing_s: dict[str, float] = Field(description="wall time per metric, s")


def load_metrics(path: str | Path) -> ValidationMetrics:
    """Read and check a ``metrics.json``.

    Raises:
        TwinforgeError: unreadable, not JSON, another format or version, or not this schema
            (the message names the file and the first offending field).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TwinforgeError(f"{path}: cannot read validation metrics ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise TwinforgeError(f"{path}: not a twinforge validation metrics file")
    if data.get("format_version") != FORMAT_VERSION:
        raise TwinforgeError(
            f"{path}: metrics format version {data.get('format_version')}, this twinforge reads "
            f"{FORMAT_VERSION}; version 1 figures are not comparable: validate again"
        )
    try:
        return ValidationMetrics.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise TwinforgeError(f"{path}: {where}: {err['msg']}") from None
