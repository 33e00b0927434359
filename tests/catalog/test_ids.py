from __future__ import annotations

import pytest

from twinforge.catalog import KINDS, PREFIXES, format_id, normalise_kind, parse_id
from twinforge.errors import CatalogError


def test_every_kind_has_a_distinct_prefix() -> None:
    assert set(PREFIXES) == set(KINDS)
    assert len(set(PREFIXES.values())) == len(KINDS)


@pytest.mark.parametrize(
    ("kind", "pk", "text"),
    [
        ("datasets", 3, "ds-3"),
        ("files", 12, "file-12"),
        ("campaigns", 1, "camp-1"),
        ("jobs", 40, "job-40"),
        ("models", 2, "model-2"),
        ("runs", 5, "run-5"),
        ("evaluations", 7, "eval-7"),
    ],
)
def test_format_and_parse_round_trip(kind: str, pk: int, text: str) -> None:
    assert format_id(kind, pk) == text  # type: ignore[arg-type]
    assert parse_id(text) == (kind, pk)
    assert parse_id(f" {text.upper()} ") == (kind, pk)


@pytest.mark.parametrize("bad", ["ds", "ds-", "ds-x", "dataset-3", "3", "", "ds-3-4"])
def test_malformed_ids_are_rejected(bad: str) -> None:
    with pytest.raises(CatalogError, match="not a catalogue ID"):
        parse_id(bad)


def test_parse_checks_the_expected_kind() -> None:
    assert parse_id("job-4", expected="jobs") == ("jobs", 4)
    with pytest.raises(CatalogError, match="job-4 is not one of the datasets"):
        parse_id("job-4", expected="datasets")


def test_kind_spellings() -> None:
    assert normalise_kind("dataset") == "datasets"
    assert normalise_kind("DS") == "datasets"
    assert normalise_kind("training_runs") == "runs"
    assert normalise_kind("eval") == "evaluations"
    with pytest.raises(CatalogError, match="unknown kind"):
        normalise_kind("widgets")
