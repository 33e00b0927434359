"""Reference simulators behind one protocol (:class:`Simulator`).

- :mod:`twinforge.simulation.geant4`: Geant4 through geant4-pybind (standard physics lists with
  the Geant4 data sets, a data-free electromagnetic list without them);
- :mod:`twinforge.simulation.root`: read the ROOT ntuples the Geant4 backend writes (uproot).

Importing this package imports no simulator.
"""

from twinforge.simulation.base import Simulator

__all__ = ["Simulator"]
