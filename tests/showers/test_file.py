from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from twinforge.detector import Readout, load_detector
from twinforge.errors import ShowerFileError
from twinforge.showers import (
    Conditions,
    ShowerFile,
    ShowerWriter,
    merge_shower_files,
    read_showers,
    write_showers,
)
from twinforge.simulation.synthetic import synthetic_showers

TINY = load_detector("tiny")
READOUT = TINY.binning()


def make(n: int = 50, seed: int = 0) -> tuple[Conditions, np.ndarray]:
    rng = np.random.default_rng(seed)
    cond = Conditions.make(
        np.exp(rng.uniform(np.log(1e3), np.log(6.4e4), n)), 11, rng.uniform(0, 0.1, n), 0.3
    )
    return cond, synthetic_showers(TINY, cond, seed)


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    cond, showers = make()
    path = write_showers(
        tmp_path / "a.h5", READOUT, cond, showers, {"simulator": "test", "seeds": [1, 2]}
    )
    with ShowerFile(path) as f:
        assert f.n_events == 50
        assert f.readout == READOUT
        assert f.provenance == {"simulator": "test", "seeds": [1, 2]}
        assert f.attrs["simulator"] == "test"
        assert f.attrs["format"] == "twinforge-showers"
        back, data = f.read()
    np.testing.assert_array_equal(data, showers)
    np.testing.assert_array_equal(back.energy, cond.energy)
    np.testing.assert_array_equal(back.theta, cond.theta)
    np.testing.assert_array_equal(back.phi, cond.phi)
    np.testing.assert_array_equal(back.pdg, cond.pdg)


def test_calochallenge_compatible_layout(tmp_path: Path, calochallenge_dir: Path) -> None:
    """What the CaloChallenge evaluation code reads: keys, (N, 1) energies, (N, V) float32."""
    readout = Readout.from_xml(calochallenge_dir / "binning_dataset_2.xml")
    siw = load_detector("siw")
    cond = Conditions.make([1e3, 2e4, 6.4e4])
    path = write_showers(tmp_path / "ds2.h5", readout, cond, synthetic_showers(siw, cond, 1))
    with h5py.File(path, "r") as h5:
        assert {"incident_energies", "showers"} <= set(h5.keys())
        assert h5["incident_energies"].shape == (3, 1)
        assert h5["showers"].shape == (3, 6480)
        assert h5["showers"].dtype == np.float32
        assert h5["showers"].chunks is not None
        assert h5["showers"].compression == "gzip"
        assert Readout.from_xml(h5.attrs["binning_xml"]) == readout
        energies = np.asarray(h5["incident_energies"])
        showers = np.asarray(h5["showers"])
    assert energies.min() > 0
    assert np.all(showers >= 0)


def test_plain_calochallenge_file_reads_with_given_binning(tmp_path: Path) -> None:
    cond, showers = make(5)
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as h5:
        h5["incident_energies"] = cond.energy[:, None].astype(np.float32)
        h5["showers"] = showers
    with ShowerFile(path) as f:
        assert f.readout is None
        assert f.provenance == {}
    with ShowerFile(path, READOUT) as f:
        c, _ = f.read()
        assert np.all(c.pdg == 11)  # defaults to the binning's particle
        assert np.all(c.theta == 0)
    wrong = Readout.uniform(2, [0, 1], 2)
    with pytest.raises(ShowerFileError, match="96 voxels per event but the binning has 4"):
        ShowerFile(path, wrong)


def test_streaming_batches_cover_file_in_order(tmp_path: Path) -> None:
    cond, showers = make(103)
    path = write_showers(tmp_path / "a.h5", READOUT, cond, showers)
    with ShowerFile(path) as f:
        parts = list(f.iter_batches(10))
    assert [len(c) for c, _ in parts] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.concatenate([s for _, s in parts]), showers)


def test_append_mode_and_batches(tmp_path: Path) -> None:
    cond, showers = make(30)
    path = tmp_path / "a.h5"
    with ShowerWriter(path, READOUT, {"simulator": "test"}) as w:
        w.append(cond[:10], showers[:10])
        w.append(cond[10:20], showers[10:20])
        assert w.n_events == 20
    with ShowerWriter(path, READOUT, mode="a") as w:
        w.append(cond[20:], showers[20:])
    back, data = read_showers(path)
    np.testing.assert_array_equal(data, showers)
    np.testing.assert_array_equal(back.energy, cond.energy)
    with pytest.raises(ShowerFileError, match="binning mismatch"):
        ShowerWriter(path, Readout.uniform(6, [0, 5, 10, 20, 40], 2), mode="a")


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    cond, showers = make(10)
    path = tmp_path / "a.h5"
    bad = showers.copy()
    bad[3, 7] = np.nan

    def write() -> None:
        with ShowerWriter(path, READOUT) as w:
            w.append(cond, showers)
            w.append(cond, bad)

    with pytest.raises(ShowerFileError):
        write()
    assert list(tmp_path.iterdir()) == []


def test_append_failure_keeps_original_intact(tmp_path: Path) -> None:
    cond, showers = make(10)
    path = write_showers(tmp_path / "a.h5", READOUT, cond, showers)
    before = path.read_bytes()

    def crash() -> None:
        with ShowerWriter(path, READOUT, mode="a") as w:
            w.append(cond, showers)
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        crash()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]


def test_killed_writer_leaves_no_final_file(tmp_path: Path) -> None:
    """SIGKILL mid-write: the final name never appears, only a temporary file may remain."""
    script = f"""
import os, signal, numpy as np
from twinforge.detector import load_detector
from twinforge.showers import Conditions, ShowerWriter
r = load_detector("tiny").binning()
w = ShowerWriter({str(tmp_path / "a.h5")!r}, r)
w.append(Conditions.make([1000.0] * 5), np.ones((5, r.n_voxels), np.float32))
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -9
    assert not (tmp_path / "a.h5").exists()


@pytest.mark.parametrize(
    ("value", "match"),
    [(np.nan, "non-finite"), (np.inf, "non-finite"), (-1.0, "negative voxel energies")],
)
def test_writer_rejects_bad_voxels(tmp_path: Path, value: float, match: str) -> None:
    cond, showers = make(5)
    showers[2, 11] = value
    with pytest.raises(ShowerFileError, match=rf"{match}.*event 2, voxel 11"):
        write_showers(tmp_path / "a.h5", READOUT, cond, showers)
    assert not (tmp_path / "a.h5").exists()


def test_writer_rejects_wrong_shape_and_lengths(tmp_path: Path) -> None:
    cond, showers = make(5)
    with pytest.raises(ShowerFileError, match="97 voxels per event but the binning has 96"):
        write_showers(tmp_path / "a.h5", READOUT, cond, np.zeros((5, 97), np.float32))
    with pytest.raises(ShowerFileError, match="5 showers but 4 conditions"):
        write_showers(tmp_path / "a.h5", READOUT, cond[:4], showers)
    with pytest.raises(ShowerFileError, match="incident energy"):
        Conditions.make([1.0, np.nan])


def test_writer_refuses_to_overwrite(tmp_path: Path) -> None:
    cond, showers = make(5)
    path = write_showers(tmp_path / "a.h5", READOUT, cond, showers)
    with pytest.raises(ShowerFileError, match="already exists"):
        write_showers(path, READOUT, cond, showers)
    write_showers(path, READOUT, cond[:2], showers[:2], overwrite=True)
    assert ShowerFile(path).n_events == 2


def test_unwritable_directory(tmp_path: Path) -> None:
    cond, showers = make(5)
    with pytest.raises(ShowerFileError, match="does not exist"):
        write_showers(tmp_path / "no" / "a.h5", READOUT, cond, showers)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ShowerFileError, match="does not exist"):
        write_showers(a_file / "a.h5", READOUT, cond, showers)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(ShowerFileError, match="not writable"):
            write_showers(ro / "a.h5", READOUT, cond, showers)
    finally:
        ro.chmod(0o700)


# ------------------------------------------------------------------ bad files on read
def _write_raw(path: Path, **datasets: np.ndarray) -> Path:
    with h5py.File(path, "w") as h5:
        for key, value in datasets.items():
            h5[key] = value
        h5.attrs["binning_xml"] = READOUT.to_xml()
    return path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ShowerFileError, match="file not found"):
        ShowerFile(tmp_path / "nope.h5")


def test_truncated_file(tmp_path: Path) -> None:
    cond, showers = make(200)
    path = write_showers(tmp_path / "a.h5", READOUT, cond, showers)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShowerFileError, match="not a readable HDF5 file"):
        ShowerFile(path)


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    path.write_text("hello")
    with pytest.raises(ShowerFileError, match="not a readable HDF5 file"):
        ShowerFile(path)


def test_wrong_key(tmp_path: Path) -> None:
    cond, showers = make(5)
    path = _write_raw(tmp_path / "a.h5", incident_energies=cond.energy[:, None], shower=showers)
    with pytest.raises(ShowerFileError, match=r"missing dataset 'showers' \(found: .*shower\b"):
        ShowerFile(path)


@pytest.mark.parametrize(
    ("datasets", "match"),
    [
        ({"incident_energies": np.ones((5, 1)), "showers": np.ones((5, 4, 24))}, "must be 2-D"),
        ({"incident_energies": np.ones((4, 1)), "showers": np.ones((5, 96))}, r"expected \(5, 1\)"),
        ({"incident_energies": np.ones((5, 1)), "showers": np.ones((5, 96), np.int32)}, "dtype"),
        ({"incident_energies": np.ones((5, 1)), "showers": np.ones((5, 95))}, "binning has 96"),
    ],
)
def test_malformed_datasets(tmp_path: Path, datasets: dict, match: str) -> None:
    path = _write_raw(tmp_path / "a.h5", **datasets)
    with pytest.raises(ShowerFileError, match=match):
        ShowerFile(path)


def test_nan_energy_reported_with_event_index(tmp_path: Path) -> None:
    cond, showers = make(30)
    energies = cond.energy[:, None].copy()
    energies[17] = np.nan
    path = _write_raw(tmp_path / "a.h5", incident_energies=energies, showers=showers)
    with ShowerFile(path) as f, pytest.raises(ShowerFileError, match="event 17 has nan"):
        f.validate(batch_size=8)


def test_negative_voxel_reported_with_global_index(tmp_path: Path) -> None:
    cond, showers = make(30)
    showers[25, 3] = -2.0
    path = _write_raw(tmp_path / "a.h5", incident_energies=cond.energy[:, None], showers=showers)
    with ShowerFile(path) as f:
        f.read(0, 20)  # the bad event is not in this range
        with pytest.raises(ShowerFileError, match="event 25, voxel 3"):
            f.validate(batch_size=8)


def test_binning_mismatch_on_read(tmp_path: Path) -> None:
    cond, showers = make(5)
    path = write_showers(tmp_path / "a.h5", READOUT, cond, showers)
    other = Readout.uniform(6, [0, 5, 10, 20, 40], 4, particle="photon", pid=22)
    assert other == READOUT  # same bins: particle metadata does not matter
    with pytest.raises(ShowerFileError, match="binning mismatch"):
        ShowerFile(path, Readout.uniform(6, [0, 5, 10, 20, 41], 4))


def test_newer_format_version_refused(tmp_path: Path) -> None:
    cond, showers = make(5)
    path = write_showers(tmp_path / "a.h5", READOUT, cond, showers)
    with h5py.File(path, "r+") as h5:
        h5.attrs["format_version"] = "2.0"
    with pytest.raises(ShowerFileError, match=r"format version 2.0 is not readable .* 1.x"):
        ShowerFile(path)


# ------------------------------------------------------------------ merge
def test_merge_shards(tmp_path: Path) -> None:
    parts = []
    for i in range(3):
        cond, showers = make(10 + i, seed=i)
        parts.append((cond, showers))
        write_showers(tmp_path / f"s{i}.h5", READOUT, cond, showers, {"simulator": "t", "seed": i})
    out = merge_shower_files(
        [tmp_path / f"s{i}.h5" for i in range(3)], tmp_path / "m.h5", batch_size=4
    )
    with ShowerFile(out) as f:
        cond, showers = f.read()
        prov = f.provenance
    np.testing.assert_array_equal(showers, np.concatenate([s for _, s in parts]))
    np.testing.assert_array_equal(cond.energy, np.concatenate([c.energy for c, _ in parts]))
    assert prov["simulator"] == "t"
    assert "seed" not in prov  # differs between shards: kept per shard only
    assert [r["n_events"] for r in prov["merged_from"]] == [10, 11, 12]
    json.dumps(prov)


def test_merge_refuses_mixed_binnings(tmp_path: Path) -> None:
    cond, showers = make(5)
    write_showers(tmp_path / "a.h5", READOUT, cond, showers)
    other = Readout.uniform(6, [0, 5, 10, 20, 40], 2)
    write_showers(tmp_path / "b.h5", other, cond, showers[:, :48])
    with pytest.raises(ShowerFileError, match="binning mismatch"):
        merge_shower_files([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_dataset1_binning_with_empty_layers_round_trip(
    tmp_path: Path, calochallenge_dir: Path
) -> None:
    readout = Readout.from_xml(calochallenge_dir / "binning_dataset_1_photons.xml")
    rng = np.random.default_rng(0)
    showers = rng.exponential(1.0, (20, readout.n_voxels)).astype(np.float32)
    cond = Conditions.make(np.full(20, 2.56e5), 22)
    path = write_showers(tmp_path / "a.h5", readout, cond[:12], showers[:12])
    with ShowerWriter(path, readout, {"step": 2}, mode="a") as w:
        w.append(cond[12:], showers[12:])
    with ShowerFile(path) as f:
        assert f.readout == readout
        assert not f.readout.is_regular
        assert f.provenance["appended"] == [{"step": 2}]
        back, data = f.read()
    np.testing.assert_array_equal(data, showers)
    assert np.all(back.pdg == 22)
    merged = merge_shower_files([path], tmp_path / "m.h5")
    assert ShowerFile(merged).n_events == 20


def test_append_to_plain_calochallenge_file_is_refused(tmp_path: Path) -> None:
    cond, showers = make(5)
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as h5:
        h5["incident_energies"] = cond.energy[:, None]
        h5["showers"] = showers
    with pytest.raises(ShowerFileError, match="cannot append: not a resizable twinforge"):
        ShowerWriter(path, READOUT, mode="a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.h5"]
    merged = merge_shower_files([path], tmp_path / "m.h5", readout=READOUT)
    assert ShowerFile(merged).readout == READOUT


def test_bad_batch_size(tmp_path: Path) -> None:
    cond, showers = make(5)
    path = write_showers(tmp_path / "a.h5", READOUT, cond, showers)
    with ShowerFile(path) as f, pytest.raises(ShowerFileError, match="batch size"):
        next(f.iter_batches(0))
