"""Regenerate ``catalog-rev0002.sqlite``: a small catalogue at schema revision 0002.

``tests/catalog/test_legacy.py`` opens it with the twinforge under test, which must refuse it
until ``twinforge catalog upgrade`` once the schema has moved past 0002, and then find every
record intact (on SQLite, and copied row by row into PostgreSQL).

It must be written by the twinforge of a commit whose newest migration is 0002 (not by a
work tree whose schema is half-way to the next revision), through the public Catalog API.
From the repository root, with a clean work tree of such a commit::

    git worktree add /tmp/tf-head HEAD
    PYTHONPATH=/tmp/tf-head/src .venv/bin/python tests/catalog/data/make_legacy_catalog.py
    git worktree remove /tmp/tf-head

The script refuses to run when the twinforge it imports has another head revision. The files
it registers are the tiny text files of ``legacy-files/`` beside it; the catalogue stores their
absolute paths (those of the machine that made it), which the tests never open.

Content: campaign ``legacy-scan`` with 4 jobs (done with an output, failed with an exit code
and stderr tail, running, pending); dataset ``legacy-electrons`` (2 files, 25 events) from that
campaign; model ``legacy-vae`` (1 file); a training run of the model on the dataset; an
evaluation of the model against the dataset with metrics.

After writing, the file is vacuumed with 1 KiB pages and the rollback journal (a storage
detail, not a record: twinforge switches it back to WAL on first open) to keep it < 100 KB.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import twinforge
from twinforge.catalog import Catalog, JobSpec, migrate

HERE = Path(__file__).resolve().parent
FILES = HERE / "legacy-files"
REVISION = "0002"
DEFAULT_OUT = HERE / f"catalog-rev{REVISION}.sqlite"


def write(cat: Catalog) -> None:
    """The fixture's records, through the API of the twinforge at revision 0002."""
    camp = cat.add_campaign(
        "legacy-scan",
        description="an electron energy scan, catalogued at schema revision 0002",
        config={
            "simulator": {"name": "synthetic-test", "detector": "tiny"},
            "total_points": 40,
            "points_per_job": 10,
            "space": {"energy": {"min": 1000.0, "max": 64000.0}},
        },
        provenance={"user": "legacy", "twinforge": twinforge.__version__},
    )
    cat.add_jobs(
        camp,
        [
            JobSpec({"energy_MeV": 1000.0}, seed=1, key="job-000000"),
            JobSpec({"energy_MeV": 4000.0}, seed=2, key="job-000001"),
            JobSpec({"energy_MeV": 16000.0}, seed=3, key="job-000002"),
            JobSpec({"energy_MeV": 64000.0}, seed=2**63 - 1, key="job-000003"),
        ],
    )
    done = cat.claim(camp, worker="node1:101")
    assert done is not None
    assert done.key == "job-000000"
    cat.set_job_state(done.id, "done", output_path=FILES / "run-0.txt", expected="running")
    failed = cat.claim(camp, worker="node2:202")
    assert failed is not None
    assert failed.key == "job-000001"
    cat.set_job_state(
        failed.id,
        "failed",
        error="simulator exited with status 3",
        exit_code=3,
        stderr_tail="G4Exception: boom\nAborting run",
        expected="running",
    )
    running = cat.claim(camp, worker="node7:4242")
    assert running is not None
    assert running.key == "job-000002"  # job-000003 stays pending

    ds = cat.add_dataset(
        "legacy-electrons",
        description="electrons 1-64 GeV (two tiny stand-in files)",
        provenance={"simulator": {"name": "synthetic-test"}, "seeds": [1, 2]},
        files=[
            (FILES / "run-0.txt", 10),
            (FILES / "run-1.txt", 15),
        ],
        campaign_id=camp,
    )
    model = cat.add_model(
        "legacy-vae",
        architecture="vae",
        path=FILES,
        files=[FILES / "model.json"],
        provenance={"torch": "2.5.1"},
    )
    cat.add_training_run(
        model_id=model,
        dataset_id=ds,
        hyperparameters={"lr": 0.001, "epochs": 3, "batch_size": 64},
        metrics={"loss": 0.25, "val_loss": 0.3},
        started_at=datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 30, 9, 30, tzinfo=UTC),
    )
    cat.add_evaluation(
        model_id=model,
        dataset_id=ds,
        metrics={"auc_low_level": 0.61, "fpd": 0.012, "per_energy": {"1000": 0.6}},
        description="validation against the legacy dataset",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    args = parser.parse_args()
    head = migrate.head_revision()
    if head != REVISION:
        raise SystemExit(
            f"twinforge from {Path(twinforge.__file__).parent} has head revision {head}, not "
            f"{REVISION}: run this with PYTHONPATH=<work tree of a commit at {REVISION}>/src"
        )
    out = args.out.resolve()
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        db = Path(tmp) / "catalog.sqlite"
        with Catalog.open(db) as cat:
            write(cat)
        con = sqlite3.connect(db, isolation_level=None)
        try:
            revision = con.execute("SELECT version_num FROM twinforge_alembic_version").fetchone()
            assert revision == (REVISION,), revision
            con.execute("PRAGMA journal_mode = DELETE")
            con.execute("PRAGMA page_size = 1024")
            con.execute("VACUUM")
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            con.close()
        os.replace(db, out)
    print(f"wrote {out} ({out.stat().st_size} bytes, revision {REVISION}) with twinforge "
          f"{twinforge.__version__} from {Path(twinforge.__file__).parent}")  # fmt: skip


if __name__ == "__main__":
    main()
