"""``twinforge simulate``, ``convert`` and ``campaign`` with real Geant4 (tiny detector)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from tests.cli.test_cli import assert_user_error
from tests.conftest import Run
from twinforge.showers import ShowerFile, read_showers


def test_simulate_root_convert_round_trip(twinforge: Run, tmp_path: Path) -> None:
    result = twinforge(
        "simulate", "--detector", "tiny", "--particle", "e-", "--energy", "1GeV:3GeV",
        "--n", "6", "--seed", "5", "-o", "a.h5", "--root", "a.root",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = twinforge("convert", "a.root", "-o", "b.h5", "--detector", "tiny")
    assert result.returncode == 0, result.stderr
    cond_a, a = read_showers(tmp_path / "a.h5")
    cond_b, b = read_showers(tmp_path / "b.h5")
    np.testing.assert_array_equal(a, b)  # Geant4 -> ROOT -> HDF5 keeps every voxel
    np.testing.assert_array_equal(cond_a.energy, cond_b.energy)
    assert 1e3 <= cond_a.energy.min() <= cond_a.energy.max() <= 3e3
    with ShowerFile(tmp_path / "b.h5") as f:
        assert f.provenance["physics"] == "twinforge-datafree-em"
        assert f.provenance["converted_from"][0]["sha256"]
    # same seed, same showers (batched differently: without --root it runs in batches)
    args = ["simulate", "--detector", "tiny", "--energy", "1GeV:3GeV", "--n", "6", "--seed", "5"]
    assert twinforge("-q", *args, "-o", "c.h5").returncode == 0
    np.testing.assert_array_equal(read_showers(tmp_path / "c.h5")[1], a)


def test_simulate_config_file_and_errors(twinforge: Run, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        yaml.safe_dump(
            {
                "kind": "simulate",
                "detector": "tiny",
                "n_events": 3,
                "output": "s.h5",
                "space": {"particles": ["gamma"], "energy": {"values": ["2GeV"]}},
            }
        )
    )
    result = twinforge("simulate", "--config", "s.yaml")
    assert result.returncode == 0, result.stderr
    cond, _ = read_showers(tmp_path / "s.h5")
    assert set(cond.pdg.tolist()) == {22}
    assert_user_error(
        twinforge("simulate", "--detector", "tiny", "--particle", "pi+", "--n", "2", "-o", "p.h5"),
        "hadron",
    )
    assert not (tmp_path / "p.h5").exists()
    assert_user_error(twinforge("simulate", "--energy", "10 parsec", "-o", "x.h5"), "energy")
    assert_user_error(twinforge("simulate", "--n", "2"), "--output")
    assert_user_error(
        twinforge("convert", "missing.root", "-o", "x.h5"), "missing.root", "not found"
    )


def test_geant4_campaign_on_dask(twinforge: Run, tmp_path: Path) -> None:
    cfg = {
        "kind": "campaign", "name": "g4", "detector": "tiny", "simulator": "geant4",
        "total_events": 6, "events_per_job": 2,
        "space": {"particles": ["e-"], "energy": {"min": "1GeV", "max": "2GeV"}},
        "executor": {"kind": "dask", "workers": 2},
    }  # fmt: skip

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    result = twinforge("campaign", "run", "c.yaml")
    assert result.returncode == 0, result.stderr
    assert "3/3 jobs done" in result.stdout
    assert twinforge("campaign", "merge", "c.yaml").returncode == 0
    with ShowerFile(tmp_path / "campaigns" / "g4" / "g4.h5") as f:
        assert f.n_events == 6
        assert f.provenance["physics"] == "twinforge-datafree-em"
        assert f.provenance["simulator"].lower().startswith("geant4")
    status = twinforge("campaign", "status", "g4")
    assert "3 done" in status.stdout
    export = twinforge("catalog", "export", "g4", "crate")
    assert export.returncode == 0, export.stderr
