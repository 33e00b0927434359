"""Timing one configuration (backend, precision, device, batch size) of a model: repeated
:meth:`Generator.generate <twinforge.inference.runtime.Generator>` calls, their statistics per
shower, and the peak memory, in this process or a fresh one.

Neither torch nor onnxruntime is imported before a configuration is timed.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from twinforge.bench.machine import CPU_EP, CUDA_EP, cuda_torch
from twinforge.errors import TwinforgeError

if TYPE_CHECKING:
    from twinforge.inference.runtime import Generator

__all__ = [
    "BenchConfig",
    "Timing",
    "execution_providers",
    "open_generator",
    "peak_rss_mib",
    "run_config",
    "run_config_isolated",
    "summarize",
    "time_calls",
]


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
        threads: intra-op threads (torch and ONNX Runtime); with ``block_size``, the
            single-threaded sessions.
        path: what the worker loads: the model directory (torch) or the ONNX file.
        block_size: ONNX on the CPU: cache-blocked runs (``Generator``'s ``block_size``).
    """

    backend: str
    precision: str
    device: str
    batch: int
    threads: int
    path: str
    block_size: int | None = None

    @property
    def label(self) -> str:
        """``"onnx int8 cpu"`` (``"onnx int8 cpu blocks of 64"``): the series of a row."""
        blocks = f" blocks of {self.block_size}" if self.block_size else ""
        return f"{self.backend} {self.precision} {self.device}{blocks}"


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


def execution_providers(device: str) -> list[str]:
    """ONNX Runtime execution providers for ``device``: CUDA first (CPU fallback) on cuda."""
    return [CUDA_EP, CPU_EP] if device == "cuda" else [CPU_EP]


def open_generator(
    path: str,
    backend: str,
    precision: str,
    device: str,
    *,
    threads: int | None = None,
    block_size: int | None = None,
) -> Generator:
    """The :class:`~twinforge.inference.runtime.Generator` of one variant: ONNX Runtime with
    ``device``'s providers (cache-blocked with ``block_size``), or torch on ``device`` (in
    float16 for the float16 variant)."""
    from twinforge.inference.runtime import Generator

    return Generator(
        path,
        backend=backend,  # type: ignore[arg-type]
        threads=threads,
        providers=execution_providers(device) if backend == "onnx" else None,
        device=device if backend == "torch" else None,
        precision="float16" if backend == "torch" and precision == "float16" else "float32",
        block_size=block_size,
    )


def run_config(
    config: BenchConfig, timing: Timing, *, fresh_process: bool = False
) -> dict[str, Any]:
    """Time one configuration in this process; the result row (see :func:`benchmark`).

    ``fresh_process``: this process was started for this configuration (the peak RSS is then
    the whole process's); otherwise the high-water mark is reset first where the OS allows.
    """
    scope = "process" if fresh_process else "since-reset" if _reset_peak_rss() else "process"
    cuda = cuda_torch() if config.device == "cuda" else None
    gpu_before = _gpu_used_mib(cuda) if cuda is not None and config.backend == "onnx" else None
    if cuda is not None:
        cuda.reset_peak_memory_stats()
    generator = open_generator(
        config.path, config.backend, config.precision, config.device, threads=config.threads,
        block_size=config.block_size,
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
        "block_size": config.block_size,
        "providers": generator.providers,
        **summarize(times, config.batch),
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_scope": scope,
        "gpu_peak_mib": None,
        "speedup_vs_geant4": None,
        "joules_per_shower": None,
    }
    if cuda is not None:
        if config.backend == "torch":
            row["gpu_peak_mib"] = cuda.max_memory_allocated() / 2**20
        elif gpu_before is not None:  # ORT's arena keeps what it grew to: in use now ~ peak
            row["gpu_peak_mib"] = max(0.0, (_gpu_used_mib(cuda) or 0.0) - gpu_before)
    return row


def run_config_isolated(config: BenchConfig, timing: Timing) -> dict[str, Any]:
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


def _gpu_used_mib(cuda: Any) -> float | None:
    try:
        free, total = cuda.mem_get_info()
    except Exception:  # no device / driver error: no GPU figure
        return None
    return float(total - free) / 2**20
