"""What reduced precision costs in fidelity: each int8 / float16 variant against its float32
counterpart on the same noise, and every variant against a reference shower file with the
validation suite."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from twinforge._json import finite_or_none, json_default
from twinforge.bench.timing import open_generator

if TYPE_CHECKING:
    from twinforge.inference.runtime import Generator

__all__ = ["reference_fidelity", "same_noise_fidelity", "separation_power", "variant_fidelity"]


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


def variant_fidelity(
    variants: Mapping[tuple[str, str, str], str],
    energy: float,
    pdg: int,
    n: int,
    reference: str | os.PathLike[str] | None,
    seed: int,
) -> dict[str, Any]:
    """Same-noise comparison of each reduced-precision variant with its float32 counterpart
    (same backend and device), and the validation suite against ``reference`` if given."""
    out: dict[str, Any] = {"same_noise": {}, "reference": None}
    reduced = [k for k in variants if k[1] != "float32"]
    if not reduced and reference is None:
        return out
    cache: dict[tuple[str, str, str], Generator] = {}

    def generator(key: tuple[str, str, str]) -> Generator:
        if key not in cache:
            backend, precision, device = key
            cache[key] = open_generator(variants[key], backend, precision, device)
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
