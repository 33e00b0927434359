"""The report renders in a real browser: headless Chromium takes a screenshot, loads every image.

Skipped where no Chromium is installed (``apt-get install chromium`` on Debian; CI's ``.ci/run``
installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.validation.test_report import make_result
from twinforge.validation.report import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


pytestmark = pytest.mark.skipif(
    _browser() is None,
    reason="no Chromium found: apt-get install chromium (Debian) to run this test",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result, readout, ref, gen = make_result(dataset="2")
    return write_report(
        tmp_path_factory.mktemp("browser") / "report", result, readout, reference=ref, generated=gen
    )


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    browser = _browser()
    assert browser is not None
    command = [
        browser,
        "--headless",
        "--no-sandbox",  # root in containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "shot.png"
    result = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", report.as_uri())
    assert shot.exists(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (3000, 1200)
    assert pixels.std() > 20  # text, tables and plots, not a blank page
    assert np.mean(pixels < 128) > 0.01  # enough dark pixels: something was drawn


def test_every_image_loads(report: Path, tmp_path: Path) -> None:
    result = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", report.as_uri())
    dom = result.stdout
    assert "<body" in dom, result.stderr[-2000:]
    total = re.search(r'data-images-total="(\d+)"', dom)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    assert total is not None, "the page's load script did not run"
    assert loaded is not None
    n_images = report.read_text().count("<img ")
    assert int(total.group(1)) == n_images >= 8
    assert int(loaded.group(1)) == n_images
