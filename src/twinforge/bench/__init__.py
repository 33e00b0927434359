"""Benchmark: time per shower of a model against Geant4, per backend, precision and batch size.

:func:`benchmark` times :meth:`Generator.generate <twinforge.inference.runtime.Generator>`
calls (noise drawing, conditions, the network, the inverse transform and the copy of the
showers to host memory: what a user's call costs) for every configuration

    device (cpu; cuda when present) x backend (torch, onnx) x precision (float32, and
    optionally int8 / float16) x batch size (default 1, 100, 10000: the CaloChallenge columns),

each in a fresh process by default (``isolate=True``), so that its peak resident memory is its
own; warm-up calls are excluded; the repeats run for at least ``min_repeats`` calls and stop
after ``budget_s`` seconds (or ``max_repeats`` calls); the median and the 16th/84th percentiles
(and min/max) of the time per shower are reported. Geant4 is timed in the same run (its own
process, one thread, the model's detector, the same particle and energy, after a warm-up
shower), and each configuration gets its speed-up ``Geant4 CPU s/shower / model s/shower``;
with a spectrum (``spectrum=(low, high)`` MeV, log-uniform, a test set's), Geant4 is also
timed over it and each configuration gets its speed-up against Geant4's mean there.

Reduced precision (ONNX Runtime dynamic int8, float16 matrix products; torch float16 on GPUs)
is timed like the rest and its fidelity cost measured: with the same noise as the float32
model (deviation of the showers, separation power of E_tot / E_inc), and, given a reference
shower file, with the validation suite against it.

The result is a JSON-able dict (schema ``twinforge-bench`` version 1, keys listed in
:func:`benchmark`); :func:`write_json`, :func:`write_plot` (time per shower vs batch size,
log-log, Geant4 as a horizontal line) and :func:`register` (an evaluation record in the
catalogue, with the machine description) store it. Given the model's low-level classifier AUC
(:func:`~twinforge.bench.pareto.classifier_low`), :mod:`~twinforge.bench.pareto` draws it
against its time, beside Geant4 and the published CaloChallenge points.

Modules: :mod:`~twinforge.bench.harness` (:func:`benchmark`), :mod:`~twinforge.bench.timing`
(one configuration), :mod:`~twinforge.bench.geant4` (the reference),
:mod:`~twinforge.bench.pareto` (fidelity against speed),
:mod:`~twinforge.bench.fidelity` (reduced precision), :mod:`~twinforge.bench.machine` (the
machine description) and :mod:`~twinforge.bench.output` (JSON, plot, catalogue). The package
imports neither torch nor onnxruntime at import time: the per-configuration worker processes
import only what their backend needs.
"""

from __future__ import annotations

from twinforge.bench.fidelity import reference_fidelity, same_noise_fidelity, separation_power
from twinforge.bench.geant4 import (
    geant4_per_shower,
    geant4_spectrum,
    resolve_detector,
    spectrum_energies,
)
from twinforge.bench.harness import (
    BACKEND_NAMES,
    DEFAULT_BATCH_SIZES,
    EXTRA_PRECISIONS,
    SCHEMA,
    SCHEMA_VERSION,
    benchmark,
)
from twinforge.bench.machine import machine_info
from twinforge.bench.output import register, write_json, write_plot
from twinforge.bench.timing import (
    BenchConfig,
    Timing,
    peak_rss_mib,
    run_config,
    summarize,
    time_calls,
)

__all__ = [
    "BACKEND_NAMES",
    "DEFAULT_BATCH_SIZES",
    "EXTRA_PRECISIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "BenchConfig",
    "Timing",
    "benchmark",
    "geant4_per_shower",
    "geant4_spectrum",
    "machine_info",
    "peak_rss_mib",
    "reference_fidelity",
    "register",
    "resolve_detector",
    "run_config",
    "same_noise_fidelity",
    "separation_power",
    "spectrum_energies",
    "summarize",
    "time_calls",
    "write_json",
    "write_plot",
]
