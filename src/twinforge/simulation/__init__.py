"""Simulation codes behind one seam (:class:`Simulator`), found through entry points.

- :mod:`twinforge.simulation.base`: the :class:`Simulator` interface and output formats;
- :mod:`twinforge.simulation.registry`: the installed simulators (``twinforge.simulators``);
- :mod:`twinforge.simulation.calorimeter`: the calorimeter family (showers, shower files);
- :mod:`twinforge.simulation.geant4`: Geant4 through geant4-pybind (standard physics lists with
  the Geant4 data sets, a data-free electromagnetic list without them);
- :mod:`twinforge.simulation.synthetic`: the synthetic shower generator for tests;
- :mod:`twinforge.simulation.root`: read the ROOT ntuples the Geant4 backend writes (uproot).

Importing this package imports no simulator.
"""

from twinforge.simulation.base import Output, RunResult, Simulator

__all__ = ["Output", "RunResult", "Simulator"]
