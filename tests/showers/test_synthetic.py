from __future__ import annotations

from pathlib import Path

import numpy as np

from twinforge.detector import load_detector
from twinforge.showers import ShowerFile
from twinforge.simulation.synthetic import SyntheticConfig, synthetic_showers, write_synthetic_file


def test_deterministic_and_physical() -> None:
    cfg = SyntheticConfig(detector="siw", n_events=200, energy_min="1GeV", energy_max="64GeV")
    cond = cfg.conditions()
    det = load_detector("siw")
    a = synthetic_showers(det, cond, seed=3)
    b = synthetic_showers(det, cond, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, synthetic_showers(det, cond, seed=4))
    assert a.dtype == np.float32
    assert a.shape == (200, 6480)
    assert np.all(a >= 0)
    nonzero = a[a > 0]
    assert nonzero.min() >= det.readout.threshold
    # deeper showers for higher energies, as in real EM showers
    layers = det.binning().layer_energies(a)
    depth = (layers * np.arange(45)).sum(1) / layers.sum(1)
    assert np.corrcoef(np.log(cond.energy), depth)[0, 1] > 0.5


def test_write_synthetic_file_marks_provenance(tmp_path: Path) -> None:
    cfg = SyntheticConfig(detector="tiny", n_events=25, seed=1)
    path = write_synthetic_file(cfg, tmp_path / "s.h5", batch_size=10)
    with ShowerFile(path) as f:
        assert f.n_events == 25
        assert f.provenance["simulator"] == "synthetic-test"
        assert "not a physics simulation" in f.provenance["physics"]
        f.validate()
