"""The per-process Geant4 session: one run manager, one detector, showers on demand.

Geant4's run manager is a process-wide singleton and cannot be rebuilt for another geometry, so
each process holds at most one :class:`Geant4Session`. :func:`get_session` creates it on first
use and returns it afterwards (the per-process path that Dask workers use); asking for another
detector or other options in the same process raises :class:`SimulationError`. For isolation
(tests, the CLI, executors that run different detectors), use
:func:`twinforge.simulation.geant4.runner.simulate_in_subprocess`.

Random numbers: at the start of shower ``i`` of a :meth:`Geant4Session.simulate` call with seed
``s``, Geant4's engine (MixMax) is reseeded from ``numpy.random.SeedSequence([s, i])``, so a
shower depends only on ``(s, i)`` and its conditions: the same call gives bit-identical showers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from twinforge import __version__
from twinforge.detector import DetectorConfig, Readout
from twinforge.errors import SimulationError
from twinforge.showers.conditions import Conditions
from twinforge.simulation.geant4.environment import DataSets, import_geant4
from twinforge.simulation.geant4.geometry import (
    BuiltGeometry,
    build_geometry,
    describe_geometry,
    validate_geometry,
)
from twinforge.simulation.geant4.output import geant4_output_to_logging
from twinforge.simulation.geant4.physics import (
    PhysicsChoice,
    build_physics_list,
    check_physics_name,
    select_physics,
)
from twinforge.simulation.geant4.scoring import (
    EventTotals,
    sensitive_detector_classes,
    voxels_from_scorer,
    voxels_from_steps,
)

__all__ = [
    "EventTimings",
    "Geant4Options",
    "Geant4Session",
    "current_session",
    "get_session",
    "planned_provenance",
    "planned_scoring",
]

log = logging.getLogger(__name__)

_SESSION: Geant4Session | None = None  # mirrors Geant4's process-wide run manager
_RUN_MANAGER_CREATED = False
_LOCK = threading.RLock()

_GUN_OFFSET_MM = 1.0  # the gun starts this far (along z) in front of the front face
# The incident axis through the entry point lies on the readout's replica boundaries (every
# alpha edge meets at r = 0, and an oblique track with phi on an alpha edge runs inside that
# edge's half-plane). Geant4 then moves a photon along the boundary by its 1e-9 mm tolerance per
# step: one 1.7 GeV photon at 0.34 rad took over an hour. The gun is therefore moved 1e-4 mm
# (0.1 um, far below any voxel, far above the tolerance) off the axis, at 1 rad (an irrational
# fraction of pi, so on no alpha edge of linspace(-pi, pi, n + 1)). Scoring stays on the axis.
_ENTRY_NUDGE_MM = 1e-4
_ENTRY_NUDGE_RAD = 1.0


@dataclass(frozen=True)
class Geant4Options:
    """How a detector is simulated.

    Attributes:
        physics: ``"auto"`` (FTFP_BERT with the Geant4 data sets, the data-free EM list
            without), ``"datafree-em"``, or a Geant4 reference list name such as ``QGSP_BIC``.
        entry: (x, y) in mm of the point on the front face (z = 0) where the incident axis
            enters; the readout's r and alpha are measured around that axis.
        production_cut: production threshold as a range, mm.
        scoring: ``"auto"``: voxel volumes and a C++ scorer for normal incidence, step
            positions for oblique incidence; ``"steps"``: step positions always (slower).
    """

    physics: str = "auto"
    entry: tuple[float, float] = (0.0, 0.0)
    production_cut: float = 0.7
    scoring: Literal["auto", "steps"] = "auto"

    def __post_init__(self) -> None:
        entry = tuple(float(v) for v in self.entry)
        if len(entry) != 2 or not all(math.isfinite(v) for v in entry):
            raise SimulationError(
                f"entry must be two finite numbers (x, y) in mm, got {self.entry}"
            )
        object.__setattr__(self, "entry", entry)
        if not (self.production_cut > 0 and math.isfinite(self.production_cut)):
            raise SimulationError(f"production_cut must be > 0 mm, got {self.production_cut}")
        _check_scoring(self.scoring)

    def setup_key(self) -> tuple[str, tuple[float, float], float]:
        """What the Geant4 set-up depends on (``scoring`` does not: it is chosen per run)."""
        return (self.physics.strip().lower(), self.entry, float(self.production_cut))


def current_session() -> Geant4Session | None:
    """The session of this process, if one was created."""
    return _SESSION


def get_session(detector: DetectorConfig, options: Geant4Options | None = None) -> Geant4Session:
    """This process's Geant4 session for ``detector``, created on first call.

    Raises:
        SimulationError: this process already runs Geant4 for another detector or other
            options (Geant4 allows one run manager per process: use a subprocess).
    """
    options = options or Geant4Options()
    with _LOCK:
        if _SESSION is None:
            return Geant4Session(detector, options)
        if _SESSION.detector != detector or _SESSION.options.setup_key() != options.setup_key():
            raise SimulationError(
                f"this process already runs Geant4 for detector {_SESSION.detector.name!r} "
                f"({_SESSION.options}); Geant4 allows one run manager per process: simulate "
                f"detector {detector.name!r} in another process (simulate_in_subprocess)"
            )
        return _SESSION


@dataclass(frozen=True)
class EventTimings:
    """Time spent on each shower of the last run, from primary generation to the end of
    scoring, arrays ``(N,)`` in seconds: ``wall`` (elapsed) and ``cpu`` (this process)."""

    wall: NDArray[np.float64]
    cpu: NDArray[np.float64]


@dataclass
class _Batch:
    """Per-event inputs and outputs of one :meth:`Geant4Session.simulate` call."""

    conditions: Conditions
    seeds: list[int]
    particles: list[Any]
    use_steps: NDArray[np.bool_]
    showers: NDArray[np.float32]
    deposited: NDArray[np.float64]
    sensitive: NDArray[np.float64]
    escaped: NDArray[np.float64]
    wall: NDArray[np.float64]
    cpu: NDArray[np.float64]
    done: int = 0


class Geant4Session:
    """Geant4 set up for one detector in this process (use :func:`get_session`).

    Args:
        detector: the detector to build.
        options: physics, entry point, production cut, scoring.

    Raises:
        SimulationError: a run manager already exists in this process, the physics cannot
            run (e.g. a standard list without data sets), or the geometry is invalid.
    """

    def __init__(self, detector: DetectorConfig, options: Geant4Options | None = None) -> None:
        with _LOCK:
            self._init(detector, options)

    def _init(self, detector: DetectorConfig, options: Geant4Options | None) -> None:
        global _SESSION, _RUN_MANAGER_CREATED
        if _SESSION is not None:
            raise SimulationError(
                "a Geant4 session already exists in this process (one run manager per "
                "process): use get_session() or a subprocess"
            )
        if _RUN_MANAGER_CREATED:
            raise SimulationError(
                "an earlier Geant4 set-up failed in this process and its run manager cannot "
                "be rebuilt: simulate in a new process"
            )
        self.detector = detector
        self.options = options or Geant4Options()
        self.readout: Readout = detector.binning()
        g4, datasets = import_geant4()
        self._g4: ModuleType = g4
        self.datasets: DataSets = datasets
        self.physics: PhysicsChoice = select_physics(self.options.physics, datasets)
        self.last_totals = EventTotals.empty()
        self.last_timings = EventTimings(np.zeros(0), np.zeros(0))
        self._batch: _Batch | None = None
        self._root_writer: Any = None
        self._particles: dict[int, Any] = {}
        with geant4_output_to_logging():
            check_physics_name(g4, self.physics)
            validate_geometry(g4, detector, self.readout, self.options.entry)
        started = time.perf_counter()
        _RUN_MANAGER_CREATED = True
        with geant4_output_to_logging():
            self._setup()
        _SESSION = self
        log.info(
            "Geant4 ready for detector %r (%s, %s) in %.1f s",
            detector.name,
            self.physics.name,
            self.readout.describe(),
            time.perf_counter() - started,
        )

    # ------------------------------------------------------------------ set-up
    def _setup(self) -> None:
        g4 = self._g4
        ui = g4.G4UImanager.GetUIpointer()
        ui.SetVerboseLevel(0)
        self._run_manager = g4.G4RunManagerFactory.CreateRunManager(g4.G4RunManagerType.Serial)
        for command in (
            "/control/verbose 0",
            "/run/verbose 0",
            "/event/verbose 0",
            "/tracking/verbose 0",
            "/process/verbose 0",
        ):
            ui.ApplyCommand(command)
        self._run_manager.SetVerboseLevel(0)
        self._run_manager.SetPrintProgress(0)
        self._geometry: BuiltGeometry | None = None
        self._construction = _detector_construction_class(g4)(self)
        self._run_manager.SetUserInitialization(self._construction)
        self._physics_keep = build_physics_list(g4, self.physics)
        self._run_manager.SetUserInitialization(self._physics_keep[0])
        ui.ApplyCommand(f"/run/setCut {self.options.production_cut!r} mm")
        self._generator = _generator_class(g4)(self)
        self._event_action = _event_action_class(g4)(self)
        self._run_manager.SetUserAction(self._generator)
        self._run_manager.SetUserAction(self._event_action)
        self._run_manager.Initialize()
        sdm = g4.G4SDManager.GetSDMpointer()
        self._hc_ids = {
            name: sdm.GetCollectionID(f"{name}/edep")
            for name in ("voxels", "outside", "absorber")
            if self._sd_names.get(name)
        }
        self._active_steps: bool | None = None

    def _construct_geometry(self) -> Any:
        self._geometry = build_geometry(self._g4, self.detector, self.readout, self.options.entry)
        return self._geometry.world

    def _construct_sensitive_detectors(self) -> None:
        g4, geo = self._g4, self._geometry
        assert geo is not None
        sdm = g4.G4SDManager.GetSDMpointer()
        step_class, escape_class = sensitive_detector_classes(g4)
        self._sd_names: dict[str, bool] = {}
        keep: list[Any] = []

        def scorer(name: str, lvs: list[Any], primitive: Any) -> Any:
            if not lvs:
                return None
            mfd = g4.G4MultiFunctionalDetector(name)
            sdm.AddNewDetector(mfd)
            mfd.RegisterPrimitive(primitive)
            for lv in lvs:
                self._construction.SetSensitiveDetector(lv, mfd)
            keep.extend([mfd, primitive])
            self._sd_names[name] = True
            return mfd

        scorer(
            "voxels",
            geo.wedge_lvs,
            g4.G4PSEnergyDeposit3D("edep", geo.n_layers, geo.n_alpha, geo.n_r, *geo.depths),
        )
        scorer("outside", geo.outside_lvs, g4.G4PSEnergyDeposit("edep"))
        scorer("absorber", geo.absorber_lvs, g4.G4PSEnergyDeposit("edep"))
        self._steps = step_class("steps")
        sdm.AddNewDetector(self._steps)
        for lv in geo.wedge_lvs + geo.outside_lvs:
            self._construction.SetSensitiveDetector(lv, self._steps)
        self._escape = escape_class("escape")
        sdm.AddNewDetector(self._escape)
        self._construction.SetSensitiveDetector(geo.world_lv, self._escape)
        self._sd_keep = keep

    def _particle(self, pdg: int) -> Any:
        if pdg not in self._particles:
            self.physics.check_particle(pdg)
            particle = self._g4.G4ParticleTable.GetParticleTable().FindParticle(pdg)
            if particle is None:
                raise SimulationError(
                    f"particle with PDG id {pdg} is not defined by physics {self.physics.name!r}"
                )
            self._particles[pdg] = particle
        return self._particles[pdg]

    # ------------------------------------------------------------------ running
    def simulate(
        self,
        conditions: Conditions,
        seed: int,
        *,
        first_index: int = 0,
        root_path: str | Path | None = None,
        scoring: Literal["auto", "steps"] | None = None,
    ) -> NDArray[np.float32]:
        """Simulate one shower per row of ``conditions``.

        Args:
            conditions: N incident energies (MeV), PDG ids, theta and phi (rad); theta must be
                in [0, pi/2) (the particle enters through the front face).
            seed: non-negative integer; shower ``i`` uses
                ``SeedSequence([seed, first_index + i])``.
            first_index: index of the first shower within a longer run, so that a run split
                into batches gives the same showers as one call.
            root_path: also write the showers as a ROOT ntuple there (see
                :mod:`twinforge.simulation.geant4.ntuple`).
            scoring: override ``options.scoring`` for this call (the showers are the same
                either way up to float rounding; ``"steps"`` is slower).

        Returns:
            Voxel energies, ``(N, V)`` float32, MeV, readout order; voxels below
            ``readout.threshold`` are 0. Energy bookkeeping is in :attr:`last_totals`, time
            per shower in :attr:`last_timings`.

        Raises:
            SimulationError: unsupported particle for the physics, bad angle or seed.
        """
        with _LOCK:  # Geant4 is not thread-safe: one run at a time per process
            steps = _check_scoring(scoring or self.options.scoring) == "steps"
            if first_index < 0:
                raise SimulationError(f"first_index must be >= 0, got {first_index}")
            return self._simulate(conditions, _check_seed(seed), root_path, steps, first_index)

    def _simulate(
        self,
        conditions: Conditions,
        seed: int,
        root_path: str | Path | None,
        steps: bool,
        first_index: int = 0,
    ) -> NDArray[np.float32]:
        batch = self._prepare(conditions, seed, steps, first_index)
        n = len(conditions)
        if n == 0:
            self.last_totals = EventTotals.empty()
            self.last_timings = EventTimings(batch.wall, batch.cpu)
            return batch.showers
        started = time.perf_counter()
        with geant4_output_to_logging():
            if root_path is not None:
                self._root().open(root_path, self.provenance())
            self._batch = batch
            try:
                self._run_manager.BeamOn(n)
            finally:
                self._batch = None
                if root_path is not None:
                    self._root().close(keep=batch.done == n)
        if batch.done != n:
            raise SimulationError(f"Geant4 simulated {batch.done} of {n} showers")
        elapsed = time.perf_counter() - started
        log.debug("simulated %d showers in %.2f s (%.3f s/shower)", n, elapsed, elapsed / n)
        self.last_totals = EventTotals(batch.deposited, batch.sensitive, batch.escaped)
        self.last_timings = EventTimings(batch.wall, batch.cpu)
        return batch.showers

    def _prepare(
        self, conditions: Conditions, seed: int, steps: bool, first_index: int = 0
    ) -> _Batch:
        n = len(conditions)
        theta = conditions.theta
        bad = ~((theta >= 0) & (theta < 0.5 * math.pi))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise SimulationError(
                f"theta must be in [0, pi/2) rad (the particle enters through the front face); "
                f"shower {i} has theta = {theta[i]!r}"
            )
        particles = [self._particle(int(p)) for p in conditions.pdg]
        use_steps = (theta != 0.0) | steps
        seeds = [_event_seed(seed, first_index + i) for i in range(n)]
        return _Batch(
            conditions=conditions,
            seeds=seeds,
            particles=particles,
            use_steps=np.asarray(use_steps, dtype=bool),
            showers=np.zeros((n, self.readout.n_voxels), dtype=np.float32),
            deposited=np.zeros(n),
            sensitive=np.zeros(n),
            escaped=np.zeros(n),
            wall=np.zeros(n),
            cpu=np.zeros(n),
        )

    def _root(self) -> Any:
        if self._root_writer is None:
            from twinforge.simulation.geant4.ntuple import RootNtupleWriter

            self._root_writer = RootNtupleWriter(self._g4, self.readout.n_voxels)
        return self._root_writer

    def _set_scoring(self, steps: bool) -> None:
        """Activate the step recorder or the C++ voxel scorers (switched only on change)."""
        if steps == self._active_steps:
            return
        sdm = self._g4.G4SDManager.GetSDMpointer()
        sdm.Activate("/steps", steps)
        for name in ("voxels", "outside"):
            if self._sd_names.get(name):
                sdm.Activate(f"/{name}", not steps)
        self._active_steps = steps

    def _generate(self, event: Any, gun: Any) -> None:
        """Primary generation of event ``event`` (called by Geant4 through the generator)."""
        batch = self._batch
        assert batch is not None
        i = event.GetEventID()
        batch.wall[i], batch.cpu[i] = time.perf_counter(), time.process_time()
        self._g4.HepRandom.setTheSeed(batch.seeds[i])
        self._set_scoring(bool(batch.use_steps[i]))
        cond = batch.conditions
        theta, phi = float(cond.theta[i]), float(cond.phi[i])
        direction = (
            math.sin(theta) * math.cos(phi),
            math.sin(theta) * math.sin(phi),
            math.cos(theta),
        )
        back = _GUN_OFFSET_MM / direction[2]
        x0 = self.options.entry[0] + _ENTRY_NUDGE_MM * math.cos(_ENTRY_NUDGE_RAD)
        y0 = self.options.entry[1] + _ENTRY_NUDGE_MM * math.sin(_ENTRY_NUDGE_RAD)
        g4 = self._g4
        gun.SetParticleDefinition(batch.particles[i])
        gun.SetParticleEnergy(float(cond.energy[i]) * g4.MeV)
        gun.SetParticleMomentumDirection(g4.G4ThreeVector(*direction))
        gun.SetParticlePosition(
            g4.G4ThreeVector(x0 - back * direction[0], y0 - back * direction[1], -_GUN_OFFSET_MM)
        )
        gun.GeneratePrimaryVertex(event)

    def _end_event(self, event: Any) -> None:
        """Score event ``event`` into the current batch (called by Geant4)."""
        batch, geo = self._batch, self._geometry
        assert batch is not None and geo is not None
        i = event.GetEventID()
        hce = event.GetHCofThisEvent()
        absorber = _sum_hits(hce, self._hc_ids.get("absorber"))
        if batch.use_steps[i]:
            points, edep = self._steps.take()
            cond = batch.conditions
            voxels = voxels_from_steps(
                points,
                edep,
                readout=self.readout,
                sensitive_z=geo.sensitive_z,
                readout_layer=geo.readout_layer,
                entry=self.options.entry,
                theta=float(cond.theta[i]),
                phi=float(cond.phi[i]),
            )
            sensitive = float(edep.sum())
        else:
            keys, values = _hits(hce, self._hc_ids.get("voxels"))
            voxels, unmapped = voxels_from_scorer(keys, values, geo.lut, self.readout.n_voxels)
            sensitive = float(voxels.sum()) + unmapped + _sum_hits(hce, self._hc_ids.get("outside"))
        voxels[voxels < self.readout_threshold] = 0.0
        batch.showers[i] = voxels
        batch.deposited[i] = absorber + sensitive
        batch.sensitive[i] = sensitive
        batch.escaped[i] = self._escape.take()
        batch.done += 1
        if self._root_writer is not None and self._root_writer.is_open:
            cond = batch.conditions
            self._root_writer.fill(
                energy=float(cond.energy[i]),
                pdg=int(cond.pdg[i]),
                theta=float(cond.theta[i]),
                phi=float(cond.phi[i]),
                deposited=float(batch.deposited[i]),
                escaped=float(batch.escaped[i]),
                voxels=batch.showers[i],
            )
        batch.wall[i] = time.perf_counter() - batch.wall[i]
        batch.cpu[i] = time.process_time() - batch.cpu[i]

    @property
    def readout_threshold(self) -> float:
        """Voxel threshold, MeV."""
        return float(self.detector.readout.threshold)

    # ------------------------------------------------------------------ introspection
    def apply_command(self, command: str) -> str:
        """Run a Geant4 UI command (e.g. ``"/process/list"``) and return what it printed."""
        buffer = io.StringIO()
        with _LOCK, contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            self._g4.G4UImanager.GetUIpointer().ApplyCommand(command)
        return buffer.getvalue()

    def process_names(self, particle: str) -> list[str]:
        """Names of the processes attached to ``particle`` (e.g. ``"e-"``), in order."""
        definition = self._g4.G4ParticleTable.GetParticleTable().FindParticle(particle)
        if definition is None:
            raise SimulationError(f"unknown particle {particle!r}")
        manager = definition.GetProcessManager()
        return [p.GetProcessName() for p in manager.GetProcessList()]

    def provenance(self) -> dict[str, Any]:
        """JSON-ready description of how showers are simulated (simulator, physics, ...)."""
        return _provenance(self.detector, self.options, self.physics, self.datasets, self._g4)


def planned_provenance(
    detector: DetectorConfig, options: Geant4Options | None = None
) -> dict[str, Any]:
    """The provenance a session for ``detector`` and ``options`` would report, without one.

    Imports geant4_pybind (after preparing the environment) but creates no run manager.

    Raises:
        SimulationError: the requested physics cannot run here.
    """
    options = options or Geant4Options()
    g4, datasets = import_geant4()
    physics = select_physics(options.physics, datasets)
    return _provenance(detector, options, physics, datasets, g4)


def planned_scoring(options: Geant4Options) -> str:
    """How showers are binned into voxels with ``options`` (for provenance)."""
    if options.scoring == "steps":
        return "step mid-points binned around the incident axis"
    return (
        "voxel volumes + G4PSEnergyDeposit3D (normal incidence); step mid-points binned "
        "around the incident axis (oblique incidence)"
    )


def _provenance(
    detector: DetectorConfig,
    options: Geant4Options,
    physics: PhysicsChoice,
    datasets: DataSets,
    g4: ModuleType,
) -> dict[str, Any]:
    return {
        "simulator": "geant4",
        "simulator_version": _geant4_version(g4),
        "geant4_pybind": _pybind_version(),
        "physics": physics.name,
        "physics_description": physics.description,
        "geant4_data": datasets.summary(),
        "production_cut_mm": options.production_cut,
        "geometry": describe_geometry(detector),
        "readout": detector.binning().describe(),
        "voxel_threshold_MeV": float(detector.readout.threshold),
        "entry_point_mm": list(options.entry),
        "gun_nudge_mm": [  # off the readout's replica boundaries (see _ENTRY_NUDGE_MM)
            _ENTRY_NUDGE_MM * math.cos(_ENTRY_NUDGE_RAD),
            _ENTRY_NUDGE_MM * math.sin(_ENTRY_NUDGE_RAD),
        ],
        "scoring": planned_scoring(options),
        "seeding": "MixMax reseeded per shower from numpy SeedSequence([seed, index])",
        "twinforge": __version__,
    }


# ---------------------------------------------------------------------- helpers
def _check_scoring(scoring: str) -> str:
    if scoring not in ("auto", "steps"):
        raise SimulationError(f"scoring must be 'auto' or 'steps', got {scoring!r}")
    return scoring


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise SimulationError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _event_seed(seed: int, index: int) -> int:
    """A positive 63-bit seed for shower ``index`` of a run seeded with ``seed``."""
    words = np.random.SeedSequence([seed, index]).generate_state(2, np.uint32)
    return int(((int(words[0]) << 32) | int(words[1])) & 0x7FFF_FFFF_FFFF_FFFF) or 1


def _hits(hce: Any, collection: int | None) -> tuple[list[int], list[float]]:
    if collection is None or hce is None:
        return [], []
    hits = hce.GetHC(collection)
    if hits is None:
        return [], []
    pairs = list(hits)
    return [k for k, _ in pairs], [v for _, v in pairs]


def _sum_hits(hce: Any, collection: int | None) -> float:
    return float(sum(_hits(hce, collection)[1]))


def _geant4_version(g4: ModuleType) -> str:
    text = str(getattr(g4, "G4Version", "")).strip("$ ").removeprefix("Name:").strip()
    return text or "unknown"


def _pybind_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("geant4-pybind")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


# ---------------------------------------------------------------------- Geant4 user classes
def _detector_construction_class(g4: ModuleType) -> type:
    class DetectorConstruction(g4.G4VUserDetectorConstruction):  # type: ignore[misc,name-defined]
        def __init__(self, session: Geant4Session) -> None:
            super().__init__()
            self._session = session

        def Construct(self) -> Any:
            return self._session._construct_geometry()

        def ConstructSDandField(self) -> None:
            self._session._construct_sensitive_detectors()

    return DetectorConstruction


def _generator_class(g4: ModuleType) -> type:
    class PrimaryGenerator(g4.G4VUserPrimaryGeneratorAction):  # type: ignore[misc,name-defined]
        def __init__(self, session: Geant4Session) -> None:
            super().__init__()
            self._session = session
            self._gun = g4.G4ParticleGun(1)

        def GeneratePrimaries(self, event: Any) -> None:
            self._session._generate(event, self._gun)

    return PrimaryGenerator


def _event_action_class(g4: ModuleType) -> type:
    class EventAction(g4.G4UserEventAction):  # type: ignore[misc,name-defined]
        def __init__(self, session: Geant4Session) -> None:
            super().__init__()
            self._session = session

        def EndOfEventAction(self, event: Any) -> None:
            self._session._end_event(event)

    return EventAction
