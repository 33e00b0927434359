"""The JSON API: listings with pagination, records, OpenAPI, and the token-guarded writes
(register, tag, publish) that change nothing when refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import TOKEN, Demo, client_for
from twinforge.catalog import Catalog

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_listing_paginates(client: TestClient, catalog: Catalog, demo: Demo) -> None:
    for i in range(4):
        catalog.add_dataset(f"extra-{i}", files=[(demo.shower_file, 1)])
    first = client.get("/api/v1/datasets", params={"limit": 2, "sort": "id"}).json()
    assert first["total"] == 6
    assert first["limit"] == 2
    assert first["offset"] == 0
    assert [d["id"] for d in first["items"]] == ["ds-1", "ds-2"]
    assert first["items"][0]["tags"] == ["electrons", "siw"]
    seen = [d["id"] for d in first["items"]]
    url = first["next"]
    while url:
        page = client.get(url).json()
        seen += [d["id"] for d in page["items"]]
        url = page["next"]
    assert seen == [f"ds-{i}" for i in range(1, 7)]


def test_listing_filters(client: TestClient, demo: Demo) -> None:
    models = client.get("/api/v1/models").json()["items"]
    assert {m["name"] for m in models} == {"flow-siw", "vae-siw"}
    surrogates = client.get("/api/v1/surrogates").json()["items"]
    assert [m["name"] for m in surrogates] == ["resolution-gp"]
    jobs = client.get("/api/v1/jobs", params={"campaign": demo.campaign, "state": "failed"})
    assert [j["exit_code"] for j in jobs.json()["items"]] == [3]
    trained = client.get("/api/v1/models", params={"trained_on": demo.dataset}).json()
    assert [m["id"] for m in trained["items"]] == [demo.model]
    by_sim = client.get("/api/v1/datasets", params={"simulator": "geant4"}).json()
    assert [d["id"] for d in by_sim["items"]] == [demo.dataset]


def test_record_and_openapi(client: TestClient, demo: Demo) -> None:
    data = client.get(f"/api/v1/records/{demo.model}").json()
    assert data["links"]["trained_on"] == [demo.dataset]
    assert data["links"]["evaluations"] == [demo.benchmark, demo.evaluation]
    assert len(data["files"]) == 2
    assert data["files"][0]["owner"] == demo.model
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/{listing}" in spec["paths"]
    assert "post" in spec["paths"]["/api/v1/records/{ref}/tags"]
    compare = client.get("/api/v1/compare").json()
    flow = next(r for r in compare if r["name"] == "flow-siw")
    assert flow["auc_low"] == 0.61
    assert flow["ms_per_shower"] == 3.1
    assert flow["comparable"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/records/nonsense", 400),
        ("/api/v1/records/ds-77", 404),
        ("/api/v1/widgets", 400),
        ("/api/v1/datasets?limit=0", 400),
        ("/api/v1/datasets?offset=-1", 400),
        ("/api/v1/datasets?state=done", 400),  # a filter datasets do not have
        ("/api/v1/simulators/nothing", 404),
    ],
)
def test_bad_requests(client: TestClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status
    assert "\n" not in error["message"]


def _tags(catalog: Catalog, ref: str) -> list[str]:
    return list(catalog.tags(ref))


def test_writes_are_off_without_a_token(client: TestClient, catalog: Catalog) -> None:
    response = client.post("/api/v1/records/ds-1/tags", json={"tags": ["x"]}, headers=AUTH)
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]["message"]
    assert _tags(catalog, "ds-1") == ["electrons", "siw"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong-token-0123456789"}, 403),
     ({"Authorization": f"Basic {TOKEN}"}, 401), ({"Authorization": "Bearer "}, 401)],
)  # fmt: skip
def test_a_missing_or_wrong_token_changes_nothing(
    writer: TestClient, catalog: Catalog, headers: dict, status: int
) -> None:
    response = writer.post("/api/v1/records/ds-1/tags", json={"tags": ["gold"]}, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    assert _tags(catalog, "ds-1") == ["electrons", "siw"]
    body = {"version": "1", "creators": ["Jane Doe"]}
    publish = writer.post("/api/v1/records/ds-1/publications", json=body, headers=headers)
    assert publish.status_code == status
    assert catalog.publications("ds-1") == []


def test_tag_and_untag(writer: TestClient, catalog: Catalog) -> None:
    response = writer.post("/api/v1/records/model-1/tags", json={"tags": ["Best", "flow"]},
                           headers=AUTH)  # fmt: skip
    assert response.status_code == 200
    assert response.json() == {"id": "model-1", "tags": ["best", "flow"]}
    bad = writer.post("/api/v1/records/model-1/tags", json={"tags": ["no spaces"]}, headers=AUTH)
    assert bad.status_code == 400
    assert "invalid tag" in bad.json()["error"]["message"]
    extra = writer.post("/api/v1/records/model-1/tags", json={"tags": ["a"], "colour": 1},
                        headers=AUTH)  # fmt: skip
    assert extra.status_code == 400
    assert "colour" in extra.json()["error"]["message"]
    assert _tags(catalog, "model-1") == ["best", "flow"]
    gone = writer.delete("/api/v1/records/model-1/tags/best", headers=AUTH)
    assert gone.json()["tags"] == ["flow"]
    assert writer.delete("/api/v1/records/model-1/tags/best", headers=AUTH).status_code == 400
    assert writer.post("/api/v1/records/file-1/tags", json={"tags": ["x"]},
                       headers=AUTH).status_code == 400  # fmt: skip
    html = writer.get("/models", params={"tag": "flow"}).text
    assert "flow-siw" in html
    assert "vae-siw" not in html


def test_publish(writer: TestClient, catalog: Catalog, demo: Demo) -> None:
    body = {"version": "1.0", "license": "CC-BY-4.0",
            "creators": ["Josiah Carberry,0000-0002-1825-0097"]}  # fmt: skip
    response = writer.post(f"/api/v1/records/{demo.dataset}/publications", json=body,
                           headers=AUTH)  # fmt: skip
    assert response.status_code == 201, response.text
    pub = response.json()
    assert pub["record"] == demo.dataset
    assert pub["version"] == "1.0"
    assert pub["datacite"]["version"] == "1.0"
    again = writer.post(f"/api/v1/records/{demo.dataset}/publications", json=body, headers=AUTH)
    assert again.status_code == 400
    assert "published already" in again.text
    bad = writer.post(f"/api/v1/records/{demo.dataset}/publications",
                      json=body | {"version": "2", "license": "not a licence!"},
                      headers=AUTH)  # fmt: skip
    assert bad.status_code == 400
    assert [p.version for p in catalog.publications(demo.dataset)] == ["1.0"]
    page = writer.get(f"/datasets/{demo.dataset}").text
    assert "Published versions" in page
    assert writer.get("/datasets", params={"published": "true"}).text.count("siw-electrons") >= 1


def test_register_a_dataset(writer: TestClient, catalog: Catalog, demo: Demo, tmp_path: Path):
    inside = demo.storage / "data" / "new.h5"
    inside.write_bytes(b"new showers")
    outside = tmp_path / "outside.h5"
    outside.write_bytes(b"x")
    before = catalog.count("datasets")
    for path, status in [(outside, 403), (Path("data/new.h5"), 400),
                         (demo.storage / "data" / "missing.h5", 400)]:  # fmt: skip
        body = {"name": "new", "files": [{"path": str(path), "n_events": 5}]}
        response = writer.post("/api/v1/datasets", json=body, headers=AUTH)
        assert response.status_code == status, response.text
    assert catalog.count("datasets") == before
    body = {"name": "new", "files": [{"path": str(inside), "n_events": 5}],
            "campaign": demo.campaign}  # fmt: skip
    created = writer.post("/api/v1/datasets", json=body, headers=AUTH)
    assert created.status_code == 201
    assert created.json()["n_events"] == 5
    dup = writer.post("/api/v1/datasets", json=body, headers=AUTH)
    assert dup.status_code == 400
    assert "already exists" in dup.text
    assert catalog.count("datasets") == before + 1


def test_token_from_a_file_or_the_environment(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twinforge.errors import ConfigError

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with client_for(catalog, write_token_file=token_file) as c:
        assert c.post("/api/v1/records/ds-1/tags", json={"tags": ["f"]}, headers=AUTH).is_success
    monkeypatch.setenv("TWINFORGE_SERVE_TOKEN", TOKEN)
    with client_for(catalog) as c:
        assert c.post("/api/v1/records/ds-1/tags", json={"tags": ["e"]}, headers=AUTH).is_success
    with pytest.raises(ConfigError, match="at least 16"):
        client_for(catalog, write_token="short")
    with pytest.raises(ConfigError, match="write_token_file"):
        client_for(catalog, write_token_file=tmp_path / "missing")
