"""Geant4's time per shower, the reference of every speed-up, and the detector a model was
trained for (the detector Geant4 simulates)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinforge.bench.timing import peak_rss_mib
from twinforge.errors import TwinforgeError

__all__ = ["geant4_per_shower", "geant4_spectrum", "resolve_detector", "spectrum_energies"]


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
    if n < 1:
        raise TwinforgeError(f"Geant4 showers must be >= 1, got {n}")
    wall, cpu, timed = _timed(detector, np.full(n, float(energy)), pdg, seed, timeout)
    return {
        "median_s_per_shower": float(np.median(wall)),
        "p16_s_per_shower": float(np.percentile(wall, 16)),
        "p84_s_per_shower": float(np.percentile(wall, 84)),
        "min_s_per_shower": float(wall.min()),
        "max_s_per_shower": float(wall.max()),
        "median_cpu_s_per_shower": float(np.median(cpu)),
        "n": int(n),
        "energy_MeV": float(energy),
        **timed,
    }


def spectrum_energies(low: float, high: float, n: int) -> NDArray[np.float64]:
    """``n`` energies (MeV) at the midpoints of ``n`` equal-probability bins of a log-uniform
    spectrum from ``low`` to ``high`` MeV: their mean of any smooth cost is the spectrum's
    average to a quadrature's accuracy, not a random draw's."""
    if not (0 < low < high and np.isfinite(high)):
        raise TwinforgeError(f"spectrum must be 0 < low < high MeV, got {low} to {high}")
    if n < 1:
        raise TwinforgeError(f"spectrum showers must be >= 1, got {n}")
    return np.exp(np.log(low) + (np.arange(n) + 0.5) / n * np.log(high / low))


def geant4_spectrum(
    detector: Any,
    low: float,
    high: float,
    pdg: int,
    n: int,
    *,
    seed: int = 1,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Geant4's mean time per shower over a log-uniform spectrum from ``low`` to ``high`` MeV
    (the test set's), from ``n`` showers at :func:`spectrum_energies`, as
    :func:`geant4_per_shower` runs them.

    Returns:
        ``mean_s_per_shower`` (wall), ``mean_cpu_s_per_shower``, ``low_MeV``, ``high_MeV``,
        ``scale`` ("log"), ``n``, ``mean_energy_MeV``, ``cpu_s_per_gev`` (the total CPU time
        over the total incident energy, s/GeV), and ``pdg``, ``detector``, ``threads``,
        ``physics``, ``simulator_version``, ``peak_rss_mib``, ``provenance``.
    """
    energies = spectrum_energies(low, high, n)
    wall, cpu, timed = _timed(detector, energies, pdg, seed, timeout)
    return {
        "mean_s_per_shower": float(wall.mean()),
        "mean_cpu_s_per_shower": float(cpu.mean()),
        "low_MeV": float(low),
        "high_MeV": float(high),
        "scale": "log",
        "n": int(n),
        "mean_energy_MeV": float(energies.mean()),
        "cpu_s_per_gev": float(cpu.sum() / (energies.sum() / 1e3)),
        **timed,
    }


def _timed(
    detector: Any, energies: NDArray[np.float64], pdg: int, seed: int, timeout: float | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], dict[str, Any]]:
    """Wall and CPU seconds of one shower per energy (MeV), in a fresh process
    (:func:`_geant4_worker`), and the rest of what it returns."""
    from twinforge.simulation.geant4 import call_in_subprocess

    timed = call_in_subprocess(_geant4_worker, detector, energies, pdg, seed, timeout=timeout)
    return np.asarray(timed.pop("wall")), np.asarray(timed.pop("cpu")), timed


def _geant4_worker(
    detector: Any, energies: NDArray[np.float64], pdg: int, seed: int
) -> dict[str, Any]:
    """The Geant4 subprocess: warm up, simulate one shower per energy (MeV), return the wall
    and CPU seconds of each and what ran."""
    from twinforge.showers.conditions import Conditions
    from twinforge.simulation.geant4 import get_session

    session = get_session(detector)
    session.simulate(Conditions.make([min(float(energies[0]), 1000.0)], pdg), seed)  # tables
    session.simulate(Conditions.make(energies, pdg), seed + 1)
    wall, cpu = session.last_timings.wall, session.last_timings.cpu
    provenance = session.provenance()
    return {
        "wall": [float(t) for t in wall],
        "cpu": [float(t) for t in cpu],
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
