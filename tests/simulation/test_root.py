"""Reading Geant4 ROOT ntuples: errors (the round trip is in test_geant4.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinforge.errors import ShowerFileError
from twinforge.simulation.root import read_root_showers


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ShowerFileError, match="not found"):
        read_root_showers(tmp_path / "missing.root")


def test_not_a_root_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.root"
    bad.write_bytes(b"not a ROOT file")
    with pytest.raises(ShowerFileError, match="cannot read ROOT file"):
        read_root_showers(bad)


def test_wrong_tree(tmp_path: Path) -> None:
    uproot = pytest.importorskip("uproot")
    path = tmp_path / "other.root"
    with uproot.recreate(path) as f:
        f["other"] = {"x": [1.0, 2.0]}
    with pytest.raises(ShowerFileError, match="no tree 'showers'"):
        read_root_showers(path)
