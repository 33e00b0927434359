"""``twinforge catalog ...`` through the Typer app and the console entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from twinforge.catalog import Catalog, JobSpec
from twinforge.errors import CatalogError

# skipped only while a sibling CLI module (another stage's) is still missing
cli = pytest.importorskip(
    "twinforge.cli", reason="the twinforge CLI does not import yet", exc_type=ImportError
)
from typer.testing import CliRunner  # noqa: E402

COMMANDS = ["list", "show", "verify", "export", "info", "upgrade"]


@pytest.fixture
def db(tmp_path: Path, make_file) -> Path:
    path = tmp_path / "cat.sqlite"
    with Catalog.open(path) as cat:
        camp = cat.add_campaign("scan")
        cat.add_jobs(camp, [JobSpec({"energy": 1000.0}, seed=1)])
        cat.add_dataset(
            "siw-e",
            provenance={"simulator": {"name": "Geant4", "version": "11.2.1"}, "seed": 7},
            files=[(make_file("a.h5", b"aaaa"), 10), (make_file("b.h5", b"bbbb"), 20)],
            campaign_id=camp.id,
        )
    return path


def invoke(*args: str):
    runner = CliRunner()
    return runner.invoke(cli.app, ["catalog", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "--catalog" in result.output


def test_list(db: Path) -> None:
    result = invoke("list", "--catalog", str(db))
    assert result.exit_code == 0, result.output
    for text in ("ds-1", "siw-e", "file-2", "camp-1", "2 files, 30 events"):
        assert text in result.output
    assert "job-1" not in result.output  # jobs only when asked for: campaigns count them
    result = invoke("list", "--kind", "files", "--catalog", str(db))
    assert "file-1" in result.output
    assert "siw-e" not in result.output
    result = invoke("list", "--kind", "jobs", "--json", "--catalog", str(db))
    assert [r["id"] for r in json.loads(result.output)] == ["job-1"]
    assert invoke("list", "--kind", "nonsense", "--catalog", str(db)).exit_code == 2


def test_show(db: Path) -> None:
    result = invoke("show", "ds-1", "--catalog", str(db))
    assert result.exit_code == 0, result.output
    for text in ("siw-e", "Geant4", "11.2.1", "file-1", "a.h5", "file-2"):
        assert text in result.output
    assert invoke("show", "siw-e", "--catalog", str(db)).output == result.output  # by name
    data = json.loads(invoke("show", "job-1", "--json", "--catalog", str(db)).output)
    assert (data["id"], data["state"], data["seed"]) == ("job-1", "pending", 1)


def test_unknown_id_is_a_catalog_error(db: Path) -> None:
    result = invoke("show", "ds-99", "--catalog", str(db))
    assert result.exit_code != 0
    assert isinstance(result.exception, CatalogError)
    assert str(result.exception) == "no such record: ds-99"


def test_verify(db: Path, tmp_path: Path) -> None:
    result = invoke("verify", "--catalog", str(db))
    assert result.exit_code == 0, result.output
    assert "2 file(s) match" in result.output
    (tmp_path / "files" / "b.h5").write_bytes(b"BBBB")
    (tmp_path / "files" / "a.h5").unlink()
    result = invoke("verify", "ds-1", "--catalog", str(db))
    assert result.exit_code == 1
    assert "missing" in result.output
    assert "sha256 mismatch" in result.output
    assert "2 of 2 file(s) do not match" in result.output


def test_export(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "crate"
    result = invoke(
        "export", "ds-1", str(out), "--creator", "Josiah Carberry,0000-0002-1825-0097",
        "--creator", "Jane Doe", "--license", "CC0-1.0", "--catalog", str(db),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    graph = {
        e["@id"]: e for e in json.loads((out / "ro-crate-metadata.json").read_text())["@graph"]
    }
    assert graph["./"]["license"] == {"@id": "https://spdx.org/licenses/CC0-1.0"}
    assert graph["https://orcid.org/0000-0002-1825-0097"]["name"] == "Josiah Carberry"
    assert (out / "data" / "a.h5").read_bytes() == b"aaaa"
    result = invoke("export", "ds-1", str(tmp_path / "ref"), "--no-data", "--catalog", str(db))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "ref" / "data").exists()


def test_info_and_env_var(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINFORGE_CATALOG", str(db))
    result = invoke("info")
    assert result.exit_code == 0, result.output
    assert str(db) in result.output
    assert "datasets: 1" in result.output


def test_upgrade(db: Path) -> None:
    """A current catalogue is left as it is (the upgrade itself: test_migrations.py)."""
    result = invoke("upgrade", "--catalog", str(db))
    assert result.exit_code == 0, result.output
    assert "already at revision" in result.output
    assert "revision" in invoke("info", "--catalog", str(db)).output


def test_missing_catalog_is_not_created(tmp_path: Path) -> None:
    result = invoke("list", "--catalog", str(tmp_path / "nothing.sqlite"))
    assert isinstance(result.exception, CatalogError)
    assert not (tmp_path / "nothing.sqlite").exists()


def test_console_script_prints_one_line(db: Path, tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TWINFORGE_CATALOG": str(db)}
    command = [sys.executable, "-c", "from twinforge.cli import main; main()"]
    result = subprocess.run(
        [*command, "catalog", "show", "ds-99"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no such record: ds-99"
