""":class:`Geant4Simulator`: the Geant4 backend behind the :class:`~twinforge.simulation.Simulator`
protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinforge.detector import DetectorConfig
from twinforge.showers.conditions import Conditions
from twinforge.simulation.geant4.session import (
    Geant4Options,
    current_session,
    get_session,
    planned_provenance,
    planned_scoring,
)

__all__ = ["Geant4Simulator"]


@dataclass(frozen=True)
class Geant4Simulator:
    """Geant4 reference simulation of one detector.

    Picklable and cheap to create: Geant4 starts on the first :meth:`simulate`.

    Attributes:
        detector: the detector to simulate.
        options: physics, entry point, production cut, scoring.
        isolated: run every :meth:`simulate` call in a fresh subprocess (slower: Geant4 starts
            each time, about a second) instead of this process's cached session.
    """

    detector: DetectorConfig
    options: Geant4Options = field(default_factory=Geant4Options)
    isolated: bool = False

    def simulate(self, conditions: Conditions, seed: int) -> NDArray[np.float32]:
        """Voxel energies ``(N, V)`` float32 (MeV) of one shower per row of ``conditions``.

        Raises:
            SimulationError: unsupported particle or angle, another detector already simulated
                in this process (use ``isolated=True``), or Geant4 died in the subprocess.
        """
        if self.isolated:
            from twinforge.simulation.geant4.runner import simulate_in_subprocess

            return simulate_in_subprocess(
                self.detector, conditions, seed, options=self.options
            ).showers
        session = get_session(self.detector, self.options)
        return session.simulate(conditions, seed, scoring=self.options.scoring)

    def provenance(self) -> dict[str, Any]:
        """Simulator, versions, physics (``physics`` key), geometry, cut, readout, seeding.

        An isolated simulator asks a subprocess, so that this process never imports Geant4.
        """
        if self.isolated:
            from twinforge.simulation.geant4.runner import call_in_subprocess

            return call_in_subprocess(planned_provenance, self.detector, self.options)
        session = current_session()
        if (
            session is not None
            and session.detector == self.detector
            and session.options.setup_key() == self.options.setup_key()
        ):
            return session.provenance() | {"scoring": planned_scoring(self.options)}
        return planned_provenance(self.detector, self.options)
