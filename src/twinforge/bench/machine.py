"""The machine a benchmark runs on: CPU, memory, GPUs, OS, library versions, and what of it
this process may use (CPUs, CUDA through torch, ONNX Runtime's execution providers)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
from pathlib import Path
from typing import Any

from twinforge import __version__
from twinforge.inference.runtime import usable_cpus

__all__ = ["CPU_EP", "CUDA_EP", "cuda_torch", "machine_info", "ort_providers", "usable_cpus"]

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"


def machine_info() -> dict[str, Any]:
    """The machine: CPU model, cores, memory, GPUs, OS, Python and library versions."""
    cpu_model, physical = _cpuinfo()
    info: dict[str, Any] = {
        "cpu_model": cpu_model or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical,
        "usable_cpus": usable_cpus(),
        "memory_total_mib": _mem_total_mib(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in ("torch", "onnxruntime", "onnx", "numpy", "geant4-pybind")
        },
        "twinforge": __version__,
        "onnxruntime_providers": ort_providers(),
        "gpus": [],
    }
    cuda = cuda_torch()
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


def ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def cuda_torch() -> Any:
    """``torch.cuda`` when torch is installed and sees a GPU, else None."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch.cuda if torch.cuda.is_available() else None
