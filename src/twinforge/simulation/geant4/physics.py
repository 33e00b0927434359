"""Physics list selection: a standard Geant4 list with the data sets, the data-free EM list without.

``physics="auto"`` takes :data:`DEFAULT_STANDARD_LIST` when the Geant4 data sets are installed
and :data:`DATA_FREE_EM` otherwise. The chosen name goes into the provenance of every shower
file (key ``physics``) so that showers of the two are never mistaken for one another.

The data-free list (gamma: ``phot``, ``compt``, ``conv``; e-/e+: ``msc`` (Urban), ``eIoni``,
``eBrem`` (relativistic model at all energies); e+: ``annihil``) differs from Geant4's standard
EM option 0 by: the relativistic bremsstrahlung model also below 1 GeV (instead of
Seltzer-Berger), Urban multiple scattering at all energies (no WentzelVI + single Coulomb
scattering above 100 MeV), no Rayleigh scattering, no fluorescence or Auger emission, no
photo-/electro-nuclear processes. It can simulate e-, e+ and gamma showers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from twinforge.errors import SimulationError
from twinforge.simulation.geant4.environment import DataSets

__all__ = [
    "DATA_FREE_EM",
    "DATA_FREE_PARTICLES",
    "DEFAULT_STANDARD_LIST",
    "PhysicsChoice",
    "build_physics_list",
    "check_physics_name",
    "select_physics",
]

DATA_FREE_EM = "twinforge-datafree-em"
"""Name of the data-free electromagnetic physics list in provenance."""

DEFAULT_STANDARD_LIST = "FTFP_BERT"
"""The list ``physics="auto"`` selects when the data sets are installed (EM option 0)."""

DATA_FREE_PARTICLES = frozenset({11, -11, 22})
"""PDG ids the data-free list can shoot (e-, e+, gamma)."""

_DATA_FREE_ALIASES = {"datafree", "datafree-em", "data-free", DATA_FREE_EM}

_DESCRIPTIONS = {
    DATA_FREE_EM: (
        "data-free EM list built by twinforge (no Geant4 data sets): gamma phot "
        "(PEEffectFluo) / compt (Klein-Nishina) / conv (BetheHeitlerLPM); e-/e+ msc (Urban), "
        "eIoni (Moller-Bhabha), eBrem (eBremsstrahlungRelModel at all energies); e+ annihil; "
        "no Rayleigh, no fluorescence, no hadronic or photo-nuclear processes"
    ),
}


@dataclass(frozen=True)
class PhysicsChoice:
    """The physics a session runs.

    Attributes:
        name: the physics list name (a Geant4 reference list or :data:`DATA_FREE_EM`).
        data_free: True for the data-free EM list.
        description: one line for provenance.
    """

    name: str
    data_free: bool
    description: str

    def check_particle(self, pdg: int) -> None:
        """Raise :class:`SimulationError` if this physics cannot simulate PDG id ``pdg``."""
        if self.data_free and pdg not in DATA_FREE_PARTICLES:
            raise SimulationError(
                f"particle with PDG id {pdg}: the data-free EM physics simulates only e-, e+ "
                "and gamma (11, -11, 22); hadrons need a standard physics list and the Geant4 "
                "data sets (set GEANT4_DATA_DIR to them)"
            )


def select_physics(requested: str, datasets: DataSets) -> PhysicsChoice:
    """The physics for ``requested`` (``"auto"``, ``"datafree-em"`` or a reference list name).

    Raises:
        SimulationError: a standard list was requested but the data sets are not installed.
    """
    name = requested.strip()
    if name.lower() in _DATA_FREE_ALIASES:
        return PhysicsChoice(DATA_FREE_EM, True, _DESCRIPTIONS[DATA_FREE_EM])
    if name.lower() == "auto":
        if not datasets.available:
            return PhysicsChoice(DATA_FREE_EM, True, _DESCRIPTIONS[DATA_FREE_EM])
        name = DEFAULT_STANDARD_LIST
    if not datasets.available:
        raise SimulationError(
            f"physics list {name!r} needs the Geant4 data sets, which are not installed "
            f"(missing {', '.join(datasets.missing)}): set GEANT4_DATA_DIR to them, or use "
            f"physics='auto' / {DATA_FREE_EM!r} for e-, e+ and gamma showers"
        )
    return PhysicsChoice(name, False, f"Geant4 reference physics list {name}")


def build_physics_list(g4: ModuleType, choice: PhysicsChoice) -> list[Any]:
    """Create the physics list of ``choice``.

    Returns the Python objects to keep alive; the first is the physics list to hand to
    ``G4RunManager.SetUserInitialization``. Set the production cut with the UI command
    ``/run/setCut`` (``SetDefaultCutValue`` from Python makes the process crash at exit).

    Raises:
        SimulationError: unknown reference list name.
    """
    params = g4.G4EmParameters.Instance()
    params.SetVerbose(0)
    params.SetWorkerVerbose(0)
    if choice.data_free:
        params.SetFluo(False)
        params.SetGeneralProcessActive(False)
        physics_list = g4.G4VModularPhysicsList()
        constructor = _data_free_constructor(g4)
        physics_list.RegisterPhysics(constructor)
        keep = [physics_list, constructor]
    else:
        factory = check_physics_name(g4, choice)
        physics_list = factory.GetReferencePhysList(choice.name)
        keep = [physics_list, factory]
    physics_list.SetVerboseLevel(0)
    return keep


def check_physics_name(g4: ModuleType, choice: PhysicsChoice) -> Any:
    """Raise :class:`SimulationError` unless ``choice`` can be built here: Geant4 knows its
    reference list, or (data-free list) the installed geant4-pybind is the pinned one.

    Returns the ``G4PhysListFactory`` used (None for the data-free list). Creates no run manager.
    """
    if choice.data_free:
        from twinforge.simulation.geant4.native import check_abi

        check_abi()
        return None
    factory = g4.G4PhysListFactory()
    factory.SetVerbose(0)
    if not factory.IsReferencePhysList(choice.name):
        raise SimulationError(
            f"unknown Geant4 physics list {choice.name!r} (e.g. FTFP_BERT, QGSP_BIC, "
            f"FTFP_BERT_EMZ), or {DATA_FREE_EM!r}"
        )
    return factory


def _data_free_constructor(g4: ModuleType) -> Any:
    """An instance of the data-free EM physics constructor (a G4VPhysicsConstructor)."""
    from twinforge.simulation.geant4 import native

    native.check_abi()

    class DataFreeEmPhysics(g4.G4VPhysicsConstructor):  # type: ignore[misc,name-defined]
        """gamma/e-/e+ EM physics from models that read no data files (see module doc)."""

        def __init__(self) -> None:
            super().__init__(DATA_FREE_EM)
            self._constructed = False

        def ConstructParticle(self) -> None:
            g4.G4Gamma.GammaDefinition()
            g4.G4Electron.ElectronDefinition()
            g4.G4Positron.PositronDefinition()
            g4.G4Proton.ProtonDefinition()  # the production-cut table expects it
            g4.G4Geantino.GeantinoDefinition()
            g4.G4ChargedGeantino.ChargedGeantinoDefinition()

        def ConstructProcess(self) -> None:
            if self._constructed:  # a second call would register every process twice
                return
            native.build_data_free_em_processes(int(g4.G4ProcessType.fElectromagnetic))
            self._constructed = True

    return DataFreeEmPhysics()
