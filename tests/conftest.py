"""Shared fixtures: official CaloChallenge binning files, small detectors, synthetic files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# MLflow 3 reports usage to its makers when imported unless told not to; tests import it
# directly too (twinforge.tracking switches it off for the library)
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# One torch (OpenMP) thread per test process and its subprocesses, before torch is imported:
# the networks here are tiny, and intra-op threads spinning against cores that other processes
# hold made tests up to 30x slower under load. Tests of threading ask for threads explicitly.
os.environ.setdefault("OMP_NUM_THREADS", "1")

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
    # no MLflow store per command (seconds each); tests of tracking switch it back on
    monkeypatch.setenv("TWINFORGE_NO_TRACKING", "1")


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def twinforge(tmp_path: Path) -> Run:
    """Run the real console entry point in a subprocess (exit codes, stderr, no traceback)."""

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        return subprocess.run(
            [sys.executable, "-c", "from twinforge.cli import main; main()", *args],
            capture_output=True,
            text=True,
            cwd=cwd or tmp_path,
            env=env,
            timeout=120,
            check=False,
        )

    return run
