"""The scalar figures of a ``metrics.json`` mapping, as experiment tracking logs them
(``twinforge validate``, ``twinforge tune``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["validation_summary"]

_SCOPE_KEYS: Final = {"classifier_low": "low", "classifier_high": "high"}


def _scope_metrics(scope: Mapping[str, Any] | None, prefix: str = "") -> dict[str, float | None]:
    """The scalar figures of one ``metrics.json`` scope (overall, a bin, the floor)."""
    out: dict[str, float | None] = {}
    if not scope:
        return out
    for key, short in _SCOPE_KEYS.items():
        clf = scope.get(key)
        if clf:
            for field in ("auc", "auc_min", "auc_max", "auc_std", "jsd", "jsd_min", "jsd_max"):
                stem, _, tail = field.partition("_")
                out[f"{prefix}{stem}_{short}{'_' + tail if tail else ''}"] = clf.get(field)
    for key in ("fpd", "kpd"):
        dist = scope.get(key)
        if dist:
            out[f"{prefix}{key}"] = dist.get("value")
            out[f"{prefix}{key}_error"] = dist.get("error")
    sep = scope.get("separation")
    if sep:
        for key in ("e_ratio", "voxel_spectrum", "radial"):
            out[f"{prefix}separation/{key}"] = sep.get(key)
        for key, value in (sep.get("summary") or {}).items():
            out.setdefault(f"{prefix}separation/{key}", value)
    return out


def validation_summary(
    metrics: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, float | None], list[tuple[int, dict[str, float | None]]]]:
    """What ``twinforge validate`` logs from a ``metrics.json`` mapping.

    Returns:
        ``(params, metrics, per_energy)``: params are the validation config as run
        (``config.*``), the protocol (``protocol.*``) and the sample sizes; metrics the overall
        figures (``auc_low``, ``auc_low_min``, ``auc_high``, ``jsd_low``, ``fpd``, ``kpd``,
        ``fpd_error``, ``separation/e_ratio``...) and the noise floor's (``floor/auc_low``...);
        per_energy one ``(bin index, figures)`` per incident-energy bin (logged at step = bin
        index).
    """
    protocol = dict(metrics.get("protocol") or {})
    for key in ("low_budget_description", "high_budget_description"):
        protocol.pop(key, None)
    readout = metrics.get("readout") or {}
    params: dict[str, Any] = {
        "config": metrics.get("config") or {},
        "protocol": protocol,
        "readout": {k: readout.get(k) for k in ("n_layers", "n_voxels", "calochallenge_dataset")},
        "n_reference": (metrics.get("reference") or {}).get("n_showers"),
        "n_generated": (metrics.get("generated") or {}).get("n_showers"),
    }
    values = _scope_metrics(metrics.get("overall"))
    floor = metrics.get("noise_floor") or {}
    values.update(_scope_metrics(floor.get("overall"), "floor/"))
    total = sum((metrics.get("timing_s") or {}).values()) if metrics.get("timing_s") else None
    values["seconds"] = total
    per_energy = []
    for index, item in enumerate(metrics.get("per_energy") or []):
        figures = _scope_metrics(item.get("metrics"), "per_energy/")
        lo, hi = (item.get("energy_range_mev") or [None, None])[:2]
        figures["per_energy/energy_lo_mev"] = lo
        figures["per_energy/energy_hi_mev"] = hi
        per_energy.append((index, figures))
    return params, values, per_energy
