"""Per-shower conditions: incident energy (MeV), particle PDG id, polar angle theta and
azimuth phi (rad) of the incident direction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twinforge.errors import ShowerFileError

__all__ = ["Conditions"]


@dataclass(frozen=True)
class Conditions:
    """Conditions of N showers, each array of shape ``(N,)``.

    Attributes:
        energy: incident kinetic energy, MeV (float64, finite, > 0).
        pdg: PDG particle id (int32), e.g. 11 for e-, 22 for gamma.
        theta: polar angle of the incident direction to the detector axis, rad.
        phi: azimuth of the incident direction, rad.
    """

    energy: NDArray[np.float64]
    pdg: NDArray[np.int32]
    theta: NDArray[np.float64]
    phi: NDArray[np.float64]

    def __post_init__(self) -> None:
        energy = np.asarray(self.energy, dtype=np.float64).reshape(-1)
        n = energy.shape[0]
        cols = {
            "energy": energy,
            "pdg": _column(self.pdg, n, np.int32, "pdg"),
            "theta": _column(self.theta, n, np.float64, "theta"),
            "phi": _column(self.phi, n, np.float64, "phi"),
        }
        bad = ~(np.isfinite(energy) & (energy > 0))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise ShowerFileError(
                f"incident energy must be finite and > 0 MeV; {int(bad.sum())} are not "
                f"(first at index {i}: {float(energy[i])})"
            )
        for name in ("theta", "phi"):
            if not np.all(np.isfinite(cols[name])):
                raise ShowerFileError(f"{name} must be finite")
        for name, col in cols.items():
            col.setflags(write=False)
            object.__setattr__(self, name, col)

    @classmethod
    def make(
        cls,
        energy: ArrayLike,
        pdg: ArrayLike = 11,
        theta: ArrayLike = 0.0,
        phi: ArrayLike = 0.0,
    ) -> Conditions:
        """Conditions from arrays or scalars (scalars are broadcast to the length of energy)."""
        return cls(np.asarray(energy, dtype=np.float64).reshape(-1), pdg, theta, phi)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return int(self.energy.shape[0])

    def __getitem__(self, index: slice | NDArray[np.integer] | NDArray[np.bool_]) -> Conditions:
        return Conditions(self.energy[index], self.pdg[index], self.theta[index], self.phi[index])

    @classmethod
    def concatenate(cls, parts: list[Conditions]) -> Conditions:
        """Join several Conditions end to end."""
        return cls(
            np.concatenate([p.energy for p in parts]),
            np.concatenate([p.pdg for p in parts]),
            np.concatenate([p.theta for p in parts]),
            np.concatenate([p.phi for p in parts]),
        )


def _column(values: ArrayLike, n: int, dtype: type, name: str) -> NDArray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    arr = arr.reshape(-1)
    if arr.shape[0] != n:
        raise ShowerFileError(f"{name} has {arr.shape[0]} entries, energy has {n}")
    if (dtype is np.int32 and arr.dtype.kind == "f") and (
        not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))
    ):
        raise ShowerFileError(f"{name} must hold integers")
    return arr.astype(dtype, copy=True)
