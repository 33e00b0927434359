from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twinforge.detector import DetectorConfig, load_detector, preset_names
from twinforge.errors import ConfigError, DetectorError


def test_presets_load() -> None:
    assert {"siw", "tiny", "pbwo4"} <= set(preset_names())
    for name in preset_names():
        det = load_detector(name)
        assert det.name == name
        assert det.binning().n_voxels > 0


def test_siw_is_calochallenge_dataset2(calochallenge_dir: Path) -> None:
    from twinforge.detector import Readout

    det = load_detector("siw")
    assert det.geometry.depth == pytest.approx(153.0)
    assert det.n_z == 45
    assert det.readout.threshold == pytest.approx(0.01515)
    assert det.binning() == Readout.from_xml(calochallenge_dir / "binning_dataset_2.xml")
    edges = det.z_bin_edges()
    # first bin: Si of layers 0 and 1 -> from 1.4 mm to 2 * 1.7 mm
    np.testing.assert_allclose(edges[0], [1.4, 3.4])
    np.testing.assert_allclose(edges[-1], [153.0 - 1.7 + 1.4 - 1.7, 153.0])


def test_homogeneous_z_edges() -> None:
    det = load_detector("pbwo4")
    edges = det.z_bin_edges()
    assert edges.shape == (25, 2)
    assert edges[0, 0] == 0.0
    assert edges[-1, 1] == pytest.approx(223.0)


def _siw_dict() -> dict:
    return load_detector("siw").model_dump(mode="json")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    data = _siw_dict()
    data["geometry"]["absorber_thicknes"] = 1.0
    import yaml

    path = tmp_path / "det.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"unknown key 'geometry\.absorber_thicknes'"):
        load_detector(path)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["readout"].update(layers_per_bin=4), "not a multiple"),
        (lambda d: d["readout"].update(binning_xml="x.xml"), "exactly one"),
        (lambda d: d["readout"].update(r_edges=[0, 2, 1]), "increasing"),
        (lambda d: d["geometry"].update(n_layers=-3), "greater than 0"),
        (lambda d: d["readout"].update(n_z=3), "n_z is for homogeneous"),
    ],
)
def test_invalid_configs(mutate, match: str) -> None:
    from twinforge.config import validate_config

    data = _siw_dict()
    mutate(data)
    with pytest.raises(ConfigError, match=match):
        validate_config(DetectorConfig, data, "test")


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="unknown detector 'nope'"):
        load_detector("nope")


def test_binning_xml_readout(tmp_path: Path, calochallenge_dir: Path) -> None:
    import shutil

    import yaml

    shutil.copy(calochallenge_dir / "binning_dataset_2.xml", tmp_path / "ds2.xml")
    data = _siw_dict()
    data["readout"] = {"binning_xml": "ds2.xml", "layers_per_bin": 2}
    (tmp_path / "det.yaml").write_text(yaml.safe_dump(data))
    det = load_detector(tmp_path / "det.yaml")
    assert det.binning().n_voxels == 6480
    data["readout"] = {"binning_xml": "ds2.xml", "layers_per_bin": 1}
    (tmp_path / "det.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(DetectorError, match="45 layers"):
        load_detector(tmp_path / "det.yaml").binning()
