"""RO-Crate export (Process Run Crate profile), read back with rocrate and as plain JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from rocrate.rocrate import ROCrate

from tests.catalog.conftest import GEANT4_PROVENANCE
from twinforge import __version__
from twinforge.catalog import PROCESS_RUN_CRATE, Catalog, Creator, export_rocrate
from twinforge.errors import CatalogError

ORCID = "0000-0002-1825-0097"  # the ORCID documentation's example iD (valid checksum)


@pytest.fixture
def dataset(cat: Catalog, make_file) -> list[Path]:
    paths = [make_file("showers_0.h5", b"\x89HDF" + b"a" * 500), make_file("notes.txt", b"hi")]
    cat.add_dataset(
        "siw-electrons",
        description="electrons on the SiW calorimeter",
        provenance=GEANT4_PROVENANCE,
        files=[(paths[0], 500), (paths[1], 0)],
    )
    return paths


def graph(crate_dir: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((crate_dir / "ro-crate-metadata.json").read_text())
    return {e["@id"]: e for e in data["@graph"]}


def ids(value: Any) -> list[str]:
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


def test_dataset_crate_with_data(cat: Catalog, dataset: list[Path], tmp_path: Path) -> None:
    out = export_rocrate(
        cat, "ds-1", tmp_path / "crate", creators=[f"Josiah Carberry,{ORCID}", "A. N. Other"]
    )
    assert out == tmp_path / "crate"
    g = graph(out)
    data = json.loads((out / "ro-crate-metadata.json").read_text())
    assert "https://w3id.org/ro/crate/1.1/context" in data["@context"]

    root = g["./"]
    assert PROCESS_RUN_CRATE in ids(root["conformsTo"])
    assert g[PROCESS_RUN_CRATE]["name"] == "Process Run Crate"
    assert root["name"] == "siw-electrons"
    assert root["license"] == {"@id": "https://spdx.org/licenses/CC-BY-4.0"}
    assert root["datePublished"]
    assert ids(root["author"]) == [f"https://orcid.org/{ORCID}", "#person-a.-n.-other"]

    action = g[ids(root["mentions"])[0]]
    assert action["@type"] == "CreateAction"
    assert (action["startTime"], action["endTime"]) == (
        "2025-01-02T03:04:05+00:00",
        "2025-01-02T04:05:06+00:00",
    )
    tools = {g[i]["name"]: g[i] for i in ids(action["instrument"])}
    assert all(t["@type"] == "SoftwareApplication" for t in tools.values())
    assert tools["twinforge"]["softwareVersion"] == __version__
    assert tools["Geant4"]["softwareVersion"] == "11.2.1"
    assert g[f"https://orcid.org/{ORCID}"] == {
        "@id": f"https://orcid.org/{ORCID}",
        "@type": "Person",
        "name": "Josiah Carberry",
    }
    assert ids(action["agent"]) == ids(root["author"])

    inputs = {g[i]["name"]: g[i]["value"] for i in ids(action["object"])}
    assert all(g[i]["@type"] == "PropertyValue" for i in ids(action["object"]))
    assert inputs["particle"] == "e-"
    assert inputs["energy_max_MeV"] == 64000.0
    assert (inputs["seed 0"], inputs["seed 1"]) == (11, 12)
    assert inputs["physics_list"] == "FTFP_BERT_EMZ"

    results = ids(action["result"])
    assert results == ["data/showers_0.h5", "data/notes.txt"]
    assert set(results) <= set(ids(root["hasPart"]))
    h5 = g["data/showers_0.h5"]
    content = (out / "data" / "showers_0.h5").read_bytes()
    assert content == dataset[0].read_bytes()
    assert h5["sha256"] == hashlib.sha256(content).hexdigest() == cat.files("ds-1")[0].sha256
    assert h5["contentSize"] == str(len(content))
    assert h5["encodingFormat"] == "application/x-hdf5"
    assert g["data/notes.txt"]["encodingFormat"] == "text/plain"
    assert (out / "ro-crate-preview.html").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".crate")] == []

    crate = ROCrate(out)  # the reference implementation reads it back
    assert crate.name == "siw-electrons"
    assert {e.id for e in crate.data_entities} == {"data/showers_0.h5", "data/notes.txt"}
    assert crate.get(action["@id"]).type == "CreateAction"


def test_dataset_crate_without_data(cat: Catalog, dataset: list[Path], tmp_path: Path) -> None:
    out = export_rocrate(cat, "ds-1", tmp_path / "ref", include_data=False, license="MIT")
    assert sorted(p.name for p in out.iterdir()) == [
        "ro-crate-metadata.json",
        "ro-crate-preview.html",
    ]
    g = graph(out)
    uri = dataset[0].resolve().as_uri()
    assert uri.startswith("file:///")
    assert g[uri]["sha256"] == cat.files("ds-1")[0].sha256
    assert g[uri]["contentSize"] == str(dataset[0].stat().st_size)
    assert uri in ids(g["./"]["hasPart"])
    assert g["./"]["license"] == {"@id": "https://spdx.org/licenses/MIT"}
    assert "agent" in g[ids(g["./"]["mentions"])[0]]  # default creator (git user or login)
    assert ROCrate(out).name == "siw-electrons"


def test_existing_empty_directory_is_used(cat: Catalog, dataset: list[Path], tmp_path: Path):
    (tmp_path / "empty").mkdir()
    export_rocrate(cat, "ds-1", tmp_path / "empty", include_data=False)
    assert (tmp_path / "empty" / "ro-crate-metadata.json").is_file()


def test_non_empty_directory_is_refused(cat: Catalog, dataset: list[Path], tmp_path: Path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(CatalogError, match="exists and is not empty"):
        export_rocrate(cat, "ds-1", full)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


def test_changed_file_aborts_without_leftovers(
    cat: Catalog, dataset: list[Path], tmp_path: Path
) -> None:
    dataset[1].write_bytes(b"ho")  # same size, other checksum
    out = tmp_path / "exports" / "crate"
    with pytest.raises(CatalogError, match="file-2 changed since it was catalogued"):
        export_rocrate(cat, "ds-1", out)
    assert list((tmp_path / "exports").iterdir()) == []  # no crate, no temporary directory
    dataset[0].unlink()
    with pytest.raises(CatalogError, match="file-1 is missing"):
        export_rocrate(cat, "ds-1", out)
    assert not out.exists()


def test_model_and_evaluation_crates(
    cat: Catalog, dataset: list[Path], make_file, tmp_path: Path
) -> None:
    weights = make_file("model.safetensors", b"\0" * 32)
    model = cat.add_model(
        "vae-siw",
        architecture="vae",
        files=[weights],
        provenance={"software": {"torch": "2.13.0"}},
    )
    cat.add_training_run(
        model_id=model.id, dataset_id=1, hyperparameters={"lr": 0.001}, metrics={"loss": 0.5}
    )
    g = graph(export_rocrate(cat, model.global_id, tmp_path / "model"))
    action = g[ids(g["./"]["mentions"])[0]]
    assert action["name"] == "Training of vae-siw"
    used = {g[i]["name"]: g[i] for i in ids(action["object"])}
    assert used["siw-electrons"]["@type"] == "Dataset"
    assert used["lr"]["value"] == 0.001
    assert g["data/model.safetensors"]["sha256"] == hashlib.sha256(b"\0" * 32).hexdigest()
    torch = [e for e in g.values() if e.get("name") == "torch"]
    assert torch
    assert torch[0]["softwareVersion"] == "2.13.0"

    report = make_file("report.json", b"{}")
    ev = cat.add_evaluation(model_id=model.id, dataset_id=1, metrics={"auc": 0.55}, files=[report])
    g = graph(export_rocrate(cat, ev.global_id, tmp_path / "eval", include_data=False))
    action = g[ids(g["./"]["mentions"])[0]]
    assert {g[i]["@type"] for i in ids(action["object"])} == {"SoftwareApplication", "Dataset"}
    results = {g[i].get("name"): g[i] for i in ids(action["result"])}
    assert results["auc"]["value"] == 0.55
    assert results["report.json"]["encodingFormat"] == "application/json"


def test_only_datasets_models_evaluations(cat: Catalog, dataset: list[Path], tmp_path: Path):
    with pytest.raises(CatalogError, match="cannot export file-1"):
        export_rocrate(cat, "file-1", tmp_path / "x")
    with pytest.raises(CatalogError, match="no such record: ds-9"):
        export_rocrate(cat, "ds-9", tmp_path / "x")
    with pytest.raises(CatalogError, match="SPDX"):
        export_rocrate(cat, "ds-1", tmp_path / "x", license="not a license")
    assert not (tmp_path / "x").exists()


def test_creators() -> None:
    assert Creator.parse(f"Josiah Carberry, {ORCID}") == Creator("Josiah Carberry", ORCID)
    assert Creator.parse(f"J. C.,https://orcid.org/{ORCID}").orcid == ORCID
    assert Creator.parse("Doe, Jane") == Creator("Doe, Jane")
    assert Creator("Jane").id == "#person-jane"
    with pytest.raises(CatalogError, match="wrong check digit"):
        Creator.parse("Jane,0000-0002-1825-0098")
    with pytest.raises(CatalogError, match="not an ORCID"):
        Creator.parse("Jane,0000-0002-1825")
