"""Scoring: energy deposits to readout voxels, and per-event energy bookkeeping.

Two ways lead to the same voxels (MeV, float64 while accumulating):

- **voxel volumes** (normal incidence, the fast path): the geometry's wedges are voxels; a C++
  ``G4PSEnergyDeposit3D`` scorer sums energy per (layer, alpha, r) with no Python call per step,
  and :func:`voxels_from_scorer` turns its hits map into a voxel vector once per event;
- **step positions** (oblique incidence, or ``scoring="steps"``): a Python sensitive detector
  records each sensitive step's mid-point and deposit; :func:`voxels_from_steps` bins them with
  r and alpha measured in the plane transverse to the incident direction, around the incident
  axis through the entry point (alpha = atan2(y', x') with x', y' the images of the detector's x
  and y under the rotation that takes +z onto the incident direction).

In both, energy beyond the last r edge of a layer is not recorded. The Geant4-dependent classes
are made by :func:`sensitive_detector_classes` (geant4_pybind is imported only when needed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twinforge.detector import Readout

__all__ = [
    "EventTotals",
    "incident_frame",
    "sensitive_detector_classes",
    "voxels_from_scorer",
    "voxels_from_steps",
]


@dataclass(frozen=True)
class EventTotals:
    """Energy bookkeeping of N simulated showers, each array ``(N,)`` in MeV.

    Attributes:
        deposited: energy deposited anywhere in the detector (absorber and sensitive).
        sensitive: energy deposited in sensitive material (also outside the readout).
        escaped: kinetic energy carried out of the world by particles leaving it.
    """

    deposited: NDArray[np.float64]
    sensitive: NDArray[np.float64]
    escaped: NDArray[np.float64]

    @classmethod
    def empty(cls) -> EventTotals:
        z = np.zeros(0)
        return cls(z, z.copy(), z.copy())

    def __len__(self) -> int:
        return int(self.deposited.shape[0])


def incident_frame(theta: float, phi: float) -> NDArray[np.float64]:
    """Rotation ``R`` (3, 3) taking +z onto the incident direction by the shortest turn.

    Columns are the images of x, y, z; ``d @ R`` gives a displacement's coordinates
    ``(x', y', along-axis)`` in the incident frame. ``theta`` and ``phi`` in rad.
    """

    def rz(a: float) -> NDArray[np.float64]:
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    c, s = math.cos(theta), math.sin(theta)
    ry = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return rz(phi) @ ry @ rz(-phi)


def voxels_from_scorer(
    keys: ArrayLike, values: ArrayLike, lut: NDArray[np.int64], n_voxels: int
) -> tuple[NDArray[np.float64], float]:
    """Voxel energies ``(V,)`` MeV from a scorer's (index, energy) pairs, and the unmapped sum.

    ``keys`` are scorer indices (``layer * n_alpha * n_r + alpha * n_r + r``), ``values`` their
    energies (MeV); ``lut`` maps scorer index to voxel index (-1: none).
    """
    keys_a = np.asarray(keys, dtype=np.int64)
    values_a = np.asarray(values, dtype=np.float64)
    voxel = lut[keys_a] if keys_a.size else keys_a
    ok = voxel >= 0
    out = np.bincount(voxel[ok], weights=values_a[ok], minlength=n_voxels)
    return out, float(values_a[~ok].sum())


def voxels_from_steps(
    points: NDArray[np.float64],
    edep: NDArray[np.float64],
    *,
    readout: Readout,
    sensitive_z: NDArray[np.float64],
    readout_layer: NDArray[np.int64],
    entry: tuple[float, float],
    theta: float,
    phi: float,
) -> NDArray[np.float64]:
    """Voxel energies ``(V,)`` MeV from step mid-points ``(n, 3)`` mm and deposits ``(n,)`` MeV.

    The physical layer of a point is found from its z in ``sensitive_z`` ``(L, 2)`` (points
    outside every sensitive range are dropped), its readout layer from ``readout_layer``;
    r (mm) and alpha (rad) are taken around the incident axis through ``(entry[0], entry[1],
    0)`` with direction (``theta``, ``phi``), in the plane transverse to it.
    """
    out = np.zeros(readout.n_voxels)
    if edep.size == 0:
        return out
    z = points[:, 2]
    phys = np.searchsorted(sensitive_z[:, 0], z, side="right") - 1
    inside = (phys >= 0) & (z <= sensitive_z[np.clip(phys, 0, None), 1] + 1e-9)
    d = points[inside] - np.array([entry[0], entry[1], 0.0])
    local = d @ incident_frame(theta, phi)
    r = np.hypot(local[:, 0], local[:, 1])
    alpha = np.arctan2(local[:, 1], local[:, 0])
    voxel = readout.voxel_index(readout_layer[phys[inside]], r, alpha)
    ok = voxel >= 0
    out += np.bincount(voxel[ok], weights=edep[inside][ok], minlength=readout.n_voxels)
    return out


@cache
def sensitive_detector_classes(g4: ModuleType) -> tuple[type, type]:
    """``(StepRecorder, EscapeCounter)``: Python sensitive detectors (made once per process).

    - ``StepRecorder(name)``: on every step with a deposit, records the step mid-point (mm) and
      the deposit (MeV); :meth:`take` returns and clears them as ``(points (n, 3), edep (n,))``.
      Attach it only where Python per-step cost is acceptable (it is activated only for showers
      scored from step positions).
    - ``EscapeCounter(name)``: for the world volume: adds up the kinetic energy (MeV) of
      particles reaching the world boundary; :meth:`take` returns and resets it.
    """
    world_boundary = g4.G4StepStatus.fWorldBoundary

    class StepRecorder(g4.G4VSensitiveDetector):  # type: ignore[misc,name-defined]
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self._rows: list[tuple[float, float, float, float]] = []

        def ProcessHits(self, step: Any, history: Any) -> bool:
            edep = step.GetTotalEnergyDeposit()
            if edep > 0.0:
                a = step.GetPreStepPoint().GetPosition()
                b = step.GetPostStepPoint().GetPosition()
                self._rows.append((a.x + b.x, a.y + b.y, a.z + b.z, edep))
            return True

        def take(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
            rows = np.array(self._rows, dtype=np.float64).reshape(-1, 4)
            self._rows = []
            return 0.5 * rows[:, :3], rows[:, 3]

    class EscapeCounter(g4.G4VSensitiveDetector):  # type: ignore[misc,name-defined]
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self._escaped = 0.0

        def ProcessHits(self, step: Any, history: Any) -> bool:
            post = step.GetPostStepPoint()
            if post.GetStepStatus() == world_boundary:
                self._escaped += post.GetKineticEnergy()
            return True

        def take(self) -> float:
            value, self._escaped = self._escaped, 0.0
            return value

    return StepRecorder, EscapeCounter
