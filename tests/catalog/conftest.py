"""Fixtures of the catalogue tests: a fresh catalogue and small files to register."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from twinforge.catalog import ENV_VAR, Catalog

GEANT4_PROVENANCE = {
    "simulator": {"name": "Geant4", "version": "11.2.1"},
    "physics_list": "FTFP_BERT_EMZ",
    "detector": "siw",
    "parameters": {"particle": "e-", "energy_min_MeV": 1000.0, "energy_max_MeV": 64000.0},
    "seeds": [11, 12],
    "software": {"geant4-pybind": "0.1.3"},
    "start_time": "2025-01-02T03:04:05+00:00",
    "end_time": "2025-01-02T04:05:06+00:00",
}


@pytest.fixture(autouse=True)
def _no_catalog_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the user's TWINFORGE_CATALOG."""
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db" / "catalog.sqlite"


@pytest.fixture
def cat(db_path: Path) -> Iterator[Catalog]:
    with Catalog.open(db_path) as catalog:
        yield catalog


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a small file (any content: the catalogue never parses it) and return its path."""

    def make(name: str, content: bytes | None = None) -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if content is not None else f"showers of {name}".encode())
        return path

    return make
