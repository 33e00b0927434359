"""Geant4 as a campaign simulator (entry point ``geant4``): showers of a detector."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from twinforge.config import StrictModel
from twinforge.errors import ConfigError
from twinforge.simulation.base import RunResult
from twinforge.simulation.calorimeter import CalorimeterOptions, CalorimeterSimulator, conditions_of
from twinforge.space import Points

__all__ = ["Geant4Backend", "Geant4BackendOptions"]


class Geant4BackendOptions(CalorimeterOptions):
    """Geant4 settings of a campaign or of ``twinforge simulate``."""

    physics: str = Field(
        "auto",
        description="Geant4 physics list name, or 'auto' (standard list when data sets are "
        "installed, the data-free EM list otherwise)",
    )
    root_output: str | None = Field(
        None, description="twinforge simulate only: also write Geant4's ROOT ntuple here"
    )


class Geant4Backend(CalorimeterSimulator):
    """Geant4 through geant4-pybind, one run manager per process (reused for every job)."""

    name = "geant4"
    summary = "Geant4 showers in a sampling or homogeneous calorimeter (geant4-pybind)"
    Options: ClassVar[type[StrictModel]] = Geant4BackendOptions

    def _session(self) -> Any:
        from twinforge.simulation.geant4.session import Geant4Options, get_session

        return get_session(self.detector, Geant4Options(physics=self.options.physics))  # type: ignore[attr-defined]

    def run(
        self, points: Points, seed: int, *, first_index: int = 0, workdir: Path | None = None
    ) -> RunResult:
        root = self.options.root_output  # type: ignore[attr-defined]
        if root is not None and first_index:
            raise ConfigError("root_output needs every shower in one run (one batch)")
        showers = self._session().simulate(
            conditions_of(points), seed, first_index=first_index, root_path=root
        )
        return RunResult({"showers": showers})

    def code(self) -> dict[str, str]:
        """Geant4's own version once this process runs it, else the binding's."""
        from twinforge.simulation.geant4.session import current_session

        session = current_session()
        if session is not None:
            return {"name": "Geant4", "version": session.provenance()["simulator_version"]}
        from importlib.metadata import version

        return {
            "name": "Geant4",
            "version": f"as bundled by geant4-pybind {version('geant4-pybind')}",
        }

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), **self._session().provenance()}

    def worker_options(self) -> dict[str, Any]:
        if self.options.root_output is not None:  # type: ignore[attr-defined]
            raise ConfigError(
                "simulator option root_output is for twinforge simulate; a campaign writes "
                "HDF5 shards (twinforge convert turns ROOT files into shower files)"
            )
        return super().worker_options()

    def batch_size(self, n: int) -> int:
        return n if self.options.root_output is not None else super().batch_size(n)  # type: ignore[attr-defined]
