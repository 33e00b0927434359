from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BINNINGS
from twinforge.detector import LayerBinning, Readout
from twinforge.errors import DetectorError


@pytest.mark.parametrize(("name", "n_voxels"), list(BINNINGS.items()))
def test_official_binnings_voxel_counts_and_round_trip(
    calochallenge_dir: Path, name: str, n_voxels: int
) -> None:
    readout = Readout.from_xml(calochallenge_dir / name)
    assert readout.n_voxels == n_voxels
    again = Readout.from_xml(readout.to_xml())
    assert again == readout
    assert again.pid == readout.pid
    assert again.particle == readout.particle
    assert again.attributes == readout.attributes
    centres = readout.voxel_centres()
    assert all(len(a) == n_voxels for a in centres)


def test_dataset1_layers_differ_and_empty_layers(calochallenge_dir: Path) -> None:
    readout = Readout.from_xml(calochallenge_dir / "binning_dataset_1_photons.xml")
    assert not readout.is_regular
    assert readout.n_layers == 24
    np.testing.assert_array_equal(readout.voxels_per_layer[:5], [8, 160, 190, 5, 0])
    assert readout.pid == 22
    assert readout.attributes == {"etaMin": "0", "etaMax": "130"}
    with pytest.raises(DetectorError, match="regular"):
        _ = readout.grid_shape
    showers = np.arange(2 * 368, dtype=np.float32).reshape(2, 368)
    layers = readout.split_layers(showers)
    assert [a.shape[1:] for a in layers[:3]] == [(1, 8), (10, 16), (10, 19)]
    assert layers[4].shape == (2, 1, 0)
    np.testing.assert_array_equal(readout.join_layers(layers), showers)
    energies = readout.layer_energies(showers)
    assert energies.shape == (2, 24)
    np.testing.assert_allclose(energies.sum(axis=1), showers.sum(axis=1, dtype=np.float64))
    assert energies[0, 4] == 0.0


def test_dataset2_grid_order_is_z_alpha_r(calochallenge_dir: Path) -> None:
    readout = Readout.from_xml(calochallenge_dir / "binning_dataset_2.xml")
    assert readout.grid_shape == (45, 16, 9)
    showers = np.zeros((1, 6480), dtype=np.float32)
    z, a, r = 3, 5, 7
    showers[0, z * 16 * 9 + a * 9 + r] = 1.0
    grid = readout.to_grid(showers)
    assert grid[0, z, a, r] == 1.0
    assert grid.sum() == 1.0
    np.testing.assert_array_equal(readout.from_grid(grid), showers)


def test_voxel_centres_and_index_agree() -> None:
    readout = Readout.uniform(3, [0.0, 1.0, 3.0, 6.0], 4)
    c = readout.voxel_centres()
    np.testing.assert_allclose(c.r[:3], [0.5, 2.0, 4.5])
    # alpha edges -pi, -pi/2, 0, pi/2, pi -> first bin centre -3pi/4
    assert c.alpha[0] == pytest.approx(-3 * math.pi / 4)
    np.testing.assert_allclose(c.x, c.r * np.cos(c.alpha))
    np.testing.assert_allclose(c.y, c.r * np.sin(c.alpha))
    idx = readout.voxel_index(c.layer, c.r, c.alpha)
    np.testing.assert_array_equal(idx, np.arange(readout.n_voxels))
    assert readout.voxel_index(0, 6.5, 0.0) == -1  # beyond the last edge: not recorded
    assert readout.voxel_index(0, 0.0, math.pi) == 3 * 3  # alpha = +pi folds into the last bin


@pytest.mark.parametrize(
    ("edges", "n_alpha", "match"),
    [
        ([0, 2, 1], 1, "increasing"),
        ([0, float("nan")], 1, "finite"),
        ([-1, 2], 1, ">= 0"),
        ([0, 1], 0, "n_alpha"),
        ([], 1, "at least one"),
    ],
)
def test_bad_layer_binning(edges: list[float], n_alpha: int, match: str) -> None:
    with pytest.raises(DetectorError, match=match):
        LayerBinning(np.asarray(edges, dtype=float), n_alpha)


@pytest.mark.parametrize(
    ("xml", "match"),
    [
        ("<Bins><Bin pid='11'><Layer id='0' n_bin_alpha='1'/></Bin></Bins>", "r_edges"),
        (
            "<Bins><Bin pid='11'><Layer id='0' r_edges='0,1' n_bin_alpha='x'/></Bin></Bins>",
            "layer 0",
        ),
        ("<Bins><Bin pid='11'><Layer id='1' r_edges='0,1' n_bin_alpha='1'/></Bin></Bins>", "id="),
        ("<Bins><Bin pid='11'></Bin></Bins>", "no <Layer>"),
        ("<Bins><Bin pid='11'>", "not valid XML"),
        ("<Other/>", "expected <Bins>"),
    ],
)
def test_bad_xml(xml: str, match: str) -> None:
    with pytest.raises(DetectorError, match=match):
        Readout.from_xml(xml)


def test_missing_xml_file(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="not found"):
        Readout.from_xml(tmp_path / "nope.xml")


def test_shape_errors_name_the_expected_shape() -> None:
    readout = Readout.uniform(2, [0, 1, 2], 3)
    with pytest.raises(DetectorError, match=r"expected \(N, 12\)"):
        readout.split_layers(np.zeros((4, 13)))
    with pytest.raises(DetectorError, match="grid has shape"):
        readout.from_grid(np.zeros((1, 2, 2, 3)))
