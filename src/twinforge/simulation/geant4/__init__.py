"""Geant4 reference simulation through geant4-pybind.

Importing this package does not import geant4_pybind: Geant4 starts on the first simulation.

- :class:`Geant4Simulator`: the :class:`~twinforge.simulation.Simulator` implementation;
- :func:`get_session` / :class:`Geant4Session`: this process's Geant4 (one per process);
- :func:`simulate_in_subprocess`: Geant4 in a fresh process, for isolation;
- :class:`Geant4Options`: physics, entry point, production cut, scoring.
"""

from twinforge.simulation.geant4.physics import DATA_FREE_EM, DEFAULT_STANDARD_LIST
from twinforge.simulation.geant4.runner import (
    SimulationResult,
    call_in_subprocess,
    simulate_in_subprocess,
)
from twinforge.simulation.geant4.scoring import EventTotals
from twinforge.simulation.geant4.session import (
    EventTimings,
    Geant4Options,
    Geant4Session,
    current_session,
    get_session,
    planned_provenance,
)
from twinforge.simulation.geant4.simulator import Geant4Simulator

__all__ = [
    "DATA_FREE_EM",
    "DEFAULT_STANDARD_LIST",
    "EventTimings",
    "EventTotals",
    "Geant4Options",
    "Geant4Session",
    "Geant4Simulator",
    "SimulationResult",
    "call_in_subprocess",
    "current_session",
    "get_session",
    "planned_provenance",
    "simulate_in_subprocess",
]
