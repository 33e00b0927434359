from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from twinforge.catalog import Catalog
from twinforge.demo import run_demo
from twinforge.errors import TwinforgeError
from twinforge.showers import ShowerFile

QUICK = {"simulator": "synthetic-test", "detector": "tiny", "executor": {"kind": "local"}}


def test_demo_runs_the_chain(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", n_events=40, overrides=QUICK)
    assert set(result.steps) >= {"verify checksums", "export RO-Crate"}
    with ShowerFile(result.shower_file) as f:
        assert f.n_events == 40
        f.validate()
    with Catalog.open(result.catalog, create=False) as cat:
        dataset = cat.get(result.dataset_id)
        assert dataset.n_events == 40
        assert all(r.ok for r in cat.verify(result.dataset_id))
        assert cat.find("demo-siw-electrons", "campaigns") is not None
    meta = json.loads((result.crate / "ro-crate-metadata.json").read_text())
    types = {str(e.get("@type")) for e in meta["@graph"]}
    assert "CreateAction" in types
    assert any("Person" in t for t in types)  # creators are always credited
    assert set(result.figures["visible_fraction"]) == {"1 GeV", "2 GeV", "5 GeV", "10 GeV"}
    assert any("synthetic" in note for note in result.notes)
    again = run_demo(tmp_path / "demo", n_events=8, overrides=QUICK)  # starts afresh
    assert again.dataset_id == "ds-1"


def test_demo_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(TwinforgeError, match="not a demo directory"):
        run_demo(tmp_path, n_events=10, overrides=QUICK)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_demo_cli_with_real_geant4(tmp_path: Path) -> None:
    """The real chain (Geant4 on Dask) with a handful of showers."""
    proc = subprocess.run(
        [sys.executable, "-c", "from twinforge.cli import main; main()",
         "demo", "--workdir", str(tmp_path / "d"), "--n", "8"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "twinforge-datafree-em" in proc.stdout
    assert "E_Si / E_inc" in proc.stdout
    with ShowerFile(
        tmp_path / "d" / "campaigns" / "demo-siw-electrons" / "demo-siw-electrons.h5"
    ) as f:
        assert f.n_events == 8
        assert f.n_voxels == 6480
        assert f.provenance["physics"] == "twinforge-datafree-em"
