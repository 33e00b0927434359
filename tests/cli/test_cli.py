from __future__ import annotations

from pathlib import Path

import h5py
import pytest
import yaml

from tests.conftest import Run


def assert_user_error(result, *fragments: str) -> None:
    """Exit code 1, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    text = " ".join(lines)
    for fragment in fragments:
        assert fragment in text, text


def test_help_everywhere(twinforge: Run) -> None:
    groups = ["config", "detector", "showers", "catalog", "campaign", "surrogate"]
    commands = ["simulate", "convert", "train", "sample", "validate", "export", "bench", "demo"]
    for args in [(), *[(g,) for g in groups], *[(c,) for c in commands]]:
        result = twinforge(*args, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout


def test_version(twinforge: Run) -> None:
    result = twinforge("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("twinforge ")


def test_config_show_fills_defaults(twinforge: Run, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("kind: synthetic\nn_events: 5\nenergy_max: 2GeV\n")
    result = twinforge("config", "show", "s.yaml")
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["n_events"] == 5
    assert shown["energy_max"] == 2000.0
    assert shown["seed"] == 12345
    assert shown["detector"] == "tiny"


def test_config_show_unknown_key(twinforge: Run, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("kind: synthetic\nn_evnts: 5\n")
    assert_user_error(twinforge("config", "show", "s.yaml"), "s.yaml", "unknown key 'n_evnts'")


def test_config_show_missing_file(twinforge: Run) -> None:
    assert_user_error(twinforge("config", "show", "nope.yaml"), "nope.yaml", "not found")


def test_detector_show_writes_xml(twinforge: Run, tmp_path: Path) -> None:
    result = twinforge("detector", "show", "siw", "--xml", "siw.xml")
    assert result.returncode == 0, result.stderr
    assert "6480 voxels" in result.stdout
    from twinforge.detector import Readout

    assert Readout.from_xml(tmp_path / "siw.xml").n_voxels == 6480
    assert twinforge("detector", "list").returncode == 0


def test_showers_synthetic_inspect_validate_merge(twinforge: Run, tmp_path: Path) -> None:
    for i in range(2):
        result = twinforge("showers", "synthetic", "-o", f"s{i}.h5", "--n", "20", "--seed", str(i))
        assert result.returncode == 0, result.stderr
    result = twinforge("showers", "inspect", "s0.h5", "--json")
    assert result.returncode == 0, result.stderr
    assert '"events": 20' in result.stdout
    assert "synthetic-test" in result.stdout
    assert twinforge("--quiet", "showers", "validate", "s0.h5", "s1.h5").returncode == 0
    result = twinforge("showers", "merge", "m.h5", "s0.h5", "s1.h5")
    assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "m.h5") as h5:
        assert h5["showers"].shape == (40, 96)
    assert_user_error(twinforge("showers", "merge", "m.h5", "s0.h5"), "already exists")


def test_showers_validate_reports_bad_file(twinforge: Run, tmp_path: Path) -> None:
    assert twinforge("showers", "synthetic", "-o", "s.h5", "--n", "10").returncode == 0
    with h5py.File(tmp_path / "s.h5", "r+") as h5:
        h5["showers"][4, 2] = float("nan")
    result = twinforge("showers", "validate", "s.h5")
    assert result.returncode == 1
    assert "event 4, voxel 2" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"", "not a readable HDF5"), (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "not a readable HDF5")],
)
def test_corrupt_file_one_line(
    twinforge: Run, tmp_path: Path, content: bytes, fragment: str
) -> None:
    (tmp_path / "bad.h5").write_bytes(content)
    assert_user_error(twinforge("showers", "inspect", "bad.h5"), "bad.h5", fragment)


def test_missing_shower_file(twinforge: Run) -> None:
    assert_user_error(twinforge("showers", "inspect", "nope.h5"), "nope.h5", "file not found")


def test_debug_shows_traceback(twinforge: Run) -> None:
    result = twinforge("--debug", "showers", "inspect", "nope.h5")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_bad_synthetic_option(twinforge: Run) -> None:
    assert_user_error(
        twinforge("showers", "synthetic", "-o", "x.h5", "--energy-min", "5 parsecs"),
        "cannot read energy",
    )
