"""Human-friendly global IDs (``ds-3``, ``job-40``) over the integer primary keys.

Every row of the catalogue has an integer primary key, unique within its table. The global ID
prefixes it with a short tag naming the table, so a single string identifies any record:

=============  ==========  ================
kind           prefix      example
=============  ==========  ================
datasets       ``ds``      ``ds-3``
files          ``file``    ``file-12``
campaigns      ``camp``    ``camp-1``
jobs           ``job``     ``job-40``
models         ``model``   ``model-2``
runs           ``run``     ``run-5``
evaluations    ``eval``    ``eval-7``
=============  ==========  ================
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

from twinforge.errors import CatalogError

__all__ = ["KINDS", "PREFIXES", "Kind", "format_id", "normalise_kind", "parse_id"]

Kind = Literal["datasets", "files", "campaigns", "jobs", "models", "runs", "evaluations"]
"""The kinds of record, named like the CLI's ``--kind`` values."""

KINDS: Final[tuple[Kind, ...]] = get_args(Kind)

PREFIXES: Final[dict[Kind, str]] = {
    "datasets": "ds",
    "files": "file",
    "campaigns": "camp",
    "jobs": "job",
    "models": "model",
    "runs": "run",
    "evaluations": "eval",
}

_BY_PREFIX: Final[dict[str, Kind]] = {prefix: kind for kind, prefix in PREFIXES.items()}

# extra spellings accepted by normalise_kind (singulars and long names)
_ALIASES: Final[dict[str, Kind]] = {
    "dataset": "datasets",
    "file": "files",
    "campaign": "campaigns",
    "job": "jobs",
    "model": "models",
    "run": "runs",
    "training_run": "runs",
    "training_runs": "runs",
    "training-runs": "runs",
    "evaluation": "evaluations",
}

_ID_RE = re.compile(r"^\s*([a-zA-Z]+)-(\d+)\s*$")


def format_id(kind: Kind, pk: int) -> str:
    """The global ID of row ``pk`` of ``kind``: ``format_id("datasets", 3) == "ds-3"``."""
    return f"{PREFIXES[kind]}-{pk}"


def parse_id(global_id: str, expected: Kind | None = None) -> tuple[Kind, int]:
    """Split a global ID into its kind and integer primary key.

    Args:
        global_id: text such as ``"ds-3"`` (case-insensitive, surrounding blanks ignored).
        expected: when given, the ID must be of this kind.

    Raises:
        CatalogError: malformed ID, unknown prefix, or a kind other than ``expected``.
    """
    match = _ID_RE.match(str(global_id))
    if match is None or match.group(1).lower() not in _BY_PREFIX:
        known = ", ".join(f"{p}-N" for p in PREFIXES.values())
        raise CatalogError(f"not a catalogue ID: {global_id!r} (expected one of {known})")
    kind = _BY_PREFIX[match.group(1).lower()]
    pk = int(match.group(2))
    if expected is not None and kind != expected:
        raise CatalogError(
            f"{format_id(kind, pk)} is not one of the {expected} "
            f"(expected an ID like {PREFIXES[expected]}-N)"
        )
    return kind, pk


def normalise_kind(kind: str) -> Kind:
    """Map ``"dataset"``, ``"datasets"``, ``"ds"`` ... to the canonical kind name.

    Raises:
        CatalogError: the name is not a kind of record.
    """
    text = str(kind).strip().lower()
    if text in KINDS:
        return text  # type: ignore[return-value]
    if text in _ALIASES:
        return _ALIASES[text]
    if text in _BY_PREFIX:
        return _BY_PREFIX[text]
    raise CatalogError(f"unknown kind of record {kind!r}; known kinds: {', '.join(KINDS)}")
