"""Data-set detection, stub environment and physics selection (no Geant4 started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinforge.errors import SimulationError
from twinforge.simulation.geant4.environment import (
    DataSets,
    detect_datasets,
    prepare_environment,
)
from twinforge.simulation.geant4.physics import DATA_FREE_EM, select_physics


def _fake_datasets(root: Path) -> None:
    (root / "G4EMLOW8.6.1" / "brem_SB").mkdir(parents=True)
    (root / "G4ENSDFSTATE3.0").mkdir()
    (root / "G4ENSDFSTATE3.0" / "ENSDFSTATE.dat").write_text("data\n")
    for name in ("PhotonEvaporation6.1", "G4PARTICLEXS4.1"):
        (root / name).mkdir()
        (root / name / "file").write_text("x")


def test_real_datasets_are_detected_and_exported(tmp_path: Path) -> None:
    _fake_datasets(tmp_path)
    env = {"GEANT4_DATA_DIR": str(tmp_path)}
    sets = prepare_environment(env)
    assert sets.available
    assert env["G4LEDATA"] == str(tmp_path / "G4EMLOW8.6.1")
    assert env["G4PARTICLEXSDATA"] == str(tmp_path / "G4PARTICLEXS4.1")
    assert "G4EMLOW8.6.1" in sets.summary()


def test_explicit_variable_wins(tmp_path: Path) -> None:
    _fake_datasets(tmp_path / "a")
    other = tmp_path / "b" / "G4EMLOW9.0"
    (other / "brem_SB").mkdir(parents=True)
    env = {"GEANT4_DATA_DIR": str(tmp_path / "a"), "G4LEDATA": str(other)}
    assert detect_datasets(env).found["G4LEDATA"] == other


def test_without_datasets_stubs_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINFORGE_CACHE_DIR", str(tmp_path / "cache"))
    env: dict[str, str] = {}
    sets = prepare_environment(env)
    assert not sets.available
    assert "G4LEDATA" in sets.missing
    assert Path(env["GEANT4_DATA_DIR"]).is_dir()
    state = Path(env["G4ENSDFSTATEDATA"]) / "ENSDFSTATE.dat"
    assert state.is_file()
    assert state.stat().st_size == 0
    assert Path(env["G4LEVELGAMMADATA"]).is_dir()
    assert Path(env["G4LEDATA"]).is_dir()
    # idempotent, and stubs are never taken for real data sets
    assert prepare_environment(env) == sets
    assert not detect_datasets(env).available


def test_incomplete_datasets_are_not_available(tmp_path: Path) -> None:
    (tmp_path / "G4EMLOW8.6.1" / "brem_SB").mkdir(parents=True)
    sets = detect_datasets({"GEANT4_DATA_DIR": str(tmp_path)})
    assert not sets.available
    assert "G4ENSDFSTATEDATA" in sets.missing


def test_physics_selection() -> None:
    none, some = DataSets(False, missing=("G4LEDATA",)), DataSets(True)
    assert select_physics("auto", none).name == DATA_FREE_EM
    assert select_physics("auto", none).data_free
    assert select_physics("auto", some).name == "FTFP_BERT"
    assert select_physics("QGSP_BIC", some).name == "QGSP_BIC"
    assert select_physics("datafree-em", some).data_free
    with pytest.raises(SimulationError, match="needs the Geant4 data sets"):
        select_physics("FTFP_BERT", none)


def test_data_free_physics_refuses_hadrons() -> None:
    physics = select_physics("auto", DataSets(False))
    for pdg in (11, -11, 22):
        physics.check_particle(pdg)
    with pytest.raises(SimulationError, match="PDG id 211"):
        physics.check_particle(211)
    select_physics("FTFP_BERT", DataSets(True)).check_particle(211)
