"""Shared fixtures: official CaloChallenge binning files, small detectors, synthetic files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TWINFORGE_SHARED", REPO.parent / "shared"))
CALOCHALLENGE = SHARED / "calochallenge"

# official binning files and their voxel counts (CaloChallenge 2022)
BINNINGS = {
    "binning_dataset_1_photons.xml": 368,
    "binning_dataset_1_pions.xml": 533,
    "binning_dataset_2.xml": 6480,
    "binning_dataset_3.xml": 40500,
}


@pytest.fixture(scope="session")
def calochallenge_dir() -> Path:
    if not (CALOCHALLENGE / "binning_dataset_2.xml").exists():
        pytest.skip(f"CaloChallenge binning files not found under {CALOCHALLENGE}")
    return CALOCHALLENGE


@pytest.fixture(autouse=True)
def _isolated_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch a user's catalogue: every test gets its own default location."""
    monkeypatch.setenv("TWINFORGE_CATALOG", str(tmp_path / "catalog.sqlite"))
    # the validation floor cache (and matplotlib's): beside the test's folder, not in it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path.parent / f"{tmp_path.name}-xdg-cache"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks: torch intra-op threads only add contention on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
