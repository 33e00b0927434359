"""``twinforge serve``: a real server process, and one clear line for what it cannot serve."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import TOKEN, Demo

TWINFORGE = [sys.executable, "-c", "from twinforge.cli import main; main()"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TWINFORGE_CATALOG"}
    return subprocess.run([*TWINFORGE, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_and_stops(demo: Demo, tmp_path: Path, workers: int) -> None:
    port = _free_port()
    config = tmp_path / "serve.yaml"
    token = tmp_path / "token"
    token.write_text(TOKEN)
    config.write_text(f"port: {port}\ntitle: test catalogue\nworkers: {workers}\n"
                      f"write_token_file: {token}\n")  # fmt: skip
    proc = subprocess.Popen(
        [*TWINFORGE, "serve", str(demo.path), "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert response.json() == {"ok": True, "datasets": 2}
        home = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert "test catalogue" in home.text
        # every process has the token
        for _ in range(4):
            tagged = httpx.post(f"http://127.0.0.1:{port}/api/v1/records/ds-1/tags",
                                json={"tags": ["live"]}, timeout=10,
                                headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
            assert tagged.json()["tags"] == ["electrons", "live", "siw"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "writes enabled" in out
    assert f"http://127.0.0.1:{port}/" in out


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run("serve", "postgresql://nobody:pw@127.0.0.1:1/none")
    assert result.returncode == 1
    assert time.monotonic() - started < 30
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot use the catalogue" in lines[0]
    assert "***" in lines[0]


def test_a_newer_or_older_catalogue_is_refused(demo: Demo) -> None:
    with sqlite3.connect(demo.path) as conn:
        conn.execute("UPDATE twinforge_meta SET value = '99' WHERE key = 'schema_version'")
    result = run("serve", str(demo.path))
    assert result.returncode == 1
    assert "newer than this twinforge" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_settings_are_one_line(demo: Demo, tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("prot: 8000\n")
    result = run("serve", str(demo.path), "--config", str(config))
    assert result.returncode == 1
    assert "prot" in result.stderr
    missing = run("serve", str(tmp_path / "none.sqlite"))
    assert missing.returncode == 1
    assert "no catalogue at" in missing.stderr
    assert not (tmp_path / "none.sqlite").exists()  # serving never creates a catalogue
    config.write_text("write_token: short\n")
    short = run("serve", str(demo.path), "--config", str(config))
    assert short.returncode == 1
    assert "at least 16 characters" in short.stderr


@pytest.mark.parametrize("module", ["fastapi", "uvicorn"])
def test_without_the_web_extra(module: str) -> None:
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from twinforge.service import require_web\n"
        "require_web()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)  # fmt: skip
    assert result.returncode != 0
    assert "pip install 'twinforge[web]'" in result.stderr
