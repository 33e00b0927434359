"""The protocol every reference simulator follows."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from twinforge.showers.conditions import Conditions

__all__ = ["Simulator"]


@runtime_checkable
class Simulator(Protocol):
    """A reference simulator: conditions in, voxelised showers out.

    Implementations must be picklable (campaign executors ship them to worker processes) and
    deterministic: the same ``conditions`` and ``seed`` give bit-identical showers.
    """

    def simulate(self, conditions: Conditions, seed: int) -> NDArray[np.float32]:
        """Simulate one shower per row of ``conditions``.

        Args:
            conditions: N incident energies (MeV), PDG ids, theta and phi (rad).
            seed: non-negative integer seed.

        Returns:
            Voxel energies in MeV, shape ``(N, V)``, float32, in the detector readout's order.
        """
        ...

    def provenance(self) -> dict[str, Any]:
        """JSON-ready description: ``simulator``, ``simulator_version``, ``physics``,
        ``geometry``, ``production_cut_mm`` and whatever else identifies the set-up."""
        ...
