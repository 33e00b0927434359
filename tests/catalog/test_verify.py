"""Re-hashing files against the catalogue."""

from __future__ import annotations

import pytest

from twinforge.catalog import Catalog, JobSpec
from twinforge.errors import CatalogError


@pytest.fixture
def dataset(cat: Catalog, make_file) -> list:
    paths = [make_file(f"f{i}.h5", bytes([i]) * 1000) for i in range(3)]
    cat.add_dataset("d", files=[(p, 10) for p in paths])
    return paths


def test_all_ok(cat: Catalog, dataset: list) -> None:
    results = cat.verify()
    assert [r.id for r in results] == ["file-1", "file-2", "file-3"]
    assert all(r.ok and r.actual_sha256 == r.expected_sha256 for r in results)


def test_modified_truncated_and_missing_files(cat: Catalog, dataset: list) -> None:
    dataset[0].write_bytes(b"\xff" * 1000)  # same size, other content
    dataset[1].write_bytes(b"\x01" * 10)  # truncated
    dataset[2].unlink()
    results = {r.id: r for r in cat.verify("ds-1")}
    assert results["file-1"].status == "sha256 mismatch"
    assert results["file-1"].actual_sha256 != results["file-1"].expected_sha256
    assert results["file-2"].status == "size mismatch"
    assert (results["file-2"].expected_size, results["file-2"].actual_size) == (1000, 10)
    assert results["file-3"].status == "missing"
    assert not any(r.ok for r in results.values())


def test_scopes_and_progress(cat: Catalog, dataset: list, make_file) -> None:
    calls = []
    results = cat.verify("file-2", progress=lambda done, total, r: calls.append((done, total)))
    assert [r.id for r in results] == ["file-2"]
    assert calls == [(1, 1)]
    model_file = make_file("weights.safetensors", b"w")
    cat.add_model("m", files=[model_file])
    assert [r.id for r in cat.verify("model-1")] == ["file-4"]
    with pytest.raises(CatalogError, match="no such record: ds-5"):
        cat.verify("ds-5")
    run = cat.add_training_run()
    with pytest.raises(CatalogError, match="no files to verify"):
        cat.verify(run.global_id)


def test_job_outputs(cat: Catalog, make_file) -> None:
    camp = cat.add_campaign("c")
    cat.add_jobs(camp, [JobSpec({"i": 1}, seed=1), JobSpec({"i": 2}, seed=2)])
    out = make_file("job-out.h5", b"abc")
    job = cat.claim(camp)
    assert job is not None
    cat.set_job_state(job, "done", output_path=out)
    assert [(r.id, r.status) for r in cat.verify("camp-1")] == [("job-1", "ok")]
    out.write_bytes(b"abd")
    assert [r.status for r in cat.verify("job-1")] == ["sha256 mismatch"]
    assert [r.id for r in cat.verify()] == ["job-1"]
    with pytest.raises(CatalogError, match="job-2 has no recorded output"):
        cat.verify("job-2")
