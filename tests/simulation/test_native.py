"""The ctypes layer's pinning and memory layouts (no Geant4 started)."""

from __future__ import annotations

import ctypes
import importlib.metadata

import pytest

from twinforge.errors import SimulationError
from twinforge.simulation.geant4 import native


def test_version_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    native.check_abi()  # the installed wheel is the pinned one
    monkeypatch.setattr(importlib.metadata, "version", lambda _: "0.2.0")
    with pytest.raises(SimulationError, match=r"geant4-pybind 0\.1\.3, but 0\.2\.0 is installed"):
        native.check_abi()


def test_short_string_layout() -> None:
    text = native._String("eBremLPM")
    base = text.ptr
    assert ctypes.c_void_p.from_address(base).value == base + 16  # inline buffer
    assert ctypes.c_size_t.from_address(base + 8).value == 8
    assert ctypes.string_at(base + 16, 9) == b"eBremLPM\0"
    with pytest.raises(ValueError, match="<= 15 bytes"):
        native._String("a name that is too long")


def test_vector_column_header_points_at_its_array() -> None:
    column = native.FloatVectorColumn("voxels", 10)
    begin, end, capacity = (column._header[i] for i in range(3))
    assert begin == column.values.ctypes.data
    assert end - begin == capacity - begin == 40


def test_root_reader_and_writer_agree_on_the_tree_name() -> None:
    from twinforge.simulation import root
    from twinforge.simulation.geant4 import ntuple

    assert root.TREE_NAME == ntuple.TREE_NAME
    assert root.PROVENANCE_TREE == ntuple.PROVENANCE_TREE
