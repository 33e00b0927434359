"""Search, filters and pagination over the catalogue's tables (the queries behind
:meth:`Catalog.search <twinforge.catalog.Catalog.search>`; pure query building, no I/O).

Text matches case-insensitively anywhere in a record's name, description and the other text
columns of its kind, and in its JSON (provenance, config, parameters...), on SQLite and
PostgreSQL alike. Filters are named per kind (:data:`FILTERS`); a filter naming a record takes
its global ID (``camp-1``) or its integer key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, String, and_, cast, exists, func, or_, select, true

from twinforge.catalog.ids import Kind, parse_id
from twinforge.catalog.schema import BY_KIND, Campaign, Publication, Tag, TrainingRun
from twinforge.errors import CatalogError

__all__ = ["FILTERS", "NAMED", "SORTS", "SURROGATE_PREFIX", "TEXT_COLUMNS", "search_query"]

TEXT_COLUMNS: Final[dict[Kind, tuple[str, ...]]] = {
    "datasets": ("name", "description", "provenance"),
    "files": ("path", "sha256", "provenance"),
    "campaigns": ("name", "description", "config", "provenance"),
    "jobs": ("key", "state", "parameters", "error", "provenance"),
    "models": ("name", "architecture", "description", "provenance"),
    "runs": ("hyperparameters", "provenance"),
    "evaluations": ("description", "provenance"),
}
"""The columns a text search looks in, per kind."""

SORTS: Final = ("id", "-id", "name", "-name", "created", "-created")
"""Sort keys (``-`` for descending); ``name`` only for the named kinds."""

NAMED: Final[tuple[Kind, ...]] = ("datasets", "campaigns", "models")
"""The kinds whose records have unique names."""

SURROGATE_PREFIX: Final = "surrogate-"
"""How a surrogate model's architecture begins (``surrogate-gp``): what tells it from a
generative model."""
_LIKE_ESCAPE: Final = "\\"


def _ref(kind: Kind) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        return parse_id(text, expected=kind)[1]

    return parse


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise CatalogError(f"expected true or false, got {value!r}")


def _published(kind: str) -> Callable[[Any, Any], ColumnElement[bool]]:
    def clause(orm: Any, value: Any) -> ColumnElement[bool]:
        found = exists().where(Publication.kind == kind, Publication.record_id == orm.id)
        return found if _flag(value) else ~found

    return clause


def _trained_on(orm: Any, value: Any) -> ColumnElement[bool]:
    pk = _ref("datasets")(value)
    return exists().where(TrainingRun.model_id == orm.id, TrainingRun.dataset_id == pk)


def _surrogate(orm: Any, value: Any) -> ColumnElement[bool]:
    clause = orm.architecture.like(f"{SURROGATE_PREFIX}%")
    return clause if _flag(value) else ~clause


def _simulator_of_campaign(orm: Any, value: Any) -> ColumnElement[bool]:
    return orm.config["simulator"]["name"].as_string() == str(value)


def _simulator_of_dataset(orm: Any, value: Any) -> ColumnElement[bool]:
    return exists().where(Campaign.id == orm.campaign_id, _simulator_of_campaign(Campaign, value))


def _column(name: str, parse: Callable[[Any], Any] = str) -> Callable[[Any, Any], Any]:
    return lambda orm, value: getattr(orm, name) == parse(value)


FILTERS: Final[dict[Kind, dict[str, Callable[[Any, Any], ColumnElement[bool]]]]] = {
    "datasets": {
        "campaign": _column("campaign_id", _ref("campaigns")),
        "published": _published("datasets"),
        "simulator": _simulator_of_dataset,
    },
    "files": {
        "dataset": _column("dataset_id", _ref("datasets")),
        "model": _column("model_id", _ref("models")),
        "evaluation": _column("evaluation_id", _ref("evaluations")),
    },
    "campaigns": {"simulator": _simulator_of_campaign},
    "jobs": {"campaign": _column("campaign_id", _ref("campaigns")), "state": _column("state")},
    "models": {
        "architecture": _column("architecture"),
        "surrogate": _surrogate,
        "trained_on": _trained_on,
        "published": _published("models"),
    },
    "runs": {
        "model": _column("model_id", _ref("models")),
        "dataset": _column("dataset_id", _ref("datasets")),
    },
    "evaluations": {
        "model": _column("model_id", _ref("models")),
        "dataset": _column("dataset_id", _ref("datasets")),
    },
}
"""The filters each kind accepts: name -> clause builder."""


def search_query(
    kind: Kind,
    *,
    text: str | None = None,
    tags: tuple[str, ...] = (),
    filters: Mapping[str, Any] | None = None,
    sort: str = "-id",
) -> tuple[Select[Any], Select[Any]]:
    """The (page query without limit/offset, count query) of a search.

    Raises:
        CatalogError: an unknown filter or sort key for ``kind``, a malformed filter value.
    """
    orm: Any = BY_KIND[kind]
    clauses: list[ColumnElement[bool]] = []
    if text is not None and text.strip():
        pattern = f"%{_escape(text.strip())}%"
        columns = [getattr(orm, c) for c in TEXT_COLUMNS[kind]]
        clauses.append(or_(*(cast(c, String).ilike(pattern, escape=_LIKE_ESCAPE) for c in columns)))
    for tag in tags:
        clauses.append(exists().where(Tag.kind == kind, Tag.record_id == orm.id, Tag.name == tag))
    known = FILTERS[kind]
    for name, value in (filters or {}).items():
        if value is None or value == "":
            continue
        if name not in known:
            names = ", ".join(sorted(known)) or "none"
            raise CatalogError(f"unknown filter {name!r} for {kind} (filters: {names})")
        try:
            clauses.append(known[name](orm, value))
        except (ValueError, TypeError):
            raise CatalogError(f"filter {name}: bad value {value!r}") from None
    where = and_(true(), *clauses) if clauses else true()
    if sort not in SORTS or (sort.lstrip("-") == "name" and kind not in NAMED):
        allowed = [s for s in SORTS if kind in NAMED or "name" not in s]
        raise CatalogError(f"unknown sort {sort!r} for {kind} (sorts: {', '.join(allowed)})")
    column = {"id": orm.id, "name": getattr(orm, "name", None), "created": orm.created_at}[
        sort.lstrip("-")
    ]
    order = [column.desc() if sort.startswith("-") else column.asc()]
    if column is not orm.id:
        order.append(orm.id.desc() if sort.startswith("-") else orm.id.asc())
    page = select(orm).where(where).order_by(*order)
    count = select(func.count()).select_from(orm).where(where)
    return page, count


def _escape(text: str) -> str:
    return text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", r"\%").replace("_", r"\_")
