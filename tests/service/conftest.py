"""A small catalogue with one of everything the web catalogue shows, and a client for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="pip install 'twinforge[web]'")

from fastapi.testclient import TestClient

from twinforge.catalog import ENV_VAR, Catalog
from twinforge.service.app import create_app
from twinforge.service.config import ServeConfig

TOKEN = "s3cret-token-for-tests-0123456789"

REPORT = """<!doctype html><html><head><title>report</title></head>
<body><h1>Validation report</h1><p id="auc">AUC 0.61</p></body></html>"""


def classifier(auc: float, budget: str = "challenge", comparable: bool = True) -> dict:
    return {"auc": auc, "auc_min": auc - 0.01, "auc_max": auc + 0.01, "budget": budget,
            "comparable": comparable}  # fmt: skip


@dataclass
class Demo:
    """IDs of what :func:`demo_catalog` made, and its folders."""

    path: Path
    storage: Path
    campaign: str
    dataset: str
    reference: str
    model: str
    fast_model: str
    surrogate: str
    run: str
    evaluation: str
    benchmark: str
    shower_file: Path


@pytest.fixture(autouse=True)
def _no_catalog_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("TWINFORGE_SERVE_TOKEN", raising=False)


def build(root: Path, url: str | None = None) -> Demo:
    """Write the files under ``root`` (the storage) and the catalogue there, or at ``url``
    (a PostgreSQL database)."""
    root.mkdir(parents=True, exist_ok=True)
    files = root / "data"
    files.mkdir()
    shower = files / "showers-0.h5"
    shower.write_bytes(bytes(range(256)) * 40)  # 10 240 bytes, any content
    (files / "showers-1.h5").write_bytes(b"second shard " * 100)
    ref_file = files / "reference.h5"
    ref_file.write_bytes(b"reference showers " * 50)
    model_dir = root / "models" / "flow"
    model_dir.mkdir(parents=True)
    (model_dir / "config.json").write_text('{"family": "flow"}')
    (model_dir / "weights.safetensors").write_bytes(b"\0" * 64)
    fast_dir = root / "models" / "vae"
    fast_dir.mkdir(parents=True)
    (fast_dir / "config.json").write_text('{"family": "vae"}')
    gp_dir = root / "models" / "gp"
    gp_dir.mkdir(parents=True)
    (gp_dir / "surrogate.json").write_text("{}")
    report = root / "report" / "report.html"
    report.parent.mkdir()
    report.write_text(REPORT)
    metrics = root / "report" / "metrics.json"
    metrics.write_text("{}")
    path = root / "catalog.sqlite"
    code = {"name": "Geant4", "version": "11.4.1"}
    with Catalog.open(url or path) as cat:
        camp = cat.add_campaign(
            "siw-electrons",
            description="electrons 1-16 GeV in the siw detector",
            config={"simulator": {"name": "geant4", "detector": "siw"}, "total_points": 2000,
                    "simulator_setup": {"code": code}},
        )  # fmt: skip
        cat.add_jobs(camp, [{"parameters": {"energy": 1000.0 * i}, "seed": i} for i in range(3)])
        job = cat.claim(camp)
        assert job is not None
        cat.set_job_state(job, "failed", error="boom", exit_code=3, stderr_tail="Segfault")
        prov = {"simulator": "geant4", "code": code, "detector": "siw", "campaign": camp.name}
        ds = cat.add_dataset(
            "siw-electrons", description="2000 electron showers", campaign_id=camp,
            files=[(shower, 1000), (files / "showers-1.h5", 1000)], provenance=prov,
        )  # fmt: skip
        ref = cat.add_dataset("siw-reference", files=[(ref_file, 500)], provenance=prov)
        model = cat.add_model("flow-siw", architecture="flow", path=model_dir,
                              provenance={"training_files": [str(shower)]})  # fmt: skip
        fast = cat.add_model("vae-siw", architecture="vae", path=fast_dir)
        run = cat.add_training_run(model_id=model, dataset_id=ds, hyperparameters={"lr": 1e-3},
                                   metrics={"val/loss": 12.5})  # fmt: skip
        gp = cat.add_model("resolution-gp", architecture="surrogate-gp", path=gp_dir,
                           provenance={"campaign": camp.name})  # fmt: skip
        ev = cat.add_evaluation(
            model_id=model, dataset_id=ref, description="flow-siw vs ds-2",
            metrics={"classifier_low": classifier(0.61), "classifier_high": classifier(0.97),
                     "fpd": {"value": 0.52, "error": 0.01}, "kpd": {"value": 1e-3, "error": 1e-4},
                     "noise_floor": {"classifier_low": classifier(0.50),
                                     "fpd": {"value": 0.06, "error": 0.01}}},
            files=[report, metrics],
        )  # fmt: skip
        cat.add_evaluation(
            model_id=fast, dataset_id=ref, description="vae-siw vs ds-2",
            metrics={"classifier_low": classifier(0.93, "quick", False),
                     "classifier_high": classifier(0.99, "quick", False)},
        )  # fmt: skip
        bench = cat.add_evaluation(
            model_id=model, description="benchmark of the flow model",
            metrics={"results": [{"backend": "onnxruntime", "batch": 1000,
                                  "median_ms_per_shower": 3.1, "speedup_vs_geant4": 58.0},
                                 {"backend": "torch", "batch": 1000,
                                  "median_ms_per_shower": 4.2, "speedup_vs_geant4": 43.0}],
                     "geant4": {"median_s_per_shower": 0.18, "n": 20}},
            provenance={"kind": "benchmark"},
        )  # fmt: skip
        cat.add_evaluation(
            model_id=fast, description="benchmark of the vae model",
            metrics={"results": [{"backend": "onnxruntime", "batch": 1000,
                                  "median_ms_per_shower": 0.05, "speedup_vs_geant4": 3600.0}]},
            provenance={"kind": "benchmark"},
        )  # fmt: skip
        cat.tag(ds, "siw", "electrons")
    return Demo(path, root, camp.global_id, ds.global_id, ref.global_id, model.global_id,
                fast.global_id, gp.global_id, run.global_id, ev.global_id, bench.global_id,
                shower)  # fmt: skip


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    return build(tmp_path / "store")


@pytest.fixture
def catalog(demo: Demo) -> Iterator[Catalog]:
    with Catalog.open(demo.path, create=False) as cat:
        yield cat


def client_for(catalog: Catalog, **settings: object) -> TestClient:
    return TestClient(create_app(catalog, ServeConfig(**settings)), raise_server_exceptions=False)


@pytest.fixture
def client(catalog: Catalog) -> Iterator[TestClient]:
    with client_for(catalog) as c:
        yield c


@pytest.fixture
def writer(catalog: Catalog) -> Iterator[TestClient]:
    """A client of a server with a write token."""
    with client_for(catalog, write_token=TOKEN) as c:
        yield c
