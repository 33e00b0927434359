"""The web catalogue's pages: listings, landing pages with JSON-LD, downloads, crates, reports,
the model comparison, and clear error pages for bad input."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import Demo, build, client_for
from twinforge.catalog import Catalog


def jsonld(html: str) -> dict:
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def error_message(html: str) -> str:
    found = re.search(r'id="error-message">(.*?)</p>', html, re.S)
    assert found is not None, html[:500]
    return found.group(1)


@pytest.mark.parametrize(
    "path",
    ["/", "/datasets", "/campaigns", "/simulators", "/models", "/surrogates", "/runs",
     "/evaluations", "/compare", "/search?q=siw", "/api"],
)  # fmt: skip
def test_every_listing_renders(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'none'" in response.headers["content-security-policy"]
    assert "<script>" not in response.text  # no executable script on our pages


def test_search_finds_text_in_provenance_and_filters(client: TestClient, demo: Demo) -> None:
    page = client.get("/search", params={"q": "geant4"}).text
    assert demo.dataset in page
    assert demo.reference in page
    assert demo.campaign in page
    listing = client.get("/datasets", params={"q": "reference"}).text
    assert demo.reference in listing
    assert f">{demo.dataset}<" not in listing
    tagged = client.get("/datasets", params={"tag": "siw"}).text
    assert f">{demo.dataset}<" in tagged
    assert f">{demo.reference}<" not in tagged
    models = client.get("/models", params={"trained_on": demo.dataset}).text
    assert "flow-siw" in models
    assert "vae-siw" not in models
    assert "resolution-gp" not in client.get("/models").text  # surrogates have their own list
    assert "resolution-gp" in client.get("/surrogates").text


def test_pagination(catalog: Catalog, demo: Demo) -> None:
    for i in range(5):
        catalog.add_dataset(f"extra-{i}", files=[(demo.shower_file, 1)])
    with client_for(catalog, page_size=3) as client:
        first = client.get("/datasets", params={"sort": "name"}).text
        assert "1-3 of 7" in first
        nxt = re.search(r'<a rel="next" href="([^"]+)"', first)
        assert nxt is not None
        second = client.get(nxt.group(1).replace("&amp;", "&")).text
        assert "4-6 of 7" in second
        assert 'rel="prev"' in second
        past = client.get("/datasets", params={"page": 9})
        assert past.status_code == 404
        assert "past the end" in error_message(past.text)


def test_dataset_landing_page(client: TestClient, demo: Demo) -> None:
    html = client.get(f"/datasets/{demo.dataset}").text
    data = jsonld(html)
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "Dataset"
    assert data["identifier"] == demo.dataset
    assert data["name"] == "siw-electrons"
    assert len(data["description"]) >= 50
    assert data["keywords"] == ["electrons", "siw"]
    downloads = data["distribution"]
    assert [d["@type"] for d in downloads] == ["DataDownload", "DataDownload"]
    assert downloads[0]["contentUrl"].endswith("/files/file-1")
    assert downloads[0]["encodingFormat"] == "application/x-hdf5"
    assert len(downloads[0]["sha256"]) == 64
    software = [x for x in data["isBasedOn"] if isinstance(x, dict)]
    geant4 = {"@type": "SoftwareApplication", "name": "Geant4", "softwareVersion": "11.4.1"}
    assert software == [geant4 | {"applicationCategory": "simulation"}]
    # provenance and links: the campaign, the model trained on it, its files
    assert f'href="/campaigns/{demo.campaign}"' in html
    assert f'href="/models/{demo.model}"' in html
    assert 'href="/simulators/geant4"' in html
    assert 'href="/files/file-1"' in html
    assert "Geant4 11.4.1" in html


def test_names_redirect_to_the_canonical_page(client: TestClient, demo: Demo) -> None:
    response = client.get("/datasets/siw-electrons", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == f"/datasets/{demo.dataset}"


def test_model_evaluation_and_report(client: TestClient, demo: Demo) -> None:
    model = client.get(f"/models/{demo.model}").text
    assert jsonld(model)["@type"] == "CreativeWork"
    assert f'href="/datasets/{demo.dataset}"' in model  # trained on
    assert f'href="/evaluations/{demo.evaluation}"' in model
    assert f'href="/runs/{demo.run}"' in model
    evaluation = client.get(f"/evaluations/{demo.evaluation}").text
    assert jsonld(evaluation)["@type"] == "Report"
    assert f'src="/evaluations/{demo.evaluation}/report"' in evaluation
    report = client.get(f"/evaluations/{demo.evaluation}/report")
    assert report.status_code == 200
    assert "Validation report" in report.text
    assert "sandbox" in report.headers["content-security-policy"]
    assert client.get(f"/evaluations/{demo.benchmark}/report").status_code == 404
    # the report's relative links: the evaluation's own files, by name, nothing else
    assert client.get(f"/evaluations/{demo.evaluation}/metrics.json").json() == {}
    crate = client.get(f"/evaluations/{demo.evaluation}/ro-crate.zip")
    assert crate.headers["content-type"] == "application/zip"
    assert client.get(f"/evaluations/{demo.evaluation}/catalog.sqlite").status_code == 404
    assert client.get(f"/evaluations/{demo.evaluation}/..%2Fcatalog.sqlite").status_code == 404


def test_campaign_and_simulator_pages(client: TestClient, demo: Demo) -> None:
    campaign = client.get(f"/campaigns/{demo.campaign}").text
    assert "exit 3: boom" in campaign  # a failed job, with its exit code
    assert f'href="/datasets/{demo.dataset}"' in campaign
    sim = client.get("/simulators/geant4").text
    data = jsonld(sim)
    assert data["@type"] == "SoftwareApplication"
    assert data["softwareVersion"] == ["11.4.1"]
    assert f'href="/campaigns/{demo.campaign}"' in sim
    assert client.get("/simulators/no-such-code").status_code == 404


def test_adaptive_campaign_page_draws_its_error_curve(
    catalog: Catalog, client: TestClient, demo: Demo
) -> None:
    """An adaptive campaign's page draws the predicted error of its done jobs against the
    simulations, with the stop target; a campaign without one (the demo's) draws none."""
    camp = catalog.add_campaign(
        "beam-size-al", config={"simulator": {"name": "xsuite"}, "total_points": 8,
                                "sampler": {"kind": "adaptive", "target_error": {"sigma_x": 2e-5}}},
    )  # fmt: skip
    catalog.add_jobs(camp, [{"parameters": {"k1": 0.1 * i}, "seed": i} for i in range(5)])
    errors = [None, 8e-4, 2e-4, 6e-5, 1.5e-5]
    for error in errors:  # in the order they finish: the first, before the GP, has none
        job = catalog.claim(camp)
        assert job is not None
        catalog.set_job_state(job, "done", provenance={"n_points": 2, **(
            {"predicted_error": {"sigma_x": error}} if error else {})})  # fmt: skip
    html = client.get(f"/campaigns/{camp.global_id}").text
    assert "Error against simulations" in html
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count("<polyline") == 1
    assert "target of sigma_x: 2e-05" in svg
    assert "1.5e-05 after 10" in svg  # the last point: 5 jobs of 2 simulations
    assert "<script" not in svg
    assert "Error against simulations" not in client.get(f"/campaigns/{demo.campaign}").text


def test_surrogate_page(client: TestClient, demo: Demo) -> None:
    html = client.get(f"/surrogates/{demo.surrogate}").text
    assert "surrogate" in html
    assert f'href="/campaigns/{demo.campaign}"' in html  # fitted on


def test_download_with_ranges(client: TestClient, demo: Demo) -> None:
    whole = client.get("/files/file-1")
    assert whole.status_code == 200
    assert whole.content == demo.shower_file.read_bytes()
    assert whole.headers["accept-ranges"] == "bytes"
    etag = whole.headers["etag"].strip('"')
    import hashlib

    assert etag == hashlib.sha256(whole.content).hexdigest()
    part = client.get("/files/file-1", headers={"Range": "bytes=256-511"})
    assert part.status_code == 206
    assert part.content == bytes(range(256))
    assert part.headers["content-range"] == "bytes 256-511/10240"
    tail = client.get("/files/file-1", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.content == demo.shower_file.read_bytes()[-10:]
    assert client.get("/files/file-1", headers={"Range": "bytes=99999-"}).status_code == 416


def test_crate_zip(client: TestClient, catalog: Catalog, demo: Demo) -> None:
    response = client.get(f"/datasets/{demo.dataset}/ro-crate.zip")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert "ro-crate-metadata.json" in archive.namelist()
    assert not any(n.startswith("data/") for n in archive.namelist())
    graph = json.loads(archive.read("ro-crate-metadata.json"))["@graph"]
    ids = {e["@id"] for e in graph}
    assert "http://testserver/files/file-1" in ids  # files referenced by their download URL
    with client_for(catalog, crate_data_limit_mib=0) as small:
        big = small.get(f"/datasets/{demo.dataset}/ro-crate.zip", params={"data": "true"})
        assert big.status_code == 413
        assert "download its files one by one" in big.text
    full = client.get(f"/datasets/{demo.dataset}/ro-crate.zip", params={"data": "true"})
    names = zipfile.ZipFile(io.BytesIO(full.content)).namelist()
    assert "data/showers-0.h5" in names
    assert "data/showers-1.h5" in names


def test_compare_page_sorts_and_plots(client: TestClient) -> None:
    html = client.get("/compare", params={"sort": "ms_per_shower"}).text
    assert html.index("vae-siw") < html.index("flow-siw")  # faster first
    assert "<svg" in html
    assert "Geant4" in html
    assert "quick (not comparable)" in html
    assert 'title="Geant4 vs Geant4: 0.5"' in html  # the floor beside the AUC
    html = client.get("/compare", params={"sort": "-auc_low"}).text
    assert html.index("vae-siw") < html.index("flow-siw")
    assert client.get("/compare", params={"sort": "colour"}).status_code == 400
    assert client.get("/compare", params={"level": "medium"}).status_code == 400


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/datasets/ds-999", 404, "no such record: ds-999"),
        ("/datasets/camp-1", 404, "is not one of the datasets"),
        ("/runs/not-an-id", 400, "not a catalogue ID"),
        ("/datasets/no-such-name", 404, "no such record"),
        ("/files/ds-1", 404, "is not a file"),
        ("/files/file-999", 404, "no such record"),
        ("/datasets?page=0", 400, "page"),
        ("/datasets?page=abc", 400, "page"),
        ("/datasets?sort=colour", 400, "unknown sort"),
        ("/datasets?campaign=ds-1", 400, "is not one of the campaigns"),
        ("/datasets?published=maybe", 400, "expected true or false"),
        ("/datasets?tag=" + "x" * 100, 400, "tag"),
        ("/no/such/page", 404, "no page at /no/such/page"),
    ],
)
def test_bad_input_gets_a_clear_page(client: TestClient, path: str, status: int, words: str):
    response = client.get(path)
    assert response.status_code == status
    assert words in error_message(response.text).replace("&#39;", "'")
    assert "Traceback" not in response.text


def test_a_bug_is_a_500_without_a_trace(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twinforge.service import views

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views, "comparison", broken)
    response = client.get("/compare")
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert "internal error" in error_message(response.text)


def test_an_unreachable_database_is_a_503(
    client: TestClient, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twinforge.errors import CatalogUnavailable

    def down(*args: object, **kwargs: object) -> None:
        raise CatalogUnavailable("cannot use the catalogue db: connection refused")

    monkeypatch.setattr(catalog, "search", down)
    response = client.get("/datasets")
    assert response.status_code == 503
    assert "connection refused" in error_message(response.text)
    api = client.get("/api/v1/datasets")
    assert api.status_code == 503
    assert api.json()["error"]["message"].endswith("connection refused")


def test_the_pages_on_postgresql(tmp_path: Path) -> None:
    from tests.catalog.conftest import fresh_postgres_database, postgres_skip_reason

    reason = postgres_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with fresh_postgres_database("tf_serve") as url:
        demo = build(tmp_path / "store", url)
        with Catalog.open(url, create=False) as cat, client_for(cat, storage=[demo.storage]) as c:
            for path in ["/", "/datasets?q=geant4", f"/datasets/{demo.dataset}", "/compare",
                         f"/models/{demo.model}", "/simulators/geant4", "/files/file-1",
                         "/api/v1/models?trained_on=ds-1"]:  # fmt: skip
                assert c.get(path).status_code == 200, path
            assert demo.model in c.get("/models", params={"trained_on": demo.dataset}).text
            assert jsonld(c.get(f"/datasets/{demo.dataset}").text)["@type"] == "Dataset"


def test_database_faults_on_postgresql(tmp_path: Path) -> None:
    """Connections killed under the server: it reconnects. The database gone: 503, one line."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    from tests.catalog.conftest import fresh_postgres_database, postgres_skip_reason

    reason = postgres_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with fresh_postgres_database("tf_fault") as url:
        demo = build(tmp_path / "store", url)
        name = make_url(url).database
        admin = create_engine(make_url(url).set(database="postgres"), poolclass=NullPool,
                              isolation_level="AUTOCOMMIT")  # fmt: skip
        with Catalog.open(url, create=False) as cat, client_for(cat) as client:
            assert client.get(f"/datasets/{demo.dataset}").status_code == 200
            with admin.connect() as conn:
                kill = text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :d AND pid <> pg_backend_pid()")  # fmt: skip
                conn.execute(kill, {"d": name})
            assert client.get(f"/datasets/{demo.dataset}").status_code == 200  # reconnected
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            gone = client.get(f"/datasets/{demo.dataset}")
            assert gone.status_code == 503
            assert "cannot use the catalogue" in error_message(gone.text)
            assert "Traceback" not in gone.text
            api = client.get("/api/v1/datasets")
            assert api.status_code == 503
        admin.dispose()
