"""A deterministic *synthetic* shower generator — for tests and smoke runs only, not physics.

It draws showers from a parametrised model of electromagnetic showers (gamma-function
longitudinal profile peaking at ``ln(E/Ec) - 0.5`` radiation lengths, two-exponential radial
profile, uniform azimuth, Gamma-distributed voxel fluctuations, readout threshold), so that files,
loaders and metrics can be exercised with realistic shapes in milliseconds. Its showers are *not*
Geant4 showers; files it writes say so in their provenance (``simulator: "synthetic-test"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, PositiveInt, field_validator, model_validator

from twinforge import __version__
from twinforge.config import StrictModel, parse_energy
from twinforge.detector.config import DetectorConfig, HomogeneousBlock, load_detector
from twinforge.errors import DetectorError
from twinforge.showers.conditions import Conditions
from twinforge.showers.file import ShowerWriter
from twinforge.simulation.base import RunResult
from twinforge.simulation.calorimeter import CalorimeterSimulator, conditions_of
from twinforge.space import Points

__all__ = [
    "SYNTHETIC_SIMULATOR",
    "SyntheticBackend",
    "SyntheticConfig",
    "synthetic_provenance",
    "synthetic_showers",
    "write_synthetic_file",
]

SYNTHETIC_SIMULATOR = "synthetic-test"

# radiation length X0 (mm), Moliere radius RM (mm), critical energy Ec (MeV) of NIST materials
_MATERIALS: dict[str, tuple[float, float, float]] = {
    "G4_W": (3.504, 9.327, 7.97),
    "G4_Pb": (5.613, 16.02, 7.43),
    "G4_PbWO4": (8.903, 19.59, 9.31),
    "G4_Si": (93.70, 48.82, 40.19),
    "G4_Fe": (17.57, 16.95, 21.68),
    "G4_Cu": (14.36, 15.66, 19.42),
    "G4_BGO": (11.20, 22.59, 10.2),
    "G4_CESIUM_IODIDE": (18.60, 35.79, 11.17),
    "G4_lAr": (140.0, 90.43, 32.84),
    "G4_POLYSTYRENE": (413.1, 94.11, 93.11),
}


class SyntheticConfig(StrictModel):
    """What :func:`synthetic_showers` draws: a detector, energies, a particle, a seed."""

    kind: Literal["synthetic"] = "synthetic"
    detector: str = Field("tiny", description="preset name or detector YAML")
    n_events: PositiveInt = 1000
    energy_min: float = Field(1000.0, description="MeV; text with a unit such as '1GeV' works")
    energy_max: float = Field(64000.0, description="MeV")
    energy_distribution: Literal["log-uniform", "uniform", "fixed"] = "log-uniform"
    pdg: Literal[11, -11, 22] = 11
    seed: int = Field(12345, ge=0)

    @field_validator("energy_min", "energy_max", mode="before")
    @classmethod
    def _energy(cls, value: object) -> float:
        return parse_energy(value)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _range(self) -> SyntheticConfig:
        if self.energy_max < self.energy_min:
            raise ValueError(f"energy_max ({self.energy_max}) < energy_min ({self.energy_min})")
        return self

    def conditions(self) -> Conditions:
        """Draw the incident conditions (deterministic in ``seed``)."""
        rng = np.random.default_rng([self.seed, 0])
        lo, hi, n = self.energy_min, self.energy_max, self.n_events
        if self.energy_distribution == "fixed" or lo == hi:
            energy = np.full(n, lo)
        elif self.energy_distribution == "uniform":
            energy = rng.uniform(lo, hi, n)
        else:
            energy = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        return Conditions.make(energy, self.pdg)


def _effective_material(detector: DetectorConfig) -> tuple[float, float, float, float]:
    """(X0 mm, RM mm, Ec MeV, sampling fraction) of the detector, thickness-weighted."""
    geo = detector.geometry
    try:
        if isinstance(geo, HomogeneousBlock):
            x0, rm, ec = _MATERIALS[geo.material]
            return x0, rm, ec, 1.0
        xa, ra, ea = _MATERIALS[geo.absorber]
        xs, rs, es = _MATERIALS[geo.sensitive]
    except KeyError as exc:
        raise DetectorError(
            f"synthetic generator has no constants for material {exc.args[0]}; known: "
            f"{', '.join(sorted(_MATERIALS))}"
        ) from None
    ta, ts = geo.absorber_thickness, geo.sensitive_thickness
    wa, ws = ta / (ta + ts), ts / (ta + ts)
    x0 = 1.0 / (wa / xa + ws / xs)
    rm = 1.0 / (wa / ra + ws / rs)
    ec = wa * ea + ws * es
    # energy-loss weighted (dE/dx ~ Ec/X0) fraction seen by the sensitive layers
    frac = ws * es / xs / (wa * ea / xa + ws * es / xs)
    return x0, rm, ec, frac


def synthetic_showers(
    detector: DetectorConfig | str,
    conditions: Conditions,
    seed: int,
) -> NDArray[np.float32]:
    """Draw ``(N, V)`` float32 showers (MeV) for ``conditions`` in ``detector``'s readout.

    Deterministic: the same detector, conditions and seed give identical arrays.
    """
    det = load_detector(detector) if isinstance(detector, str) else detector
    readout = det.binning()
    rng = np.random.default_rng([seed, 1])
    x0, rm, ec, sampling = _effective_material(det)
    n = len(conditions)
    energy = conditions.energy
    is_photon = conditions.pdg == 22

    # longitudinal: gamma profile in t = z / X0, t_max = ln(E/Ec) - 0.5 (+1 for photons)
    t_max = np.log(energy / ec) - 0.5 + is_photon
    b = 0.5 * rng.lognormal(0.0, 0.05, n)
    a = np.maximum(t_max, 0.3) * b * rng.lognormal(0.0, 0.08, n) + 1.0
    z_edges = det.z_bin_edges()
    t_lo, t_hi = z_edges[:, 0] / x0, z_edges[:, 1] / x0
    t_mid = 0.5 * (t_lo + t_hi)
    log_pdf = (a[:, None] - 1) * np.log(t_mid[None, :] + 1e-9) - b[:, None] * t_mid[None, :]
    long = np.exp(log_pdf - log_pdf.max(axis=1, keepdims=True)) * (t_hi - t_lo)[None, :]
    containment = 1.0 - np.exp(-b * t_hi[-1] * 0.6)
    long = long / long.sum(axis=1, keepdims=True) * containment[:, None]

    # deposited (visible) energy per shower with sampling fluctuations ~ 15%/sqrt(E/GeV)
    resolution = (
        0.15 / np.sqrt(energy / 1000.0) if sampling < 1 else 0.02 / np.sqrt(energy / 1000.0)
    )
    visible = energy * sampling * np.clip(rng.normal(1.0, resolution), 0.2, None)

    # radial: core + halo, P(<r) = 1 - (1 + r/R) exp(-r/R) for each component
    depth_frac = t_mid[None, :] / np.maximum(t_max, 1.0)[:, None]  # (N, Z)
    core = 0.12 * rm * (1.0 + 0.6 * depth_frac)
    halo = 0.9 * rm * (1.0 + 0.3 * depth_frac)
    p_core = 0.8 - 0.1 * np.clip(depth_frac, 0, 2)

    out = np.zeros((n, readout.n_voxels), dtype=np.float32)
    quantum = 0.02 * max(sampling, 0.05)  # MeV per "hit": sets the voxel fluctuation scale
    for layer_idx, binning in enumerate(readout.layers):
        if binning.n_voxels == 0:
            continue
        edges = binning.r_edges[None, None, :]

        def cdf(
            radius: NDArray[np.float64], edges: NDArray[np.float64] = edges
        ) -> NDArray[np.float64]:
            x = edges / radius[..., None]
            return 1.0 - (1.0 + x) * np.exp(-x)

        zl = slice(layer_idx, layer_idx + 1)
        radial = p_core[:, zl, None] * np.diff(cdf(core[:, zl]), axis=-1) + (
            1 - p_core[:, zl, None]
        ) * np.diff(cdf(halo[:, zl]), axis=-1)  # (N, 1, n_r)
        mean = (visible[:, None] * long[:, layer_idx : layer_idx + 1])[:, :, None] * radial
        mean = np.repeat(mean / binning.n_alpha, binning.n_alpha, axis=1)  # (N, n_alpha, n_r)
        shape = mean / quantum
        sample = np.where(shape > 0, rng.gamma(np.maximum(shape, 1e-12), quantum), 0.0)
        lo, hi = readout.offsets[layer_idx], readout.offsets[layer_idx + 1]
        out[:, lo:hi] = sample.reshape(n, -1)
    out[out < det.readout.threshold] = 0.0
    return out


def synthetic_provenance() -> dict[str, str]:
    """The provenance entries that mark showers as synthetic test data."""
    return {
        "simulator": SYNTHETIC_SIMULATOR,
        "simulator_version": __version__,
        "physics": "none (parametrised test generator, not a physics simulation)",
    }


def write_synthetic_file(
    config: SyntheticConfig, path: str | Path, *, overwrite: bool = False, batch_size: int = 2000
) -> Path:
    """Write ``config.n_events`` synthetic test showers to ``path`` (atomically), in batches.

    Batch ``k`` is drawn with a seed derived from ``config.seed`` and its first event, so the
    file depends on ``batch_size`` too (the default is part of the recipe).
    """
    det = load_detector(config.detector)
    cond = config.conditions()
    provenance = {
        **synthetic_provenance(),
        "detector": det.name,
        "detector_config": det.model_dump(mode="json"),
        "seed": config.seed,
        "generator_config": config.model_dump(mode="json"),
    }
    with ShowerWriter(path, det.binning(), provenance, overwrite=overwrite) as writer:
        for start in range(0, len(cond), batch_size):
            part = cond[start : start + batch_size]
            writer.append(part, synthetic_showers(det, part, seed=config.seed * 7919 + start))
    return Path(path)


class SyntheticBackend(CalorimeterSimulator):
    """The synthetic test generator as a campaign simulator (``synthetic-test``): milliseconds
    per shower, for tests and smoke runs; its files say they are not physics."""

    name = SYNTHETIC_SIMULATOR
    summary = "parametrised electromagnetic showers for tests and smoke runs (not physics)"

    def run(
        self, points: Points, seed: int, *, first_index: int = 0, workdir: Path | None = None
    ) -> RunResult:
        conditions = conditions_of(points)
        batch_seed = int(np.random.SeedSequence([seed, first_index]).generate_state(1)[0])
        return RunResult({"showers": synthetic_showers(self.detector, conditions, batch_seed)})

    def code(self) -> dict[str, str]:
        return {"name": "twinforge synthetic shower generator", "version": __version__}

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), **synthetic_provenance()}
