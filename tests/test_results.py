"""Result files (twinforge.results): layout, round trip, merge, bad input."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from twinforge.errors import TwinforgeError
from twinforge.results import ResultFile, ResultFileError, merge_result_files, write_results


def write(path: Path, x: list[float], **kw) -> Path:
    return write_results(
        path,
        {"x": np.asarray(x), "mode": np.asarray(["a"] * len(x))},
        {"y": np.asarray(x) ** 2, "profile": np.ones((len(x), 3))},
        units={"x": "m", "y": "m^2"},
        descriptions={"y": "x squared"},
        records={"input": [f"x = {v}" for v in x]},
        code={"name": "square", "version": "1.0"},
        simulator="square",
        provenance={"job": "job-1", "seed": 3},
        **kw,
    )


def test_round_trip_and_layout(tmp_path: Path) -> None:
    path = write(tmp_path / "r.h5", [1.0, 2.0])
    with ResultFile(path) as f:
        assert f.n_points == 2
        np.testing.assert_array_equal(f.inputs()["x"], [1.0, 2.0])
        assert f.inputs()["mode"].tolist() == ["a", "a"]
        assert f.outputs()["profile"].shape == (2, 3)
        assert f.records()["input"].tolist() == ["x = 1.0", "x = 2.0"]
        assert f.units() == {"x": "m", "y": "m^2"}
        assert f.descriptions() == {"y": "x squared"}
        assert f.code == {"name": "square", "version": "1.0"}
        assert f.provenance == {"job": "job-1", "seed": 3}
    with h5py.File(path) as h5:  # plain HDF5: any tool reads it
        assert h5.attrs["format"] == "twinforge-results"
        assert h5["outputs/y"].attrs["unit"] == "m^2"


def test_merge_keeps_order_and_common_provenance(tmp_path: Path) -> None:
    a, b = write(tmp_path / "a.h5", [1.0]), write(tmp_path / "b.h5", [2.0, 3.0])
    merged = merge_result_files([a, b], tmp_path / "m.h5", provenance={"campaign": "c"})
    with ResultFile(merged) as f:
        np.testing.assert_array_equal(f.inputs()["x"], [1.0, 2.0, 3.0])
        prov = f.provenance
    assert prov["campaign"] == "c"
    assert prov["job"] == "job-1"  # agreed on by both inputs
    assert [r["n_points"] for r in prov["merged_from"]] == [1, 2]


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ResultFileError, match="different lengths"):
        write_results(tmp_path / "x.h5", {"x": np.ones(2)}, {"y": np.ones(3)})
    assert not list(tmp_path.iterdir())  # nothing half written
    path = write(tmp_path / "r.h5", [1.0])
    with pytest.raises(TwinforgeError, match="already exists"):
        write(path, [1.0])
    other = write_results(tmp_path / "o.h5", {"z": np.ones(1)}, {"y": np.ones(1)})
    with pytest.raises(ResultFileError, match=r"inputs \['z'\] differ"):
        merge_result_files([path, other], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(ResultFileError, match="not an HDF5 file"):
        ResultFile(tmp_path / "bad.h5")
    with pytest.raises(ResultFileError, match="file not found"):
        ResultFile(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "plain.h5", "w") as h5:
        h5["x"] = [1]
    with pytest.raises(ResultFileError, match="not a twinforge result file"):
        ResultFile(tmp_path / "plain.h5")
