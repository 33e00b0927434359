"""Observables: hand-computed values, vectorised vs naive loops, irregular (dataset-1) readouts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twinforge.detector import LayerBinning, Readout, load_detector
from twinforge.errors import TwinforgeError
from twinforge.validation import ValidationInputError, calochallenge_dataset, compute_observables
from twinforge.validation.observables import energy_label, radial_weights, voxel_spectrum

# 2 layers x 4 alpha x 2 r; alpha centres -3pi/4, -pi/4, pi/4, 3pi/4; r centres 0.5, 1.5 mm
SMALL = Readout.uniform(2, [0.0, 1.0, 2.0], 4)


def _voxel(layer: int, alpha: int, r: int) -> int:
    return layer * 8 + alpha * 2 + r


def test_one_shower_by_hand() -> None:
    shower = np.zeros((1, SMALL.n_voxels), dtype=np.float32)
    shower[0, _voxel(0, 0, 0)] = 1.0  # x = 0.5 cos(-3pi/4) = -0.3536, y = -0.3536
    shower[0, _voxel(0, 2, 1)] = 3.0  # x = 1.5 cos(pi/4) = 1.0607, y = 1.0607
    obs = compute_observables(shower, [8.0], SMALL)

    c = 1 / math.sqrt(2)
    x = np.array([-0.5 * c, 1.5 * c])
    w = np.array([1.0, 3.0])
    mean = np.sum(w * x) / w.sum()
    std = math.sqrt(np.sum(w * (x - mean) ** 2) / w.sum())
    assert obs.e_ratio[0] == pytest.approx(4.0 / 8.0)
    np.testing.assert_allclose(obs.layer_energy[0], [4.0, 0.0])
    assert obs.centre_x[0, 0] == pytest.approx(mean)
    assert obs.centre_y[0, 0] == pytest.approx(mean)  # same y as x for these two voxels
    assert obs.width_x[0, 0] == pytest.approx(std)
    assert obs.width_y[0, 0] == pytest.approx(std)
    np.testing.assert_allclose(obs.sparsity[0], [2 / 8, 0.0])
    np.testing.assert_allclose(obs.radial[0], [1.0, 3.0])
    np.testing.assert_allclose(obs.radial_edges, [0.0, 1.0, 2.0])
    # the second layer is empty: centre and width undefined
    assert np.isnan(obs.centre_x[0, 1])
    assert np.isnan(obs.width_y[0, 1])


def test_single_voxel_has_zero_width_and_its_centre() -> None:
    shower = np.zeros((2, SMALL.n_voxels), dtype=np.float32)
    shower[0, _voxel(1, 3, 1)] = 2.5  # alpha 3pi/4, r 1.5: x = -1.0607, y = 1.0607
    obs = compute_observables(shower, [1.0, 1.0], SMALL)
    assert obs.centre_x[0, 1] == pytest.approx(-1.5 / math.sqrt(2))
    assert obs.centre_y[0, 1] == pytest.approx(1.5 / math.sqrt(2))
    assert obs.width_x[0, 1] == pytest.approx(0.0, abs=1e-9)
    # second shower is all zero: defined ratios, undefined centres, no crash
    assert obs.e_ratio[1] == 0.0
    assert np.all(np.isnan(obs.centre_x[1]))
    assert np.all(obs.sparsity[1] == 0.0)
    assert np.all(np.isfinite(obs.high_level_matrix()))


def _naive(showers: np.ndarray, energy: np.ndarray, readout: Readout) -> dict[str, np.ndarray]:
    """Loop over showers and layers: the definition, slowly."""
    centres = readout.voxel_centres()
    out: dict[str, list[list[float]]] = {k: [] for k in ("cx", "wy", "sp", "el")}
    for s in showers:
        rows: dict[str, list[float]] = {k: [] for k in out}
        for k in range(readout.n_layers):
            sel = centres.layer == k
            e = s[sel].astype(np.float64)
            rows["el"].append(e.sum())
            rows["sp"].append(np.mean(e > 0))
            if e.sum() > 0:
                cx = np.sum(e * centres.x[sel]) / e.sum()
                cy = np.sum(e * centres.y[sel]) / e.sum()
                rows["cx"].append(cx)
                rows["wy"].append(math.sqrt(np.sum(e * (centres.y[sel] - cy) ** 2) / e.sum()))
            else:
                rows["cx"].append(math.nan)
                rows["wy"].append(math.nan)
        for key in out:
            out[key].append(rows[key])
    return {k: np.array(v) for k, v in out.items()}


def test_vectorised_matches_naive_loop() -> None:
    readout = load_detector("tiny").binning()
    rng = np.random.default_rng(3)
    showers = rng.gamma(0.5, 2.0, size=(40, readout.n_voxels)).astype(np.float32)
    showers[rng.random(showers.shape) < 0.4] = 0.0
    showers[5, :16] = 0.0  # an empty first layer
    energy = rng.uniform(100, 1000, 40)
    obs = compute_observables(showers, energy, readout)
    ref = _naive(showers, energy, readout)
    np.testing.assert_allclose(obs.layer_energy, ref["el"], rtol=1e-6)
    np.testing.assert_allclose(obs.centre_x, ref["cx"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(obs.width_y, ref["wy"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(obs.sparsity, ref["sp"])
    np.testing.assert_allclose(obs.e_ratio, showers.sum(axis=1) / energy, rtol=1e-6)
    np.testing.assert_allclose(obs.radial.sum(axis=1), showers.sum(axis=1), rtol=1e-6)


def test_high_level_matrix_follows_calochallenge() -> None:
    rng = np.random.default_rng(0)
    showers = rng.exponential(1.0, size=(5, SMALL.n_voxels)).astype(np.float32)
    obs = compute_observables(showers, np.full(5, 1000.0), SMALL)
    showers[0, :8] = 0.0  # an empty layer: its centres and widths are 0, as in CaloChallenge
    obs = compute_observables(showers, np.full(5, 1000.0), SMALL)
    hlf = obs.high_level_matrix()
    # evaluate.py prepare_high_data_for_classifier: log10 E_inc, log10 E_layer, EC_eta, EC_phi,
    # width_eta, width_phi, log10 E_tot, sparsity, EC_r, width_r
    assert hlf.shape == (5, 2 + 4 * 2 + 4 * 2)
    np.testing.assert_allclose(hlf[:, 0], 3.0)
    np.testing.assert_allclose(hlf[:, 1:3], np.log10(obs.layer_energy + 1e-8))
    np.testing.assert_allclose(hlf[:, 3:5], np.nan_to_num(obs.centre_x / 100))
    np.testing.assert_allclose(hlf[:, 9:11], np.nan_to_num(obs.width_y / 100))
    np.testing.assert_allclose(hlf[:, 11], np.log10(showers.sum(axis=1) + 1e-8), rtol=1e-6)
    np.testing.assert_allclose(hlf[:, 12:14], 1 - obs.sparsity)  # CaloChallenge's sparsity
    np.testing.assert_allclose(hlf[:, 14:16], np.nan_to_num(obs.centre_r / 100))
    np.testing.assert_allclose(hlf[:, 16:18], np.nan_to_num(obs.width_r / 100))
    assert np.all(hlf[0, [3, 5, 7, 9, 14, 16]] == 0.0)  # the empty layer 0 of shower 0


def test_radial_centre_and_width_by_hand() -> None:
    shower = np.zeros((1, SMALL.n_voxels), dtype=np.float32)
    shower[0, _voxel(1, 0, 0)] = 1.0  # r = 0.5 mm
    shower[0, _voxel(1, 3, 1)] = 3.0  # r = 1.5 mm
    obs = compute_observables(shower, [8.0], SMALL)
    assert obs.centre_r[0, 1] == pytest.approx(1.25)  # (0.5 + 4.5) / 4
    # sqrt((0.25 + 6.75) / 4 - 1.25^2) = sqrt(0.1875)
    assert obs.width_r[0, 1] == pytest.approx(math.sqrt(0.1875))
    assert np.isnan(obs.centre_r[0, 0])


def test_dataset2_has_the_362_challenge_features(calochallenge_dir) -> None:
    readout = Readout.from_xml(calochallenge_dir / "binning_dataset_2.xml")
    showers = np.ones((2, readout.n_voxels), dtype=np.float32)
    assert compute_observables(showers, [1e3, 1e4], readout).high_level_matrix().shape == (2, 362)


def test_layer_with_one_alpha_bin_has_no_centre() -> None:
    readout = Readout((LayerBinning([0.0, 1.0, 3.0], 1), LayerBinning([0.0, 2.0], 2)))
    showers = np.ones((3, readout.n_voxels), dtype=np.float32)
    obs = compute_observables(showers, np.ones(3), readout)
    assert np.all(np.isnan(obs.centre_x[:, 0]))
    assert np.all(np.isfinite(obs.centre_x[:, 1]))
    assert obs.high_level_matrix().shape == (3, 2 + 4 * 2 + 4 * 1)


def test_irregular_dataset1_readout(calochallenge_dir) -> None:
    readout = Readout.from_xml(calochallenge_dir / "binning_dataset_1_pions.xml")
    rng = np.random.default_rng(1)
    showers = rng.exponential(5.0, size=(20, readout.n_voxels)).astype(np.float32)
    showers[rng.random(showers.shape) < 0.5] = 0.0
    obs = compute_observables(showers, np.full(20, 2.0**16), readout)
    assert obs.layer_energy.shape == (20, 24)
    n_vox = readout.voxels_per_layer
    # layers without voxels: zero energy, undefined sparsity and centre
    assert np.all(obs.layer_energy[:, n_vox == 0] == 0)
    assert np.all(np.isnan(obs.sparsity[:, n_vox == 0]))
    assert np.all(np.isnan(obs.centre_x[:, n_vox == 0]))
    # radial bins: the union of all r edges; energy is conserved
    union = np.unique(np.concatenate([layer.r_edges for layer in readout.layers]))
    np.testing.assert_allclose(obs.radial_edges, union)
    np.testing.assert_allclose(obs.radial.sum(axis=1), showers.sum(axis=1), rtol=1e-5)
    n_alpha_binned = sum(1 for layer in readout.layers if layer.n_alpha > 1 and layer.n_r > 0)
    n_layers = int(np.sum(n_vox > 0))
    assert obs.high_level_matrix().shape == (20, 2 + 4 * n_layers + 4 * n_alpha_binned)


def test_radial_weights_split_by_area() -> None:
    # layer 0 bins [0, 2); layer 1 bins [0, 1), [1, 2): union [0, 1), [1, 2)
    readout = Readout((LayerBinning([0.0, 2.0], 1), LayerBinning([0.0, 1.0, 2.0], 1)))
    weights, edges = radial_weights(readout)
    np.testing.assert_allclose(edges, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(weights, [[0.25, 0.75], [1.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("binning_dataset_1_photons.xml", "1-photons"),
        ("binning_dataset_1_pions.xml", "1-pions"),
        ("binning_dataset_2.xml", "2"),
        ("binning_dataset_3.xml", "3"),
    ],
)
def test_calochallenge_dataset_detection(calochallenge_dir, name: str, expected: str) -> None:
    assert calochallenge_dataset(Readout.from_xml(calochallenge_dir / name)) == expected


def test_calochallenge_dataset_none_for_other_readouts() -> None:
    assert calochallenge_dataset(load_detector("siw").binning()) == "2"
    assert calochallenge_dataset(load_detector("tiny").binning()) is None
    wider = Readout.uniform(45, np.arange(10) * 5.0, 16)  # ds2 structure, other r edges
    assert calochallenge_dataset(wider) is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda s, e: (s.astype(np.float32) * np.nan, e), "non-finite voxel"),
        (lambda s, e: (-s, e), "negative voxel"),
        (lambda s, e: (s, -e), "incident energies"),
        (lambda s, e: (s[:, :-1], e), "shape"),
        (lambda s, e: (s, e[:-1]), "incident energies have shape"),
        (lambda s, e: (s[:0], e[:0]), "no showers"),
    ],
)
def test_bad_input_is_a_clear_error(change, match: str) -> None:
    showers = np.ones((3, SMALL.n_voxels), dtype=np.float32)
    bad_s, bad_e = change(showers, np.ones(3))
    with pytest.raises(ValidationInputError, match=match) as info:
        compute_observables(bad_s, bad_e, SMALL)
    assert isinstance(info.value, TwinforgeError)


def test_voxel_spectrum_and_labels() -> None:
    showers = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(voxel_spectrum(showers), [1.5, 2.0])
    assert energy_label(1000.0, 2000.0) == "E 1-2 GeV"
    assert energy_label(256.0, 512.0) == "E 256-512 MeV"
    assert energy_label(1e6, 4.194304e6) == "E 1-4.19 TeV"


def test_subset_keeps_readout_fields() -> None:
    showers = np.ones((4, SMALL.n_voxels), dtype=np.float32)
    obs = compute_observables(showers, np.arange(1, 5, dtype=float), SMALL)
    sub = obs.subset(np.array([True, False, True, False]))
    assert sub.n_showers == 2
    assert sub.n_layers == 2
    np.testing.assert_array_equal(sub.energy, [1.0, 3.0])
    np.testing.assert_array_equal(sub.radial_edges, obs.radial_edges)
