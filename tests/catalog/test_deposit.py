"""Data-repository deposits: DataCite 4.5 and Zenodo metadata, the RO-Crate, both validated
offline (the datacite package's JSON schema, roc-validator), the directory written atomically."""

from __future__ import annotations

import copy
import json
import logging
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.catalog.conftest import GEANT4_PROVENANCE
from twinforge.catalog import Catalog, JobSpec
from twinforge.catalog import deposit as deposit_module
from twinforge.catalog.deposit import (
    CATALOGUE_ID_TYPE,
    RelatedIdentifier,
    datacite_metadata,
    export_deposit,
    validate_crate,
    validate_datacite,
    zenodo_metadata,
)
from twinforge.errors import CatalogError

ORCID = "0000-0002-1825-0097"  # the ORCID documentation's example iD (valid checksum)
CREATORS = [f"Josiah Carberry,{ORCID}", "Doe, Jane"]
RELATED = [
    "IsSupplementTo:doi:10.5281/zenodo.1234",
    "cites:arXiv:2410.21611",
    "IsDocumentedBy:https://example.org/twinforge/notes",
]


@pytest.fixture
def records(cat: Catalog, make_file) -> dict[str, str]:
    """A Geant4 dataset made by a campaign, a model trained on it, an evaluation of the model."""
    camp = cat.add_campaign("siw-scan", config={"n_showers": 20})
    cat.add_jobs(camp, [JobSpec({"energy_MeV": 1000.0}, seed=11)])
    ds = cat.add_dataset(
        "siw-electrons",
        description="electrons on the SiW calorimeter",
        provenance=GEANT4_PROVENANCE,
        files=[(make_file("showers_0.h5", b"\x89HDF" + b"a" * 500), 20)],
        campaign_id=camp.id,
    )
    weights = make_file("vae/weights.safetensors", b"w" * 64)
    model = cat.add_model("vae-small", architecture="vae", path=weights.parent)
    cat.add_training_run(model_id=model.id, dataset_id=ds.id, hyperparameters={"epochs": 3})
    ev = cat.add_evaluation(model_id=model.id, dataset_id=ds.id, metrics={"auc": 0.61})
    return {"dataset": ds.global_id, "model": model.global_id, "evaluation": ev.global_id}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Refuse, and record, every attempt to open a network connection (a library may catch
    the error): validation is offline, so the list stays empty."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield attempts
    assert attempts == [], "network access attempted"


def metadata(cat: Catalog, global_id: str, **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"creators": CREATORS, "license": "CC-BY-4.0", "version": "1.0"}
    return datacite_metadata(cat, global_id, **(args | kwargs))


def graph(crate_dir: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((crate_dir / "ro-crate-metadata.json").read_text())
    return {e["@id"]: e for e in data["@graph"]}


def ids(value: Any) -> list[str]:
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


# ------------------------------------------------------------------------------ DataCite


def test_dataset_datacite(cat: Catalog, records: dict[str, str]) -> None:
    dc = metadata(cat, records["dataset"], related=RELATED, keywords=["calorimeter"])
    validate_datacite(dc)

    assert dc["schemaVersion"] == "http://datacite.org/schema/kernel-4"
    assert dc["types"]["resourceTypeGeneral"] == "Dataset"
    assert dc["titles"] == [{"title": "siw-electrons"}]
    assert dc["publisher"] == {"name": "twinforge"}
    assert dc["publicationYear"] == str(datetime.now(UTC).year)
    assert dc["version"] == "1.0"
    assert dc["language"] == "en"
    josiah, jane = dc["creators"]
    assert josiah == {
        "name": "Carberry, Josiah",
        "nameType": "Personal",
        "givenName": "Josiah",
        "familyName": "Carberry",
        "nameIdentifiers": [
            {
                "nameIdentifier": f"https://orcid.org/{ORCID}",
                "nameIdentifierScheme": "ORCID",
                "schemeUri": "https://orcid.org",
            }
        ],
    }
    assert (jane["name"], jane["givenName"], jane["familyName"]) == ("Doe, Jane", "Jane", "Doe")
    assert "nameIdentifiers" not in jane
    assert dc["rightsList"] == [
        {
            "rights": "Creative Commons Attribution 4.0 International",
            "rightsUri": "https://spdx.org/licenses/CC-BY-4.0",
            "rightsIdentifier": "CC-BY-4.0",
            "rightsIdentifierScheme": "SPDX",
            "schemeUri": "https://spdx.org/licenses/",
        }
    ]
    assert {"alternateIdentifier": "ds-1", "alternateIdentifierType": CATALOGUE_ID_TYPE} in dc[
        "alternateIdentifiers"
    ]
    assert dc["formats"] == ["application/x-hdf5"]
    assert dc["sizes"] == ["1 file", "504 bytes", "20 events"]
    assert dc["dates"][0]["dateType"] == "Created"
    assert dc["dates"][0]["date"] == cat.get("ds-1").created_at.date().isoformat()
    abstract, methods = dc["descriptions"]
    assert abstract["descriptionType"] == "Abstract"
    assert abstract["description"].startswith("electrons on the SiW calorimeter")
    assert methods["descriptionType"] == "Methods"
    assert "Geant4 11.2.1" in methods["description"]
    assert "camp-1" in methods["description"]
    subjects = [s["subject"] for s in dc["subjects"]]
    assert subjects[0] == "FOS: Physical sciences"
    assert {"Geant4", "FTFP_BERT_EMZ", "calorimeter"} <= set(subjects)

    related = {(r["relationType"], r["relatedIdentifier"]): r for r in dc["relatedIdentifiers"]}
    assert related["IsCompiledBy", "https://geant4.web.cern.ch/"]["resourceTypeGeneral"] == (
        "Software"
    )
    assert related["IsSupplementTo", "10.5281/zenodo.1234"]["relatedIdentifierType"] == "DOI"
    assert related["Cites", "arXiv:2410.21611"]["relatedIdentifierType"] == "arXiv"
    url = related["IsDocumentedBy", "https://example.org/twinforge/notes"]
    assert url["relatedIdentifierType"] == "URL"
    # catalogue records have no global identifier: related items, named by title and ID
    items = {(i["relationType"], i["relatedItemType"]): i for i in dc["relatedItems"]}
    assert "camp-1" in items["IsDerivedFrom", "Other"]["titles"][0]["title"]
    assert "model-1" in items["IsSourceOf", "Model"]["titles"][0]["title"]


def test_model_and_evaluation_datacite(cat: Catalog, records: dict[str, str]) -> None:
    model = metadata(cat, records["model"], title="A VAE of SiW showers", version="2.1")
    validate_datacite(model)
    assert model["types"] == {
        "resourceTypeGeneral": "Model",
        "resourceType": "Trained generative model",
    }
    assert model["titles"] == [{"title": "A VAE of SiW showers"}]
    assert model["formats"] == ["application/octet-stream"]
    (item,) = model["relatedItems"]
    assert (item["relationType"], item["relatedItemType"]) == ("IsDerivedFrom", "Dataset")
    assert "ds-1" in item["titles"][0]["title"]

    # with the URL of a web catalogue, related records become URL related identifiers
    ev = metadata(cat, records["evaluation"], catalog_url="https://calo.example.org/records/")
    validate_datacite(ev)
    assert ev["types"]["resourceTypeGeneral"] == "Dataset"
    assert "relatedItems" not in ev
    rel = {r["relatedIdentifier"]: r["relationType"] for r in ev["relatedIdentifiers"]}
    assert rel["https://calo.example.org/records/model-1"] == "Reviews"
    assert rel["https://calo.example.org/records/ds-1"] == "References"
    assert {
        "alternateIdentifier": "https://calo.example.org/records/eval-1",
        "alternateIdentifierType": "URL",
    } in ev["alternateIdentifiers"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda m: m["creators"][0].pop("name"),
            "invalid DataCite metadata: creators[0]: 'name' is a required property",
        ),
        (
            lambda m: m["creators"][0]["nameIdentifiers"][0].pop("nameIdentifierScheme"),
            "invalid DataCite metadata: creators[0].nameIdentifiers[0]: "
            "'nameIdentifierScheme' is a required property",
        ),
        (
            lambda m: m.update(publicationYear="20x5"),
            "invalid DataCite metadata: publicationYear: '20x5' does not match '^[0-9]{4}$'",
        ),
        (
            lambda m: m.pop("titles"),
            "invalid DataCite metadata: (top level): 'titles' is a required property",
        ),
        (
            lambda m: m.update(identifiers=[{"identifier": "ds-1"}]),
            "invalid DataCite metadata: (top level): Additional properties are not allowed "
            "('identifiers' was unexpected)",
        ),
    ],
)
def test_invalid_datacite_is_one_line(
    cat: Catalog, records: dict[str, str], mutate: Any, message: str
) -> None:
    dc = metadata(cat, records["dataset"])
    bad = copy.deepcopy(dc)
    mutate(bad)
    with pytest.raises(CatalogError) as info:
        validate_datacite(bad)
    assert str(info.value) == message
    # an unknown resource type: the enum is long, the message stays one short line
    bad = copy.deepcopy(dc)
    bad["types"]["resourceTypeGeneral"] = "Thing"
    with pytest.raises(CatalogError, match=r"^invalid DataCite metadata: types\.resource") as e:
        validate_datacite(bad)
    assert "\n" not in str(e.value)
    assert len(str(e.value)) <= 300


# ------------------------------------------------------------------------ related items


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IsSupplementTo:doi:10.5281/zenodo.1234",
         ("IsSupplementTo", "10.5281/zenodo.1234", "DOI")),
        ("References:https://doi.org/10.1088/1748-0221/1/1/P1",
         ("References", "10.1088/1748-0221/1/1/P1", "DOI")),
        ("Cites:10.1016/S0168-9002(03)01368-8",
         ("Cites", "10.1016/S0168-9002(03)01368-8", "DOI")),
        ("cites:arXiv:2410.21611", ("Cites", "arXiv:2410.21611", "arXiv")),
        ("IsDerivedFrom:https://arxiv.org/abs/2410.21611v2",
         ("IsDerivedFrom", "arXiv:2410.21611v2", "arXiv")),
        ("ISDOCUMENTEDBY:https://example.org/a?b=c",
         ("IsDocumentedBy", "https://example.org/a?b=c", "URL")),
        ("IsPartOf:hdl:20.500.12345/abc", ("IsPartOf", "20.500.12345/abc", "Handle")),
        ("Requires:urn:nbn:de:1234", ("Requires", "urn:nbn:de:1234", "URN")),
    ],
)  # fmt: skip
def test_related_identifier_parsing(text: str, expected: tuple[str, str, str]) -> None:
    related = RelatedIdentifier.parse(text)
    assert (related.relation, related.identifier, related.identifier_type) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Foo:doi:10.5281/zenodo.1", "unknown relation type 'Foo'"),
        ("10.5281/zenodo.1", "expected RELATION:IDENTIFIER, not '10.5281/zenodo.1'"),
        ("IsSupplementTo", "expected RELATION:IDENTIFIER"),
        ("Cites:doi:10.1/x", "not a DOI: 'doi:10.1/x'"),
        ("Cites:arXiv:nonsense", "not an arXiv identifier"),
        ("Cites:ds-3", "cannot tell what kind of identifier 'ds-3' is"),
    ],
)
def test_bad_related_identifier(text: str, message: str) -> None:
    with pytest.raises(CatalogError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        RelatedIdentifier.parse(text)


def test_bad_inputs(cat: Catalog, records: dict[str, str]) -> None:
    cases = [
        (("camp-1", {}), "cannot deposit camp-1: deposit a dataset, model or evaluation"),
        (("ds-9", {}), "no such record: ds-9"),
        (("ds-1", {"creators": []}), "a deposit needs at least one creator"),
        (("ds-1", {"creators": ["A B,0000-0002-1825-0098"]}), "not an ORCID iD"),
        (("ds-1", {"license": "https://example.org/l"}), "a deposit needs an SPDX license"),
        (("ds-1", {"license": "CC BY"}), "not an SPDX license identifier"),
        (("ds-1", {"version": " "}), "a deposit needs a version"),
        (("ds-1", {"related": ["Nope:doi:10.5281/x"]}), "unknown relation type 'Nope'"),
    ]
    for (global_id, kwargs), message in cases:
        with pytest.raises(CatalogError) as info:
            metadata(cat, global_id, **kwargs)
        assert str(info.value).startswith(message), str(info.value)
        assert "\n" not in str(info.value)


# -------------------------------------------------------------------------------- Zenodo


def test_zenodo_metadata(cat: Catalog, records: dict[str, str]) -> None:
    dc = metadata(cat, records["dataset"], related=RELATED, publication_year=2024)
    zen = zenodo_metadata(dc)
    assert zen["upload_type"] == "dataset"
    assert zen["publication_date"] == "2024-01-01"  # not this year: its first day
    assert zen["title"] == "siw-electrons"
    assert zen["creators"] == [
        {"name": "Carberry, Josiah", "orcid": ORCID},
        {"name": "Doe, Jane"},
    ]
    assert zen["description"].startswith("<p>electrons on the SiW calorimeter")
    assert zen["access_right"] == "open"
    assert zen["license"] == "cc-by-4.0"
    assert zen["version"] == "1.0"
    assert "Geant4" in zen["keywords"]
    assert "FOS: Physical sciences" not in zen["keywords"]
    assert {"identifier": "10.5281/zenodo.1234", "relation": "isSupplementTo"} in zen[
        "related_identifiers"
    ]
    assert {
        "identifier": "arXiv:2410.21611",
        "relation": "cites",
        "resource_type": "publication-preprint",
    } in zen["related_identifiers"]
    today = datetime.now(UTC).date().isoformat()
    model = zenodo_metadata(metadata(cat, records["model"]))
    assert (model["upload_type"], model["publication_date"]) == ("software", today)
    assert zenodo_metadata(dc, publication_date="2024-05-06")["publication_date"] == "2024-05-06"


# ------------------------------------------------------------------------------- deposit


def test_export_deposit(
    cat: Catalog,
    records: dict[str, str],
    tmp_path: Path,
    no_network: list[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "deposits" / "siw-electrons"
    with caplog.at_level(logging.WARNING, logger="twinforge"):
        result = export_deposit(
            cat,
            records["dataset"],
            out,
            creators=CREATORS,
            license="CC-BY-4.0",
            version="1.0",
            related=RELATED,
        )
    assert result == out
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "data",
        "datacite.json",
        "ro-crate-metadata.json",
        "ro-crate-preview.html",
        "zenodo.json",
    ]
    assert sorted(p.name for p in out.parent.iterdir()) == ["siw-electrons"]  # nothing left over
    dc = json.loads((out / "datacite.json").read_text())
    validate_datacite(dc)
    assert dc == metadata(cat, records["dataset"], related=RELATED)
    assert json.loads((out / "zenodo.json").read_text()) == zenodo_metadata(dc)
    assert (out / "data" / "showers_0.h5").read_bytes().startswith(b"\x89HDF")

    g = graph(out)
    assert {"datacite.json", "zenodo.json", "data/showers_0.h5"} <= set(ids(g["./"]["hasPart"]))
    assert g["datacite.json"]["encodingFormat"] == "application/json"
    assert ids(g["datacite.json"]["about"]) == ["./"]
    assert g["./"]["license"] == {"@id": "https://spdx.org/licenses/CC-BY-4.0"}
    assert f"https://orcid.org/{ORCID}" in ids(g["./"]["author"])
    assert "datacite.json" in (out / "ro-crate-preview.html").read_text()
    # the crate passed roc-validator (REQUIRED); what it recommends is one warning line
    advice = [r for r in caplog.records if "recommendation(s) not met" in r.getMessage()]
    assert len(advice) == 1
    assert "ro-crate-1.1_" in advice[0].getMessage()

    with pytest.raises(CatalogError, match="exists and is not empty"):
        export_deposit(cat, "ds-1", out, creators=CREATORS, license="MIT", version="1.1")


def test_invalid_crate_is_rejected(
    cat: Catalog, records: dict[str, str], tmp_path: Path, no_network: list[Any]
) -> None:
    from twinforge.catalog import export_rocrate

    crate = export_rocrate(cat, records["model"], tmp_path / "crate", creators=CREATORS)
    descriptor = crate / "ro-crate-metadata.json"
    data = json.loads(descriptor.read_text())
    for entity in data["@graph"]:
        if entity["@id"] == "./":
            del entity["datePublished"]
    descriptor.write_text(json.dumps(data))
    with pytest.raises(CatalogError) as info:
        validate_crate(crate)
    message = str(info.value)
    assert message.startswith(f"the RO-Crate {crate} is not valid (process-run-crate-0.5): ")
    assert "ro-crate-1.1_8.4" in message
    assert "MUST have a `datePublished`" in message
    assert "\n" not in message
    with pytest.raises(CatalogError, match="not an RO-Crate"):
        validate_crate(tmp_path)


def test_failure_leaves_nothing(
    cat: Catalog, records: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(crate_dir: Any) -> None:
        assert (Path(crate_dir) / "datacite.json").is_file()  # checked once complete
        raise CatalogError("the RO-Crate is not valid (injected)")

    monkeypatch.setattr(deposit_module, "validate_crate", fail)
    args: dict[str, Any] = {"creators": CREATORS, "license": "CC-BY-4.0", "version": "1"}
    out = tmp_path / "out" / "deposit"
    with pytest.raises(CatalogError, match="injected"):
        export_deposit(cat, records["dataset"], out, **args)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no temporary directory either

    out.mkdir()  # an empty directory is left empty
    with pytest.raises(CatalogError, match="injected"):
        export_deposit(cat, records["dataset"], out, **args)
    assert out.is_dir()
    assert list(out.iterdir()) == []
    assert [p.name for p in out.parent.iterdir()] == ["deposit"]

    # invalid metadata is caught before anything is written
    with pytest.raises(CatalogError, match="unknown relation type"):
        export_deposit(cat, records["dataset"], out, related=["Nope:doi:10.5281/x"], **args)
    assert [p.name for p in out.parent.iterdir()] == ["deposit"]


def test_missing_publish_extra(
    cat: Catalog, records: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "rocrate_validator", None)
    with pytest.raises(CatalogError) as info:
        export_deposit(
            cat, "ds-1", tmp_path / "d", creators=CREATORS, license="CC0-1.0", version="1"
        )
    assert str(info.value) == (
        "RO-Crate validation needs roc-validator (rocrate_validator is missing): "
        "pip install 'twinforge[publish]'"
    )
    assert not (tmp_path / "d").exists()
    assert list(tmp_path.glob(".d.*")) == []


# ----------------------------------------------------------------------------------- CLI


@pytest.fixture
def invoke() -> Callable[..., Any]:
    cli = pytest.importorskip(
        "twinforge.cli", reason="the twinforge CLI does not import yet", exc_type=ImportError
    )
    from typer.testing import CliRunner

    def run(*args: str) -> Any:
        runner = CliRunner()
        env = {"COLUMNS": "200", "NO_COLOR": "1"}
        return runner.invoke(cli.app, ["catalog", *args], env=env)

    return run


def test_cli_deposit(
    invoke: Any, records: dict[str, str], catalog_url: str, tmp_path: Path, no_network: list[Any]
) -> None:
    result = invoke("deposit", "--help")
    assert result.exit_code == 0, result.output
    for option in ("--creator", "--license", "--version", "--related", "--no-data"):
        assert option in result.output

    out = tmp_path / "dep"
    common = ["--license", "CC-BY-4.0", "--version", "1.0", "--catalog", catalog_url]
    result = invoke(
        "deposit", "siw-electrons", str(out), "--creator", f"Josiah Carberry,{ORCID}",
        "--related", "IsSupplementTo:doi:10.5281/zenodo.1234", "--title", "SiW electrons",
        "--no-data", *common,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"deposit of ds-1 written to {out}" in " ".join(result.output.split())
    assert not (out / "data").exists()
    dc = json.loads((out / "datacite.json").read_text())
    assert dc["titles"] == [{"title": "SiW electrons"}]
    assert dc["relatedIdentifiers"][-1]["relatedIdentifier"] == "10.5281/zenodo.1234"
    assert json.loads((out / "zenodo.json").read_text())["license"] == "cc-by-4.0"
    refs = [i for i in graph(out) if i.startswith("file://")]
    assert len(refs) == 1
    assert refs[0].endswith("showers_0.h5")

    errors = [
        (["camp-1", "--creator", "A B"], "cannot deposit camp-1"),
        (["ds-9", "--creator", "A B"], "no such record: ds-9"),
        (["ds-1", "--creator", "A B,0000-0002-1825-0098"], "not an ORCID iD"),
        (["ds-1", "--creator", "A B", "--related", "Nope:doi:10.5281/x"], "unknown relation"),
        (["ds-1"], "a deposit needs at least one creator"),
    ]
    for args, message in errors:
        result = invoke("deposit", args[0], str(tmp_path / "new"), *args[1:], *common)
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, CatalogError)
        assert str(result.exception).startswith(message)
        assert not (tmp_path / "new").exists()
    result = invoke("deposit", "ds-1", str(out), "--creator", "A B", *common)
    assert isinstance(result.exception, CatalogError)
    assert "exists and is not empty" in str(result.exception)
    # license and version are required options: a usage error
    assert invoke("deposit", "ds-1", str(tmp_path / "x"), "--creator", "A").exit_code == 2
    # --record: the release is kept in the catalogue, once per version
    result = invoke("deposit", "ds-1", str(tmp_path / "r1"), "--creator", "A B", "--no-data",
                    "--record", *common)  # fmt: skip
    assert result.exit_code == 0, result.output
    with Catalog.open(catalog_url, create=False) as cat:
        (pub,) = cat.publications("ds-1")
    assert pub.version == "1.0"
    assert pub.datacite["version"] == "1.0"
    again = invoke("deposit", "ds-1", str(tmp_path / "r2"), "--creator", "A B", "--no-data",
                   "--record", *common)  # fmt: skip
    assert "published already" in str(again.exception)
    assert not (tmp_path / "r2").exists()


def test_cli_error_line_keeps_brackets(
    invoke: Any,
    records: dict[str, str],
    catalog_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the console entry point: one line on stderr, exit code 1, and the extra's name
    in brackets is printed, not taken for markup."""
    import io
    import sys

    from twinforge import cli

    stderr = io.StringIO()
    monkeypatch.setattr(cli.err_console, "file", stderr)

    monkeypatch.setitem(sys.modules, "rocrate_validator", None)
    monkeypatch.setattr(sys, "argv", [
        "twinforge", "catalog", "deposit", "ds-1", str(tmp_path / "d"), "--creator", "A B",
        "--license", "CC0-1.0", "--version", "1", "--catalog", catalog_url,
    ])  # fmt: skip
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1
    assert stderr.getvalue().strip().splitlines() == [
        "error: RO-Crate validation needs roc-validator (rocrate_validator is missing): "
        "pip install 'twinforge[publish]'"
    ]
