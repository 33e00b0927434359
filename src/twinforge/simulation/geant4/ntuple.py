"""ROOT output written by Geant4's own analysis manager (``G4RootAnalysisManager``).

A ntuple :data:`PROVENANCE_TREE` with one row and one string column ``json``: the session's
provenance (simulator, physics, geometry, ...) as JSON. And the ntuple :data:`TREE_NAME`, one
row per shower:

========== ================ ==============================================
column     type             meaning
========== ================ ==============================================
event      int32            shower index within the file
energy     float64          incident kinetic energy, MeV
pdg        int32            incident particle PDG id
theta      float64          polar angle of the incident direction, rad
phi        float64          azimuth of the incident direction, rad
deposited  float64          energy deposited in the whole detector, MeV
escaped    float64          kinetic energy leaving the world, MeV
voxels     vector<float>    voxel energies, MeV, readout order (length V)
========== ================ ==============================================

:mod:`twinforge.simulation.root` reads it back with uproot (no Geant4 needed).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinforge.errors import SimulationError
from twinforge.showers.io import commit, temporary_name

__all__ = ["PROVENANCE_TREE", "TREE_NAME", "RootNtupleWriter"]

log = logging.getLogger(__name__)

TREE_NAME = "showers"
"""Name of the ntuple (a ROOT TTree) holding one row per shower."""

PROVENANCE_TREE = "provenance"
"""Name of the one-row ntuple holding the provenance JSON."""

_SCALARS = (
    ("event", "I"),
    ("energy", "D"),
    ("pdg", "I"),
    ("theta", "D"),
    ("phi", "D"),
    ("deposited", "D"),
    ("escaped", "D"),
)


class RootNtupleWriter:
    """Books the shower ntuple once per process and writes it to one ROOT file per run.

    Args:
        g4: the imported ``geant4_pybind`` module.
        n_voxels: V, the length of the ``voxels`` column.
    """

    def __init__(self, g4: ModuleType, n_voxels: int) -> None:
        from twinforge.simulation.geant4.native import FloatVectorColumn

        self._manager = g4.G4RootAnalysisManager.Instance()
        self._manager.SetVerboseLevel(0)
        self._manager.SetCompressionLevel(1)
        self._prov_id = self._manager.CreateNtuple(PROVENANCE_TREE, "twinforge provenance (JSON)")
        self._prov_column = self._manager.CreateNtupleSColumn(self._prov_id, "json")
        self._manager.FinishNtuple(self._prov_id)
        self._id = self._manager.CreateNtuple(TREE_NAME, f"twinforge showers, {n_voxels} voxels")
        self._columns: dict[str, tuple[int, str]] = {}
        for name, kind in _SCALARS:
            create = getattr(self._manager, f"CreateNtuple{kind}Column")
            self._columns[name] = (create(self._id, name), kind)
        self._voxels = FloatVectorColumn("voxels", n_voxels)
        self._voxels.book()  # books into the ntuple created last
        self._manager.FinishNtuple(self._id)
        self._path: Path | None = None
        self._rows = 0

    @property
    def is_open(self) -> bool:
        return self._path is not None

    def open(self, path: str | Path, provenance: dict[str, Any]) -> None:
        """Start writing to ``path`` (``.root``; parent directories are created).

        ``provenance`` (JSON-ready) is written as the one row of :data:`PROVENANCE_TREE`.
        """
        path = Path(path)
        if path.suffix != ".root":
            raise SimulationError(f"{path}: a ROOT output file must end in .root")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Geant4 writes to a temporary name (it must end in .root); close() renames it
        tmp = temporary_name(path)
        tmp = tmp.with_name(tmp.name + ".root")
        if not self._manager.OpenFile(str(tmp)):
            raise SimulationError(f"{path}: Geant4 cannot open the ROOT file for writing")
        self._path, self._tmp = path, tmp
        self._rows = 0
        self._manager.FillNtupleSColumn(self._prov_id, self._prov_column, json.dumps(provenance))
        self._manager.AddNtupleRow(self._prov_id)

    def fill(
        self,
        *,
        energy: float,
        pdg: int,
        theta: float,
        phi: float,
        deposited: float,
        escaped: float,
        voxels: NDArray[np.floating],
    ) -> None:
        """Add one shower (energies in MeV, angles in rad, ``voxels`` shape ``(V,)``)."""
        values = {
            "event": self._rows,
            "energy": energy,
            "pdg": pdg,
            "theta": theta,
            "phi": phi,
            "deposited": deposited,
            "escaped": escaped,
        }
        for name, (column, kind) in self._columns.items():
            if kind == "I":
                self._manager.FillNtupleIColumn(self._id, column, int(values[name]))
            else:
                self._manager.FillNtupleDColumn(self._id, column, float(values[name]))
        self._voxels.values[:] = voxels
        self._manager.AddNtupleRow(self._id)
        self._rows += 1

    def close(self, *, keep: bool = True) -> Path:
        """Write and close the file and give it its final name; returns that name.

        With ``keep=False`` (the run failed) the file is discarded: no partial ROOT file ever
        appears under the final name.
        """
        if self._path is None:
            raise SimulationError("no ROOT file is open")
        path, self._path = self._path, None
        ok = self._manager.Write()
        ok = self._manager.CloseFile() and ok
        if not (ok and keep):
            self._tmp.unlink(missing_ok=True)
            if keep:
                raise SimulationError(f"{path}: Geant4 failed to write the ROOT file")
            return path
        commit(self._tmp, path)
        log.info("wrote %d showers to %s", self._rows, path)
        return path
