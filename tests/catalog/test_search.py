"""Search, filters, pagination, tags and publications of the catalogue (what the web catalogue
shows), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.catalog.conftest import BACKENDS, GEANT4_PROVENANCE
from twinforge.catalog import Catalog
from twinforge.errors import CatalogError, RecordNotFound

CATALOG_BACKENDS = BACKENDS


@pytest.fixture
def filled(cat: Catalog, make_file: Callable[..., Path]) -> Catalog:
    camp = cat.add_campaign("scan", config={"simulator": {"name": "geant4"}})
    other = cat.add_campaign("lattice", config={"simulator": {"name": "xsuite"}})
    for i in range(7):
        cat.add_dataset(f"siw-{i}", description="50% of 100_000 showers" if i == 3 else "",
                        files=[(make_file(f"f{i}.h5"), 10 * i)], campaign_id=camp,
                        provenance=GEANT4_PROVENANCE)  # fmt: skip
    cat.add_dataset("optics", files=[(make_file("optics.h5"), 5)], campaign_id=other)
    model = cat.add_model("flow", architecture="flow")
    cat.add_model("gp", architecture="surrogate-gp")
    cat.add_training_run(model_id=model, dataset_id="ds-2")
    return cat


def test_text_searches_names_descriptions_and_json(filled: Catalog) -> None:
    assert filled.search("datasets", text="SIW-").total == 7  # case-insensitive
    assert filled.search("datasets", text="ftfp_bert").total == 7  # inside the provenance
    # LIKE's wildcards are matched literally
    assert [r.name for r in filled.search("datasets", text="50%").records] == ["siw-3"]
    assert [r.name for r in filled.search("datasets", text="100_000").records] == ["siw-3"]
    assert filled.search("datasets", text="w_0").total == 0  # "_" is no wildcard: not siw-0
    assert filled.search("campaigns", text="xsuite").total == 1


def test_filters(filled: Catalog) -> None:
    assert filled.search("datasets", filters={"campaign": "camp-2"}).total == 1
    assert filled.search("datasets", filters={"simulator": "geant4"}).total == 7
    assert filled.search("campaigns", filters={"simulator": "xsuite"}).records[0].name == "lattice"
    assert [m.name for m in filled.search("models", filters={"surrogate": True}).records] == ["gp"]
    trained = filled.search("models", filters={"trained_on": "ds-2"}).records
    assert [m.name for m in trained] == ["flow"]
    assert filled.search("runs", filters={"dataset": "ds-2"}).total == 1
    with pytest.raises(CatalogError, match="unknown filter 'state' for datasets"):
        filled.search("datasets", filters={"state": "done"})
    with pytest.raises(CatalogError, match="not one of the campaigns"):
        filled.search("datasets", filters={"campaign": "ds-1"})


def test_pages_and_sorting(filled: Catalog) -> None:
    names = []
    offset = 0
    while True:
        page = filled.search("datasets", sort="-name", limit=3, offset=offset)
        names += [r.name for r in page.records]
        assert page.total == 8
        if not page.has_next:
            break
        offset += 3
    assert names == sorted(names, reverse=True)
    assert len(names) == 8
    by_id = [r.id for r in filled.search("datasets", sort="id").records]
    assert by_id == sorted(by_id)
    for bad in ({"sort": "size"}, {"limit": 0}, {"limit": 5000}, {"offset": -1}):
        with pytest.raises(CatalogError):
            filled.search("datasets", **bad)
    with pytest.raises(CatalogError, match="unknown sort"):
        filled.search("runs", sort="name")


def test_tags(filled: Catalog) -> None:
    assert filled.tag("ds-1", "Gold", "siw") == ["gold", "siw"]
    assert filled.tag("ds-1", "gold") == ["gold", "siw"]  # again: no error, no duplicate
    filled.tag("camp-1", "siw")
    assert filled.tags() == {"gold": 1, "siw": 2}
    assert [r.name for r in filled.search("datasets", tags=["gold", "siw"]).records] == ["siw-0"]
    assert filled.tags_of(filled.list("datasets")[:2]) == {"ds-1": ["gold", "siw"]}
    assert filled.untag("ds-1", "gold") == ["siw"]
    with pytest.raises(CatalogError, match="has no tag"):
        filled.untag("ds-1", "gold")
    for bad in ("", "two words", "x" * 65, "-dash-first", "ümlaut"):
        with pytest.raises(CatalogError, match="invalid tag"):
            filled.tag("ds-1", bad)
    with pytest.raises(CatalogError, match="only datasets"):
        filled.tag("file-1", "x")
    with pytest.raises(RecordNotFound):
        filled.tag("ds-99", "x")
    assert filled.tags("ds-1") == ["siw"]


def test_publications(filled: Catalog) -> None:
    pub = filled.publish("ds-1", version="1.0", license="CC-BY-4.0",
                         datacite={"titles": [{"title": "siw-0"}]})  # fmt: skip
    assert pub.record == "ds-1"
    assert pub.datacite["titles"] == [{"title": "siw-0"}]
    filled.publish("ds-1", version="1.1", license="CC-BY-4.0", identifier="10.5281/zenodo.1")
    assert [p.version for p in filled.publications("ds-1")] == ["1.0", "1.1"]
    with pytest.raises(CatalogError, match="published already"):
        filled.publish("ds-1", version="1.0", license="CC-BY-4.0")
    with pytest.raises(CatalogError, match="only datasets and models"):
        filled.publish("camp-1", version="1", license="CC-BY-4.0")
    with pytest.raises(CatalogError, match="version"):
        filled.publish("ds-2", version=" ", license="CC-BY-4.0")
    assert filled.search("datasets", filters={"published": True}).total == 1
    assert filled.search("datasets", filters={"published": "false"}).total == 7


def test_dataset_of_files(filled: Catalog, make_file: Callable[..., Path]) -> None:
    assert filled.dataset_of([make_file("f2.h5")]).name == "siw-2"  # type: ignore[union-attr]
    assert filled.dataset_of([make_file("f2.h5"), make_file("f3.h5")]) is None  # two datasets
    assert filled.dataset_of([]) is None
