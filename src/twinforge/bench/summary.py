"""The parameters and figures of a ``twinforge bench`` result, as experiment tracking logs
them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twinforge.tracking import metric_number

__all__ = ["bench_summary"]


def bench_summary(result: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, float | None]]:
    """What ``twinforge bench`` logs from its result (:func:`twinforge.bench.benchmark`).

    Returns:
        ``(params, metrics)``: params are the model (``model.*``), the conditions, the settings
        and the machine (CPU, usable CPUs, memory, GPUs, library versions); metrics
        ``<backend>_<precision>_<device>_b<batch>/ms_per_shower`` (median), ``.../showers_per_s``,
        ``.../peak_rss_mib``, ``.../speedup_vs_geant4`` (and ``..._spectrum``),
        ``.../joules_per_shower`` per configuration, ``geant4_ms_per_shower``,
        ``geant4_joules_per_shower``, ``geant4_spectrum_cpu_ms_per_shower`` (with a spectrum),
        ``best_ms_per_shower``, ``best_speedup_vs_geant4``, the same-noise fidelity figures
        of each reduced-precision variant (``fidelity/<label>/...``), the low-level classifier
        AUC when given (``fidelity/auc_low`` and its min / max over the classifier seeds) and
        the training cost (``training/core_hours``, ``training/gpu_hours``).
    """
    machine = dict(result.get("machine") or {})
    machine.pop("hostname", None)
    params: dict[str, Any] = {
        "model": result.get("model") or {},
        "conditions": result.get("conditions") or {},
        "settings": result.get("settings") or {},
        "machine": machine,
    }
    geant4 = result.get("geant4")
    if geant4:
        params["geant4"] = {k: geant4.get(k) for k in ("physics", "detector", "n")}
    values: dict[str, float | None] = {}
    rows = result.get("results") or []
    for row in rows:
        label = "_".join(str(row.get(k)) for k in ("backend", "precision", "device"))
        label += f"_blocks{row['block_size']}" if row.get("block_size") else ""
        label += f"_b{row.get('batch')}"
        values[f"{label}/ms_per_shower"] = row.get("median_ms_per_shower")
        values[f"{label}/showers_per_s"] = row.get("showers_per_s")
        values[f"{label}/peak_rss_mib"] = row.get("peak_rss_mib")
        values[f"{label}/gpu_peak_mib"] = row.get("gpu_peak_mib")
        values[f"{label}/speedup_vs_geant4"] = row.get("speedup_vs_geant4")
        values[f"{label}/speedup_vs_geant4_spectrum"] = row.get("speedup_vs_geant4_spectrum")
        values[f"{label}/joules_per_shower"] = row.get("joules_per_shower")
    times = [t for r in rows if (t := metric_number(r.get("median_ms_per_shower"))) is not None]
    speedups = [s for r in rows if (s := metric_number(r.get("speedup_vs_geant4"))) is not None]
    values["best_ms_per_shower"] = min(times) if times else None
    values["best_speedup_vs_geant4"] = max(speedups) if speedups else None
    if geant4:
        seconds = metric_number(geant4.get("median_s_per_shower"))
        values["geant4_ms_per_shower"] = None if seconds is None else seconds * 1e3
        values["geant4_joules_per_shower"] = metric_number(geant4.get("joules_per_shower"))
        spectrum = geant4.get("spectrum") or {}
        if spectrum:
            cpu = metric_number(spectrum.get("mean_cpu_s_per_shower"))
            values["geant4_spectrum_cpu_ms_per_shower"] = None if cpu is None else cpu * 1e3
    same = (result.get("fidelity") or {}).get("same_noise") or {}
    for label, figures in same.items():
        for key, value in (figures or {}).items():
            if key != "n":
                values[f"fidelity/{label}/{key}"] = metric_number(value)
    low = (result.get("fidelity") or {}).get("classifier_low") or {}
    for key in ("auc", "auc_min", "auc_max"):
        if key in low:
            values[f"fidelity/{key.replace('auc', 'auc_low')}"] = metric_number(low[key])
    cost = (result.get("model") or {}).get("training_cost") or {}
    for key in ("core_hours", "gpu_hours"):
        if key in cost:
            values[f"training/{key}"] = metric_number(cost[key])
    return params, values
