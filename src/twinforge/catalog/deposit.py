"""Deposit a dataset, model or evaluation in a data repository: the RO-Crate plus DataCite and
Zenodo metadata, each validated before anything is left on disk::

    out_dir/
      ro-crate-metadata.json     the RO-Crate (Process Run Crate profile, see export_rocrate)
      ro-crate-preview.html
      data/<file>...             the files (unless include_data=False)
      datacite.json              DataCite Metadata Schema 4.5, JSON
      zenodo.json                the "metadata" object of a Zenodo deposition

``datacite.json`` is the JSON form of the DataCite Metadata Schema 4.5 that DataCite's REST API
takes as the ``attributes`` of a DOI and the ``datacite`` package validates (no DOI: the
repository mints it). ``zenodo.json`` is what Zenodo's deposition API takes as ``metadata``;
it is derived from the DataCite metadata, never built separately. Both files are parts of the
crate (``hasPart``), so the crate lists everything in the directory.

Validation is offline: the DataCite metadata against the JSON schema that the ``datacite``
package ships, the crate with roc-validator in its offline mode, whose HTTP cache is filled from
the JSON-LD contexts kept in ``twinforge/catalog/contexts``. Both packages are in the
``publish`` extra (``pip install 'twinforge[publish]'``).
"""

from __future__ import annotations

import html
import io
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from twinforge import __version__
from twinforge.catalog.crate import (
    PROCESS_RUN_CRATE,
    Creator,
    check_out_dir,
    describe_record,
    encoding_format,
    export_rocrate,
    parse_license,
    software_entities,
)
from twinforge.catalog.ids import Kind, format_id
from twinforge.catalog.records import (
    CampaignRecord,
    DatasetRecord,
    EvaluationRecord,
    ModelRecord,
    Record,
    TrainingRunRecord,
)
from twinforge.errors import CatalogError

if TYPE_CHECKING:
    from twinforge.catalog.store import Catalog

__all__ = [
    "CATALOGUE_ID_TYPE",
    "DATACITE_SCHEMA_VERSION",
    "RELATION_TYPES",
    "RelatedIdentifier",
    "datacite_metadata",
    "export_deposit",
    "guess_identifier",
    "validate_crate",
    "validate_datacite",
    "zenodo_metadata",
]

log = logging.getLogger(__name__)

DATACITE_SCHEMA_VERSION: Final = "4.5"
"""Version of the DataCite Metadata Schema that ``datacite.json`` follows."""
DATACITE_SCHEMA_URI: Final = "http://datacite.org/schema/kernel-4"  # its ``schemaVersion``
DATACITE_SCHEMA_DOC: Final = "https://schema.datacite.org/meta/kernel-4.5/"
CATALOGUE_ID_TYPE: Final = "twinforge catalogue ID"
"""``alternateIdentifierType`` of the record's global ID (``ds-3``)."""
PUBLISH_EXTRA: Final = "pip install 'twinforge[publish]'"

RELATION_TYPES: Final = (
    "IsCitedBy", "Cites", "IsCollectedBy", "Collects", "IsSupplementTo", "IsSupplementedBy",
    "IsContinuedBy", "Continues", "IsDescribedBy", "Describes", "HasMetadata", "IsMetadataFor",
    "HasVersion", "IsVersionOf", "IsNewVersionOf", "IsPreviousVersionOf", "IsPartOf", "HasPart",
    "IsPublishedIn", "IsReferencedBy", "References", "IsDocumentedBy", "Documents",
    "IsCompiledBy", "Compiles", "IsVariantFormOf", "IsOriginalFormOf", "IsIdenticalTo",
    "IsReviewedBy", "Reviews", "IsDerivedFrom", "IsSourceOf", "IsRequiredBy", "Requires",
    "IsObsoletedBy", "Obsoletes",
)  # fmt: skip
"""DataCite 4.5 ``relationType`` values, for ``--related RELATION:IDENTIFIER``."""
_RELATIONS: Final = {r.lower(): r for r in RELATION_TYPES}

# the relations Zenodo's deposition API knows (lower camel case of DataCite's)
_ZENODO_RELATIONS: Final = frozenset(
    r[0].lower() + r[1:]
    for r in RELATION_TYPES
    if r not in {"IsCollectedBy", "Collects", "HasVersion", "IsVersionOf", "IsPublishedIn"}
)

# resourceTypeGeneral and free-text resourceType of what can be deposited
_RESOURCE_TYPES: Final = {
    "datasets": ("Dataset", "Simulated events"),
    "models": ("Model", "Trained generative model"),
    "evaluations": ("Dataset", "Validation of a generative model"),
}
_ZENODO_UPLOAD_TYPES: Final = {"Dataset": "dataset", "Model": "software", "Software": "software"}
_ZENODO_RESOURCE_TYPES: Final = {
    "Dataset": "dataset",
    "Software": "software",
    "Preprint": "publication-preprint",
    "JournalArticle": "publication-article",
    "Report": "publication-report",
    "ConferencePaper": "publication-conferencepaper",
    "Dissertation": "publication-thesis",
    "Book": "publication-book",
    "BookChapter": "publication-section",
    "Image": "image",
    "Audiovisual": "video",
    "Workflow": "workflow",
    "PhysicalObject": "physicalobject",
    "Other": "other",
}

_LICENSE_NAMES: Final = {  # SPDX full names of the licences a deposit most often has
    "CC-BY-4.0": "Creative Commons Attribution 4.0 International",
    "CC-BY-SA-4.0": "Creative Commons Attribution Share Alike 4.0 International",
    "CC-BY-NC-4.0": "Creative Commons Attribution Non Commercial 4.0 International",
    "CC0-1.0": "Creative Commons Zero v1.0 Universal",
    "ODbL-1.0": "Open Data Commons Open Database License v1.0",
    "MIT": "MIT License",
    "Apache-2.0": "Apache License 2.0",
    "BSD-3-Clause": 'BSD 3-Clause "New" or "Revised" License',
    "GPL-3.0-only": "GNU General Public License v3.0 only",
}

_FOS_PHYSICS: Final = {
    "subject": "FOS: Physical sciences",
    "subjectScheme": "Fields of Science and Technology (FOS)",
    "schemeUri": "http://www.oecd.org/science/inno/38235147.pdf",
}

_PHRASES: Final = {  # the relations to catalogue records, in the Methods description
    "IsDerivedFrom": "Derived from",
    "IsSourceOf": "Source of",
    "Reviews": "Evaluates",
    "References": "Compared with",
}

_DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
_ARXIV_RE = re.compile(r"^(\d{4}\.\d{4,5}(v\d+)?|[a-z-]+(\.[A-Z]{2})?/\d{7}(v\d+)?)$")

# the JSON-LD contexts of exported crates, served to roc-validator from its HTTP cache offline
_CONTEXTS: Final = {
    "https://w3id.org/ro/crate/1.1/context": "ro-crate-1.1.jsonld",
    "https://w3id.org/ro/terms/workflow-run/context": "workflow-run.jsonld",
}
_VALIDATOR_LOCK = threading.Lock()  # roc-validator keeps its HTTP cache in a process singleton


# ----------------------------------------------------------------------- related identifiers


@dataclass(frozen=True, slots=True)
class RelatedIdentifier:
    """A DataCite ``relatedIdentifier``: how the deposit relates to a DOI, arXiv paper, URL..."""

    relation: str
    """DataCite ``relationType``, e.g. ``IsSupplementTo``, ``References``."""
    identifier: str
    """The identifier in DataCite's form: ``10.5281/zenodo.1234``, ``arXiv:2410.21611``, a URL."""
    identifier_type: str
    """DataCite ``relatedIdentifierType``: ``DOI``, ``arXiv``, ``URL``, ``Handle``, ``URN``."""
    resource_type: str | None = None
    """``resourceTypeGeneral`` of the related resource, when known (``Preprint`` for arXiv)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "relation", _relation(self.relation))

    @classmethod
    def parse(cls, text: str) -> RelatedIdentifier:
        """Read ``RELATION:IDENTIFIER`` (``--related`` of the CLI), e.g.
        ``IsSupplementTo:doi:10.5281/zenodo.1234``, ``Cites:arXiv:2410.21611``,
        ``IsDocumentedBy:https://example.org/note``; the identifier's type is guessed."""
        relation, sep, identifier = text.strip().partition(":")
        if not sep or not relation.strip() or not identifier.strip():
            raise CatalogError(
                f"expected RELATION:IDENTIFIER, not {text!r} "
                "(e.g. IsSupplementTo:doi:10.5281/zenodo.1234)"
            )
        relation = _relation(relation)
        value, kind = guess_identifier(identifier)
        return cls(relation, value, kind, "Preprint" if kind == "arXiv" else None)

    def to_datacite(self) -> dict[str, Any]:
        """The ``relatedIdentifiers`` entry."""
        entry = {
            "relatedIdentifier": self.identifier,
            "relatedIdentifierType": self.identifier_type,
            "relationType": self.relation,
        }
        if self.resource_type:
            entry["resourceTypeGeneral"] = self.resource_type
        return entry


def _relation(text: str) -> str:
    relation = _RELATIONS.get(text.strip().lower())
    if relation is None:
        raise CatalogError(
            f"unknown relation type {text.strip()!r} (DataCite relation types, e.g. "
            "IsSupplementTo, References, Cites, IsDerivedFrom, IsDocumentedBy)"
        )
    return relation


def guess_identifier(text: str) -> tuple[str, str]:
    """``(identifier, relatedIdentifierType)`` of a DOI (``doi:10.x/y``, ``https://doi.org/...``
    or bare ``10.x/y``), an arXiv ID (``arXiv:2410.21611`` or an arxiv.org URL), a handle
    (``hdl:...``), a URN or a URL."""
    value = text.strip()
    low = value.lower()
    doi = None
    if low.startswith("doi:"):
        doi = value[4:].strip()
    elif m := re.match(r"^https?://(dx\.)?doi\.org/(.+)$", value, re.I):
        doi = m.group(2)
    elif value.startswith("10."):
        doi = value
    if doi is not None:
        if not _DOI_RE.match(doi):
            raise CatalogError(f"not a DOI: {text!r} (expected 10.NNNN/suffix)")
        return doi, "DOI"
    arxiv = None
    if low.startswith("arxiv:"):
        arxiv = value[6:].strip()
    elif m := re.match(r"^https?://(www\.)?arxiv\.org/(abs|pdf)/(.+?)(\.pdf)?/?$", value, re.I):
        arxiv = m.group(3)
    if arxiv is not None:
        if not _ARXIV_RE.match(arxiv):
            raise CatalogError(f"not an arXiv identifier: {text!r} (expected e.g. 2410.21611)")
        return f"arXiv:{arxiv}", "arXiv"
    if low.startswith("hdl:"):
        return value[4:].strip(), "Handle"
    if m := re.match(r"^https?://hdl\.handle\.net/(.+)$", value, re.I):
        return m.group(1), "Handle"
    if low.startswith("urn:"):
        return value, "URN"
    if re.match(r"^https?://[^\s/]+\.[^\s/]+(/\S*)?$", value, re.I):
        return value, "URL"
    raise CatalogError(
        f"cannot tell what kind of identifier {text!r} is "
        "(give a DOI, arXiv:ID, hdl:HANDLE, urn:... or an http(s) URL)"
    )


# ----------------------------------------------------------------------------- DataCite


def datacite_metadata(
    catalog: Catalog,
    global_id: str,
    *,
    creators: Sequence[Creator | str],
    license: str,
    version: str,
    title: str | None = None,
    description: str | None = None,
    related: Iterable[RelatedIdentifier | str] = (),
    keywords: Iterable[str] = (),
    publisher: str = "twinforge",
    publication_year: int | None = None,
    catalog_url: str | None = None,
) -> dict[str, Any]:
    """DataCite Metadata Schema 4.5 (JSON) of a dataset, model or evaluation.

    Args:
        catalog: the catalogue holding the record.
        global_id: ``ds-N``, ``model-N`` or ``eval-N``.
        creators: at least one person, :class:`Creator` or ``"Name[,ORCID]"`` text; the name
            as ``"Family, Given"`` or ``"Given Family"`` (split at the last space).
        license: SPDX identifier (``CC-BY-4.0``).
        version: version of the deposit (``1.0``).
        title: default: the record's name.
        description: the abstract; default: the record's description, as in its RO-Crate.
        related: more related identifiers, :class:`RelatedIdentifier` or
            ``"RELATION:IDENTIFIER"`` text (``IsSupplementTo:doi:10.5281/zenodo.1234``).
        keywords: more subjects.
        publisher: ``publisher.name``.
        publication_year: default: this year (UTC).
        catalog_url: URL under which catalogue records resolve (``<catalog_url>/ds-3``, e.g.
            a twinforge web service). With it, the related catalogue records (producing
            campaign, training data, models trained on a dataset) are ``relatedIdentifiers``
            (URL); without it they are ``relatedItems`` named by title and catalogue ID.

    Returns:
        A JSON-ready dict (no ``doi``: the repository mints it). It is not validated here:
        see :func:`validate_datacite`.

    Raises:
        CatalogError: unknown record, one that cannot be deposited, no creator, a bad
            ORCID, licence, relation type or identifier.
    """
    record = _depositable(catalog.get(global_id))
    people = _creators(creators)
    license_id, license_url = _spdx_license(license)
    if not str(version).strip():
        raise CatalogError("a deposit needs a version (e.g. 1.0)")
    extra = [r if isinstance(r, RelatedIdentifier) else RelatedIdentifier.parse(r) for r in related]
    name, default_description = describe_record(catalog, record)
    general, resource_type = _RESOURCE_TYPES[record.kind]
    files = catalog.files(record)
    software, _ = software_entities(record.provenance)
    links = _catalogue_links(catalog, record)

    year = publication_year or datetime.now(UTC).year
    data: dict[str, Any] = {
        "types": {"resourceTypeGeneral": general, "resourceType": resource_type},
        "creators": [_person(p) for p in people],
        "titles": [{"title": (title or name).strip()}],
        "publisher": {"name": publisher},
        "publicationYear": f"{year:04d}",
        "subjects": _subjects(record, software, keywords),
        "dates": [{"date": record.created_at.date().isoformat(), "dateType": "Created"}],
        "language": "en",
        "alternateIdentifiers": [
            {"alternateIdentifier": record.global_id, "alternateIdentifierType": CATALOGUE_ID_TYPE}
        ],
        "sizes": _sizes(record, files),
        "formats": sorted({encoding_format(Path(f.path)) for f in files}),
        "version": str(version).strip(),
        "rightsList": [
            {
                "rights": _LICENSE_NAMES.get(license_id, license_id),
                "rightsUri": license_url,
                "rightsIdentifier": license_id,
                "rightsIdentifierScheme": "SPDX",
                "schemeUri": "https://spdx.org/licenses/",
            }
        ],
        "descriptions": [
            {
                "description": (description or default_description).strip(),
                "descriptionType": "Abstract",
            },
            {"description": _methods(record, software, links), "descriptionType": "Methods"},
        ],
        "schemaVersion": DATACITE_SCHEMA_URI,
    }
    identifiers = [_software_relation(s) for s in software if s.get("url")]
    items = []
    if catalog_url:
        base = catalog_url.rstrip("/")
        data["alternateIdentifiers"].append(
            {"alternateIdentifier": f"{base}/{record.global_id}", "alternateIdentifierType": "URL"}
        )
        identifiers += [link.identifier(base) for link in links]
    else:
        items = [link.item() for link in links]
    identifiers += [r.to_datacite() for r in extra]
    if identifiers:
        data["relatedIdentifiers"] = _unique(identifiers)
    if items:
        data["relatedItems"] = _unique(items)
    return data


def validate_datacite(metadata: Mapping[str, Any]) -> None:
    """Check DataCite metadata against the DataCite Metadata Schema 4.5 (JSON schema of the
    ``datacite`` package, offline).

    Raises:
        CatalogError: the first problem, in one line naming the field
            (``invalid DataCite metadata: creators[0]: 'name' is a required property``);
            or the ``datacite`` package is missing.
    """
    validator = _datacite_validator()
    from jsonschema.exceptions import best_match  # there with the validator

    errors = list(validator.iter_errors(metadata))
    if not errors:
        return
    # the deepest failure, not its echo one level up ("unevaluated properties" of an object
    # whose part failed); best_match then picks among the branches of an anyOf
    error = best_match([max(errors, key=_error_rank)])
    assert error is not None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    where = where.lstrip(".") or "(top level)"
    raise CatalogError(_one_line(f"invalid DataCite metadata: {where}: {error.message}"))


def _error_rank(error: Any) -> tuple[bool, int]:
    return error.validator != "unevaluatedProperties", len(error.absolute_path)


@cache
def _datacite_validator() -> Any:
    try:
        from jsonschema.validators import validator_for

        schema_file = resources.files("datacite") / "schemas/datacite-v4.5.json"
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
    except (ImportError, FileNotFoundError) as exc:
        raise CatalogError(
            f"DataCite validation needs the datacite package ({exc}): {PUBLISH_EXTRA}"
        ) from None
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


# ------------------------------------------------------------------------------- Zenodo


def zenodo_metadata(
    datacite: Mapping[str, Any], *, publication_date: date | str | None = None
) -> dict[str, Any]:
    """The ``metadata`` of a Zenodo deposition, derived from DataCite metadata
    (:func:`datacite_metadata`).

    Args:
        datacite: DataCite 4.5 JSON.
        publication_date: default: today (UTC) when the DataCite ``publicationYear`` is this
            year, else 1 January of that year.

    Returns:
        ``upload_type`` (``dataset``; ``software`` for a model), ``title``, ``creators``
        (``name``, ``orcid``), ``description`` (HTML), ``access_right`` (``open``),
        ``license`` (Zenodo's lower-case id), ``version``, ``keywords``,
        ``related_identifiers`` and ``publication_date``.

    Raises:
        CatalogError: DataCite metadata that Zenodo cannot take (no SPDX licence, a resource
            type without a Zenodo upload type).
    """
    general = datacite["types"]["resourceTypeGeneral"]
    upload_type = _ZENODO_UPLOAD_TYPES.get(general)
    if upload_type is None:
        raise CatalogError(f"no Zenodo upload type for a {general}")
    spdx = [r for r in datacite.get("rightsList", []) if r.get("rightsIdentifierScheme") == "SPDX"]
    if not spdx:
        raise CatalogError("Zenodo needs an SPDX licence identifier in the rightsList")
    if publication_date is None:
        today = datetime.now(UTC).date()
        year = int(datacite["publicationYear"])
        publication_date = today if today.year == year else date(year, 1, 1)
    descriptions = [d["description"] for d in datacite.get("descriptions", [])]
    meta: dict[str, Any] = {
        "upload_type": upload_type,
        "publication_date": str(publication_date),
        "title": datacite["titles"][0]["title"],
        "creators": [_zenodo_creator(c) for c in datacite["creators"]],
        "description": "".join(f"<p>{html.escape(d)}</p>" for d in descriptions),
        "access_right": "open",
        "license": spdx[0]["rightsIdentifier"].lower(),
        "version": datacite.get("version", ""),
        "keywords": [
            s["subject"] for s in datacite.get("subjects", []) if "subjectScheme" not in s
        ],
        "related_identifiers": [],
    }
    for rel in datacite.get("relatedIdentifiers", []):
        relation = rel["relationType"][0].lower() + rel["relationType"][1:]
        if relation not in _ZENODO_RELATIONS:
            log.warning(
                "Zenodo has no relation %r: %s left out", relation, rel["relatedIdentifier"]
            )
            continue
        entry = {"identifier": rel["relatedIdentifier"], "relation": relation}
        resource = _ZENODO_RESOURCE_TYPES.get(rel.get("resourceTypeGeneral", ""))
        if resource:
            entry["resource_type"] = resource
        meta["related_identifiers"].append(entry)
    if not meta["related_identifiers"]:
        del meta["related_identifiers"]
    return meta


def _zenodo_creator(creator: Mapping[str, Any]) -> dict[str, Any]:
    entry = {"name": creator["name"]}
    for ident in creator.get("nameIdentifiers", []):
        if ident.get("nameIdentifierScheme") == "ORCID":
            entry["orcid"] = ident["nameIdentifier"].rsplit("/", 1)[-1]
    return entry


# ----------------------------------------------------------------------------- RO-Crate


def validate_crate(crate_dir: str | os.PathLike[str]) -> None:
    """Validate an exported RO-Crate with roc-validator, offline.

    The profile is Process Run Crate 0.5 (which includes RO-Crate 1.1) when the crate conforms
    to it, else RO-Crate 1.1. A REQUIRED requirement that fails is an error; RECOMMENDED ones
    are logged as warnings. The JSON-LD contexts come from copies kept with twinforge, through
    roc-validator's HTTP cache in offline mode: nothing is fetched from the network.

    Raises:
        CatalogError: the first failed REQUIRED requirement, in one line; no crate in
            ``crate_dir``; roc-validator missing.
    """
    crate = Path(crate_dir).expanduser().absolute()
    descriptor = crate / "ro-crate-metadata.json"
    try:
        metadata = json.loads(descriptor.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"not an RO-Crate: {descriptor} is missing") from None
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot read {descriptor}: {_one_line(str(exc))}") from None
    profile = _crate_profile(metadata)
    models, services, errors = _roc_validator()

    with _VALIDATOR_LOCK, tempfile.TemporaryDirectory(prefix="twinforge-rocv-") as tmp:
        cache_path = Path(tmp) / "http_cache"
        _fill_context_cache(cache_path)
        try:
            settings = models.ValidationSettings(
                rocrate_uri=str(crate),
                profile_identifier=profile,
                requirement_severity=models.Severity.RECOMMENDED,
                offline=True,
                cache_path=cache_path,
            )
            with warnings.catch_warnings():  # rdflib's deprecations, inside roc-validator
                warnings.filterwarnings("ignore", category=DeprecationWarning, module="rdflib")
                result = services.validate(settings)
        except errors.ROCValidatorError as exc:
            raise CatalogError(
                f"cannot validate the RO-Crate {crate}: {_one_line(str(exc))}"
            ) from None
        finally:
            _quiet_validator()

    required = models.Severity.REQUIRED
    issues = result.get_issues()
    advice = [i for i in issues if i.severity != required]
    for text in dict.fromkeys(_issue_text(i) for i in advice):
        log.debug("RO-Crate %s: recommendation not met: %s", crate.name, text)
    if advice:
        checks = ", ".join(dict.fromkeys(i.check.identifier for i in advice if i.check))
        log.warning("RO-Crate: %d recommendation(s) not met (%s)", len(advice), checks)
    failed = [i for i in issues if i.severity == required]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise CatalogError(
            f"the RO-Crate {crate} is not valid ({profile}): {_issue_text(failed[0])}{more}"
        )


def _roc_validator() -> tuple[Any, Any, Any]:
    try:
        import requests_cache  # noqa: F401  the offline cache
        from rocrate_validator import errors, models, services
    except ImportError as exc:
        raise CatalogError(
            f"RO-Crate validation needs roc-validator ({exc.name} is missing): {PUBLISH_EXTRA}"
        ) from None
    return models, services, errors


def _crate_profile(metadata: Mapping[str, Any]) -> str:
    graph = metadata.get("@graph", []) if isinstance(metadata, Mapping) else []
    root = next((e for e in graph if isinstance(e, Mapping) and e.get("@id") == "./"), {})
    conforms = root.get("conformsTo", [])
    conforms = conforms if isinstance(conforms, list) else [conforms]
    ids = {c.get("@id") if isinstance(c, Mapping) else c for c in conforms}
    return "process-run-crate-0.5" if PROCESS_RUN_CRATE in ids else "ro-crate-1.1"


def _fill_context_cache(cache_path: Path) -> None:
    """Store the JSON-LD contexts in a requests-cache database, as if fetched: roc-validator
    reads them from there in offline mode."""
    import requests
    import urllib3
    from requests.adapters import BaseAdapter, HTTPAdapter
    from requests_cache import CachedSession

    folder = resources.files("twinforge.catalog") / "contexts"

    class LocalContexts(BaseAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            name = _CONTEXTS.get(request.url)
            if name is None:  # pragma: no cover - only the URLs below are asked for
                raise requests.ConnectionError(f"no local copy of {request.url}")
            raw = urllib3.HTTPResponse(
                body=io.BytesIO((folder / name).read_bytes()),
                headers={"Content-Type": "application/ld+json"},
                status=200,
                reason="OK",
                preload_content=False,
                request_url=request.url,
            )
            return HTTPAdapter().build_response(request, raw)

        def close(self) -> None:
            pass

    with CachedSession(str(cache_path), backend="sqlite", expire_after=-1) as session:
        session.mount("http://", LocalContexts())
        session.mount("https://", LocalContexts())
        for url in _CONTEXTS:
            session.get(url).raise_for_status()


def _quiet_validator() -> None:
    """Undo what roc-validator leaves behind in the process: its JSON-LD document loader
    patched into rdflib, and the warnings it would print when the interpreter exits."""
    try:
        from rocrate_validator.utils import document_loader
        from rocrate_validator.utils import log as validator_log

        document_loader.uninstall_document_loader()
        stream = validator_log.__log_stream__
        text = stream.getvalue()
        stream.seek(0)
        stream.truncate()
    except Exception as exc:  # private parts of roc-validator: never fail a deposit on them
        log.debug("could not tidy up after roc-validator: %s", exc)
        return
    for line in text.splitlines():
        log.debug("roc-validator: %s", line)


def _issue_text(issue: Any) -> str:
    check = issue.check
    entity = getattr(issue, "violatingEntity", None)
    where = f" (entity {entity})" if entity else ""
    name = f"{check.identifier} {check.name}: " if check is not None else ""
    return _one_line(f"{name}{issue.message}{where}")


# ------------------------------------------------------------------------------ deposit


def export_deposit(
    catalog: Catalog,
    global_id: str,
    out_dir: str | os.PathLike[str],
    *,
    creators: Sequence[Creator | str],
    license: str,
    version: str,
    related: Iterable[RelatedIdentifier | str] = (),
    include_data: bool = True,
    title: str | None = None,
    description: str | None = None,
    keywords: Iterable[str] = (),
    publisher: str = "twinforge",
    publication_year: int | None = None,
    catalog_url: str | None = None,
) -> Path:
    """Write a deposit of a dataset, model or evaluation in ``out_dir``: its RO-Crate, with
    ``datacite.json`` and ``zenodo.json`` as parts of the crate; both validated.

    Everything is built and validated in a temporary directory beside ``out_dir`` and renamed
    into place at the end, so ``out_dir`` is either the complete, valid deposit or untouched.
    The arguments are those of :func:`datacite_metadata`, and ``include_data`` of
    :func:`~twinforge.catalog.export_rocrate`.

    Returns:
        The deposit directory.

    Raises:
        CatalogError: unknown record or one that cannot be deposited, ``out_dir`` exists and
            is not empty, bad creator, licence, relation or identifier, metadata that does
            not validate, a file missing or changed (with ``include_data``), the ``publish``
            extra not installed.
    """
    record = _depositable(catalog.get(global_id))
    out = Path(out_dir).expanduser().absolute()
    check_out_dir(out)
    people = _creators(creators)
    datacite = datacite_metadata(
        catalog,
        record.global_id,
        creators=people,
        license=license,
        version=version,
        title=title,
        description=description,
        related=related,
        keywords=keywords,
        publisher=publisher,
        publication_year=publication_year,
        catalog_url=catalog_url,
    )
    validate_datacite(datacite)
    zenodo = zenodo_metadata(datacite)
    _roc_validator()  # before copying any data: the crate cannot be checked without it
    extra = [
        (
            "datacite.json",
            _json_bytes(datacite),
            {
                "name": "DataCite metadata of this deposit",
                "description": f"DataCite Metadata Schema {DATACITE_SCHEMA_VERSION}, JSON",
                "encodingFormat": "application/json",
                "conformsTo": {"@id": DATACITE_SCHEMA_DOC},
                "about": {"@id": "./"},
            },
        ),
        (
            "zenodo.json",
            _json_bytes(zenodo),
            {
                "name": "Zenodo deposition metadata of this deposit",
                "description": "the metadata object of Zenodo's deposition API",
                "encodingFormat": "application/json",
                "about": {"@id": "./"},
            },
        ),
    ]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".deposit", dir=out.parent))
    except OSError as exc:
        raise CatalogError(f"cannot create {out}: {exc.strerror or exc}") from None
    try:
        with _quiet_logger("twinforge.catalog.crate"):  # its "exported to <temporary dir>"
            crate = export_rocrate(
                catalog,
                record.global_id,
                work / "deposit",
                include_data=include_data,
                creators=people,
                license=license,
                extra_files=extra,
            )
        validate_crate(crate)
        os.rename(crate, out)
    except OSError as exc:
        raise CatalogError(f"cannot write the deposit {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.debug("deposit of %s written to %s", record.global_id, out)  # the CLI says it
    return out


# -------------------------------------------------------------------------------- helpers


def _depositable(record: Record) -> DatasetRecord | ModelRecord | EvaluationRecord:
    if not isinstance(record, DatasetRecord | ModelRecord | EvaluationRecord):
        raise CatalogError(
            f"cannot deposit {record.global_id}: deposit a dataset, model or evaluation"
        )
    return record


def _creators(creators: Sequence[Creator | str]) -> list[Creator]:
    if isinstance(creators, str):
        creators = [creators]
    people = [c if isinstance(c, Creator) else Creator.parse(c) for c in creators]
    if not people:
        raise CatalogError("a deposit needs at least one creator (--creator NAME[,ORCID])")
    return people


def _spdx_license(text: str) -> tuple[str, str]:
    if re.match(r"^\s*https?://", text or ""):
        raise CatalogError(
            f"a deposit needs an SPDX license identifier (e.g. CC-BY-4.0), not a URL: {text}"
        )
    return parse_license(text or "")


def _person(creator: Creator) -> dict[str, Any]:
    name = " ".join(creator.name.split())
    if "," in name:
        family, given = (part.strip() for part in name.split(",", 1))
    elif " " in name:
        given, family = name.rsplit(" ", 1)
    else:
        given, family = "", name
    entry: dict[str, Any] = {"name": f"{family}, {given}" if given else family}
    entry["nameType"] = "Personal"
    if given:
        entry["givenName"], entry["familyName"] = given, family
    if creator.orcid:
        entry["nameIdentifiers"] = [
            {
                "nameIdentifier": f"https://orcid.org/{creator.orcid}",
                "nameIdentifierScheme": "ORCID",
                "schemeUri": "https://orcid.org",
            }
        ]
    return entry


def _subjects(
    record: Record, software: list[dict[str, Any]], keywords: Iterable[str]
) -> list[dict[str, Any]]:
    words: list[str] = []
    if isinstance(record, DatasetRecord):
        words += ["simulation", *(s["name"] for s in software[1:])]
        physics = record.provenance.get("physics_list")
        if isinstance(physics, str) and physics:
            words.append(physics)
    elif isinstance(record, ModelRecord):
        words += ["fast simulation", "generative model"]
        words += [record.architecture] if record.architecture else []
    else:
        words += ["fast simulation", "generative model", "validation"]
    words += [str(k).strip() for k in keywords if str(k).strip()]
    seen: set[str] = set()
    subjects = [dict(_FOS_PHYSICS)]
    for word in words:
        if word.lower() not in seen:
            seen.add(word.lower())
            subjects.append({"subject": word})
    return subjects


def _sizes(record: Record, files: Sequence[Any]) -> list[str]:
    def count(n: int, unit: str) -> str:
        return f"{n} {unit}" if n == 1 else f"{n} {unit}s"

    sizes = [count(len(files), "file"), count(sum(f.size_bytes for f in files), "byte")]
    if isinstance(record, DatasetRecord):
        sizes.append(count(record.n_events, "event"))
    return sizes


@dataclass(frozen=True, slots=True)
class _Link:
    """A relation to another catalogue record (no global identifier of its own)."""

    relation: str
    record: Record
    title: str
    resource_type: str

    def identifier(self, base: str) -> dict[str, Any]:
        return {
            "relatedIdentifier": f"{base}/{self.record.global_id}",
            "relatedIdentifierType": "URL",
            "relationType": self.relation,
            "resourceTypeGeneral": self.resource_type,
        }

    def item(self) -> dict[str, Any]:
        return {
            "relationType": self.relation,
            "relatedItemType": self.resource_type,
            "titles": [{"title": self.title}],
        }


def _catalogue_links(catalog: Catalog, record: Record) -> list[_Link]:
    """Relations to the campaign that made a dataset, the models trained on it, the data a
    model was trained on, the model and reference data of an evaluation."""
    links: list[_Link] = []
    runs = [r for r in catalog.list("runs") if isinstance(r, TrainingRunRecord)]

    def named(kind: Kind, pk: int) -> Record:
        return catalog.get(format_id(kind, pk))

    def title(r: Record, what: str) -> str:
        return (
            f"{getattr(r, 'name', '') or r.global_id} ({what}, {CATALOGUE_ID_TYPE} {r.global_id})"
        )

    if isinstance(record, DatasetRecord):
        if record.campaign_id is not None:
            camp = named("campaigns", record.campaign_id)
            assert isinstance(camp, CampaignRecord)
            links.append(_Link("IsDerivedFrom", camp, title(camp, "simulation campaign"), "Other"))
        for pk in sorted({r.model_id for r in runs if r.dataset_id == record.id and r.model_id}):
            model = named("models", pk)
            links.append(_Link("IsSourceOf", model, title(model, "generative model"), "Model"))
    elif isinstance(record, ModelRecord):
        for pk in sorted({r.dataset_id for r in runs if r.model_id == record.id and r.dataset_id}):
            ds = named("datasets", pk)
            links.append(_Link("IsDerivedFrom", ds, title(ds, "training dataset"), "Dataset"))
    elif isinstance(record, EvaluationRecord):
        if record.model_id is not None:
            model = named("models", record.model_id)
            links.append(_Link("Reviews", model, title(model, "generative model"), "Model"))
        if record.dataset_id is not None:
            ds = named("datasets", record.dataset_id)
            links.append(_Link("References", ds, title(ds, "reference dataset"), "Dataset"))
    return links


def _software_relation(app: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "relatedIdentifier": str(app["url"]),
        "relatedIdentifierType": "URL",
        "relationType": "IsCompiledBy",
        "resourceTypeGeneral": "Software",
    }


def _methods(record: Record, software: list[dict[str, Any]], links: list[_Link]) -> str:
    tools = ", ".join(
        f"{s['name']} {s['softwareVersion']}" if s.get("softwareVersion") else s["name"]
        for s in software
    )
    verb = {"datasets": "Produced", "models": "Trained", "evaluations": "Computed"}[record.kind]
    text = f"{verb} with {tools or f'twinforge {__version__}'}."
    for link in links:
        text += f" {_PHRASES[link.relation]} {link.title}."
    text += (
        f" Catalogue ID {record.global_id}. The full provenance (parameters, seeds, software "
        "versions, checksums) is in ro-crate-metadata.json (RO-Crate 1.1, Process Run Crate)."
    )
    return text


def _unique(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for e in entries:
        key = json.dumps(e, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def _json_bytes(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(level)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
