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
shower), and each configuration gets its speed-up ``Geant4 s/shower / model s/shower``.

Reduced precision (ONNX Runtime dynamic int8, float16 matrix products; torch float16 on GPUs)
is timed like the rest and its fidelity cost measured: with the same noise as the float32
model (deviation of the showers, separation power of E_tot / E_inc), and, given a reference
shower file, with the validation suite against it.

The result is a JSON-able dict (schema ``twinforge-bench`` version 1, keys listed in
:func:`benchmark`); :func:`write_json`, :func:`write_plot` (time per shower vs batch size,
log-log, Geant4 as a horizontal line) and :func:`register` (an evaluation record in the
catalogue, with the machine description) store it.

This module imports neither torch nor onnxruntime at import time: the per-configuration worker
processes import only what their backend needs.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import importlib.metadata
import importlib.util
import json
import logging
import math
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinforge import __version__
from twinforge._json import finite_or_none, json_default
from twinforge.errors import TwinforgeError

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "SCHEMA",
    "BenchConfig",
    "Timing",
    "benchmark",
    "geant4_per_shower",
    "machine_info",
    "register",
    "resolve_detector",
    "run_config",
    "separation_power",
    "summarize",
    "time_calls",
    "write_json",
    "write_plot",
]

log = logging.getLogger(__name__)

SCHEMA = "twinforge-bench"
SCHEMA_VERSION = 1
DEFAULT_BATCH_SIZES = (1, 100, 10_000)
BACKEND_NAMES = ("torch", "onnx")
EXTRA_PRECISIONS = ("int8", "float16")
_CUDA_EP = "CUDAExecutionProvider"
_CPU_EP = "CPUExecutionProvider"


@dataclass(frozen=True)
class Timing:
    """How each configuration is timed.

    Attributes:
        warmup: untimed calls first (allocations, lazy initialisation, caches).
        min_repeats: timed calls at least.
        max_repeats: timed calls at most.
        budget_s: stop timing a configuration after this many seconds (once ``min_repeats``
            calls are done).
        energy: incident energy of every shower, MeV.
        pdg: particle id.
        theta: polar angle, rad.
        phi: azimuth, rad.
    """

    warmup: int = 2
    min_repeats: int = 3
    max_repeats: int = 1000
    budget_s: float = 3.0
    energy: float = 10_000.0
    pdg: int = 11
    theta: float = 0.0
    phi: float = 0.0


@dataclass(frozen=True)
class BenchConfig:
    """One timed configuration.

    Attributes:
        backend: ``torch`` or ``onnx``.
        precision: ``float32``, ``int8`` (ONNX) or ``float16``.
        device: ``cpu`` or ``cuda``.
        batch: showers per :meth:`Generator.generate` call.
        threads: intra-op threads (torch and ONNX Runtime).
        path: what the worker loads: the model directory (torch) or the ONNX file.
    """

    backend: str
    precision: str
    device: str
    batch: int
    threads: int
    path: str

    @property
    def label(self) -> str:
        """``"onnx int8 cpu"``: the series a row belongs to."""
        return f"{self.backend} {self.precision} {self.device}"


# ---------------------------------------------------------------------- timing
def time_calls(
    fn: Callable[[int], object],
    *,
    warmup: int,
    min_repeats: int,
    max_repeats: int,
    budget_s: float,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Seconds taken by each timed call of ``fn(i)`` (``i``: the call's index, a seed).

    ``warmup`` untimed calls, then at least ``min_repeats`` and at most ``max_repeats`` timed
    calls, stopping once ``budget_s`` seconds of timed calls have passed.
    """
    for i in range(warmup):
        fn(i)
    times: list[float] = []
    start = clock()
    while len(times) < max(max_repeats, min_repeats):
        t0 = clock()
        fn(warmup + len(times))
        times.append(clock() - t0)
        if len(times) >= min_repeats and clock() - start >= budget_s:
            break
    return times


def summarize(times_s: Sequence[float], batch: int) -> dict[str, Any]:
    """Statistics of call times (s) of ``batch`` showers each, per shower in ms.

    Keys: ``repeats``, ``median_ms_per_shower``, ``p16_ms_per_shower``,
    ``p84_ms_per_shower``, ``min_ms_per_shower``, ``max_ms_per_shower``, ``median_call_ms``,
    ``showers_per_s`` (batch / median call time).
    """
    t = np.asarray(times_s, dtype=np.float64)
    if t.size == 0:
        raise ValueError("no timings")
    per = t * 1e3 / batch
    median_call = float(np.median(t))
    return {
        "repeats": int(t.size),
        "median_ms_per_shower": float(np.median(per)),
        "p16_ms_per_shower": float(np.percentile(per, 16)),
        "p84_ms_per_shower": float(np.percentile(per, 84)),
        "min_ms_per_shower": float(per.min()),
        "max_ms_per_shower": float(per.max()),
        "median_call_ms": median_call * 1e3,
        "showers_per_s": batch / median_call if median_call > 0 else None,
    }


def peak_rss_mib() -> float:
    """High-water mark of this process's resident set, MiB (VmHWM; else ru_maxrss)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024.0


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs``); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_config(
    config: BenchConfig, timing: Timing, *, fresh_process: bool = False
) -> dict[str, Any]:
    """Time one configuration in this process; the result row (see :func:`benchmark`).

    ``fresh_process``: this process was started for this configuration (the peak RSS is then
    the whole process's); otherwise the high-water mark is reset first where the OS allows.
    """
    from twinforge.inference.runtime import Generator

    scope = "process" if fresh_process else "since-reset" if _reset_peak_rss() else "process"
    providers = None
    if config.backend == "onnx":
        providers = [_CUDA_EP, _CPU_EP] if config.device == "cuda" else [_CPU_EP]
    cuda = _cuda_torch() if config.device == "cuda" else None
    gpu_before = _gpu_used_mib(cuda) if cuda is not None and config.backend == "onnx" else None
    if cuda is not None:
        cuda.reset_peak_memory_stats()
    generator = Generator(
        config.path,
        backend=config.backend,  # type: ignore[arg-type]
        threads=config.threads,
        providers=providers,
        device=config.device if config.backend == "torch" else None,
        precision="float16" if config.backend == "torch" and config.precision == "float16"
        else "float32",
    )  # fmt: skip
    energy = np.full(config.batch, timing.energy)

    def call(i: int) -> object:
        return generator.generate(energy, timing.pdg, timing.theta, timing.phi, seed=i)

    times = time_calls(
        call,
        warmup=timing.warmup,
        min_repeats=timing.min_repeats,
        max_repeats=timing.max_repeats,
        budget_s=timing.budget_s,
    )
    row: dict[str, Any] = {
        "backend": config.backend,
        "precision": config.precision,
        "device": config.device,
        "batch": config.batch,
        "threads": config.threads,
        "providers": generator.providers,
        **summarize(times, config.batch),
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_scope": scope,
        "gpu_peak_mib": None,
        "speedup_vs_geant4": None,
    }
    if cuda is not None:
        if config.backend == "torch":
            row["gpu_peak_mib"] = cuda.max_memory_allocated() / 2**20
        elif gpu_before is not None:  # ORT's arena keeps what it grew to: in use now ~ peak
            row["gpu_peak_mib"] = max(0.0, (_gpu_used_mib(cuda) or 0.0) - gpu_before)
    return row


def _run_config_isolated(config: BenchConfig, timing: Timing) -> dict[str, Any]:
    """:func:`run_config` in a fresh "spawn" process (its peak RSS is its own)."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        future = pool.submit(run_config, config, timing, fresh_process=True)
        try:
            return future.result()
        except concurrent.futures.process.BrokenProcessPool:
            raise TwinforgeError(
                f"the benchmark process of {config.label} batch {config.batch} died "
                "(out of memory?)"
            ) from None


def _cuda_torch() -> Any:
    """``torch.cuda`` when torch is installed and sees a GPU, else None."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch.cuda if torch.cuda.is_available() else None


def _gpu_used_mib(cuda: Any) -> float | None:
    try:
        free, total = cuda.mem_get_info()
    except Exception:  # no device / driver error: no GPU figure
        return None
    return float(total - free) / 2**20


# ---------------------------------------------------------------------- Geant4
def geant4_per_shower(
    detector: Any,
    energy: float,
    pdg: int,
    n: int,
    *,
    seed: int = 1,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Geant4 seconds per shower: ``n`` showers of ``pdg`` at ``energy`` MeV in ``detector``.

    Runs in a fresh process, one thread, after one untimed warm-up shower (physics tables);
    the time per shower is from primary generation to the end of scoring (wall and CPU).

    Returns:
        ``median_s_per_shower`` (wall), ``p16_s_per_shower``, ``p84_s_per_shower``,
        ``min_s_per_shower``, ``max_s_per_shower``, ``median_cpu_s_per_shower``, ``n``,
        ``energy_MeV``, ``pdg``, ``detector``, ``threads`` (1), ``physics``,
        ``simulator_version``, ``peak_rss_mib``, ``provenance``.

    Raises:
        SimulationError: Geant4 cannot simulate this (e.g. hadrons without data sets).
    """
    from twinforge.simulation.geant4 import call_in_subprocess

    if n < 1:
        raise TwinforgeError(f"Geant4 showers must be >= 1, got {n}")
    return call_in_subprocess(_geant4_worker, detector, energy, pdg, n, seed, timeout=timeout)


def _geant4_worker(detector: Any, energy: float, pdg: int, n: int, seed: int) -> dict[str, Any]:
    """The Geant4 subprocess: warm up, simulate, return the timings."""
    from twinforge.showers.conditions import Conditions
    from twinforge.simulation.geant4 import get_session

    session = get_session(detector)
    session.simulate(Conditions.make([min(energy, 1000.0)], pdg), seed)  # physics tables
    session.simulate(Conditions.make(np.full(n, energy), pdg), seed + 1)
    wall, cpu = session.last_timings.wall, session.last_timings.cpu
    provenance = session.provenance()
    return {
        "median_s_per_shower": float(np.median(wall)),
        "p16_s_per_shower": float(np.percentile(wall, 16)),
        "p84_s_per_shower": float(np.percentile(wall, 84)),
        "min_s_per_shower": float(wall.min()),
        "max_s_per_shower": float(wall.max()),
        "median_cpu_s_per_shower": float(np.median(cpu)),
        "n": int(n),
        "energy_MeV": float(energy),
        "pdg": int(pdg),
        "detector": detector.name,
        "threads": 1,
        "physics": str(provenance.get("physics", "")),
        "simulator_version": str(provenance.get("simulator_version", "")),
        "peak_rss_mib": peak_rss_mib(),
        "provenance": json.loads(json.dumps(provenance, default=str)),
    }


def resolve_detector(
    binning_xml: str, provenance: Mapping[str, Any] | None = None, detector: str | None = None
) -> Any:
    """The :class:`~twinforge.detector.DetectorConfig` a model was trained for.

    ``detector`` (a preset name or YAML file) when given; else the detector recorded in the
    provenance of the model's training files (when they still exist); else the preset whose
    readout is the model's binning.

    Raises:
        TwinforgeError: none of these tells (pass ``detector``).
    """
    from twinforge.detector import DetectorConfig, Readout, load_detector, preset_names

    if detector is not None:
        return load_detector(detector)
    for name in (provenance or {}).get("training_files", []) or []:
        config = _detector_of_file(Path(name))
        if config is not None:
            return DetectorConfig.model_validate(config)
    if binning_xml:
        layers = Readout.from_xml(binning_xml).layers
        for name in preset_names():
            candidate = load_detector(name)
            if candidate.binning().layers == layers:
                return candidate
    raise TwinforgeError(
        "cannot tell which detector the model simulates (its binning matches no preset and its "
        "training files are gone): give the detector (--detector NAME_OR_YAML), or skip Geant4 "
        "(--geant4-showers 0)"
    )


def _detector_of_file(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        from twinforge.showers import ShowerFile

        with ShowerFile(path) as f:
            config = f.provenance.get("detector_config")
    except (TwinforgeError, OSError):
        return None
    return config if isinstance(config, dict) and config else None


# ---------------------------------------------------------------------- machine
def machine_info() -> dict[str, Any]:
    """The machine: CPU model, cores, memory, GPUs, OS, Python and library versions."""
    cpu_model, physical = _cpuinfo()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    info: dict[str, Any] = {
        "cpu_model": cpu_model or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical,
        "usable_cpus": usable,
        "memory_total_mib": _mem_total_mib(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in ("torch", "onnxruntime", "onnx", "numpy", "geant4-pybind")
        },
        "twinforge": __version__,
        "onnxruntime_providers": _ort_providers(),
        "gpus": [],
    }
    cuda = _cuda_torch()
    if cuda is not None:
        info["gpus"] = [
            {
                "name": cuda.get_device_name(i),
                "memory_mib": cuda.get_device_properties(i).total_memory / 2**20,
            }
            for i in range(cuda.device_count())
        ]
    return info


def _cpuinfo() -> tuple[str, int | None]:
    """CPU model name and physical core count from /proc/cpuinfo (Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "", None
    model, cores, phys = "", set(), ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and not model:
            model = value
        elif key == "physical id":
            phys = value
        elif key == "core id":
            cores.add((phys, value))
    return model, (len(cores) or None)


def _mem_total_mib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


# ---------------------------------------------------------------------- fidelity
def separation_power(a: NDArray[np.floating], b: NDArray[np.floating], bins: int = 50) -> float:
    """Separation power of ``b`` against ``a`` on ``bins`` bins of ``a``'s central range (the
    validation suite's definition, :mod:`twinforge.validation.metrics`); 0 when undefined."""
    from twinforge.validation.metrics import histogram_separation, reference_edges

    value = histogram_separation(a, b, reference_edges(a, bins))
    return 0.0 if math.isnan(value) else value


def same_noise_fidelity(
    base: Any, variant: Any, energy: NDArray[np.floating], pdg: int, *, seed: int = 0
) -> dict[str, Any]:
    """How far a reduced-precision ``variant`` strays from ``base`` (float32) on the same noise.

    Both generate showers for ``energy`` (MeV) with identical noise. Returns ``n``,
    ``etot_rel_diff_median`` and ``etot_rel_diff_max`` (|E_tot variant / E_tot base - 1|),
    ``voxel_rel_l1`` (sum |variant - base| / sum base), ``zero_flips`` (fraction of voxels
    zero in one and not the other) and ``separation_etot`` (separation power of the
    E_tot / E_inc histograms).
    """
    energy = np.asarray(energy, dtype=np.float64)
    noise = base.noise(len(energy), seed)
    a = base.generate(energy, pdg, noise=noise).astype(np.float64)
    b = variant.generate(energy, pdg, noise=noise).astype(np.float64)
    ea, eb = a.sum(axis=1), b.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(ea > 0, np.abs(eb / ea - 1.0), np.where(eb > 0, np.inf, 0.0))
    return {
        "n": len(energy),
        "etot_rel_diff_median": finite_or_none(np.median(rel)),
        "etot_rel_diff_max": finite_or_none(np.max(rel)),
        "voxel_rel_l1": float(np.abs(b - a).sum() / max(a.sum(), 1e-30)),
        "zero_flips": float(np.mean((a > 0) != (b > 0))),
        "separation_etot": separation_power(ea / energy, eb / energy),
    }


def reference_fidelity(
    generators: Mapping[str, Any], reference: Path, *, n_max: int = 5000, seed: int = 0
) -> dict[str, Any]:
    """Validation-suite metrics of each generator's showers against a reference shower file.

    Showers are generated for the first ``n_max`` conditions of ``reference``. Returns
    ``{"reference": path, "n": N, "metrics": {label: metrics}}``, or with an ``"error"`` (and
    no metrics) when the validation suite cannot run here.
    """
    from twinforge.showers import ShowerFile

    with ShowerFile(reference) as f:
        n = min(f.n_events, n_max)
        conditions, showers = f.read(0, n)
        readout = f.readout
    out: dict[str, Any] = {"reference": str(reference), "n": int(n), "metrics": {}}
    if readout is None:
        out["error"] = f"{reference}: no binning in the file"
        return out
    try:
        from twinforge.validation.suite import ValidationConfig, run_validation
    except ImportError as exc:
        out["error"] = f"validation suite not available ({exc})"
        return out
    for label, generator in generators.items():
        generated = generator.generate(
            conditions.energy, conditions.pdg, conditions.theta, conditions.phi, seed=seed
        )
        try:
            result = run_validation(
                showers,
                conditions.energy,
                generated,
                conditions.energy,
                readout,
                ValidationConfig(noise_floor=False, seed=seed),
            )
        except NotImplementedError:
            out["error"] = "the validation suite is not implemented yet"
            out["metrics"] = {}
            return out
        out["metrics"][label] = json.loads(json.dumps(result.metrics, default=json_default))
    return out


# ---------------------------------------------------------------------- the benchmark
def benchmark(
    model: str | os.PathLike[str],
    *,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    backends: Sequence[str] = BACKEND_NAMES,
    precisions: Sequence[str] = (),
    devices: Sequence[str] | None = None,
    threads: int | None = None,
    timing: Timing | None = None,
    energy: float = 10_000.0,
    pdg: int | None = None,
    geant4_showers: int = 5,
    detector: str | None = None,
    geant4_timeout: float | None = None,
    fidelity_showers: int = 1000,
    reference: str | os.PathLike[str] | None = None,
    isolate: bool = True,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Benchmark a model directory (or an exported ``.onnx`` file); see the module docstring.

    Args:
        model: model directory, or an ONNX file (then only the ``onnx`` backend runs).
        batch_sizes: showers per call.
        backends: among ``torch``, ``onnx``.
        precisions: extra precisions besides float32: ``int8`` (ONNX, CPU), ``float16``
            (ONNX matrix products on CPU and GPU; torch on GPU only).
        devices: ``cpu`` and/or ``cuda``; default: cpu, plus cuda when torch or ONNX Runtime
            has it.
        threads: intra-op threads; default: the CPUs this process may use.
        timing: warm-up, repeats, time budget (its energy and particle are overridden by
            ``energy`` and ``pdg``).
        energy: incident energy, MeV (default 10 GeV).
        pdg: particle id; default 11 (e-) when the model knows it, else its first particle.
        geant4_showers: Geant4 showers to time (0: no Geant4, no speed-ups).
        detector: the Geant4 detector (preset or YAML); default from the model
            (:func:`resolve_detector`).
        geant4_timeout: seconds before the Geant4 process is stopped.
        fidelity_showers: showers per reduced-precision variant for the same-noise comparison.
        reference: a shower file: run the validation suite of each variant against it.
        isolate: each configuration in a fresh process (honest peak memory; slower).
        seed: seed of the fidelity comparisons and Geant4.
        progress: called as ``progress(step description, done, total)``.

    Returns:
        ``{"schema", "schema_version", "date", "model": {path, family, n_voxels, noise_shape,
        pdgs}, "conditions": {energy_MeV, pdg, theta, phi}, "settings": {batch_sizes, backends,
        precisions, devices, threads, timing..., isolate}, "machine": machine_info(),
        "geant4": geant4_per_shower() or None, "results": [row, ...], "skipped": [{backend,
        precision, device, reason}], "fidelity": {"same_noise": {label: ...}, "reference":
        ...}}``, each row ``{backend, precision, device, batch, threads, providers, repeats,
        median_ms_per_shower, p16_ms_per_shower, p84_ms_per_shower, min_ms_per_shower,
        max_ms_per_shower, median_call_ms, showers_per_s, peak_rss_mib, peak_rss_scope,
        gpu_peak_mib, speedup_vs_geant4}``.

    Raises:
        TwinforgeError: missing or corrupt model, unknown backend / precision / device, bad
            batch sizes, nothing left to run, the detector cannot be told, Geant4 fails.
    """
    from twinforge.inference.runtime import Generator

    model_path = Path(model)
    if not model_path.exists():
        raise TwinforgeError(f"{model_path}: model directory or ONNX file not found")
    batch_sizes = _check_batch_sizes(batch_sizes)
    backends = _check_choice(backends, BACKEND_NAMES, "backend")
    precisions = _check_choice(precisions, EXTRA_PRECISIONS, "precision", allow_empty=True)
    devices = _check_choice(devices or _default_devices(backends), ("cpu", "cuda"), "device")
    if threads is None:
        threads = _usable_cpus()
    if threads < 1:
        raise TwinforgeError(f"threads must be >= 1, got {threads}")
    if not (np.isfinite(energy) and energy > 0):
        raise TwinforgeError(f"energy must be > 0 MeV, got {energy}")
    is_onnx_file = not model_path.is_dir()
    info = Generator(model_path, backend="onnx" if is_onnx_file else "torch", device="cpu").info
    if pdg is None:
        pdg = 11 if 11 in info.pdgs or not info.pdgs else info.pdgs[0]
    timing = Timing(**{**asdict(timing or Timing()), "energy": float(energy), "pdg": int(pdg)})

    with tempfile.TemporaryDirectory(prefix="twinforge-bench-") as tmp:
        variants, skipped = _prepare_variants(
            model_path, is_onnx_file, backends, precisions, devices, Path(tmp)
        )
        if not variants:
            reasons = "; ".join(f"{s['backend']} {s['precision']}: {s['reason']}" for s in skipped)
            raise TwinforgeError(f"nothing to benchmark ({reasons})")
        configs = [
            BenchConfig(backend, precision, device, batch, threads, path)
            for (backend, precision, device), path in variants.items()
            for batch in batch_sizes
        ]
        total = len(configs) + (1 if geant4_showers > 0 else 0)
        done = 0
        geant4 = None
        if geant4_showers > 0:
            g4_detector = resolve_detector(info.binning_xml, _provenance(model_path), detector)
            _report(progress, f"Geant4: {geant4_showers} showers in {g4_detector.name}", 0, total)
            geant4 = geant4_per_shower(
                g4_detector, energy, int(pdg), geant4_showers, seed=seed + 1,
                timeout=geant4_timeout,
            )  # fmt: skip
            done += 1
        rows = []
        for config in configs:
            _report(progress, f"{config.label} batch {config.batch}", done, total)
            row = _run_config_isolated(config, timing) if isolate else run_config(config, timing)
            if geant4 is not None and row["median_ms_per_shower"] > 0:
                row["speedup_vs_geant4"] = (
                    geant4["median_s_per_shower"] * 1e3 / row["median_ms_per_shower"]
                )
            rows.append(row)
            done += 1
        _report(progress, "fidelity", done, total)
        fidelity = _fidelity(variants, energy, int(pdg), fidelity_showers, reference, seed)
    _report(progress, "done", total, total)
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {
            "path": str(model_path.resolve()),
            "family": info.family,
            "n_voxels": info.n_voxels,
            "noise_shape": list(info.noise_shape),
            "pdgs": list(info.pdgs),
        },
        "conditions": {"energy_MeV": float(energy), "pdg": int(pdg), "theta": 0.0, "phi": 0.0},
        "settings": {
            "batch_sizes": list(batch_sizes),
            "backends": list(backends),
            "precisions": ["float32", *precisions],
            "devices": list(devices),
            "threads": threads,
            "warmup": timing.warmup,
            "min_repeats": timing.min_repeats,
            "max_repeats": timing.max_repeats,
            "budget_s": timing.budget_s,
            "isolate": isolate,
            "timed": "Generator.generate: noise, network, inverse transform, copy to host",
        },
        "machine": machine_info(),
        "geant4": geant4,
        "results": rows,
        "skipped": skipped,
        "fidelity": fidelity,
    }


def _report(
    progress: Callable[[str, int, int], None] | None, what: str, done: int, total: int
) -> None:
    log.debug("bench step %d/%d: %s", done, total, what)
    if progress is not None:
        progress(what, done, total)


def _check_batch_sizes(values: Iterable[int]) -> list[int]:
    sizes = sorted({int(v) for v in values})
    if not sizes or sizes[0] < 1:
        raise TwinforgeError(f"batch sizes must be integers >= 1, got {list(values)}")
    return sizes


def _check_choice(
    values: Iterable[str], known: Sequence[str], what: str, *, allow_empty: bool = False
) -> list[str]:
    chosen = list(dict.fromkeys(v.strip().lower() for v in values if v.strip()))
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise TwinforgeError(f"unknown {what} {unknown[0]!r}; known: {', '.join(known)}")
    if not chosen and not allow_empty:
        raise TwinforgeError(f"no {what} given; known: {', '.join(known)}")
    return chosen


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _default_devices(backends: Sequence[str]) -> list[str]:
    """cpu, and cuda when one of ``backends`` can use a GPU here."""
    torch_gpu = "torch" in backends and _cuda_torch() is not None
    if torch_gpu or ("onnx" in backends and _CUDA_EP in _ort_providers()):
        return ["cpu", "cuda"]
    return ["cpu"]


def _provenance(model_path: Path) -> dict[str, Any]:
    if not model_path.is_dir():
        return {}
    try:
        header = json.loads((model_path / "model.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    prov = header.get("provenance", {})
    return prov if isinstance(prov, dict) else {}


def _prepare_variants(
    model_path: Path,
    is_onnx_file: bool,
    backends: Sequence[str],
    precisions: Sequence[str],
    devices: Sequence[str],
    tmp: Path,
) -> tuple[dict[tuple[str, str, str], str], list[dict[str, str]]]:
    """What to time: ``{(backend, precision, device): path to load}``, and what is skipped."""
    from twinforge.inference.quantize import convert_float16, quantize_int8

    variants: dict[tuple[str, str, str], str] = {}
    skipped: list[dict[str, str]] = []

    def skip(backend: str, precision: str, device: str, reason: str) -> None:
        log.info("skipping %s %s %s: %s", backend, precision, device, reason)
        skipped.append(
            {"backend": backend, "precision": precision, "device": device, "reason": reason}
        )

    cuda_torch = _cuda_torch() is not None
    cuda_ort = _CUDA_EP in _ort_providers()
    onnx_files: dict[str, Path] = {}
    if "onnx" in backends:
        if is_onnx_file:
            onnx_files["float32"] = model_path
        else:
            from twinforge.inference.export import export_onnx
            from twinforge.models.base import Surrogate

            onnx_files["float32"] = export_onnx(Surrogate.load(model_path), tmp / "model.onnx")
        for precision, make in (("int8", quantize_int8), ("float16", convert_float16)):
            if precision in precisions:
                target = tmp / f"model.{precision}.onnx"
                try:
                    onnx_files[precision] = make(onnx_files["float32"], target)
                except TwinforgeError as exc:
                    for device in devices:
                        skip("onnx", precision, device, str(exc))
    for device in devices:
        for backend in backends:
            for precision in ("float32", *precisions):
                key = (backend, precision, device)
                if backend == "torch":
                    if is_onnx_file:
                        skip(*key, "an ONNX file has no PyTorch model (give the model directory)")
                    elif device == "cuda" and not cuda_torch:
                        skip(*key, "torch sees no CUDA device")
                    elif precision == "int8":
                        skip(*key, "int8 is an ONNX Runtime (dynamic quantisation) variant")
                    elif precision == "float16" and device == "cpu":
                        skip(*key, "float16 in PyTorch on CPUs is slow (no fast kernels)")
                    else:
                        variants[key] = str(model_path)
                    continue
                if precision not in onnx_files:
                    continue  # its preparation failed (already skipped)
                if device == "cuda" and not cuda_ort:
                    skip(*key, "onnxruntime has no CUDAExecutionProvider here")
                elif device == "cuda" and precision == "int8":
                    skip(*key, "dynamic int8 quantisation targets the CPU execution provider")
                elif not _loads(onnx_files[precision], device):
                    skip(*key, f"ONNX Runtime cannot run the {precision} graph on {device}")
                else:
                    variants[key] = str(onnx_files[precision])
    return variants, skipped


def _loads(path: Path, device: str) -> bool:
    """Whether ONNX Runtime can create a session (kernels exist) for ``path`` on ``device``."""
    import onnxruntime as ort

    providers = [_CUDA_EP, _CPU_EP] if device == "cuda" else [_CPU_EP]
    try:
        ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        log.info("%s does not load on %s: %s", path, device, exc)
        return False
    return True


def _fidelity(
    variants: Mapping[tuple[str, str, str], str],
    energy: float,
    pdg: int,
    n: int,
    reference: str | os.PathLike[str] | None,
    seed: int,
) -> dict[str, Any]:
    """Same-noise comparison of each reduced-precision variant with its float32 counterpart
    (same backend and device), and the validation suite against ``reference`` if given."""
    from twinforge.inference.runtime import Generator

    out: dict[str, Any] = {"same_noise": {}, "reference": None}
    reduced = [k for k in variants if k[1] != "float32"]
    if not reduced and reference is None:
        return out
    cache: dict[tuple[str, str, str], Generator] = {}

    def generator(key: tuple[str, str, str]) -> Generator:
        if key not in cache:
            backend, precision, device = key
            cache[key] = Generator(
                variants[key],
                backend=backend,  # type: ignore[arg-type]
                providers=([_CUDA_EP, _CPU_EP] if device == "cuda" else [_CPU_EP])
                if backend == "onnx" else None,
                device=device if backend == "torch" else None,
                precision="float16" if backend == "torch" and precision == "float16"
                else "float32",
            )  # fmt: skip
        return cache[key]

    energies = np.full(n, energy)
    for key in reduced:
        base = (key[0], "float32", key[2])
        if base not in variants or n < 1:
            continue
        label = " ".join(key)
        out["same_noise"][label] = {
            "against": " ".join(base),
            **same_noise_fidelity(generator(base), generator(key), energies, pdg, seed=seed),
        }
    if reference is not None:
        # one generator per (precision, device): the backends compute the same function
        chosen: dict[tuple[str, str], tuple[str, str, str]] = {}
        for key in sorted(variants, key=lambda k: k[0] != "onnx"):  # ONNX first
            chosen.setdefault((key[1], key[2]), key)
        labels = {" ".join(k): generator(k) for k in chosen.values()}
        out["reference"] = reference_fidelity(labels, Path(reference), seed=seed)
    return out


# ---------------------------------------------------------------------- output
def write_json(result: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``result`` as indented JSON at ``path`` atomically; return the path."""
    from twinforge.showers.io import check_writable_target, commit, temporary_name

    final = Path(path)
    check_writable_target(final, overwrite=True)
    tmp = temporary_name(final)
    try:
        tmp.write_text(json.dumps(result, indent=2, default=json_default) + "\n")
        commit(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def write_plot(result: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """PNG of time per shower (ms) vs batch size, log-log, one line per backend / precision /
    device with its 16-84 % band as error bars, Geant4 as a horizontal line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    from twinforge.showers.io import check_writable_target, commit, temporary_name

    final = Path(path)
    check_writable_target(final, overwrite=True)
    fig = Figure(figsize=(9.0, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    series: dict[str, list[Mapping[str, Any]]] = {}
    for row in result.get("results", []):
        key = f"{row['backend']} {row['precision']} {row['device']} ({row['threads']} threads)"
        series.setdefault(key, []).append(row)
    for label, rows in series.items():
        rows = sorted(rows, key=lambda r: r["batch"])
        x = np.array([r["batch"] for r in rows], dtype=float)
        y = np.array([r["median_ms_per_shower"] for r in rows])
        lo = y - np.array([r["p16_ms_per_shower"] for r in rows])
        hi = np.array([r["p84_ms_per_shower"] for r in rows]) - y
        ax.errorbar(x, y, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], marker="o", capsize=3,
                    label=label)  # fmt: skip
    geant4 = result.get("geant4")
    if geant4:
        ax.axhline(
            geant4["median_s_per_shower"] * 1e3, color="black", linestyle="--",
            label=f"Geant4 ({geant4.get('physics', '')}, 1 thread, {geant4['n']} showers)",
        )  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    batches = sorted({int(r["batch"]) for r in result.get("results", [])})
    if batches:
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("batch size (showers per call)")
    ax.set_ylabel("time per shower [ms]")
    model = result.get("model", {})
    cond = result.get("conditions", {})
    cpu = result.get("machine", {}).get("cpu_model", "")
    ax.set_title(
        f"{model.get('family', '')} model, {cond.get('energy_MeV', 0) / 1e3:g} GeV, pdg "
        f"{cond.get('pdg', '')}\n{cpu}",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes
    tmp = temporary_name(final)
    try:
        fig.savefig(tmp, format="png", dpi=120)
        commit(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def register(
    catalog: Any, result: Mapping[str, Any], *, files: Iterable[str | os.PathLike[str]] = ()
) -> Any:
    """Record ``result`` as an evaluation in ``catalog`` (a :class:`~twinforge.catalog.Catalog`).

    Linked to the model record whose path is the benchmarked model's, when there is one; the
    metrics are the timings, Geant4 and fidelity; the provenance holds the machine, the
    settings and the conditions; ``files`` (the JSON, the plot) are checksummed with it.
    """
    model = result.get("model", {})
    model_path = str(model.get("path", ""))
    model_id = None
    for record in catalog.list("models"):
        if record.path and Path(record.path).resolve() == Path(model_path).resolve():
            model_id = record.global_id
    machine = result.get("machine", {})
    metrics = {
        "results": result.get("results", []),
        "geant4": result.get("geant4"),
        "fidelity": result.get("fidelity", {}),
        "skipped": result.get("skipped", []),
    }
    provenance = {
        "kind": "benchmark",
        "schema": f"{result.get('schema')} v{result.get('schema_version')}",
        "date": result.get("date"),
        "model": model,
        "conditions": result.get("conditions", {}),
        "settings": result.get("settings", {}),
        "machine": machine,
    }
    description = (
        f"benchmark of the {model.get('family', '?')} model {model_path} on "
        f"{machine.get('cpu_model', '?')} ({result.get('settings', {}).get('threads')} threads)"
    )
    clean = json.loads(json.dumps({"m": metrics, "p": provenance}, default=json_default))
    return catalog.add_evaluation(
        model_id=model_id,
        metrics=clean["m"],
        description=description,
        provenance=clean["p"],
        files=[str(f) for f in files],
    )
