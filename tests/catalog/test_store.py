"""Round trips of every table through the Catalog API, on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.catalog.conftest import BACKENDS, GEANT4_PROVENANCE
from twinforge.catalog import (
    CampaignRecord,
    Catalog,
    DatasetRecord,
    EvaluationRecord,
    FileRecord,
    FileSpec,
    JobRecord,
    JobSpec,
    ModelRecord,
    TrainingRunRecord,
)
from twinforge.errors import CatalogError

CATALOG_BACKENDS = BACKENDS  # every test runs on an SQLite file and on a PostgreSQL database


def test_dataset_and_files_round_trip(cat: Catalog, make_file) -> None:
    a = make_file("run0.h5", b"x" * 3000)
    b = make_file("run1.h5", b"y" * 5000)
    ds = cat.add_dataset(
        "siw-electrons",
        description="electrons 1-64 GeV",
        provenance=GEANT4_PROVENANCE,
        files=[(a, 100), FileSpec(b, 200, {"seed": 12})],
    )
    assert isinstance(ds, DatasetRecord)
    assert ds.global_id == "ds-1"
    assert (ds.n_files, ds.n_events, ds.size_bytes) == (2, 300, 8000)
    assert ds.created_at.tzinfo is not None
    assert cat.get("ds-1") == ds
    assert cat.get("ds-1").provenance == GEANT4_PROVENANCE

    files = cat.files("ds-1")
    assert [f.global_id for f in files] == ["file-1", "file-2"]
    first = files[0]
    assert isinstance(first, FileRecord)
    assert first.path == str(a.resolve())
    assert first.sha256 == hashlib.sha256(b"x" * 3000).hexdigest()
    assert (first.size_bytes, first.n_events, first.dataset_id, first.owner) == (
        3000,
        100,
        1,
        "ds-1",
    )
    assert files[1].provenance == {"seed": 12}
    assert cat.get("file-2") == files[1]


def test_add_file_computes_checksum_and_size(cat: Catalog, make_file) -> None:
    ds = cat.add_dataset("d")
    content = bytes(range(256)) * 9000  # > one 1 MiB chunk
    f = cat.add_file(ds.id, make_file("big.h5", content), n_events=7)
    assert f.sha256 == hashlib.sha256(content).hexdigest()
    assert f.size_bytes == len(content)
    assert cat.get(ds.global_id).n_events == 7  # type: ignore[attr-defined]


def test_file_errors(cat: Catalog, make_file, tmp_path: Path) -> None:
    ds = cat.add_dataset("d")
    path = make_file("a.h5")
    cat.add_file(ds, path, n_events=1)
    with pytest.raises(CatalogError, match=r"already in ds-1 \(file-1\)"):
        cat.add_file(ds, path, n_events=1)
    with pytest.raises(CatalogError, match="file not found"):
        cat.add_file(ds, tmp_path / "nope.h5", n_events=1)
    with pytest.raises(CatalogError, match="non-negative"):
        cat.add_file(ds, make_file("b.h5"), n_events=-1)
    with pytest.raises(CatalogError, match="needs its number of events"):
        cat.add_dataset("e", files=[make_file("c.h5")])
    with pytest.raises(CatalogError, match="no such record: ds-9"):
        cat.add_file("ds-9", path, n_events=1)
    with pytest.raises(CatalogError, match="not one of the datasets"):
        cat.add_file("job-1", path, n_events=1)
    assert cat.count("files") == 1
    assert cat.count("datasets") == 1  # the failed add_dataset left nothing behind


def test_names_are_unique_and_not_ids(cat: Catalog) -> None:
    cat.add_dataset("siw")
    with pytest.raises(CatalogError, match=r"dataset 'siw' already exists \(ds-1\)"):
        cat.add_dataset("siw")
    with pytest.raises(CatalogError, match="looks like a catalogue ID"):
        cat.add_dataset("ds-4")
    with pytest.raises(CatalogError, match="invalid dataset name"):
        cat.add_dataset(" padded ")
    assert cat.find("siw") == cat.get("ds-1")
    assert cat.find("missing") is None


def test_records_are_frozen_copies(cat: Catalog) -> None:
    ds = cat.add_dataset("d", provenance={"a": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"  # type: ignore[misc]
    ds.provenance["a"] = 2
    assert cat.get("ds-1").provenance == {"a": 1}


def test_provenance_is_json(cat: Catalog, tmp_path: Path) -> None:
    when = datetime(2025, 1, 1, tzinfo=UTC)
    ds = cat.add_dataset("d", provenance={"dir": tmp_path, "when": when, "tags": ("a", "b")})
    assert ds.provenance == {"dir": str(tmp_path), "when": when.isoformat(), "tags": ["a", "b"]}
    with pytest.raises(CatalogError, match="not valid JSON"):
        cat.add_dataset("e", provenance={"x": float("nan")})
    with pytest.raises(CatalogError, match="not valid JSON"):
        cat.add_dataset("f", provenance={"x": object()})


def test_campaign_and_jobs_round_trip(cat: Catalog) -> None:
    camp = cat.add_campaign("scan", config={"energies": [1, 2]}, provenance={"user": "me"})
    assert isinstance(camp, CampaignRecord)
    assert camp.global_id == "camp-1"
    jobs = cat.add_jobs(
        camp,
        [
            JobSpec({"energy": 1000.0}, seed=1),
            {"parameters": {"energy": 2000.0}, "seed": 2, "key": "e2"},
            JobSpec({"energy": 3000.0}, seed=2**63 - 1),
        ],
    )
    assert [j.global_id for j in jobs] == ["job-1", "job-2", "job-3"]
    assert all(isinstance(j, JobRecord) and j.state == "pending" for j in jobs)
    assert jobs[1].key == "e2"
    assert jobs[2].seed == 2**63 - 1
    assert cat.get("job-1") == jobs[0]
    assert cat.jobs("camp-1") == jobs
    again = cat.add_jobs(camp.id, [JobSpec({"energy": 1000.0}, seed=1)])  # resume: no new row
    assert again == [jobs[0]]
    assert cat.count("jobs") == 3
    with pytest.raises(CatalogError, match="other parameters"):
        cat.add_jobs(camp.id, [{"parameters": {"energy": 9.0}, "key": "e2"}])
    with pytest.raises(CatalogError, match="seed"):
        cat.add_jobs(camp.id, [JobSpec({}, seed=-1)])
    got = cat.get("camp-1")
    assert isinstance(got, CampaignRecord)
    assert got.job_counts == {"pending": 3, "running": 0, "done": 0, "failed": 0}
    assert cat.find("scan", "campaigns") == got


def test_job_state_machine(cat: Catalog, make_file) -> None:
    camp = cat.add_campaign("c")
    cat.add_jobs(camp.id, [JobSpec({"i": i}, seed=i) for i in range(3)])

    job = cat.claim(camp.id, worker="w1")
    assert job is not None
    assert (job.global_id, job.state, job.attempts, job.worker) == ("job-1", "running", 1, "w1")
    assert job.started_at is not None

    out = make_file("out1.h5", b"showers")
    done = cat.set_job_state(job.id, "done", output_path=out)
    assert done.state == "done"
    assert done.output_path == str(out.resolve())
    assert done.output_sha256 == hashlib.sha256(b"showers").hexdigest()
    assert done.finished_at is not None
    assert done.finished_at >= done.started_at  # type: ignore[operator]
    with pytest.raises(CatalogError, match="cannot change state from 'done' to 'running'"):
        cat.set_job_state(job.id, "running")

    second = cat.claim(camp.id)
    assert second is not None
    assert second.global_id == "job-2"
    failed = cat.set_job_state(second.id, "failed", error="G4Exception: boom")
    assert (failed.state, failed.error) == ("failed", "G4Exception: boom")
    assert cat.jobs(camp.id, state="failed") == [failed]

    with pytest.raises(CatalogError, match=r"expected 'running'"):
        cat.set_job_state("job-3", "failed", expected="running")
    with pytest.raises(CatalogError, match="unknown job state"):
        cat.set_job_state("job-3", "lost")  # type: ignore[arg-type]
    with pytest.raises(CatalogError, match="no such record: job-99"):
        cat.set_job_state("job-99", "running")

    third = cat.claim(camp.id)
    assert third is not None
    assert third.global_id == "job-3"
    assert cat.claim(camp.id) is None  # nothing pending

    # resume after a crash: running jobs back to pending, failed ones retried
    assert cat.reset_jobs(camp.id) == 1
    assert cat.reset_jobs(camp.id, states=("failed",), max_attempts=1) == 0
    assert cat.reset_jobs(camp.id, states=("failed",), max_attempts=2) == 1
    assert cat.job_counts(camp.id) == {"pending": 2, "running": 0, "done": 1, "failed": 0}
    retried = cat.claim(camp.id)
    assert retried is not None
    assert (retried.global_id, retried.attempts) == ("job-2", 2)
    with pytest.raises(CatalogError, match="no such record: camp-7"):
        cat.claim("camp-7")


def test_released_jobs_do_not_count_the_attempt(cat: Catalog, make_file) -> None:
    """A deliberate stop hands running jobs back as they were: pending, attempt not counted;
    a job that finished meanwhile stays done."""
    camp = cat.add_campaign("c")
    cat.add_jobs(camp.id, [JobSpec({"i": i}, seed=i) for i in range(3)])
    first, second = cat.claim(camp.id), cat.claim(camp.id)
    assert first is not None
    assert second is not None
    cat.set_job_state(second.id, "done", output_path=make_file("o.h5", b"x"))
    assert cat.release_jobs([first.id, second.id]) == 1
    assert cat.release_jobs([]) == 0
    jobs = {j.global_id: j for j in cat.jobs(camp.id)}
    assert (jobs["job-1"].state, jobs["job-1"].attempts, jobs["job-1"].worker) == (
        "pending", 0, None)  # fmt: skip
    assert (jobs["job-2"].state, jobs["job-2"].attempts) == ("done", 1)
    again = cat.claim(camp.id)
    assert again is not None
    assert (again.global_id, again.attempts) == ("job-1", 1)


def test_model_run_and_evaluation_round_trip(cat: Catalog, make_file, tmp_path: Path) -> None:
    ds = cat.add_dataset("train", files=[(make_file("t.h5"), 10)])
    weights = tmp_path / "vae"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"\0" * 64)
    (weights / "config.json").write_text("{}")
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    run = cat.add_training_run(
        dataset_id=ds.id, hyperparameters={"lr": 1e-3, "epochs": 5}, started_at=start
    )
    assert isinstance(run, TrainingRunRecord)
    assert run.global_id == "run-1"
    assert run.started_at == start

    model = cat.add_model("vae-siw", architecture="vae", path=weights, provenance={"torch": "2"})
    assert isinstance(model, ModelRecord)
    assert model.global_id == "model-1"
    model_files = cat.files(model)
    assert [Path(f.path).name for f in model_files] == ["config.json", "model.safetensors"]
    assert all(f.n_events is None and f.owner == "model-1" for f in model_files)

    later = start + timedelta(hours=2)
    run = cat.update_training_run(
        run.id, model_id=model.id, metrics={"loss": 0.1}, finished_at=later
    )
    assert (run.model_id, run.metrics, run.finished_at) == (1, {"loss": 0.1}, later)
    assert cat.get("run-1") == run

    report = make_file("report.json", b'{"auc": 0.6}')
    ev = cat.add_evaluation(
        model_id=model.id, dataset_id=ds.id, metrics={"auc": 0.6}, files=[report]
    )
    assert isinstance(ev, EvaluationRecord)
    assert ev.global_id == "eval-1"
    assert cat.get("eval-1") == ev
    assert [f.owner for f in cat.files(ev)] == ["eval-1"]
    with pytest.raises(CatalogError, match="no such record: model-5"):
        cat.add_evaluation(model_id=5)


def test_get_and_list(cat: Catalog, make_file) -> None:
    cat.add_dataset("a", files=[(make_file("a.h5"), 1)])
    cat.add_dataset("b")
    cat.add_campaign("c")
    assert [r.global_id for r in cat.list("datasets")] == ["ds-1", "ds-2"]
    assert [r.global_id for r in cat.list("ds", limit=1)] == ["ds-1"]
    assert [r.global_id for r in cat.list()] == ["ds-1", "ds-2", "file-1", "camp-1"]
    assert cat.list("models") == []
    with pytest.raises(CatalogError, match="no such record: ds-99"):
        cat.get("ds-99")
    with pytest.raises(CatalogError, match="not a catalogue ID"):
        cat.get("banana")
    assert cat.get("ds-1").to_dict()["id"] == "ds-1"


def test_timestamps_are_utc(cat: Catalog) -> None:
    local = datetime(2025, 6, 1, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    run = cat.add_training_run(started_at=local, finished_at=datetime(2025, 6, 1, 15, 0))
    assert run.started_at == local
    assert run.started_at.utcoffset() == timedelta(0)  # type: ignore[union-attr]
    assert run.finished_at == datetime(2025, 6, 1, 15, 0, tzinfo=UTC)  # naive means UTC
    assert cat.get("run-1") == run
