"""The web catalogue in a real browser: headless Chromium (Debian's, driven through Debian's
chromedriver by Selenium) loads the home page, follows links from a dataset to the model
trained on it to its evaluation and the evaluation's report, and parses every page's JSON-LD.

Skipped where Chromium, chromedriver or Selenium is missing (``.ci/run`` installs Debian's
``chromium`` and ``chromium-driver``; Selenium is in the dev extra).
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import Demo, build

webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")

CHROMIUM = next((p for n in ("chromium", "chromium-browser") if (p := shutil.which(n))), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="no Chromium/chromedriver: apt-get install chromium chromium-driver (Debian)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Demo]]:
    """A real uvicorn server on the loopback interface, in a thread of this process."""
    import uvicorn

    from twinforge.catalog import Catalog
    from twinforge.service.app import create_app

    demo = build(tmp_path_factory.mktemp("browser") / "store")
    port = _free_port()
    with Catalog.open(demo.path, create=False) as cat:
        config = uvicorn.Config(create_app(cat), host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}", demo
        finally:
            server.should_exit = True
            thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--window-size=1280,2000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _jsonld(driver: object) -> dict:
    from selenium.webdriver.common.by import By

    scripts = driver.find_elements(By.CSS_SELECTOR, 'script[type="application/ld+json"]')
    assert len(scripts) == 1
    return json.loads(scripts[0].get_attribute("textContent"))


def _follow(driver: object, href: str) -> None:
    """Click the link whose href is ``href`` and wait for the new page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    link = driver.find_element(By.CSS_SELECTOR, f'a[href="{href}"]')
    old = driver.find_element(By.TAG_NAME, "html")
    link.click()
    WebDriverWait(driver, 30).until(ec.staleness_of(old))


def test_dataset_to_model_to_evaluation_report(browser: object, site: tuple[str, Demo],
                                               tmp_path: Path) -> None:  # fmt: skip
    from selenium.webdriver.common.by import By

    base, demo = site
    driver = browser
    driver.get(f"{base}/")
    assert "twinforge catalogue" in driver.title
    _follow(driver, "/datasets")
    _follow(driver, f"/datasets/{demo.dataset}")
    assert driver.current_url == f"{base}/datasets/{demo.dataset}"
    data = _jsonld(driver)
    assert data["@type"] == "Dataset"
    assert data["identifier"] == demo.dataset
    assert data["distribution"][0]["contentUrl"] == f"{base}/files/file-1"
    _follow(driver, f"/models/{demo.model}")
    assert _jsonld(driver)["isBasedOn"] == [f"{base}/datasets/{demo.dataset}"]
    _follow(driver, f"/evaluations/{demo.evaluation}")
    assert _jsonld(driver)["@type"] == "Report"
    # the report shows inside the page (sandboxed frame) and on its own
    frame = driver.find_element(By.CSS_SELECTOR, "iframe.report")
    driver.switch_to.frame(frame)
    assert driver.find_element(By.ID, "auc").text == "AUC 0.61"
    driver.switch_to.default_content()
    _follow(driver, f"/evaluations/{demo.evaluation}/report")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Validation report"
    driver.back()
    shot = tmp_path / "evaluation.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_search_and_compare_in_the_browser(browser: object, site: tuple[str, Demo]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, demo = site
    driver = browser
    driver.get(f"{base}/")
    box = driver.find_element(By.CSS_SELECTOR, 'input[name="q"]')
    box.send_keys("reference", Keys.ENTER)
    time.sleep(0.5)
    assert "/search?q=reference" in driver.current_url
    assert driver.find_element(By.CSS_SELECTOR, f'a[href="/datasets/{demo.reference}"]')
    driver.get(f"{base}/compare")
    svg = driver.find_element(By.TAG_NAME, "svg")
    assert svg.size["width"] > 300
    rows = driver.find_elements(By.CSS_SELECTOR, "table.compare tbody tr")
    assert len(rows) == 2
    # console: no errors (blocked resources, script errors) on our pages
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
