"""The process environment Geant4 needs, set up lazily, before geant4_pybind is imported.

geant4-pybind's wheel ships no data sets. On import it asks (on stdin) whether to download them
unless ``GEANT4_DATA_DIR`` names an existing directory, and at run time Geant4 looks data sets up
through one environment variable each (``G4LEDATA``, ``G4ENSDFSTATEDATA``, ...).

- With the real data sets (``GEANT4_DATA_DIR`` holding e.g. ``G4EMLOW8.6.1``, or the per-data-set
  variables set), :func:`prepare_environment` fills in any per-data-set variable left unset from
  what it finds under ``GEANT4_DATA_DIR``, and standard physics lists can be used.
- Without them, it points the variables Geant4 insists on at small stubs in a per-user cache
  directory (an empty ``ENSDFSTATE.dat`` and empty directories), which is enough for the
  data-free electromagnetic physics of :mod:`twinforge.simulation.geant4.physics`.

Nothing happens at import time of this module.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from twinforge.errors import SimulationError

__all__ = ["DATASETS", "DataSets", "detect_datasets", "import_geant4", "prepare_environment"]

log = logging.getLogger(__name__)

DATASETS: dict[str, str] = {
    "G4LEDATA": "G4EMLOW",
    "G4ENSDFSTATEDATA": "G4ENSDFSTATE",
    "G4LEVELGAMMADATA": "PhotonEvaporation",
    "G4PARTICLEXSDATA": "G4PARTICLEXS",
    "G4RADIOACTIVEDATA": "RadioactiveDecay",
    "G4SAIDXSDATA": "G4SAIDDATA",
    "G4NEUTRONHPDATA": "G4NDL",
    "G4ABLADATA": "G4ABLA",
    "G4INCLDATA": "G4INCL",
    "G4PIIDATA": "G4PII",
    "G4REALSURFACEDATA": "RealSurface",
    "G4CHANNELINGDATA": "G4CHANNELING",
}
"""Geant4 data-set environment variable -> directory name prefix under ``GEANT4_DATA_DIR``."""

REQUIRED_FOR_STANDARD_LISTS = (
    "G4LEDATA",
    "G4ENSDFSTATEDATA",
    "G4LEVELGAMMADATA",
    "G4PARTICLEXSDATA",
)
"""Data sets without which no standard (EM + hadronic) physics list initialises."""

_STUB_VARS = ("G4LEDATA", "G4ENSDFSTATEDATA", "G4LEVELGAMMADATA")


@dataclass(frozen=True)
class DataSets:
    """What Geant4 data sets this process can use.

    Attributes:
        available: True when the data sets standard physics lists need are all present.
        found: data-set variable -> directory, for each real data set found.
        missing: required data-set variables with no real data set.
        stub_dir: the stub directory used when the data sets are not available (else None).
    """

    available: bool
    found: dict[str, Path] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    stub_dir: Path | None = None

    def summary(self) -> str:
        """One line for logs and provenance."""
        if self.available:
            return "Geant4 data sets: " + ", ".join(p.name for p in self.found.values())
        return f"no Geant4 data sets (missing {', '.join(self.missing)}); data-free stubs in use"


def _is_real(var: str, path: Path) -> bool:
    """Whether ``path`` looks like the real data set of ``var`` (not one of our stubs)."""
    if not path.is_dir():
        return False
    if var == "G4LEDATA":
        return (path / "brem_SB").is_dir()
    if var == "G4ENSDFSTATEDATA":
        state = path / "ENSDFSTATE.dat"
        return state.is_file() and state.stat().st_size > 0
    return any(path.iterdir())


def detect_datasets(environ: MutableMapping[str, str] | None = None) -> DataSets:
    """Find the real Geant4 data sets from ``GEANT4_DATA_DIR`` and the per-data-set variables.

    A per-data-set variable wins over ``GEANT4_DATA_DIR``; under ``GEANT4_DATA_DIR`` the
    highest-sorting directory with the data set's prefix is taken. Reads only.
    """
    env = os.environ if environ is None else environ
    root = Path(env["GEANT4_DATA_DIR"]) if env.get("GEANT4_DATA_DIR") else None
    found: dict[str, Path] = {}
    for var, prefix in DATASETS.items():
        candidates: list[Path] = []
        if env.get(var):
            candidates.append(Path(env[var]))
        if root is not None and root.is_dir():
            candidates += sorted(root.glob(prefix + "*"), reverse=True)
        for path in candidates:
            if _is_real(var, path):
                found[var] = path
                break
    missing = tuple(v for v in REQUIRED_FOR_STANDARD_LISTS if v not in found)
    return DataSets(available=not missing, found=found, missing=missing)


def _cache_root() -> Path:
    """A per-user writable directory for the stubs (XDG cache, else the temp dir)."""
    candidates = []
    if os.environ.get("TWINFORGE_CACHE_DIR"):
        candidates.append(Path(os.environ["TWINFORGE_CACHE_DIR"]))
    xdg = os.environ.get("XDG_CACHE_HOME")
    candidates.append(Path(xdg) / "twinforge" if xdg else Path.home() / ".cache" / "twinforge")
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    candidates.append(Path(tempfile.gettempdir()) / f"twinforge-{uid}")
    for path in candidates:
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    raise SimulationError(f"no writable cache directory for Geant4 stubs (tried {candidates})")


def _make_stubs() -> Path:
    stub = _cache_root() / "geant4-no-data"
    for sub in ("data", "ENSDFSTATE", "PhotonEvaporation", "EMLOW"):
        (stub / sub).mkdir(parents=True, exist_ok=True)
    (stub / "ENSDFSTATE" / "ENSDFSTATE.dat").touch()
    return stub


def prepare_environment(environ: MutableMapping[str, str] | None = None) -> DataSets:
    """Set the Geant4 data-set variables in ``environ`` (default ``os.environ``); idempotent.

    With the real data sets, fills unset per-data-set variables from ``GEANT4_DATA_DIR``.
    Without them, points ``GEANT4_DATA_DIR`` (when unset or not a directory), ``G4LEDATA``,
    ``G4ENSDFSTATEDATA`` and ``G4LEVELGAMMADATA`` at stubs in a per-user cache directory.
    """
    env = os.environ if environ is None else environ
    sets = detect_datasets(env)
    if sets.available:
        for var, path in sets.found.items():
            if not env.get(var):
                env[var] = str(path)
        if not env.get("GEANT4_DATA_DIR"):
            env["GEANT4_DATA_DIR"] = str(next(iter(sets.found.values())).parent)
        log.debug(sets.summary())
        return sets
    stub = _make_stubs()
    if not (env.get("GEANT4_DATA_DIR") and Path(env["GEANT4_DATA_DIR"]).is_dir()):
        env["GEANT4_DATA_DIR"] = str(stub / "data")
    stubs = {
        "G4LEDATA": stub / "EMLOW",
        "G4ENSDFSTATEDATA": stub / "ENSDFSTATE",
        "G4LEVELGAMMADATA": stub / "PhotonEvaporation",
    }
    for var in _STUB_VARS:
        if var not in sets.found:
            env[var] = str(stubs[var])
    sets = DataSets(available=False, found=sets.found, missing=sets.missing, stub_dir=stub)
    log.info("%s (%s)", sets.summary(), stub)
    return sets


def import_geant4() -> tuple[ModuleType, DataSets]:
    """Prepare the environment, then import and return ``geant4_pybind`` and the data sets.

    Raises:
        SimulationError: geant4-pybind is missing or fails to initialise.
    """
    sets = prepare_environment()
    if "geant4_pybind" not in sys.modules:
        log.debug("importing geant4_pybind")
    try:
        import geant4_pybind
    except ImportError as exc:
        raise SimulationError(
            f"cannot import geant4_pybind ({exc}): install it with "
            "pip install 'geant4-pybind==0.1.3'"
        ) from None
    return geant4_pybind, sets
