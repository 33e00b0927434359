"""Voxel binning of deposits (pure NumPy, no Geant4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twinforge.detector import LayerBinning, Readout, load_detector
from twinforge.simulation.geant4.geometry import physical_layers, replica_layout, voxel_lut
from twinforge.simulation.geant4.scoring import (
    incident_frame,
    voxels_from_scorer,
    voxels_from_steps,
)


@pytest.mark.parametrize(("theta", "phi"), [(0.0, 0.0), (0.3, 1.0), (1.2, -2.5)])
def test_incident_frame_is_a_rotation_onto_the_direction(theta: float, phi: float) -> None:
    rot = incident_frame(theta, phi)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    direction = [math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), math.cos(theta)]
    np.testing.assert_allclose(rot[:, 2], direction, atol=1e-12)
    # a point on the axis has no transverse offset
    np.testing.assert_allclose((5.0 * np.array(direction)) @ rot, [0, 0, 5.0], atol=1e-12)


def test_normal_incidence_frame_is_identity() -> None:
    np.testing.assert_allclose(incident_frame(0.0, 1.3), np.eye(3), atol=1e-12)


def test_physical_layers_of_siw() -> None:
    det = load_detector("siw")
    z, readout_layer = physical_layers(det)
    assert z.shape == (90, 2)
    np.testing.assert_allclose(z[0], [1.4, 1.7])
    np.testing.assert_allclose(z[-1, 1], 90 * 1.7)
    assert readout_layer.tolist() == [i // 2 for i in range(90)]
    # consistent with the detector's readout z edges
    np.testing.assert_allclose(det.z_bin_edges()[:, 0], z[::2, 0])
    np.testing.assert_allclose(det.z_bin_edges()[:, 1], z[1::2, 1])


def test_steps_land_in_the_right_voxels() -> None:
    det = load_detector("tiny")  # 6 z bins (2 layers each) x 4 alpha x 4 r; edges 0,5,10,20,40
    readout = det.binning()
    z, readout_layer = physical_layers(det)
    mid = z.mean(axis=1)
    points = np.array(
        [
            [2.0, 0.0, mid[0]],  # layer 0 -> z bin 0, r bin 0, alpha just above 0 -> bin 2
            [0.0, -7.0, mid[3]],  # layer 3 -> z bin 1, r bin 1, alpha -pi/2 -> bin 1
            [-15.0, 1e-3, mid[11]],  # z bin 5, r bin 2, alpha ~ pi -> bin 3
            [50.0, 0.0, mid[4]],  # beyond the last r edge: not recorded
            [1.0, 1.0, 0.5 * (z[0, 1] + z[1, 0])],  # in the absorber: not recorded
        ]
    )
    edep = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out = voxels_from_steps(
        points,
        edep,
        readout=readout,
        sensitive_z=z,
        readout_layer=readout_layer,
        entry=(0.0, 0.0),
        theta=0.0,
        phi=0.0,
    )
    expected = np.zeros(readout.n_voxels)
    expected[0 * 16 + 2 * 4 + 0] = 1.0
    expected[1 * 16 + 1 * 4 + 1] = 2.0
    expected[5 * 16 + 3 * 4 + 2] = 3.0
    np.testing.assert_array_equal(out, expected)


def test_steps_use_the_entry_point_and_direction() -> None:
    det = load_detector("tiny")
    readout = det.binning()
    z, readout_layer = physical_layers(det)
    theta, phi = 0.4, 0.7
    u = np.array(
        [math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), math.cos(theta)]
    )
    entry = (12.0, -3.0)
    depth = z[6].mean()
    on_axis = np.array([entry[0], entry[1], 0.0]) + u * depth / u[2]
    out = voxels_from_steps(
        on_axis[None, :],
        np.array([1.0]),
        readout=readout,
        sensitive_z=z,
        readout_layer=readout_layer,
        entry=entry,
        theta=theta,
        phi=phi,
    )
    (index,) = np.flatnonzero(out)
    assert index // 16 == 3
    assert index % 4 == 0


def test_scorer_indices_map_to_voxels() -> None:
    det = load_detector("siw")
    readout = det.binning()
    _, readout_layer = physical_layers(det)
    lut, n_alpha, n_r = voxel_lut(readout, readout_layer)
    assert (n_alpha, n_r) == (16, 9)
    # physical layers 6 and 7 share z bin 3
    keys = [6 * 144 + 5 * 9 + 2, 7 * 144 + 5 * 9 + 2, 0]
    out, unmapped = voxels_from_scorer(keys, [1.0, 0.5, 2.0], lut, readout.n_voxels)
    assert unmapped == 0.0
    assert out[3 * 144 + 5 * 9 + 2] == 1.5
    assert out[0] == 2.0
    assert out.sum() == 3.5


def test_lut_of_a_per_layer_readout() -> None:
    readout = Readout(
        (
            LayerBinning(np.array([0.0])),
            LayerBinning(np.array([0.0, 1.0, 2.0]), 3),
            LayerBinning(np.array([0.0, 5.0]), 1),
        )
    )
    lut, n_alpha, n_r = voxel_lut(readout, np.array([0, 1, 1, 2]))
    assert (n_alpha, n_r) == (3, 2)
    grid = lut.reshape(4, 3, 2)
    assert (grid[0] == -1).all()
    assert grid[1].tolist() == [[0, 1], [2, 3], [4, 5]] == grid[2].tolist()
    assert grid[3].tolist() == [[6, -1], [-1, -1], [-1, -1]]


def test_replica_layout_needs_equal_r_bins_and_alpha_bins() -> None:
    assert replica_layout(load_detector("siw").binning())  # 9 r bins of 4.65 mm, 16 alpha
    assert not replica_layout(load_detector("tiny").binning())  # r bins of 5, 5, 10, 20 mm
    empty = LayerBinning(np.array([0.0]))
    assert replica_layout(Readout((empty, LayerBinning(np.array([0.0, 1.0, 2.0]), 3))))
    assert not replica_layout(Readout((LayerBinning(np.array([0.0, 1.0, 2.0]), 1),)))
    assert not replica_layout(Readout((LayerBinning(np.array([1.0, 2.0, 3.0]), 3),)))
