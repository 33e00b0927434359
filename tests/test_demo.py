from __future__ import annotations

import json
from pathlib import Path

import pytest

from twinforge.catalog import Catalog
from twinforge.demo import run_demo
from twinforge.errors import TwinforgeError
from twinforge.showers import ShowerFile


def test_demo_runs_the_chain(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", n_events=20)
    assert set(result.steps) >= {"register in the catalogue", "verify checksums", "export RO-Crate"}
    with ShowerFile(result.shower_file) as f:
        assert f.n_events == 20
        f.validate()
    with Catalog.open(result.catalog, create=False) as cat:
        dataset = cat.get(result.dataset_id)
        assert dataset.n_events == 20
        assert all(r.ok for r in cat.verify(result.dataset_id))
    meta = json.loads((result.crate / "ro-crate-metadata.json").read_text())
    types = {str(e.get("@type")) for e in meta["@graph"]}
    assert "CreateAction" in types
    assert any("Person" in t for t in types)  # creators are always credited
    # a second run starts afresh in the same directory
    again = run_demo(tmp_path / "demo", n_events=10)
    assert again.dataset_id == "ds-1"


def test_demo_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(TwinforgeError, match="not a demo directory"):
        run_demo(tmp_path, n_events=10)
    assert (tmp_path / "mine.txt").read_text() == "precious"
