"""Downloads never leave the catalogue's storage: traversal in the URL, catalogued files
outside it, symbolic links out of it, changed and missing files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import Demo, client_for
from twinforge.catalog import Catalog


@pytest.mark.parametrize(
    "path",
    [
        "/files/../catalog.sqlite",
        "/files/..%2Fcatalog.sqlite",
        "/files/..%2F..%2F..%2Fetc%2Fpasswd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/file-1/../../catalog.sqlite",
        "/files//etc/passwd",
        "/evaluations/eval-1/report/../../../catalog.sqlite",
        "/datasets/ds-1/ro-crate.zip/../../../../etc/passwd",
    ],
)
def test_traversal_in_the_url_serves_nothing(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (400, 404)
    assert b"SQLite format" not in response.content
    assert b"root:" not in response.content


def test_a_catalogued_file_outside_the_storage_is_refused(
    catalog: Catalog, demo: Demo, tmp_path: Path
) -> None:
    secret = tmp_path / "elsewhere" / "secret.h5"
    secret.parent.mkdir()
    secret.write_bytes(b"not for the web")
    ds = catalog.add_dataset("outside", files=[(secret, 1)])
    (f,) = catalog.files(ds)
    with client_for(catalog) as client:
        response = client.get(f"/files/{f.global_id}")
        assert response.status_code == 403
        assert b"not for the web" not in response.content
        assert "outside this server&#39;s storage" in response.text
        crate = client.get(f"/datasets/{ds.global_id}/ro-crate.zip", params={"data": "true"})
        assert crate.status_code == 403


def test_a_link_out_of_the_storage_is_refused(catalog: Catalog, demo: Demo, tmp_path: Path) -> None:
    target = tmp_path / "outside.h5"
    target.write_bytes(b"linked secret")
    link = demo.storage / "data" / "link.h5"
    os.symlink(target, link)
    # catalogued by its literal path (as a catalogue written elsewhere might hold it)
    ds = catalog.add_dataset("linked", files=[(target, 1)])
    from sqlalchemy import text

    with catalog._engine.begin() as conn:  # point the row at the link inside the storage
        conn.execute(text("UPDATE files SET path = :p WHERE dataset_id = :d"),
                     {"p": str(link), "d": ds.id})  # fmt: skip
    (f,) = catalog.files(ds)
    assert f.path == str(link)
    with client_for(catalog) as client:
        response = client.get(f"/files/{f.global_id}")
        assert response.status_code == 403
        assert b"linked secret" not in response.content


def test_changed_and_missing_files(client: TestClient, demo: Demo) -> None:
    demo.shower_file.write_bytes(b"tampered")
    changed = client.get("/files/file-1")
    assert changed.status_code == 409
    assert "changed since it was catalogued" in changed.text
    demo.shower_file.unlink()
    gone = client.get("/files/file-1")
    assert gone.status_code == 410


def test_storage_is_configurable(catalog: Catalog, demo: Demo, tmp_path: Path) -> None:
    with client_for(catalog, storage=[tmp_path / "somewhere-else"]) as client:
        assert client.get("/files/file-1").status_code == 403
    with client_for(catalog, storage=[demo.storage / "data"]) as client:
        assert client.get("/files/file-1").status_code == 200
