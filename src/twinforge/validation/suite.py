"""The validation suite: every metric, overall, per incident-energy bin, and the noise floor.

:func:`run_validation` compares generated showers with reference showers and returns a
:class:`ValidationResult` whose ``metrics`` is the JSON-able dict of
:class:`~twinforge.validation.schema.ValidationMetrics` (``metrics.json``; the schema, units
and format history are documented there).

A metric that could not be computed in a scope is absent there and listed in ``skipped`` with
the reason (for example how many showers it needs); too few showers for a requested classifier
overall is an error instead. Undefined numbers (a layer without voxels, a histogram without
entries) are ``null``.

Choices, stated once:

* Separation power (:mod:`twinforge.validation.metrics`): bins are set by the reference of each
  scope (the energy bin's reference showers; half A for the noise floor) over its central
  99.8 % range; outliers of either sample go to the end bins; both histograms are normalised.
  Bins: E_tot/E_inc 100 linear, layer energies 40 log, centres and widths 100 linear, voxel
  spectrum 50 log (non-zero voxels), sparsity one bin per possible value (layers up to 100
  voxels) or 50 linear bins over [0, 1]. ``radial`` compares the energy-weighted radial
  distributions (summed radial profiles) over the readout's r bins. Empty-layer NaNs are left
  out. CaloChallenge uses fixed ranges per dataset, so values are comparable in spirit, not to
  the digit.
* Threshold: voxels below the readout threshold are set to zero in both samples before
  anything else (``threshold_mev``; by default the reference file's recorded threshold, else
  the CaloChallenge one of its binning), as the CaloChallenge evaluation does.
* Energy bins: ``energy_bins: n`` gives n log-spaced bins over the reference's energy range; a
  list gives the edges (MeV). A bin holds ``lo <= E < hi`` (the last bin also ``E == hi``).
  The two samples' incident-energy ranges must agree within ``energy_range_tolerance``.
* Classifiers (:mod:`twinforge.validation.classifier`, the CaloChallenge protocol and its named
  budgets): one per seed of ``classifier_seeds``; figures are the mean and min-max over seeds.
  Per energy bin, each seed's classifier (trained once on all energies) scores its calibrated
  held-out predictions whose incident energy lies in the bin (``n_test`` counts them;
  ``n_train`` is the overall training size).
* Noise floor: Geant4 against Geant4 with the same metrics and budgets: with a second,
  independent reference (:class:`FloorReference`), both subsampled to the main comparison's
  size, min(N_ref, N_gen); else two random halves of the reference (seeded by ``seed``), at
  most that size each (``same_size`` says whether it is). This is the value of a *perfect*
  generator; finite-sample terms (separation power ~ bins / N, the FPD extrapolation, the
  classifier's noise) grow as N falls, so a floor at N/2 lies above the one at N. With
  ``cache_dir`` the floor is computed once per reference, size and configuration.
* FPD and KPD (:mod:`twinforge.validation.metrics`, jetnet definitions) run on
  :meth:`~twinforge.validation.observables.Observables.high_level_matrix`, as the CaloChallenge
  evaluation does. jetnet's batch sizes (FPD 20k-50k, KPD 5k) are capped by the showers a scope
  has, n = min(N_ref, N_gen): FPD batch sizes run from min(20k, n/2) to min(50k, n) (bootstrap
  batches larger than the sample would only repeat showers), KPD batches hold min(5k, n). The
  KPD kernel is jetnet's quartic ``(x.y/d + 1)^4`` (``distances.kpd_degree``; the KID
  literature uses 3).
* Threads: NumPy's BLAS runs single-threaded inside the suite (``blas_threads``), torch with
  its own setting (``ClassifierConfig.threads``). ``timing_s`` has one entry per metric, the
  same prefixed ``noise_floor_``, ``noise_floor`` (all of it) and ``total``.
* ``calochallenge_dataset`` is set when the readout's structure (number of layers, and per layer
  the numbers of angular and radial bins) equals that of an official CaloChallenge 2022 binning
  ("1-photons", "1-pions", "3"); "2" also requires the r edges of dataset 2 (the "siw" preset).
  The XML files themselves are not needed at run time.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import Field, NonNegativeInt, PositiveInt, field_validator
from threadpoolctl import threadpool_limits

from twinforge._json import json_default
from twinforge.config import StrictModel
from twinforge.detector.readout import Readout
from twinforge.errors import TwinforgeError
from twinforge.showers.io import atomic_write_text
from twinforge.validation import metrics as M
from twinforge.validation.classifier import (
    MIN_PER_CLASS_IN_BIN,
    ClassifierConfig,
    ClassifierResult,
    classifier_scores,
    low_level_features,
    min_showers_for_classifier,
    plan_budget,
    resolve_device,
    train_classifier,
)
from twinforge.validation.observables import (
    Observables,
    ValidationInputError,
    check_inputs,
    compute_observables,
    energy_label,
    voxel_spectrum,
)
from twinforge.validation.schema import FORMAT_NAME, FORMAT_VERSION, NoiseFloor, ValidationMetrics

__all__ = [
    "ALL_METRICS",
    "CALOCHALLENGE_THRESHOLDS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DistanceConfig",
    "FloorReference",
    "ValidationConfig",
    "ValidationResult",
    "apply_threshold",
    "binning_difference",
    "calochallenge_dataset",
    "check_binnings",
    "check_classifiers",
    "energy_bin_edges",
    "resolve_threshold",
    "run_validation",
    "validate_files",
]

log = logging.getLogger(__name__)

MetricName = Literal["separation", "classifier_low", "classifier_high", "fpd", "kpd"]
ALL_METRICS: tuple[MetricName, ...] = (
    "separation",
    "classifier_low",
    "classifier_high",
    "fpd",
    "kpd",
)
PER_LAYER = ("layer_energy", "centre_x", "centre_y", "width_x", "width_y", "sparsity")

MIN_SEPARATION = 10
"""Showers of each sample needed for separation powers."""
MIN_KPD = 50
"""Showers of each sample needed for KPD."""
MIN_FPD = 100
"""Showers of each sample needed for FPD, at least; also twice the number of features."""

_BINS = {"e_ratio": 100, "layer_energy": 40, "centre": 100, "width": 100, "voxel_spectrum": 50}
_SPARSITY_BINS = 50

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- configuration
class DistanceConfig(StrictModel):
    """FPD and KPD settings (jetnet defaults; batch sizes are capped by the sample sizes)."""

    fpd_min_samples: PositiveInt = Field(20_000, description="smallest FPD batch (jetnet)")
    fpd_max_samples: PositiveInt = Field(50_000, description="largest FPD batch (jetnet)")
    fpd_batches: PositiveInt = Field(20, description="bootstrap batches per batch size")
    fpd_points: int = Field(10, ge=2, description="batch sizes, regular in 1/N")
    kpd_batches: PositiveInt = 10
    kpd_batch_size: PositiveInt = 5_000
    kpd_degree: PositiveInt = Field(4, description="polynomial kernel degree (jetnet: 4)")


class ValidationConfig(StrictModel):
    """What the suite runs and with which budget (YAML ``kind: validation``)."""

    kind: Literal["validation"] = "validation"
    classifier: ClassifierConfig = Field(
        default_factory=ClassifierConfig, description="low-level (voxel) classifier"
    )
    high_classifier: ClassifierConfig = Field(
        default_factory=ClassifierConfig, description="high-level (observables) classifier"
    )
    classifier_seeds: list[NonNegativeInt] = Field(
        default_factory=lambda: [0, 1, 2],
        min_length=1,
        description="one classifier per seed (both levels, the floor too); figures are the mean "
        "and min-max over them",
    )
    threshold_mev: float | None = Field(
        None,
        ge=0.0,
        description="voxels below this energy (MeV) are set to zero in both samples first. "
        "None: the reference file's recorded readout threshold, else the CaloChallenge one of "
        "its binning (0.5 keV / 0.033 = 15.15 keV for datasets 2 and 3), else 0",
    )
    energy_bins: NonNegativeInt | list[float] = Field(
        5,
        description="n log-spaced bins over the reference range, or the bin edges in MeV; "
        "0: no per-energy breakdown",
    )
    energy_range_tolerance: float = Field(
        0.05,
        ge=0.0,
        description="the ends of the generated incident-energy range must match the "
        "reference's within this share of its log range (a relative tolerance for a single "
        "energy); else an error",
    )
    noise_floor: bool = Field(True, description="also compare Geant4 with Geant4")
    metrics: list[MetricName] = Field(default_factory=lambda: list(ALL_METRICS))
    distances: DistanceConfig = Field(default_factory=DistanceConfig)
    seed: int = Field(0, ge=0, description="noise-floor split and FPD/KPD batches")
    cache_dir: str | None = Field(
        None,
        description="keep the noise floor here, keyed by the reference's content and this "
        "config, so that several models compared with one reference pay for it once "
        "(None: no cache)",
    )
    blas_threads: PositiveInt | None = Field(
        1,
        description="NumPy BLAS threads for observables, separation, FPD and KPD (None: the "
        "library default). 1 by default: multi-threaded OpenBLAS on small matrices is slower, "
        "and on an oversubscribed machine up to 1000x slower; the classifiers use torch threads",
    )

    @field_validator("energy_bins")
    @classmethod
    def _edges(cls, value: int | list[float]) -> int | list[float]:
        if isinstance(value, list):
            arr = np.asarray(value, dtype=np.float64)
            if arr.size < 2 or not np.all(np.isfinite(arr)) or arr[0] <= 0:
                raise ValueError("energy bin edges need at least two finite values > 0 MeV")
            if np.any(np.diff(arr) <= 0):
                raise ValueError(f"energy bin edges must increase, got {value}")
        return value

    @field_validator("metrics")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


# --------------------------------------------------------------------------- result
@dataclass
class ValidationResult:
    """Metrics (JSON-able dict, schema in the module docstring) and the observables behind them.

    ``classifiers`` keeps the full :class:`~twinforge.validation.classifier.ClassifierResult`
    objects (held-out predictions, training history) under ``"classifier_low"``,
    ``"classifier_high"`` and ``"noise_floor/classifier_low"`` etc., for plots.
    """

    metrics: dict[str, Any]
    reference: Observables
    generated: Observables
    classifiers: dict[str, ClassifierResult] = field(default_factory=dict)

    def to_json(self, indent: int | None = 2) -> str:
        """The metrics as JSON text (undefined numbers are ``null``)."""
        return json.dumps(self.metrics, indent=indent, allow_nan=False, default=json_default)


# --------------------------------------------------------------------------- helpers
def calochallenge_dataset(readout: Readout) -> str | None:
    """ "1-photons", "1-pions", "2" or "3" when ``readout`` has that CaloChallenge binning
    structure (see the module docstring), else None."""
    structure = tuple((layer.n_alpha, layer.n_r) for layer in readout.layers)
    for name, runs in _CALOCHALLENGE_STRUCTURES.items():
        if structure == tuple(item for value, count in runs for item in [value] * count):
            if name != "2":
                return name
            edges = readout.layers[0].r_edges
            if readout.is_regular and np.allclose(edges, _DS2_R_EDGES, atol=1e-6):
                return name
    return None


_CALOCHALLENGE_STRUCTURES: dict[str, tuple[tuple[tuple[int, int], int], ...]] = {
    # per layer (n_alpha, n_r), run-length encoded, from the official binning_dataset_*.xml
    "1-photons": (((1, 8), 1), ((10, 16), 1), ((10, 19), 1), ((1, 5), 1), ((1, 0), 8),
                  ((1, 5), 1), ((1, 0), 11)),
    "1-pions": (((1, 8), 1), ((10, 10), 2), ((1, 5), 1), ((1, 0), 8), ((10, 15), 1),
                ((10, 16), 1), ((1, 10), 1), ((1, 0), 9)),
    "2": (((16, 9), 45),),
    "3": (((50, 18), 45),),
}  # fmt: skip
_DS2_R_EDGES = np.arange(10) * 4.65  # mm, CaloChallenge dataset 2 (= the "siw" preset)


def energy_bin_edges(
    spec: int | Sequence[float], reference_energy: ArrayLike
) -> NDArray[np.float64]:
    """Incident-energy bin edges (MeV) from a config value (see :class:`ValidationConfig`)."""
    if not isinstance(spec, int):
        return np.asarray(spec, dtype=np.float64)
    if spec == 0:
        return np.empty(0)
    e = np.asarray(reference_energy, dtype=np.float64)
    lo, hi = float(e.min()), float(e.max())
    if hi <= lo * (1 + 1e-9):
        return np.array([lo, hi])
    return np.geomspace(lo, hi, spec + 1)


def _in_bin(energy: NDArray[np.float64], edges: NDArray[np.float64], i: int) -> NDArray[np.bool_]:
    lo, hi = edges[i], edges[i + 1]
    if i == len(edges) - 2:
        return (energy >= lo) & (energy <= hi)
    return (energy >= lo) & (energy < hi)


def _clean(value: Any) -> Any:
    """JSON-able copy: NumPy scalars/arrays to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else math.nan


class _Run:
    """Book-keeping of one suite run: skipped metrics, warnings, timings, progress."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.skipped: list[dict[str, str]] = []
        self.warnings: list[str] = []
        self.timing: dict[str, float] = {}

    def say(self, message: str) -> None:
        """One message once: to the progress callback when there is one (the caller shows
        it), else to the log at info level."""
        if self.progress is not None:
            log.debug(message)
            self.progress(message)
        else:
            log.info(message)

    def skip(self, metric: str, scope: str, reason: str) -> None:
        log.info("skipped %s (%s): %s", metric, scope, reason)
        self.skipped.append({"metric": metric, "scope": scope, "reason": reason})

    def warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)

    @contextmanager
    def timed(self, key: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timing[key] = self.timing.get(key, 0.0) + time.perf_counter() - start


@dataclass
class _Side:
    """One sample of a comparison: observables, high-level matrix, showers and index into them."""

    obs: Observables
    hlf: NDArray[np.float64]
    showers: NDArray[np.floating]
    index: NDArray[np.int64]  # rows of ``showers`` (and of the full-sample arrays)

    def take(self, mask: NDArray[np.bool_]) -> _Side:
        return _Side(self.obs.subset(mask), self.hlf[mask], self.showers, self.index[mask])

    @property
    def n(self) -> int:
        return int(self.index.size)


# --------------------------------------------------------------------------- metric blocks
def _separation(ref: _Side, gen: _Side) -> dict[str, Any]:
    """All separation powers of one scope (histogram bins from ``ref``)."""
    r, g = ref.obs, gen.obs
    out: dict[str, Any] = {}
    out["e_ratio"] = M.histogram_separation(
        r.e_ratio, g.e_ratio, M.reference_edges(r.e_ratio, _BINS["e_ratio"])
    )
    with_voxels = r.layers_with_voxels
    in_alpha = r.layers_binned_in_alpha
    n_vox = r.layer_n_voxels if r.layer_n_voxels is not None else np.full(r.n_layers, 101)
    per_layer: dict[str, list[float]] = {name: [] for name in PER_LAYER}
    for k in range(r.n_layers):
        if not with_voxels[k]:
            for name in PER_LAYER:
                per_layer[name].append(math.nan)
            continue
        col = slice(k, k + 1)
        per_layer["layer_energy"].append(
            M.histogram_separation(
                r.layer_energy[:, col],
                g.layer_energy[:, col],
                M.reference_edges(r.layer_energy[:, col], _BINS["layer_energy"], "log"),
            )
        )
        for name, nbins in (("centre_x", "centre"), ("centre_y", "centre"),
                            ("width_x", "width"), ("width_y", "width")):  # fmt: skip
            if not in_alpha[k]:
                per_layer[name].append(math.nan)
                continue
            a, b = getattr(r, name)[:, col], getattr(g, name)[:, col]
            per_layer[name].append(M.histogram_separation(a, b, M.reference_edges(a, _BINS[nbins])))
        edges = (
            M.discrete_edges(int(n_vox[k]))
            if n_vox[k] <= 100
            else np.linspace(0.0, 1.0, _SPARSITY_BINS + 1)
        )
        per_layer["sparsity"].append(
            M.histogram_separation(r.sparsity[:, col], g.sparsity[:, col], edges)
        )
    out.update(per_layer)
    spec_ref = voxel_spectrum(ref.showers[ref.index])
    spec_gen = voxel_spectrum(gen.showers[gen.index])
    out["voxel_spectrum"] = M.histogram_separation(
        spec_ref, spec_gen, M.reference_edges(spec_ref, _BINS["voxel_spectrum"], "log")
    )
    out["radial"] = M.weighted_separation(r.radial, g.radial)
    summary = {"e_ratio": out["e_ratio"]}
    summary.update({name: _nanmean(per_layer[name]) for name in PER_LAYER})
    summary.update({"voxel_spectrum": out["voxel_spectrum"], "radial": out["radial"]})
    out["summary"] = summary
    return out


def _fpd_kpd(
    ref: _Side, gen: _Side, which: str, config: ValidationConfig, scope: str, run: _Run
) -> dict[str, float] | None:
    d = config.distances
    n = min(ref.n, gen.n)
    n_features = ref.hlf.shape[1]
    if which == "fpd":
        need = max(MIN_FPD, 2 * n_features)
        if n < need:
            run.skip(
                "fpd",
                scope,
                f"FPD needs at least {need} showers in each sample (twice the {n_features} "
                f"high-level features, and >= {MIN_FPD}); has {ref.n} reference and {gen.n} "
                "generated",
            )
            return None
        max_s = min(d.fpd_max_samples, n)
        min_s = min(d.fpd_min_samples, max(max_s // 2, 2))
        value, error = M.fpd(
            ref.hlf,
            gen.hlf,
            min_samples=min_s,
            max_samples=max_s,
            num_batches=d.fpd_batches,
            num_points=d.fpd_points,
            seed=config.seed,
        )
    else:
        if n < MIN_KPD:
            run.skip(
                "kpd",
                scope,
                f"KPD needs at least {MIN_KPD} showers in each sample; has {ref.n} reference "
                f"and {gen.n} generated",
            )
            return None
        value, error = M.kpd(
            ref.hlf,
            gen.hlf,
            num_batches=d.kpd_batches,
            batch_size=min(d.kpd_batch_size, n),
            degree=d.kpd_degree,
            seed=config.seed,
        )
    return {"value": value, "error": error}


def _classifier(
    ref: _Side,
    gen: _Side,
    which: str,
    config: ValidationConfig,
    scope: str,
    run: _Run,
    full_ref: NDArray[np.floating],
    full_gen: NDArray[np.floating],
) -> list[ClassifierResult] | None:
    """One ``which`` classifier per seed on the rows ``ref.index``/``gen.index`` of the features.

    Raises:
        ValidationInputError: too few showers for the main comparison (the noise floor is
            skipped instead, with the reason).
    """
    cfg = config.classifier if which == "classifier_low" else config.high_classifier
    need = min_showers_for_classifier(cfg)
    if min(ref.n, gen.n) < need:
        reason = (
            f"the {which.replace('_', ' (')}-level) classifier needs at least {need} showers in "
            f"each sample (50 per class in each of the 60/20/20 train/selection/held-out "
            f"splits); has {ref.n} reference and {gen.n} generated"
        )
        if scope == "overall":
            raise ValidationInputError(reason)
        run.skip(which, scope, reason)
        return None
    results = []
    for seed in config.classifier_seeds:
        name = f"{which} ({scope}, seed {seed})"
        run.say(f"training {name}")
        result = train_classifier(
            full_ref[ref.index],
            full_gen[gen.index],
            cfg.model_copy(update={"seed": seed}),
            progress=run.progress,
            name=name,
        )
        # held-out indices relative to the full arrays, so energies can be looked up there
        result.test_index_ref = ref.index[result.test_index_ref]
        result.test_index_gen = gen.index[result.test_index_gen]
        results.append(result)
        if not result.converged and result.comparable:  # quick/custom runs say so anyway
            run.warn(
                f"{name}: not converged (best epoch {result.best_epoch} of {result.epochs_run}, "
                "in the last 10 % of the run): the AUC is likely an underestimate"
            )
    return results


def _spread(values: Sequence[float], key: str) -> dict[str, float]:
    """``{key: mean, key_min, key_max, key_std}`` of finite values (NaN when none)."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if not arr.size:
        return {
            key: math.nan,
            f"{key}_min": math.nan,
            f"{key}_max": math.nan,
            f"{key}_std": math.nan,
        }
    return {
        key: float(arr.mean()),
        f"{key}_min": float(arr.min()),
        f"{key}_max": float(arr.max()),
        f"{key}_std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
    }


def _classifier_entry(
    results: list[ClassifierResult],
    scores: list[tuple[float, float, float, int]],
    which: str,
    config: ValidationConfig,
) -> dict[str, Any]:
    """The METRICS entry of one classifier over its seeds: mean and min-max of AUC and JSD,
    the budget, and one summary per seed (``scores``: per seed AUC, JSD, accuracy, n_test)."""
    cfg = config.classifier if which == "classifier_low" else config.high_classifier
    first = results[0]
    seeds = []
    for result, (auc, jsd, acc, n_test) in zip(results, scores, strict=True):
        seeds.append(result.summary() | {"auc": auc, "jsd": jsd, "accuracy": acc, "n_test": n_test})
    entry: dict[str, Any] = {}
    entry.update(_spread([s[0] for s in scores], "auc"))
    entry.update(_spread([s[1] for s in scores], "jsd"))
    entry["accuracy"] = _nanmean([s[2] for s in scores])
    entry.update(
        n_train=first.n_train,
        n_test=scores[0][3],
        budget=first.budget,
        comparable=all(r.comparable for r in results),
        converged=all(r.converged for r in results),
        input=(
            f"low level: {cfg.low_level_input}"
            if which == "classifier_low"
            else "high level: CaloChallenge features"
        ),
        n_seeds=len(results),
        seeds=seeds,
    )
    return entry


def _classifier_in_bin(
    results: list[ClassifierResult],
    e_ref: NDArray[np.float64],
    e_gen: NDArray[np.float64],
    edges: NDArray[np.float64],
    i: int,
) -> tuple[list[tuple[float, float, float, int]] | None, str]:
    """Per seed (AUC, JSD, accuracy, n_test) of the held-out predictions in energy bin ``i``;
    ``e_*`` are the energies of the rows the classifiers saw."""
    out = []
    for result in results:
        in_r = _in_bin(e_ref[result.test_index_ref], edges, i)
        in_g = _in_bin(e_gen[result.test_index_gen], edges, i)
        if min(in_r.sum(), in_g.sum()) < MIN_PER_CLASS_IN_BIN:
            return None, (
                f"needs at least {MIN_PER_CLASS_IN_BIN} held-out showers of each sample in the "
                f"bin (the classifier is trained on all energies); has {int(in_r.sum())} "
                f"reference and {int(in_g.sum())} generated"
            )
        auc, jsd, acc = classifier_scores(result.test_prob_ref[in_r], result.test_prob_gen[in_g])
        out.append((auc, jsd, acc, int(in_r.sum() + in_g.sum())))
    return out, ""


def _compare(
    ref: _Side,
    gen: _Side,
    edges: NDArray[np.float64],
    config: ValidationConfig,
    run: _Run,
    features: dict[str, tuple[NDArray[np.floating], NDArray[np.floating]]],
    *,
    prefix: str,
    classifiers: dict[str, ClassifierResult],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Overall and per-energy METRICS of ``gen`` against ``ref``.

    ``prefix`` is "" for the main comparison and "noise floor" for the halves (scopes and
    timing keys carry it).
    """
    overall_scope = prefix or "overall"
    tkey = (lambda m: f"noise_floor_{m}") if prefix else (lambda m: m)
    bins = []
    for i in range(len(edges) - 1):
        mr = _in_bin(ref.obs.energy, edges, i)
        mg = _in_bin(gen.obs.energy, edges, i)
        label = energy_label(edges[i], edges[i + 1])
        scope = f"{prefix}, {label}" if prefix else label
        bins.append((i, label, scope, ref.take(mr), gen.take(mg)))
    overall: dict[str, Any] = {}
    per_energy = [
        {
            "energy_range_mev": [float(edges[i]), float(edges[i + 1])],
            "label": label,
            "n_reference": r.n,
            "n_generated": g.n,
            "metrics": {},
        }
        for i, label, _, r, g in bins
    ]
    if "separation" in config.metrics:
        run.say(f"separation power ({overall_scope})")
        with run.timed(tkey("separation")):
            for scope, r, g, target in [(overall_scope, ref, gen, overall)] + [
                (scope, r, g, entry["metrics"])
                for (_, _, scope, r, g), entry in zip(bins, per_energy, strict=True)
            ]:
                if min(r.n, g.n) < MIN_SEPARATION:
                    run.skip(
                        "separation",
                        scope,
                        f"separation powers need at least {MIN_SEPARATION} showers in each "
                        f"sample; has {r.n} reference and {g.n} generated",
                    )
                    continue
                target["separation"] = _separation(r, g)
    for which in ("classifier_low", "classifier_high"):
        if which not in config.metrics:
            continue
        with run.timed(tkey(which)):
            full_r, full_g = features[which]
            results = _classifier(ref, gen, which, config, overall_scope, run, full_r, full_g)
            if results is None:
                for _, _, scope, _, _ in bins:
                    run.skip(which, scope, f"not trained: too few showers ({overall_scope})")
                continue
            classifiers[f"{prefix}/{which}" if prefix else which] = results[0]
            overall_scores = [(r.auc, r.jsd, r.accuracy, r.n_test) for r in results]
            overall[which] = _classifier_entry(results, overall_scores, which, config)
            e_r, e_g = features["energy"]
            for (i, _, scope, _, _), entry in zip(bins, per_energy, strict=True):
                scores, reason = _classifier_in_bin(results, e_r, e_g, edges, i)
                if scores is None:
                    run.skip(which, scope, reason)
                else:
                    entry["metrics"][which] = _classifier_entry(results, scores, which, config)
    for which in ("fpd", "kpd"):
        if which not in config.metrics:
            continue
        run.say(f"{which.upper()} ({overall_scope})")
        with run.timed(tkey(which)):
            for scope, r, g, target in [(overall_scope, ref, gen, overall)] + [
                (scope, r, g, entry["metrics"])
                for (_, _, scope, r, g), entry in zip(bins, per_energy, strict=True)
            ]:
                value = _fpd_kpd(r, g, which, config, scope, run)
                if value is not None:
                    target[which] = value
    return overall, per_energy


# --------------------------------------------------------------------------- entry points
@dataclass
class FloorReference:
    """A second, independent reference sample (e.g. Geant4 with other seeds) for the noise
    floor at the full sample size; without one the floor compares two halves of the reference.

    ``showers`` (N, V) MeV, ``energy`` (N,) MeV, ``info`` the ``path``/``provenance`` record.
    """

    showers: NDArray[np.floating]
    energy: ArrayLike
    info: dict[str, Any] = field(default_factory=dict)


def run_validation(
    ref_showers: NDArray[np.floating],
    ref_energy: ArrayLike,
    gen_showers: NDArray[np.floating],
    gen_energy: ArrayLike,
    readout: Readout,
    config: ValidationConfig | None = None,
    *,
    progress: Progress | None = None,
    reference_info: dict[str, Any] | None = None,
    generated_info: dict[str, Any] | None = None,
    recorded_threshold: float | None = None,
    floor_reference: FloorReference | None = None,
) -> ValidationResult:
    """Compare generated showers with reference showers.

    Args:
        ref_showers: reference showers (N_ref, V), MeV, voxel order of ``readout``.
        ref_energy: their incident energies (N_ref,) or (N_ref, 1), MeV.
        gen_showers: generated showers (N_gen, V), MeV.
        gen_energy: their incident energies, MeV.
        readout: the binning of both.
        config: metrics and budgets; :class:`ValidationConfig` defaults.
        progress: called with a one-line message per stage (and classifier epoch).
        reference_info: ``path`` and ``provenance`` recorded under ``metrics["reference"]``.
        generated_info: same for ``metrics["generated"]``.
        recorded_threshold: the readout threshold the reference file records, MeV (used when
            ``config.threshold_mev`` is None).
        floor_reference: a second reference sample for the noise floor at full size.

    Raises:
        ValidationInputError: shapes do not fit the readout, NaN/inf or negative voxel energies,
            non-positive incident energies, no showers, incident-energy ranges that differ, or
            too few showers for a requested classifier.
    """
    config = config or ValidationConfig()
    limits: AbstractContextManager[Any] = (
        threadpool_limits(limits=config.blas_threads, user_api="blas")
        if config.blas_threads is not None
        else nullcontext()
    )
    with limits:
        return _run_validation(
            ref_showers, ref_energy, gen_showers, gen_energy, readout, config,
            _Run(progress), reference_info, generated_info, recorded_threshold, floor_reference,
        )  # fmt: skip


def resolve_threshold(
    config: ValidationConfig, readout: Readout, recorded: float | None
) -> tuple[float, str]:
    """The voxel threshold (MeV) applied to both samples, and where it comes from."""
    if config.threshold_mev is not None:
        return float(config.threshold_mev), "configuration (threshold_mev)"
    if recorded is not None and recorded > 0:
        return float(recorded), "the reference file's readout threshold"
    dataset = calochallenge_dataset(readout)
    if dataset is not None:
        value = CALOCHALLENGE_THRESHOLDS[dataset]
        return value, f"CaloChallenge dataset {dataset} (evaluate.py min_energy)"
    return 0.0, "none recorded (no threshold applied)"


CALOCHALLENGE_THRESHOLDS: dict[str, float] = {
    "1-photons": 1.0,
    "1-pions": 1.0,
    "2": 0.5e-3 / 0.033,
    "3": 0.5e-3 / 0.033,
}
"""Voxel thresholds of the CaloChallenge evaluation (``evaluate.py``'s ``min_energy``), MeV."""


def apply_threshold(showers: NDArray[np.floating], threshold: float) -> NDArray[np.floating]:
    """``showers`` with every voxel below ``threshold`` MeV set to zero (a copy when anything
    changes; chunked, no boolean temporary of the whole array)."""
    if threshold <= 0:
        return showers
    out: NDArray[np.floating] | None = None
    for lo in range(0, showers.shape[0], 4096):
        chunk = showers[lo : lo + 4096]
        below = (chunk < threshold) & (chunk != 0)
        if below.any():
            if out is None:
                out = np.array(showers, copy=True)
            out[lo : lo + 4096][below] = 0.0
    return showers if out is None else out


def _check_energy_ranges(
    e_ref: NDArray[np.float64], e_gen: NDArray[np.float64], tolerance: float, what: str
) -> None:
    """Both ends of the ranges must agree within ``log(1 + tol) + tol * log(max/min)`` in log
    energy: a relative ``tol`` for single-energy samples, a share ``tol`` of the log range for
    spectra (whose sample extremes wander with the sample size)."""
    lo_r, hi_r, lo_g, hi_g = e_ref.min(), e_ref.max(), e_gen.min(), e_gen.max()
    limit = math.log1p(tolerance) + tolerance * math.log(hi_r / lo_r)
    if max(abs(math.log(lo_g / lo_r)), abs(math.log(hi_g / hi_r))) > limit:
        raise ValidationInputError(
            f"incident-energy ranges differ: reference {lo_r:g}-{hi_r:g} MeV, {what} "
            f"{lo_g:g}-{hi_g:g} MeV: compare samples of the same conditions (twinforge "
            "validate --model samples at the reference's), or cut the reference to the "
            "generated range"
        )


def _run_validation(
    ref_showers: NDArray[np.floating],
    ref_energy: ArrayLike,
    gen_showers: NDArray[np.floating],
    gen_energy: ArrayLike,
    readout: Readout,
    config: ValidationConfig,
    run: _Run,
    reference_info: dict[str, Any] | None,
    generated_info: dict[str, Any] | None,
    recorded_threshold: float | None,
    floor_reference: FloorReference | None,
) -> ValidationResult:
    start = time.perf_counter()
    e_ref = check_inputs(ref_showers, ref_energy, readout, "reference")
    e_gen = check_inputs(gen_showers, gen_energy, readout, "generated")
    _check_energy_ranges(e_ref, e_gen, config.energy_range_tolerance, "generated")
    e_floor = None
    if floor_reference is not None and config.noise_floor:
        e_floor = check_inputs(
            floor_reference.showers, floor_reference.energy, readout, "floor reference"
        )
        _check_energy_ranges(e_ref, e_floor, config.energy_range_tolerance, "floor reference")
    check_classifiers(config, min(len(e_ref), len(e_gen)))

    threshold, threshold_source = resolve_threshold(config, readout, recorded_threshold)
    run.say(f"zeroing voxels below {threshold:g} MeV ({threshold_source})")
    ref_showers = apply_threshold(ref_showers, threshold)
    gen_showers = apply_threshold(gen_showers, threshold)

    run.say("computing observables")
    with run.timed("observables"):
        obs_ref = compute_observables(ref_showers, e_ref, readout)
        obs_gen = compute_observables(gen_showers, e_gen, readout)
        hlf_ref, hlf_gen = obs_ref.high_level_matrix(), obs_gen.high_level_matrix()
    for what, obs in (("reference", obs_ref), ("generated", obs_gen)):
        n_zero = int(np.sum(obs.layer_energy.sum(axis=1) == 0))
        if n_zero:
            run.warn(
                f"{n_zero} of {obs.n_showers} {what} showers are empty (all voxels zero): "
                "their centres and widths are undefined and left out of the separation powers"
            )

    edges = energy_bin_edges(config.energy_bins, e_ref)
    if len(edges):
        for name, e in (("reference", e_ref), ("generated", e_gen)):
            n_out = int(np.sum((e < edges[0]) | (e > edges[-1])))
            if n_out and not (name == "generated" and isinstance(config.energy_bins, int)):
                run.warn(
                    f"{n_out} {name} showers lie outside the energy bins {edges[0]:g}-"
                    f"{edges[-1]:g} MeV"
                )

    ref_features = _sample_features(config, readout, ref_showers, e_ref, obs_ref, hlf_ref)
    features = _pair(
        ref_features, _sample_features(config, readout, gen_showers, e_gen, obs_gen, hlf_gen)
    )
    ref = _Side(obs_ref, hlf_ref, ref_showers, np.arange(len(e_ref)))
    gen = _Side(obs_gen, hlf_gen, gen_showers, np.arange(len(e_gen)))
    classifiers: dict[str, ClassifierResult] = {}
    overall, per_energy = _compare(
        ref, gen, edges, config, run, features, prefix="", classifiers=classifiers
    )

    noise: dict[str, Any] | None = None
    if config.noise_floor:
        with run.timed("noise_floor"):
            floor_side = None
            if floor_reference is not None:
                assert e_floor is not None
                floor_side = (
                    apply_threshold(floor_reference.showers, threshold),
                    e_floor,
                    floor_reference.info,
                )
            floor_inputs = _FloorInputs(
                ref, floor_side, min(ref.n, gen.n), edges, ref_features, readout, threshold
            )
            noise = _cached_noise_floor(floor_inputs, config, run, classifiers)

    run.timing["total"] = time.perf_counter() - start
    metrics = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "reference": _sample_info(reference_info, len(e_ref)),
        "generated": _sample_info(generated_info, len(e_gen)),
        "readout": {
            "n_layers": readout.n_layers,
            "n_voxels": readout.n_voxels,
            "calochallenge_dataset": calochallenge_dataset(readout),
            "description": readout.describe(),
        },
        "protocol": _protocol(config, threshold, threshold_source, hlf_ref.shape[1]),
        "config": config.model_dump(mode="json"),
        "overall": overall,
        "per_energy": per_energy,
        "noise_floor": noise,
        "skipped": run.skipped,
        "warnings": run.warnings,
        "timing_s": run.timing,
    }
    run.say(f"validation done in {run.timing['total']:.1f} s")
    ran = [
        block.get("comparable", True)
        for scope in (overall, (noise or {}).get("overall") or {})
        for block in (scope.get("classifier_low"), scope.get("classifier_high"))
        if isinstance(block, dict)
    ]
    metrics["protocol"]["comparable"] = metrics["protocol"]["comparable"] and all(ran)
    checked = ValidationMetrics.model_validate(_clean(metrics))
    metrics = checked.model_dump(mode="json", exclude_unset=True)  # skipped metrics stay absent
    return ValidationResult(metrics, obs_ref, obs_gen, classifiers)


def check_classifiers(config: ValidationConfig, n: int) -> None:
    """Fail before any work when a requested classifier cannot be trained on ``n`` showers of
    each sample, or on the requested device.

    Raises:
        ValidationInputError: says how many showers it needs, or that there is no GPU.
    """
    for which, cfg in (
        ("classifier_low", config.classifier),
        ("classifier_high", config.high_classifier),
    ):
        need = min_showers_for_classifier(cfg)
        if which in config.metrics and n < need:
            raise ValidationInputError(
                f"too few showers for the {which.split('_')[1]}-level classifier: it needs at "
                f"least {need} of each sample (50 per class in each of the 60/20/20 splits), "
                f"the smaller sample has {n}; the CaloChallenge protocol is meant for >= 10k"
            )
        if which in config.metrics:
            try:
                resolve_device(cfg.device)
            except ValueError as exc:
                raise ValidationInputError(f"{which}: {exc}") from None


def _sample_features(
    config: ValidationConfig,
    readout: Readout,
    showers: NDArray[np.floating],
    energy: NDArray[np.float64],
    obs: Observables,
    hlf: NDArray[np.float64],
) -> dict[str, NDArray[np.floating]]:
    """Classifier inputs of one sample: ``energy`` (N,), ``classifier_low``, ``classifier_high``."""
    out: dict[str, NDArray[np.floating]] = {"energy": energy}
    if "classifier_low" in config.metrics:
        normed = config.classifier.low_level_input == "normed"
        out["classifier_low"] = low_level_features(
            showers,
            energy,
            obs.layer_energy if normed else None,
            readout.voxel_centres().layer if normed else None,
        )
    if "classifier_high" in config.metrics:
        out["classifier_high"] = hlf.astype(np.float32)
    return out


def _pair(
    a: dict[str, NDArray[np.floating]], b: dict[str, NDArray[np.floating]]
) -> dict[str, tuple[NDArray[np.floating], NDArray[np.floating]]]:
    return {key: (a[key], b[key]) for key in a}


def _protocol(
    config: ValidationConfig, threshold: float, source: str, n_high: int
) -> dict[str, Any]:
    """What was run, in words and numbers, for metrics.json and the report."""
    out: dict[str, Any] = {
        "name": "CaloChallenge 2022 classifier protocol (arXiv 2410.21611, evaluate.py)",
        "threshold_mev": threshold,
        "threshold_source": source,
        "n_high_level_features": n_high,
        "classifier_seeds": list(config.classifier_seeds),
    }
    comparable = True
    for key, cfg in (("low", config.classifier), ("high", config.high_classifier)):
        plan = plan_budget(cfg, 1)
        out[f"{key}_budget"] = plan.budget
        out[f"{key}_budget_description"] = plan.description
        comparable &= plan.comparable
    out["low_level_input"] = config.classifier.low_level_input
    out["comparable"] = comparable
    return out


def _cache_key(
    arrays: Sequence[NDArray[Any]], config: ValidationConfig, extra: dict[str, Any]
) -> str:
    """SHA-256 over the arrays' bytes and the settings that change the floor."""
    import hashlib

    from twinforge import __version__

    digest = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        digest.update(f"{arr.dtype}{arr.shape}".encode())
        for lo in range(0, arr.shape[0], 4096):
            digest.update(memoryview(arr[lo : lo + 4096]).cast("B"))
    settings = config.model_dump(
        mode="json", exclude={"cache_dir", "blas_threads", "kind", "energy_range_tolerance"}
    )
    for key in ("classifier", "high_classifier"):  # where it ran does not change the figure
        for where in ("device", "threads"):
            settings[key].pop(where, None)
    text = json.dumps(
        {"config": settings, **extra, "version": __version__, "format_version": FORMAT_VERSION},
        sort_keys=True,
    )
    digest.update(text.encode())
    return digest.hexdigest()


@dataclass
class _FloorInputs:
    """What the noise floor is computed from: the reference side, the second reference
    (showers, energies, info) or None for halves, the main comparison's size, the energy bin
    edges, the reference's classifier inputs, the readout and the threshold applied (MeV)."""

    ref: _Side
    floor_side: tuple[NDArray[np.floating], NDArray[np.float64], dict[str, Any]] | None
    n_compared: int
    edges: NDArray[np.float64]
    ref_features: dict[str, NDArray[np.floating]]
    readout: Readout
    threshold: float


def _cached_noise_floor(
    inputs: _FloorInputs,
    config: ValidationConfig,
    run: _Run,
    classifiers: dict[str, ClassifierResult],
) -> dict[str, Any] | None:
    """The noise floor, from ``config.cache_dir`` when the same reference, floor reference,
    size and settings were seen before; computed (and stored) otherwise."""
    path = None
    if config.cache_dir is not None:
        arrays = [inputs.ref.showers, inputs.ref_features["energy"]]
        if inputs.floor_side is not None:
            arrays += [inputs.floor_side[0], inputs.floor_side[1]]
        key = _cache_key(
            arrays,
            config,
            {
                "n": inputs.n_compared,
                "threshold": inputs.threshold,
                "edges": inputs.edges.tolist(),
                "readout": inputs.readout.to_xml(),
                "code": _code_digest(),
            },
        )
        path = Path(config.cache_dir) / f"noise-floor-{key[:32]}.json"
        if path.is_file():
            try:
                entry = json.loads(path.read_text())
                noise = NoiseFloor.model_validate(entry["noise_floor"]).model_dump(
                    mode="json", exclude_unset=True
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                run.warn(f"{path}: unusable cache entry ({exc}); computing the floor again")
            else:
                run.say(f"noise floor from the cache ({path})")
                run.skipped += entry.get("skipped", [])
                run.warnings += entry.get("warnings", [])
                return noise | {"cached": True}
    n_skipped, n_warnings = len(run.skipped), len(run.warnings)
    noise = _noise_floor(inputs, config, run, classifiers)
    if noise is not None and path is not None:
        entry = {
            "noise_floor": noise,
            "skipped": run.skipped[n_skipped:],
            "warnings": run.warnings[n_warnings:],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(_clean(entry), allow_nan=False, default=json_default))
    return noise


def _code_digest() -> str:
    """SHA-256 of the validation code, so that a development install never reuses a floor that
    older code computed."""
    import hashlib

    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in ("classifier.py", "metrics.py", "observables.py", "suite.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def _noise_floor(
    inputs: _FloorInputs,
    config: ValidationConfig,
    run: _Run,
    classifiers: dict[str, ClassifierResult],
) -> dict[str, Any] | None:
    """Geant4 vs Geant4 with the same metrics: the reference against ``floor_side`` (a second
    reference; both subsampled to ``n_compared`` showers), or two random halves of the
    reference (``n_compared`` each at most)."""
    ref, floor_side, n_compared, readout = (
        inputs.ref,
        inputs.floor_side,
        inputs.n_compared,
        inputs.readout,
    )
    edges, ref_features = inputs.edges, inputs.ref_features
    rng = np.random.default_rng([config.seed, 7])
    source: dict[str, Any] | None = None
    if floor_side is None:
        n = min(ref.n // 2, n_compared)
        method = "two random halves of the reference"
        if n < MIN_SEPARATION:
            run.skip(
                "noise_floor",
                "noise floor",
                f"needs at least {2 * MIN_SEPARATION} reference showers (two halves), has {ref.n}",
            )
            return None
        perm = rng.permutation(ref.n)
        mask_a = np.zeros(ref.n, dtype=bool)
        mask_b = np.zeros(ref.n, dtype=bool)
        mask_a[perm[:n]] = True
        mask_b[perm[n : 2 * n]] = True
        side_a, side_b = ref.take(mask_a), ref.take(mask_b)
        # both halves index the reference arrays
        features = _pair(ref_features, ref_features)
    else:
        f_showers, f_energy, source = floor_side
        n = min(ref.n, len(f_energy), n_compared)
        method = "the reference against a second, independent reference"
        mask_a = np.zeros(ref.n, dtype=bool)
        mask_a[rng.permutation(ref.n)[:n]] = True
        side_a = ref.take(mask_a)
        keep_b = np.sort(rng.permutation(len(f_energy))[:n])
        showers_b, energy_b = f_showers[keep_b], f_energy[keep_b]
        obs_b = compute_observables(showers_b, energy_b, readout)
        hlf_b = obs_b.high_level_matrix()
        side_b = _Side(obs_b, hlf_b, showers_b, np.arange(n))
        features = _pair(
            ref_features, _sample_features(config, readout, showers_b, energy_b, obs_b, hlf_b)
        )
    overall, per_energy = _compare(
        side_a,
        side_b,
        edges,
        config,
        run,
        features,
        prefix="noise floor",
        classifiers=classifiers,
    )
    return {
        "method": method,
        "n_half": n,
        "same_size": n == n_compared,
        "floor_reference": None if source is None else _sample_info(source, len(floor_side[1])),
        "cached": False,
        "overall": overall,
        "per_energy": per_energy,
    }


def _sample_info(info: dict[str, Any] | None, n: int) -> dict[str, Any]:
    info = dict(info or {})
    path = info.pop("path", None)
    provenance = info.pop("provenance", {})
    return {"path": None if path is None else str(path), "n_showers": n,
            "provenance": provenance, **info}  # fmt: skip


def binning_difference(a: Readout, b: Readout) -> str:
    """The first difference of two binnings, in words (``"2 vs 6 layers"``, ``"layer 3: ..."``)."""
    if a.n_layers != b.n_layers:
        return f"{a.n_layers} vs {b.n_layers} layers"
    for i, (la, lb) in enumerate(zip(a.layers, b.layers, strict=True)):
        if la != lb:
            return (
                f"layer {i}: {la.n_alpha} vs {lb.n_alpha} alpha bins, r edges "
                f"{np.round(la.r_edges, 4).tolist()} vs {np.round(lb.r_edges, 4).tolist()} mm"
            )
    return "identical"  # pragma: no cover


def validate_files(
    reference: str | Path,
    generated: str | Path,
    config: ValidationConfig | None = None,
    *,
    progress: Progress | None = None,
    readout: Readout | None = None,
    floor_reference: str | Path | None = None,
) -> ValidationResult:
    """Open two shower files (:class:`~twinforge.showers.ShowerFile`) and validate.

    The binning is the one the files store; ``readout`` is needed only for plain CaloChallenge
    files without a ``binning_xml`` attribute (and must agree with stored ones). Paths, event
    counts and provenance are recorded in ``metrics["reference"]``/``metrics["generated"]``.
    ``floor_reference``: a second reference file for the noise floor at full size.

    Raises:
        TwinforgeError: the files have different binnings (the message names both files and
            the first difference), no binning is known, or a file cannot be read (the message
            names it).
    """
    from twinforge.showers.file import ShowerFile  # showers import no validation: no cycle

    ref_path, gen_path = Path(reference), Path(generated)
    say = progress or (lambda _msg: None)
    with ShowerFile(ref_path) as f_ref, ShowerFile(gen_path) as f_gen:
        binning = check_binnings(
            [(ref_path, f_ref.readout, f_ref.n_voxels), (gen_path, f_gen.readout, f_gen.n_voxels)],
            readout,
        )
        say(f"reading {ref_path}")
        cond_ref, showers_ref = f_ref.read()
        say(f"reading {gen_path}")
        cond_gen, showers_gen = f_gen.read()
        info_ref = {"path": str(ref_path), "provenance": f_ref.provenance}
        info_gen = {"path": str(gen_path), "provenance": f_gen.provenance}
        threshold = f_ref.threshold
    floor = None
    if floor_reference is not None:
        floor_path = Path(floor_reference)
        with ShowerFile(floor_path) as f_floor:
            check_binnings(
                [
                    (ref_path, binning, showers_ref.shape[1]),
                    (floor_path, f_floor.readout, f_floor.n_voxels),
                ],
                readout,
            )
            say(f"reading {floor_path}")
            cond_floor, showers_floor = f_floor.read()
            floor = FloorReference(
                showers_floor,
                cond_floor.energy,
                {"path": str(floor_path), "provenance": f_floor.provenance},
            )
    pdg_ref, pdg_gen = set(np.unique(cond_ref.pdg).tolist()), set(np.unique(cond_gen.pdg).tolist())
    result = run_validation(
        showers_ref,
        cond_ref.energy,
        showers_gen,
        cond_gen.energy,
        binning,
        config,
        progress=progress,
        reference_info=info_ref,
        generated_info=info_gen,
        recorded_threshold=threshold,
        floor_reference=floor,
    )
    if pdg_ref != pdg_gen:
        message = f"particle ids differ: reference {sorted(pdg_ref)}, generated {sorted(pdg_gen)}"
        log.warning(message)
        result.metrics["warnings"].append(message)
    return result


def check_binnings(
    files: Sequence[tuple[Path, Readout | None, int]], readout: Readout | None = None
) -> Readout:
    """The common binning of shower files (path, stored readout or None, voxels per shower);
    the first file is the reference. ``readout`` is the binning given for files without one.

    Raises:
        TwinforgeError: binnings or voxel counts differ (naming both files and the first
            difference), or no binning is known.
    """
    (ref_path, r_ref, n_ref), others = files[0], files[1:]
    for path, stored, n_vox in others:
        if r_ref is not None and stored is not None and r_ref != stored:
            raise TwinforgeError(
                f"reference {ref_path} and {path} have different binnings "
                f"({r_ref.describe()} vs {stored.describe()}; {binning_difference(r_ref, stored)})"
                ": compare showers of the same readout"
            )
        if n_vox != n_ref:
            raise TwinforgeError(
                f"reference {ref_path} has {n_ref} voxels per shower but {path} has {n_vox}: "
                "compare showers of the same readout"
            )
    for path, stored, _ in files:
        if readout is not None and stored is not None and stored != readout:
            raise TwinforgeError(
                f"{path}: its binning ({stored.describe()}) differs from the given readout "
                f"({readout.describe()}; {binning_difference(stored, readout)})"
            )
    binning = next((stored for _, stored, _ in files if stored is not None), None) or readout
    if binning is None:
        raise TwinforgeError(
            f"none of {', '.join(str(p) for p, _, _ in files)} stores its binning (binning_xml): "
            "give the readout (detector) explicitly"
        )
    if binning.n_voxels != n_ref:
        raise TwinforgeError(
            f"{ref_path}: {n_ref} voxels per shower, but the readout has {binning.n_voxels}"
        )
    return binning


_ = ValidationInputError  # re-exported through twinforge.validation
