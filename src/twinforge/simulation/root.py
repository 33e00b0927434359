"""Read the ROOT ntuples Geant4 writes (see :mod:`twinforge.simulation.geant4.ntuple`) with uproot.

No Geant4 import: this is what ``twinforge convert`` uses to turn them into shower files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinforge.errors import ShowerFileError
from twinforge.showers.conditions import Conditions

__all__ = ["PROVENANCE_TREE", "TREE_NAME", "RootShowers", "read_root_ntuple", "read_root_showers"]

TREE_NAME = "showers"
"""Name of the shower ntuple (kept equal to ``twinforge.simulation.geant4.ntuple.TREE_NAME``)."""

PROVENANCE_TREE = "provenance"
"""Name of the one-row provenance ntuple (``...geant4.ntuple.PROVENANCE_TREE``)."""

_SCALARS = ("energy", "pdg", "theta", "phi", "deposited", "escaped")


@dataclass(frozen=True)
class RootShowers:
    """The content of one Geant4 shower ntuple.

    Attributes:
        conditions: incident energy (MeV), PDG id, theta and phi (rad) of the N showers.
        showers: voxel energies ``(N, V)`` float32, MeV.
        deposited: energy deposited in the whole detector per shower ``(N,)``, MeV.
        escaped: kinetic energy leaving the world per shower ``(N,)``, MeV.
        provenance: the simulation's provenance (simulator, ``physics``, geometry, ...); empty
            if the file has no provenance tree.
    """

    conditions: Conditions
    showers: NDArray[np.float32]
    deposited: NDArray[np.float64]
    escaped: NDArray[np.float64]
    provenance: dict[str, Any]


def read_root_showers(
    path: str | Path, tree: str = TREE_NAME
) -> tuple[Conditions, NDArray[np.float32]]:
    """Conditions and showers ``(N, V)`` float32 (MeV) of a ROOT file the Geant4 backend wrote.

    Raises:
        ShowerFileError: see :func:`read_root_ntuple`.
    """
    content = read_root_ntuple(path, tree)
    return content.conditions, content.showers


def read_root_ntuple(path: str | Path, tree: str = TREE_NAME) -> RootShowers:
    """Everything in a ROOT file the Geant4 backend wrote (also the energy bookkeeping).

    Raises:
        ShowerFileError: missing or unreadable file, no such tree, missing columns, or rows
            with different numbers of voxels.
    """
    import awkward as ak
    import uproot

    path = Path(path)
    if not path.is_file():
        raise ShowerFileError(f"{path}: ROOT file not found")
    try:
        with uproot.open(path) as root_file:
            if tree not in root_file:
                raise ShowerFileError(f"{path}: no tree {tree!r} (found {root_file.keys()})")
            ttree = root_file[tree]
            columns = set(ttree.keys())
            missing = [c for c in (*_SCALARS, "voxels") if c not in columns]
            if missing:
                raise ShowerFileError(f"{path}: tree {tree!r} lacks column(s) {missing}")
            scalars = ttree.arrays(list(_SCALARS), library="np")
            voxels = ttree["voxels"].array(library="ak")
            provenance = _provenance(root_file)
    except ShowerFileError:
        raise
    except Exception as exc:  # uproot raises many kinds for damaged files
        raise ShowerFileError(f"{path}: cannot read ROOT file ({exc})") from None
    n = len(voxels)
    counts = ak.to_numpy(ak.num(voxels))
    if n and np.any(counts != counts[0]):
        raise ShowerFileError(f"{path}: rows have different numbers of voxels ({set(counts)})")
    n_voxels = int(counts[0]) if n else 0
    showers = ak.to_numpy(ak.flatten(voxels)).astype(np.float32, copy=False).reshape(n, n_voxels)
    conditions = Conditions(
        scalars["energy"].astype(np.float64),
        scalars["pdg"].astype(np.int32),
        scalars["theta"].astype(np.float64),
        scalars["phi"].astype(np.float64),
    )
    return RootShowers(
        conditions=conditions,
        showers=showers,
        deposited=scalars["deposited"].astype(np.float64),
        escaped=scalars["escaped"].astype(np.float64),
        provenance=provenance,
    )


def _provenance(root_file: Any) -> dict[str, Any]:
    if PROVENANCE_TREE not in root_file:
        return {}
    texts = root_file[PROVENANCE_TREE]["json"].array(library="np")
    if len(texts) == 0:
        return {}
    value = texts[0]
    text = value.decode() if isinstance(value, bytes) else str(value)
    result = json.loads(text)
    return result if isinstance(result, dict) else {}
