"""The calorimeter family: simulators whose points are incident particles and whose output is
a voxelised shower, stored in CaloChallenge-compatible shower files.

Parameters (in this order, which is the order samplers draw them): ``particle`` (a name such
as ``e-`` or a PDG id), ``energy`` (MeV, log scale by default), ``theta`` and ``phi`` (rad).
Defaults: electrons, 1-64 GeV, normal incidence. Output: ``showers``, ``(V,)`` voxel energies
in MeV in the detector readout's order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from twinforge.config import StrictModel
from twinforge.detector.config import DetectorConfig, load_detector
from twinforge.errors import ShowerFileError
from twinforge.showers.conditions import Conditions
from twinforge.showers.file import ShowerFile, ShowerWriter, merge_shower_files
from twinforge.simulation.base import Output, OutputFormat, RunResult, Simulator
from twinforge.space import Parameter, Points, particle_pdg

__all__ = [
    "CALORIMETER_PARAMETERS",
    "CalorimeterOptions",
    "CalorimeterSimulator",
    "ShowerFormat",
    "ShowerSimulator",
    "conditions_of",
    "points_of",
]

CALORIMETER_PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "particle", type="category", default=["e-"], convert=particle_pdg,
        description="incident particle: a name (e-, e+, gamma, ...) or a PDG id",
    ),
    Parameter(
        "energy", unit="MeV", lower=0.0, lower_open=True, scale="log",
        default={"min": "1 GeV", "max": "64 GeV"}, description="incident energy",
    ),
    Parameter(
        "theta", unit="rad", lower=0.0, upper=math.pi / 2, default=[0.0],
        description="polar angle of incidence",
    ),
    Parameter(
        "phi", unit="rad", lower=-2 * math.pi, upper=2 * math.pi, default=[0.0],
        description="azimuth of incidence",
    ),
)  # fmt: skip


def conditions_of(points: Points) -> Conditions:
    """The incident conditions of calorimeter points."""
    return Conditions.make(
        np.asarray(points["energy"], dtype=np.float64),
        np.asarray(points["particle"]).astype(np.int32),
        np.asarray(points["theta"], dtype=np.float64),
        np.asarray(points["phi"], dtype=np.float64),
    )


def points_of(conditions: Conditions) -> Points:
    """Calorimeter points of incident conditions (the inverse of :func:`conditions_of`)."""
    return {
        "particle": conditions.pdg.astype(np.int64),
        "energy": conditions.energy,
        "theta": conditions.theta,
        "phi": conditions.phi,
    }


@runtime_checkable
class ShowerSimulator(Protocol):
    """The low-level shower API (conditions in, showers out) that calorimeter backends wrap,
    e.g. :class:`~twinforge.simulation.geant4.Geant4Simulator`."""

    def simulate(self, conditions: Conditions, seed: int) -> NDArray[np.float32]:
        """Voxel energies ``(N, V)`` float32, MeV, one shower per row of ``conditions``."""
        ...

    def provenance(self) -> dict[str, Any]:
        """JSON-ready description of the set-up."""
        ...


class CalorimeterOptions(StrictModel):
    """Options every calorimeter simulator takes."""

    detector: str | dict[str, Any] = Field(
        "siw", description="preset name, detector YAML, or the detector config itself"
    )


class CalorimeterSimulator(Simulator):
    """Base of the calorimeter simulators: parameters, output and file format are shared."""

    Options: ClassVar[type[StrictModel]] = CalorimeterOptions
    format: ClassVar[type[OutputFormat]]
    point_noun: ClassVar[str] = "showers"

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._detector: DetectorConfig | None = None

    @property
    def detector(self) -> DetectorConfig:
        if self._detector is None:
            spec = self.options.detector  # type: ignore[attr-defined]
            self._detector = (
                DetectorConfig.model_validate(spec)
                if isinstance(spec, dict)
                else load_detector(spec)
            )
        return self._detector

    def parameters(self) -> list[Parameter]:
        return list(CALORIMETER_PARAMETERS)

    def outputs(self) -> list[Output]:
        return [
            Output(
                "showers", "MeV", (self.detector.binning().n_voxels,), "float32",
                "voxel energies in the readout's order",
            )
        ]  # fmt: skip

    def worker_options(self) -> dict[str, Any]:
        return {
            **self.options.model_dump(mode="json"),
            "detector": self.detector.model_dump(mode="json"),
        }

    def provenance(self) -> dict[str, Any]:
        return {
            **super().provenance(),
            "detector": self.detector.name,
            "detector_config": self.detector.model_dump(mode="json"),
        }


class ShowerFormat(OutputFormat):
    """Shower files: CaloChallenge layout (``incident_energies``, ``showers``), the binning as
    XML, the points' particle and angles, provenance as JSON."""

    @classmethod
    def write(
        cls,
        path: Path,
        simulator: Simulator,
        points: Points,
        result: RunResult,
        provenance: Mapping[str, Any],
        *,
        compression: str = "gzip",
        overwrite: bool = True,
    ) -> int:
        assert isinstance(simulator, CalorimeterSimulator)
        conditions = conditions_of(points)
        with ShowerWriter(
            path,
            simulator.detector.binning(),
            dict(provenance),
            overwrite=overwrite,
            compression=compression,  # type: ignore[arg-type]
        ) as writer:
            writer.append(conditions, result.outputs["showers"])
        return len(conditions)

    @classmethod
    def merge(
        cls,
        paths: Sequence[Path],
        output: Path,
        provenance: Mapping[str, Any],
        *,
        compression: str = "gzip",
        overwrite: bool = False,
    ) -> int:
        merge_shower_files(
            paths,
            output,
            provenance=provenance,
            overwrite=overwrite,
            compression=compression,  # type: ignore[arg-type]
        )
        with ShowerFile(output) as f:
            return f.n_events

    @classmethod
    def describe(cls, path: Path) -> tuple[int, dict[str, Any]]:
        with ShowerFile(path) as f:
            return f.n_events, f.provenance

    @classmethod
    def input_column(cls, path: Path, name: str) -> NDArray[Any]:
        with ShowerFile(path) as f:
            points = points_of(f.conditions())
        if name not in points:
            raise ShowerFileError(f"{path}: shower files have no input {name!r}")
        return points[name]

    @classmethod
    def observables(cls, simulator: Simulator) -> list[Output]:
        return [
            Output("response", None, (), "float64",
                   "mean visible energy (sum of the readout) / incident energy, per point"),
            Output("resolution", None, (), "float64",
                   "relative spread (std / mean) of the visible fraction, per point"),
        ]  # fmt: skip

    @classmethod
    def observe(
        cls, path: Path
    ) -> tuple[dict[str, NDArray[Any]], dict[str, NDArray[Any]], dict[str, NDArray[Any]] | None]:
        """One row per distinct point (particle, energy, angles) of the file: the mean visible
        fraction ``r`` of its showers and their relative spread ``s = std / mean``, with their
        statistical variances ``var(r) = std^2 / n`` and ``var(s) ~ s^2 (1 / (2 (n - 1)) +
        s^2 / n)`` (Gaussian approximation). Points with fewer than 2 showers are left out."""
        with ShowerFile(path) as f:
            cond, showers = f.read()
        points = points_of(cond)
        fraction = showers.sum(axis=1, dtype=np.float64) / cond.energy
        keys = np.stack([points[k].astype(np.float64) for k in ("particle", "energy", "theta",
                                                               "phi")], axis=1)  # fmt: skip
        _, first, group, counts = np.unique(keys, axis=0, return_index=True,
                                            return_inverse=True, return_counts=True)  # fmt: skip
        group = group.ravel()
        total = np.bincount(group, weights=fraction)
        mean = total / counts
        dev = np.bincount(group, weights=(fraction - mean[group]) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            std = np.sqrt(dev / (counts - 1))
            spread = std / mean
            var_mean = std**2 / counts
            var_spread = spread**2 * (1 / (2 * (counts - 1)) + spread**2 / counts)
        keep = counts >= 2
        order = np.argsort(first[keep])
        rows = first[keep][order]
        inputs = {k: v[rows] for k, v in points.items()}
        values = {"response": mean[keep][order], "resolution": spread[keep][order]}
        variances = {"response": var_mean[keep][order], "resolution": var_spread[keep][order]}
        return inputs, values, variances


CalorimeterSimulator.format = ShowerFormat
