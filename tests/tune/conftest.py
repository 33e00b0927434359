"""Fixtures of the tuning tests: tiny shower files (synthetic, the 96-voxel "tiny" detector), a
training config of a few steps, and a tune config validated on FPD with small batches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file

TRAIN = {
    "kind": "train",
    "name": "tiny-vae",
    "data": {"files": ["train.h5"], "chunk_events": 500},
    "model": {"family": "vae", "config": {"latent_dim": 4, "hidden": [16]}},
    "optim": {"max_steps": 24, "batch_size": 128, "max_epochs": 2},
    "output": "models/{name}",
}

# FPD with two bootstrap batches at two sizes: about a second on 300 showers
VALIDATION = {
    "distances": {"fpd_min_samples": 100, "fpd_max_samples": 150, "fpd_batches": 2,
                  "fpd_points": 2},
}  # fmt: skip

TUNE = {
    "kind": "tune",
    "study_name": "tiny",
    "train": "train.yaml",
    "space": {
        "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "model.config.latent_dim": {"type": "int", "low": 2, "high": 6},
        "model.config.hidden": {"type": "categorical", "choices": [[16], [32, 16]]},
    },
    "objective": "fpd",
    "reference": "ref.h5",
    "validation": VALIDATION,
    "n_trials": 3,
    "pruner": "none",
    "sampler": {"kind": "tpe", "seed": 1, "startup_trials": 2},
    "tracking": {"enabled": False},
}


@pytest.fixture(scope="session")
def shower_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A training file (1200 showers) and an independent reference (300 showers)."""
    folder = tmp_path_factory.mktemp("tune-data")
    train = write_synthetic_file(
        SyntheticConfig(detector="tiny", n_events=1200, seed=2), folder / "train.h5"
    )
    ref = write_synthetic_file(
        SyntheticConfig(detector="tiny", n_events=300, seed=3), folder / "ref.h5"
    )
    return train, ref


@pytest.fixture
def project(
    tmp_path: Path, shower_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Path]:
    """A project folder (the current directory) with the shower files, train.yaml and a tune
    YAML; ``project(**changes)`` returns the tune YAML's path (changes replace its keys)."""
    train, ref = shower_files
    for source in (train, ref):
        (tmp_path / source.name).symlink_to(source)
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(TRAIN))
    monkeypatch.chdir(tmp_path)

    def make(name: str = "tune.yaml", **changes: Any) -> Path:
        data = {**TUNE, **changes}
        path = tmp_path / name
        kept = {k: v for k, v in data.items() if v is not None}
        path.write_text(yaml.safe_dump(kept, sort_keys=False))
        return path

    return make
