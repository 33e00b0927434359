"""The benchmark harness: :func:`benchmark` checks its arguments, prepares the variants
(ONNX export, int8 / float16 conversion), times Geant4 and every configuration, measures the
fidelity of the reduced-precision variants, and returns the JSON-able result."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from twinforge.bench.fidelity import variant_fidelity
from twinforge.bench.geant4 import (
    geant4_per_shower,
    geant4_spectrum,
    resolve_detector,
    spectrum_energies,
)
from twinforge.bench.machine import CUDA_EP, cuda_torch, machine_info, ort_providers, usable_cpus
from twinforge.bench.timing import (
    BenchConfig,
    Timing,
    execution_providers,
    run_config,
    run_config_isolated,
)
from twinforge.errors import TwinforgeError

__all__ = [
    "BACKEND_NAMES",
    "DEFAULT_BATCH_SIZES",
    "EXTRA_PRECISIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "benchmark",
]

log = logging.getLogger(__name__)

SCHEMA = "twinforge-bench"
SCHEMA_VERSION = 1
DEFAULT_BATCH_SIZES = (1, 100, 10_000)
BACKEND_NAMES = ("torch", "onnx")
EXTRA_PRECISIONS = ("int8", "float16")
WATTS_PER_CORE = 5.0
"""The stated power of one busy CPU core (W) behind the energy estimates: a server CPU's TDP
over its cores (AMD EPYC 7763: 280 W / 64 = 4.4 W; Intel Xeon 8380: 270 W / 40 = 6.8 W). This
VM exposes no energy counter (no RAPL)."""


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
    spectrum: tuple[float, float] | None = None,
    spectrum_showers: int = 32,
    block_size: int | None = None,
    detector: str | None = None,
    geant4_timeout: float | None = None,
    fidelity_showers: int = 1000,
    reference: str | os.PathLike[str] | None = None,
    isolate: bool = True,
    seed: int = 0,
    watts_per_core: float = WATTS_PER_CORE,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Benchmark a model directory (or an exported ``.onnx`` file); see :mod:`twinforge.bench`.

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
        spectrum: ``(low, high)`` MeV: also time Geant4 over this log-uniform spectrum
            (:func:`~twinforge.bench.geant4.geant4_spectrum`, ``spectrum_showers`` showers) and
            give each row its speed-up against Geant4's mean CPU time over it (a model's time
            does not depend on the energy: a dense output of the same size).
        spectrum_showers: Geant4 showers over the spectrum.
        block_size: also time every ONNX CPU variant cache-blocked, in blocks of this many
            showers over ``threads`` single-threaded sessions (``Generator``'s ``block_size``),
            at the batch sizes larger than the block.
        detector: the Geant4 detector (preset or YAML); default from the model
            (:func:`resolve_detector`).
        geant4_timeout: seconds before the Geant4 process is stopped.
        fidelity_showers: showers per reduced-precision variant for the same-noise comparison.
        reference: a shower file: run the validation suite of each variant against it.
        isolate: each configuration in a fresh process (honest peak memory; slower).
        seed: seed of the fidelity comparisons and Geant4.
        watts_per_core: power of one busy core (W) for the energy estimates: Geant4's CPU time
            per shower times it, and a CPU configuration's wall time per shower times its
            threads times it (an upper bound: every thread counted busy); none for GPUs.
        progress: called as ``progress(step description, done, total)``.

    Returns:
        ``{"schema", "schema_version", "date", "model": {path, family, n_voxels, noise_shape,
        pdgs}, "conditions": {energy_MeV, pdg, theta, phi}, "settings": {batch_sizes, backends,
        precisions, devices, threads, timing..., isolate}, "machine": machine_info(),
        "geant4": geant4_per_shower() or None, "results": [row, ...], "skipped": [{backend,
        precision, device, reason}], "fidelity": {"same_noise": {label: ...}, "reference":
        ...}}``, each row ``{backend, precision, device, batch, threads, block_size, providers,
        repeats, median_ms_per_shower, p16_ms_per_shower, p84_ms_per_shower, min_ms_per_shower,
        max_ms_per_shower, median_call_ms, showers_per_s, peak_rss_mib, peak_rss_scope,
        gpu_peak_mib, speedup_vs_geant4, speedup_vs_geant4_spectrum, joules_per_shower}``;
        ``geant4`` also has ``joules_per_shower`` and ``spectrum`` (None without one). A
        speed-up is Geant4's CPU time per shower (one thread; median at ``energy``, mean over
        the spectrum) over the row's wall time per shower.

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
        threads = usable_cpus()
    if threads < 1:
        raise TwinforgeError(f"threads must be >= 1, got {threads}")
    if not (np.isfinite(energy) and energy > 0):
        raise TwinforgeError(f"energy must be > 0 MeV, got {energy}")
    if spectrum is not None:
        spectrum_energies(*spectrum, spectrum_showers)  # checks the range and the count
    if block_size is not None and block_size < 1:
        raise TwinforgeError(f"block size must be >= 1, got {block_size}")
    if not (np.isfinite(watts_per_core) and watts_per_core > 0):
        raise TwinforgeError(f"watts per core must be > 0, got {watts_per_core}")
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
        configs = []
        for (backend, precision, device), path in variants.items():
            blocked = block_size is not None and (backend, device) == ("onnx", "cpu")
            for blocks in (None, block_size) if blocked else (None,):
                configs += [
                    BenchConfig(backend, precision, device, batch, threads, path, blocks)
                    for batch in batch_sizes
                    if blocks is None or batch > blocks
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
            geant4["joules_per_shower"] = geant4["median_cpu_s_per_shower"] * watts_per_core
            geant4["spectrum"] = None
            if spectrum is not None:
                _report(progress, f"Geant4: {spectrum_showers} showers over the spectrum",
                        0, total)  # fmt: skip
                geant4["spectrum"] = geant4_spectrum(
                    g4_detector, *spectrum, int(pdg), spectrum_showers, seed=seed + 2,
                    timeout=geant4_timeout,
                )  # fmt: skip
                geant4["spectrum"]["joules_per_shower"] = (
                    geant4["spectrum"]["mean_cpu_s_per_shower"] * watts_per_core
                )
            done += 1
        rows = []
        for config in configs:
            _report(progress, f"{config.label} batch {config.batch}", done, total)
            row = run_config_isolated(config, timing) if isolate else run_config(config, timing)
            row["speedup_vs_geant4_spectrum"] = None
            if geant4 is not None and row["median_ms_per_shower"] > 0:
                row["speedup_vs_geant4"] = (
                    geant4["median_cpu_s_per_shower"] * 1e3 / row["median_ms_per_shower"]
                )
                if geant4["spectrum"] is not None:
                    row["speedup_vs_geant4_spectrum"] = (
                        geant4["spectrum"]["mean_cpu_s_per_shower"]
                        * 1e3
                        / row["median_ms_per_shower"]
                    )
            row["joules_per_shower"] = (
                row["median_ms_per_shower"] * 1e-3 * row["threads"] * watts_per_core
                if row["device"] == "cpu"
                else None
            )
            rows.append(row)
            done += 1
        _report(progress, "fidelity", done, total)
        fidelity = variant_fidelity(variants, energy, int(pdg), fidelity_showers, reference, seed)
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
            "training_cost": _provenance(model_path).get("cost"),  # None: not recorded
        },
        "conditions": {
            "energy_MeV": float(energy),
            "pdg": int(pdg),
            "theta": 0.0,
            "phi": 0.0,
            "spectrum_MeV": None if spectrum is None else list(map(float, spectrum)),
        },
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
            "watts_per_core": watts_per_core,
            "block_size": block_size,
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


def _default_devices(backends: Sequence[str]) -> list[str]:
    """cpu, and cuda when one of ``backends`` can use a GPU here."""
    torch_gpu = "torch" in backends and cuda_torch() is not None
    if torch_gpu or ("onnx" in backends and CUDA_EP in ort_providers()):
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

    torch_cuda = cuda_torch() is not None
    cuda_ort = CUDA_EP in ort_providers()
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
                    elif device == "cuda" and not torch_cuda:
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

    try:
        ort.InferenceSession(str(path), providers=execution_providers(device))
    except Exception as exc:  # onnxruntime raises its own exception types
        log.info("%s does not load on %s: %s", path, device, exc)
        return False
    return True
