"""The only place twinforge calls Geant4's C++ ABI directly (through :mod:`ctypes`).

geant4-pybind wraps the physics *constructors* but not the individual EM processes and models,
and no Geant4 headers exist on PyPI, so nothing can be compiled against Geant4 here. What the
wheel's extension module exports can still be called: this module builds the data-free EM
physics (processes and models that read no data files) and books a ``vector<float>`` ntuple
column, by calling exported C++ constructors and methods with :mod:`ctypes`.

Everything here depends on the exact binary layout of one wheel, so it is pinned:
:func:`check_abi` refuses any geant4-pybind other than :data:`PINNED_VERSION`. ABI facts relied
on (checked with geant4-pybind 0.1.3, Geant4 11.4.p01, CPython 3.11, x86-64 Linux):

- the extension module exports every symbol named below (Itanium C++ mangling); opening its path
  with ctypes returns the already-loaded library, so Geant4 singletons are shared;
- it is built with the libstdc++ "new" ABI: a ``G4String`` (a ``std::string``) is 32 bytes: data
  pointer, length, 16-byte inline buffer (short strings live inline);
- a ``std::vector<T>`` is three pointers: begin, end, end of storage;
- the process and model classes used have single inheritance, so a derived pointer is valid
  where a base pointer is expected; their sizes are below 0x500 bytes.

Objects that Geant4 deletes itself at exit (processes and models) are allocated with libstdc++'s
``operator new`` so that Geant4's ``delete`` matches. Import this module only after
:func:`twinforge.simulation.geant4.environment.import_geant4` (it imports geant4_pybind).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from twinforge.errors import SimulationError

__all__ = [
    "DATA_FREE_PROCESSES",
    "PINNED_VERSION",
    "FloatVectorColumn",
    "build_data_free_em_processes",
    "check_abi",
]

log = logging.getLogger(__name__)

PINNED_VERSION = "0.1.3"
"""The geant4-pybind release whose binary layout this module was checked against."""

DATA_FREE_PROCESSES: dict[str, tuple[str, ...]] = {
    "gamma": ("phot", "compt", "conv"),
    "e-": ("msc", "eIoni", "eBrem"),
    "e+": ("msc", "eIoni", "eBrem", "annihil"),
}
"""Processes (besides Transportation) that :func:`build_data_free_em_processes` registers."""

_OBJECT_BYTES = 4096  # generous: the largest object built here is 0x4c8 bytes
_STRING_BYTES = 32  # libstdc++ new-ABI std::string
_SSO_CAPACITY = 15

# C++ symbols (Itanium mangling), name -> (restype, argtypes)
_P, _I, _B = ctypes.c_void_p, ctypes.c_int, ctypes.c_bool
_SYMBOLS: dict[str, tuple[type | None, list[type]]] = {
    # particle singletons and helpers
    "_ZN7G4Gamma5GammaEv": (_P, []),
    "_ZN10G4Electron8ElectronEv": (_P, []),
    "_ZN10G4Positron8PositronEv": (_P, []),
    "_ZN19G4PhysicsListHelper20GetPhysicsListHelperEv": (_P, []),
    "_ZN19G4PhysicsListHelper15RegisterProcessEP10G4VProcessP20G4ParticleDefinition": (
        _B,
        [_P, _P, _P],
    ),
    # processes: (this, const G4String& name[, G4ProcessType])
    "_ZN21G4PhotoElectricEffectC1ERK8G4String13G4ProcessType": (None, [_P, _P, _I]),
    "_ZN19G4ComptonScatteringC1ERK8G4String13G4ProcessType": (None, [_P, _P, _I]),
    "_ZN17G4GammaConversionC1ERK8G4String13G4ProcessType": (None, [_P, _P, _I]),
    "_ZN21G4eMultipleScatteringC1ERK8G4String": (None, [_P, _P]),
    "_ZN13G4eIonisationC1ERK8G4String": (None, [_P, _P]),
    "_ZN17G4eBremsstrahlungC1ERK8G4String": (None, [_P, _P]),
    "_ZN19G4eplusAnnihilationC1ERK8G4String": (None, [_P, _P]),
    # models: (this, [const G4ParticleDefinition*,] const G4String& name)
    "_ZN19G4PEEffectFluoModelC1ERK8G4String": (None, [_P, _P]),
    "_ZN21G4KleinNishinaComptonC1EPK20G4ParticleDefinitionRK8G4String": (None, [_P, _P, _P]),
    "_ZN24G4PairProductionRelModelC1EPK20G4ParticleDefinitionRK8G4String": (None, [_P, _P, _P]),
    "_ZN15G4UrbanMscModelC1ERK8G4String": (None, [_P, _P]),
    "_ZN25G4eBremsstrahlungRelModelC1EPK20G4ParticleDefinitionRK8G4String": (None, [_P, _P, _P]),
    # process.SetEmModel(model, index)
    "_ZN12G4VEmProcess10SetEmModelEP10G4VEmModeli": (None, [_P, _P, _I]),
    "_ZN20G4VEnergyLossProcess10SetEmModelEP10G4VEmModeli": (None, [_P, _P, _I]),
    "_ZN21G4VMultipleScattering10SetEmModelEP11G4VMscModeli": (None, [_P, _P, _I]),
    # analysis: G4RootAnalysisManager::Instance(), CreateNtupleFColumn(name, std::vector<float>&)
    "_ZN21G4RootAnalysisManager8InstanceEv": (_P, []),
    "_ZN18G4VAnalysisManager19CreateNtupleFColumnERK8G4StringRSt6vectorIfSaIfEE": (
        _I,
        [_P, _P, _P],
    ),
}


def check_abi() -> None:
    """Raise :class:`SimulationError` unless the installed geant4-pybind is the pinned one."""
    try:
        version = importlib.metadata.version("geant4-pybind")
    except importlib.metadata.PackageNotFoundError:
        raise SimulationError(
            "geant4-pybind is not installed: pip install 'geant4-pybind==" + PINNED_VERSION + "'"
        ) from None
    if version != PINNED_VERSION:
        raise SimulationError(
            f"twinforge's data-free Geant4 physics calls the C++ ABI of geant4-pybind "
            f"{PINNED_VERSION}, but {version} is installed: install geant4-pybind=="
            f"{PINNED_VERSION}, or point GEANT4_DATA_DIR at the Geant4 data sets to use a "
            "standard physics list"
        )


@dataclass(frozen=True)
class _Lib:
    g4: ctypes.CDLL
    new: ctypes._CFuncPtr  # type: ignore[name-defined]

    def fn(self, symbol: str) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
        restype, argtypes = _SYMBOLS[symbol]
        func = getattr(self.g4, symbol)
        func.restype = restype
        func.argtypes = argtypes
        return func


@cache
def _lib() -> _Lib:
    """The loaded geant4_pybind extension and libstdc++'s ``operator new`` (checked once)."""
    check_abi()
    spec = importlib.util.find_spec("geant4_pybind")
    if spec is None or spec.origin is None:
        raise SimulationError("geant4_pybind is not importable")
    # PyDLL keeps the GIL: Geant4 output may call back into Python
    g4 = ctypes.PyDLL(spec.origin)
    missing = [s for s in _SYMBOLS if not hasattr(g4, s)]
    if missing:
        raise SimulationError(
            f"{spec.origin} does not export {len(missing)} symbol(s) twinforge needs "
            f"(first: {missing[0]}): not the geant4-pybind {PINNED_VERSION} binary"
        )
    try:
        stdcxx = ctypes.CDLL("libstdc++.so.6")
    except OSError as exc:
        raise SimulationError(f"cannot load libstdc++.so.6 ({exc})") from None
    new = stdcxx._Znwm  # operator new(unsigned long)
    new.restype = ctypes.c_void_p
    new.argtypes = [ctypes.c_size_t]
    return _Lib(g4, new)


class _String:
    """A short ``std::string`` (new ABI) in Python-owned memory, for ``const G4String&`` args."""

    def __init__(self, text: str) -> None:
        raw = text.encode()
        if len(raw) > _SSO_CAPACITY:
            raise ValueError(f"{text!r}: only strings of <= {_SSO_CAPACITY} bytes are supported")
        self._buf = ctypes.create_string_buffer(_STRING_BYTES)
        base = ctypes.addressof(self._buf)
        ctypes.c_void_p.from_address(base).value = base + 16
        ctypes.c_size_t.from_address(base + 8).value = len(raw)
        ctypes.memmove(base + 16, raw, len(raw))  # the buffer is zeroed: NUL-terminated

    @property
    def ptr(self) -> int:
        return ctypes.addressof(self._buf)


def _new_object(lib: _Lib) -> int:
    """Zeroed memory for one C++ object, from ``operator new`` (Geant4 deletes it)."""
    ptr = lib.new(_OBJECT_BYTES)
    if not ptr:
        raise MemoryError("operator new returned null")
    ctypes.memset(ptr, 0, _OBJECT_BYTES)
    return int(ptr)


def _construct(lib: _Lib, ctor: str, *args: int | None) -> int:
    """``new T(args...)`` through the C1 constructor symbol ``ctor``; returns ``this``."""
    this = _new_object(lib)
    lib.fn(ctor)(this, *args)
    return this


def build_data_free_em_processes(electromagnetic: int) -> None:
    """Register the data-free EM processes for gamma, e- and e+ with the physics-list helper.

    Call once per process, from a physics constructor's ``ConstructProcess`` (the particles
    must exist). ``electromagnetic`` is ``G4ProcessType.fElectromagnetic`` as an int.

    - gamma: ``phot`` (G4PEEffectFluoModel), ``compt`` (G4KleinNishinaCompton),
      ``conv`` (G4PairProductionRelModel);
    - e-, e+: ``msc`` (G4UrbanMscModel), ``eIoni`` (Moller/Bhabha), ``eBrem``
      (G4eBremsstrahlungRelModel in both energy slots, i.e. also below 1 GeV);
    - e+: ``annihil``.

    Raises:
        SimulationError: wrong geant4-pybind version, or Geant4 refused a registration.
    """
    lib = _lib()
    names = {n: _String(n) for n in ("phot", "compt", "conv", "msc", "eIoni", "eBrem", "annihil")}
    models = {
        n: _String(n) for n in ("PhotoElectric", "Klein-Nishina", "BetheHeitlerLPM", "UrbanMsc")
    }
    brem_model = _String("eBremLPM")
    helper = lib.fn("_ZN19G4PhysicsListHelper20GetPhysicsListHelperEv")()
    register = lib.fn(
        "_ZN19G4PhysicsListHelper15RegisterProcessEP10G4VProcessP20G4ParticleDefinition"
    )
    set_em = lib.fn("_ZN12G4VEmProcess10SetEmModelEP10G4VEmModeli")
    set_loss = lib.fn("_ZN20G4VEnergyLossProcess10SetEmModelEP10G4VEmModeli")
    set_msc = lib.fn("_ZN21G4VMultipleScattering10SetEmModelEP11G4VMscModeli")

    def add(process: int, particle: int, what: str) -> None:
        if not register(helper, process, particle):
            raise SimulationError(f"Geant4 refused to register process {what!r}")

    gamma = lib.fn("_ZN7G4Gamma5GammaEv")()
    for proc_ctor, proc, model_ctor, model, with_particle in (
        (
            "_ZN21G4PhotoElectricEffectC1ERK8G4String13G4ProcessType",
            "phot",
            "_ZN19G4PEEffectFluoModelC1ERK8G4String",
            "PhotoElectric",
            False,
        ),
        (
            "_ZN19G4ComptonScatteringC1ERK8G4String13G4ProcessType",
            "compt",
            "_ZN21G4KleinNishinaComptonC1EPK20G4ParticleDefinitionRK8G4String",
            "Klein-Nishina",
            True,
        ),
        (
            "_ZN17G4GammaConversionC1ERK8G4String13G4ProcessType",
            "conv",
            "_ZN24G4PairProductionRelModelC1EPK20G4ParticleDefinitionRK8G4String",
            "BetheHeitlerLPM",
            True,
        ),
    ):
        process = _construct(lib, proc_ctor, names[proc].ptr, electromagnetic)
        args = (None, models[model].ptr) if with_particle else (models[model].ptr,)
        set_em(process, _construct(lib, model_ctor, *args), 0)
        add(process, gamma, proc)

    for particle_fn, is_positron in (
        ("_ZN10G4Electron8ElectronEv", False),
        ("_ZN10G4Positron8PositronEv", True),
    ):
        particle = lib.fn(particle_fn)()
        msc = _construct(lib, "_ZN21G4eMultipleScatteringC1ERK8G4String", names["msc"].ptr)
        urban = _construct(lib, "_ZN15G4UrbanMscModelC1ERK8G4String", models["UrbanMsc"].ptr)
        set_msc(msc, urban, 0)
        add(msc, particle, "msc")
        ioni = _construct(lib, "_ZN13G4eIonisationC1ERK8G4String", names["eIoni"].ptr)
        add(ioni, particle, "eIoni")
        brem = _construct(lib, "_ZN17G4eBremsstrahlungC1ERK8G4String", names["eBrem"].ptr)
        for slot in (0, 1):  # replace Seltzer-Berger (needs G4EMLOW) below 1 GeV too
            rel = _construct(
                lib,
                "_ZN25G4eBremsstrahlungRelModelC1EPK20G4ParticleDefinitionRK8G4String",
                None,
                brem_model.ptr,
            )
            set_loss(brem, rel, slot)
        add(brem, particle, "eBrem")
        if is_positron:
            ann = _construct(lib, "_ZN19G4eplusAnnihilationC1ERK8G4String", names["annihil"].ptr)
            add(ann, particle, "annihil")
    log.debug("registered data-free EM processes: %s", DATA_FREE_PROCESSES)


class FloatVectorColumn:
    """A ``std::vector<float>`` ntuple column of fixed length backed by a NumPy array.

    Geant4's analysis manager keeps a reference to the vector and reads it at each
    ``AddNtupleRow``; this object owns both the vector header and its float32 storage
    (:attr:`values`), so write the row's values into :attr:`values` before adding the row.
    Keep the object alive until the file is closed.
    """

    def __init__(self, name: str, size: int) -> None:
        if size < 1:
            raise ValueError("a vector column needs at least one element")
        self.values: NDArray[np.float32] = np.zeros(size, dtype=np.float32)
        self._name = name.encode()
        self._header = (ctypes.c_void_p * 3)()
        begin = self.values.ctypes.data
        end = begin + self.values.nbytes
        self._header[0], self._header[1], self._header[2] = begin, end, end
        self._string = _String(name)

    def book(self) -> int:
        """Create the column in the ntuple being booked; returns the column id."""
        lib = _lib()
        manager = lib.fn("_ZN21G4RootAnalysisManager8InstanceEv")()
        create = lib.fn(
            "_ZN18G4VAnalysisManager19CreateNtupleFColumnERK8G4StringRSt6vectorIfSaIfEE"
        )
        column = int(create(manager, self._string.ptr, ctypes.addressof(self._header)))
        if column < 0:
            raise SimulationError(f"Geant4 refused to book ntuple column {self._name.decode()!r}")
        return column
