"""RO-Crate export of catalogue records, following the Process Run Crate profile.

A dataset, model or evaluation becomes a directory ready for a data-repository deposit::

    out_dir/
      ro-crate-metadata.json     JSON-LD description (RO-Crate 1.1 + Process Run Crate 0.5)
      ro-crate-preview.html      human-readable summary
      data/<file>...             the files themselves (unless include_data=False)

The crate describes how the files came to be as one ``CreateAction`` (Process Run Crate,
https://w3id.org/ro/wfrun/process/0.5): its ``instrument`` is twinforge (and the simulator named
in the provenance, e.g. Geant4 with its version), its ``object`` the inputs (parameters, seeds
and other provenance as ``PropertyValue`` entities; the training data of a model; the model
and reference of an evaluation), its ``result`` the files (with ``sha256``, ``contentSize``,
``encodingFormat``), its ``agent`` the creators.

Provenance keys read specially (all optional): ``code`` (the simulation code that ran, an
object with ``name``, ``version``, ``url``: what every twinforge simulator writes), else
``simulator`` (text, or an object with ``name``, ``version``, ``url``), ``simulator_version``,
``software`` (``{name: version}``), ``twinforge_version``, ``parameters`` (object), ``seed`` /
``seeds``, ``command``, ``start_time`` / ``end_time`` (ISO 8601). Every other key becomes a
``PropertyValue``.
"""

from __future__ import annotations

import getpass
import json
import logging
import mimetypes
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from twinforge import __version__
from twinforge.catalog.hashing import copy_with_digest
from twinforge.catalog.records import (
    DatasetRecord,
    EvaluationRecord,
    FileRecord,
    ModelRecord,
    Record,
    TrainingRunRecord,
)
from twinforge.errors import CatalogError

if TYPE_CHECKING:
    from rocrate.rocrate import ROCrate

    from twinforge.catalog.store import Catalog

__all__ = [
    "DEFAULT_LICENSE",
    "PROCESS_RUN_CRATE",
    "PROCESS_RUN_CRATE_VERSION",
    "Creator",
    "export_rocrate",
]

log = logging.getLogger(__name__)

PROCESS_RUN_CRATE_VERSION: Final = "0.5"
PROCESS_RUN_CRATE: Final = f"https://w3id.org/ro/wfrun/process/{PROCESS_RUN_CRATE_VERSION}"
"""Permalink of the Process Run Crate profile the exported crates conform to."""

WORKFLOW_RUN_CONTEXT: Final = "https://w3id.org/ro/terms/workflow-run/context"
RO_CRATE_VERSION: Final = "1.1"
DEFAULT_LICENSE: Final = "CC-BY-4.0"

_EXTRA_TERMS: Final = {"sha256": "http://schema.org/sha256"}  # not in the RO-Crate 1.1 context

_FORMATS: Final = {
    ".h5": "application/x-hdf5",
    ".hdf5": "application/x-hdf5",
    ".json": "application/json",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".safetensors": "application/octet-stream",
    ".onnx": "application/octet-stream",
    ".root": "application/octet-stream",
    ".xml": "application/xml",
    ".csv": "text/csv",
    ".html": "text/html",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".png": "image/png",
    ".pdf": "application/pdf",
}

_KNOWN_SOFTWARE_URLS: Final = {
    "geant4": "https://geant4.web.cern.ch/",
    "xsuite": "https://xsuite.readthedocs.io/",
    "mad-ng": "https://madx.web.cern.ch/releases/madng/",
    "twinforge": "https://pypi.org/project/twinforge/",
}

_SPECIAL_KEYS: Final = frozenset(
    {
        "simulator",
        "simulator_version",
        "code",
        "software",
        "twinforge_version",
        "parameters",
        "seed",
        "seeds",
        "command",
        "start_time",
        "end_time",
    }
)

_ORCID_RE = re.compile(r"^(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$", re.I)
_ORCID_LIKE = re.compile(r"^(?:https?://orcid\.org/)?[\dXx-]{8,}$", re.I)
_SPDX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+\-]*$")


@dataclass(frozen=True, slots=True)
class Creator:
    """A person credited in the crate (``author`` of the crate, ``agent`` of the action)."""

    name: str
    orcid: str | None = None
    """ORCID iD as ``0000-0002-1825-0097`` (checked, checksum included)."""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise CatalogError("a creator needs a name")
        if self.orcid is not None:
            object.__setattr__(self, "orcid", _check_orcid(self.orcid))

    @classmethod
    def parse(cls, text: str) -> Creator:
        """Read ``"Name"`` or ``"Name,ORCID"`` (``--creator`` of the CLI)."""
        name, sep, tail = text.rpartition(",")
        if sep and _ORCID_LIKE.match(tail.strip()):
            return cls(name.strip(), tail.strip())
        return cls(text.strip())

    @property
    def id(self) -> str:
        """JSON-LD ``@id``: the ORCID URL, else a local ``#person-...`` identifier."""
        if self.orcid:
            return f"https://orcid.org/{self.orcid}"
        return "#person-" + _slug(self.name)


def default_creators() -> list[Creator]:
    """Creators when none are given: ``$TWINFORGE_CREATORS`` (``"Name[,ORCID]; Name2"``), else
    git's ``user.name``, else the login name."""
    env = os.environ.get("TWINFORGE_CREATORS", "").strip()
    if env:
        return [Creator.parse(part) for part in env.split(";") if part.strip()]
    try:
        name = subprocess.run(
            ["git", "config", "--get", "user.name"], capture_output=True, text=True, timeout=5,
            check=False,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        name = ""
    if not name:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):
            name = "unknown"
    return [Creator(name)]


def _check_orcid(text: str) -> str:
    match = _ORCID_RE.match(text.strip())
    if match is None:
        raise CatalogError(f"not an ORCID iD: {text!r} (expected 0000-0000-0000-0000)")
    orcid = match.group(1).upper()
    digits = orcid.replace("-", "")
    total = 0
    for d in digits[:-1]:
        total = (total + int(d)) * 2
    check = (12 - total % 11) % 11
    if digits[-1] != ("X" if check == 10 else str(check)):
        raise CatalogError(f"not an ORCID iD: {text!r} (wrong check digit)")
    return orcid


def export_rocrate(
    catalog: Catalog,
    global_id: str,
    out_dir: str | os.PathLike[str],
    *,
    include_data: bool = True,
    creators: Sequence[Creator | str] | None = None,
    license: str | None = None,
    file_url: Callable[[FileRecord], str] | None = None,
    extra_files: Sequence[tuple[str, bytes, Mapping[str, Any]]] = (),
) -> Path:
    """Export a dataset, model or evaluation as a Process Run Crate in ``out_dir``.

    Args:
        catalog: the catalogue holding the record.
        global_id: ``ds-N``, ``model-N`` or ``eval-N``.
        out_dir: the crate directory; it must not exist or be empty. The crate is built in a
            temporary directory beside it and renamed into place, so ``out_dir`` is either the
            complete crate or untouched.
        include_data: copy the files into ``out_dir/data/`` (checking each copy's SHA-256
            against the catalogue); when False, reference them by absolute ``file://`` URI.
        creators: people to credit, :class:`Creator` or ``"Name[,ORCID]"`` text; default
            :func:`default_creators`.
        license: SPDX identifier (default ``CC-BY-4.0``) or a license URL.
        file_url: without ``include_data``, the address to reference each file by (a web
            catalogue's download URL) instead of its ``file://`` URI.
        extra_files: more files to write into the crate and list as its parts, each as
            ``(path in the crate, content, properties of its File entity)`` (a deposit's
            metadata files: ``datacite.json``, ``zenodo.json``).

    Returns:
        The crate directory.

    Raises:
        CatalogError: unknown or unexportable record, ``out_dir`` not empty, a file missing
            or changed since it was catalogued (with ``include_data``), bad creator or license.
    """
    record = catalog.get(global_id)
    if not isinstance(record, DatasetRecord | ModelRecord | EvaluationRecord):
        raise CatalogError(
            f"cannot export {record.global_id}: export a dataset, model or evaluation"
        )
    people = [c if isinstance(c, Creator) else Creator.parse(c) for c in creators or ()]
    people = people or default_creators()
    license_id, license_url = parse_license(license or DEFAULT_LICENSE)
    out = Path(out_dir).expanduser().absolute()
    check_out_dir(out)
    files = catalog.files(record)
    context = _Context.collect(catalog, record)

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise CatalogError(f"cannot create {out}: {exc.strerror}") from None
    try:
        crate = _build(
            record, files, context, tmp, include_data, people, license_id, license_url, file_url
        )
        for dest, content, properties in extra_files:
            target = tmp / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            crate.add_file(target, dest_path=dest, properties=dict(properties))
        crate.write(tmp)
        tmp.chmod(0o755)
        os.rename(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CatalogError(f"cannot write the crate {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s to %s (%d file(s))", record.global_id, out, len(files))
    return out


def check_out_dir(out: Path) -> None:
    """Refuse an output directory that exists and is not empty (or is not a directory)."""
    if out.is_dir():
        if any(out.iterdir()):
            raise CatalogError(f"{out} exists and is not empty; give a new or empty directory")
    elif out.exists() or out.is_symlink():
        raise CatalogError(f"{out} exists and is not a directory")


def parse_license(text: str) -> tuple[str, str]:
    """``(identifier, URL)`` of a license given as an SPDX identifier or a URL."""
    text = text.strip()
    if re.match(r"^https?://", text):
        return text.rstrip("/").rsplit("/", 1)[-1], text
    if not _SPDX_RE.match(text):
        raise CatalogError(f"not an SPDX license identifier: {text!r} (e.g. CC-BY-4.0, MIT)")
    return text, f"https://spdx.org/licenses/{text}"


def describe_record(catalog: Catalog, record: Record) -> tuple[str, str]:
    """``(name, description)`` of a dataset, model or evaluation, as its crate's root has."""
    ctx = _Context.collect(catalog, record)
    return ctx.name, ctx.description


@dataclass
class _Context:
    """What the crate says about the record besides its files."""

    name: str
    description: str
    action_name: str
    inputs: list[dict[str, Any]]  # entities the action used (datasets, models)
    extra_values: dict[str, Any]  # more PropertyValues for the object
    results: dict[str, Any]  # PropertyValues for the result (metrics)
    start: datetime | None
    end: datetime | None
    provenance: dict[str, Any]

    @classmethod
    def collect(cls, catalog: Catalog, record: Record) -> _Context:
        prov = dict(record.provenance)
        if isinstance(record, DatasetRecord):
            return cls._dataset(catalog, record, prov)
        if isinstance(record, ModelRecord):
            return cls._model(catalog, record, prov)
        assert isinstance(record, EvaluationRecord)
        return cls._evaluation(catalog, record, prov)

    @classmethod
    def _dataset(cls, catalog: Catalog, ds: DatasetRecord, prov: dict[str, Any]) -> _Context:
        extra: dict[str, Any] = {}
        start = end = None
        if ds.campaign_id is not None:
            campaign = catalog.get(f"camp-{ds.campaign_id}")
            extra["campaign"] = f"{campaign.global_id} {campaign.name}"  # type: ignore[attr-defined]
            if campaign.config:  # type: ignore[attr-defined]
                extra["campaign configuration"] = campaign.config  # type: ignore[attr-defined]
            jobs = catalog.jobs(campaign.id)
            starts = [j.started_at for j in jobs if j.started_at is not None]
            ends = [j.finished_at for j in jobs if j.state == "done" and j.finished_at]
            start, end = (min(starts) if starts else None), (max(ends) if ends else None)
        return cls(
            name=ds.name,
            description=(ds.description or f"Calorimeter showers: dataset {ds.name}")
            + f" ({ds.n_files} file(s), {ds.n_events} events)",
            action_name=f"Simulation of {ds.name}",
            inputs=[],
            extra_values=extra,
            results={},
            start=start,
            end=end,
            provenance=prov,
        )

    @classmethod
    def _model(cls, catalog: Catalog, model: ModelRecord, prov: dict[str, Any]) -> _Context:
        runs = [
            r
            for r in catalog.list("runs")
            if isinstance(r, TrainingRunRecord) and r.model_id == model.id
        ]
        inputs, extra, metrics = [], {}, {}
        start = end = None
        if model.architecture:
            extra["architecture"] = model.architecture
        for run in runs:
            if run.dataset_id is not None:
                inputs.append(_dataset_entity(catalog, run.dataset_id))
            for key, value in run.hyperparameters.items():
                extra[key] = value
            for key, value in run.metrics.items():
                metrics[key] = value
            start = run.started_at if start is None else start
            end = run.finished_at or end
        return cls(
            name=model.name,
            description=model.description or f"Generative model {model.name}",
            action_name=f"Training of {model.name}",
            inputs=inputs,
            extra_values=extra,
            results=metrics,
            start=start,
            end=end,
            provenance=prov,
        )

    @classmethod
    def _evaluation(cls, catalog: Catalog, ev: EvaluationRecord, prov: dict[str, Any]) -> _Context:
        inputs = []
        subject = ev.global_id
        if ev.model_id is not None:
            model = catalog.get(f"model-{ev.model_id}")
            assert isinstance(model, ModelRecord)
            subject = model.name
            inputs.append(
                {
                    "@id": f"#{model.global_id}",
                    "@type": "SoftwareApplication",
                    "name": model.name,
                    "identifier": model.global_id,
                    "description": f"generative model ({model.architecture or 'unknown'})",
                }
            )
        if ev.dataset_id is not None:
            inputs.append(_dataset_entity(catalog, ev.dataset_id))
        return cls(
            name=f"Evaluation {ev.global_id} of {subject}",
            description=ev.description or f"Validation of {subject} against reference showers",
            action_name=f"Evaluation of {subject}",
            inputs=inputs,
            extra_values={},
            results=dict(ev.metrics),
            start=None,
            end=None,
            provenance=prov,
        )


def _dataset_entity(catalog: Catalog, dataset_id: int) -> dict[str, Any]:
    ds = catalog.get(f"ds-{dataset_id}")
    assert isinstance(ds, DatasetRecord)
    return {
        "@id": f"#{ds.global_id}",
        "@type": "Dataset",
        "name": ds.name,
        "identifier": ds.global_id,
        "description": f"{ds.n_files} file(s), {ds.n_events} events (not included)",
    }


def _build(
    record: Record,
    files: Sequence[FileRecord],
    ctx: _Context,
    tmp: Path,
    include_data: bool,
    people: Sequence[Creator],
    license_id: str,
    license_url: str,
    file_url: Callable[[FileRecord], str] | None = None,
) -> ROCrate:
    from rocrate.model.contextentity import ContextEntity
    from rocrate.model.person import Person
    from rocrate.rocrate import ROCrate

    crate = ROCrate(gen_preview=True, version=RO_CRATE_VERSION)
    crate.metadata.extra_contexts.append(WORKFLOW_RUN_CONTEXT)
    crate.metadata.extra_terms.update(_EXTRA_TERMS)

    def entity(identifier: str, properties: Mapping[str, Any]) -> Any:
        return crate.add(ContextEntity(crate, identifier, properties=dict(properties)))

    profile = entity(
        PROCESS_RUN_CRATE,
        {
            "@type": "CreativeWork",
            "name": "Process Run Crate",
            "version": PROCESS_RUN_CRATE_VERSION,
        },
    )
    license_entity = entity(
        license_url, {"@type": "CreativeWork", "name": license_id, "identifier": license_id}
    )
    root = crate.root_dataset
    root["name"] = ctx.name
    root["description"] = ctx.description
    root["identifier"] = record.global_id
    root["datePublished"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    root["license"] = license_entity
    root["conformsTo"] = profile
    persons = [crate.add(Person(crate, p.id, properties={"name": p.name})) for p in people]
    if persons:
        root["author"] = persons

    results = [_add_file(crate, f, tmp, include_data, file_url) for f in _unique_dest(files)]

    prov = ctx.provenance
    apps, requirements = software_entities(prov)
    software = [entity(e["@id"], e) for e in apps]
    for e in requirements:
        entity(e["@id"], e)
    values = _property_values(prov, ctx.extra_values)
    used = [entity(e["@id"], e) for e in ctx.inputs]
    used += [entity(f"#input-{_slug(k)}", _property_value(k, v)) for k, v in values]
    made = [entity(f"#result-{_slug(k)}", _property_value(k, v)) for k, v in ctx.results.items()]

    action: dict[str, Any] = {
        "@type": "CreateAction",
        "name": ctx.action_name,
        "description": str(prov.get("command") or f"twinforge: {ctx.action_name.lower()}"),
        "actionStatus": {"@id": "http://schema.org/CompletedActionStatus"},
    }
    start = _time(prov.get("start_time")) or ctx.start
    end = _time(prov.get("end_time")) or ctx.end
    if start is not None:
        action["startTime"] = start.isoformat()
    if end is not None:
        action["endTime"] = end.isoformat()
    action_entity = entity(f"#create-{record.global_id}", action)
    action_entity["instrument"] = software if len(software) > 1 else software[0]
    if used:
        action_entity["object"] = used
    if results or made:
        action_entity["result"] = results + made
    if persons:
        action_entity["agent"] = persons if len(persons) > 1 else persons[0]
    root["mentions"] = action_entity
    return crate


def _unique_dest(files: Sequence[FileRecord]) -> Iterable[tuple[FileRecord, str]]:
    """Each file with its path in the crate: ``data/<name>``, or ``data/file-N/<name>``."""
    names = [Path(f.path).name for f in files]
    for f, name in zip(files, names, strict=True):
        if names.count(name) > 1:
            yield f, f"data/{f.global_id}/{name}"
        else:
            yield f, f"data/{name}"


def _add_file(
    crate: ROCrate,
    item: tuple[FileRecord, str],
    tmp: Path,
    include: bool,
    file_url: Callable[[FileRecord], str] | None = None,
) -> Any:
    f, dest = item
    source = Path(f.path)
    properties: dict[str, Any] = {
        "name": source.name,
        "identifier": f.global_id,
        "contentSize": str(f.size_bytes),
        "sha256": f.sha256,
        "encodingFormat": encoding_format(source),
        "dateCreated": f.created_at.isoformat(),
    }
    if f.n_events is not None:
        properties["description"] = f"{f.n_events} events"
    if not include and file_url is not None:
        return crate.add_file(file_url(f), properties=properties)
    if not include:
        if not source.is_file():
            log.warning("%s (%s) is missing; referenced in the crate anyway", source, f.global_id)
        return crate.add_file(source.as_uri(), properties=properties)
    target = tmp / dest
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        digest = copy_with_digest(source, target)
    except FileNotFoundError:
        raise CatalogError(
            f"{f.global_id} is missing: {source} (export with --no-data to reference it)"
        ) from None
    if digest.sha256 != f.sha256 or digest.size != f.size_bytes:
        raise CatalogError(
            f"{f.global_id} changed since it was catalogued: {source} "
            "(sha256 mismatch; run `twinforge catalog verify`)"
        )
    return crate.add_file(target, dest_path=dest, properties=properties)


def encoding_format(path: Path) -> str:
    """The media type of a file, from its suffix (``application/x-hdf5`` for ``.h5``)."""
    suffix = path.suffix.lower()
    if suffix in _FORMATS:
        return _FORMATS[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def software_entities(
    prov: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The instruments (twinforge, the simulator) and twinforge's other software requirements."""
    software = prov.get("software") if isinstance(prov.get("software"), Mapping) else {}
    twinforge_version = str(
        prov.get("twinforge_version") or software.get("twinforge") or __version__
    )
    apps = [_software("twinforge", twinforge_version)]
    requirements = [
        _software(str(name), str(version))
        for name, version in software.items()
        if str(name).lower() != "twinforge"
    ]
    simulator = prov.get("simulator")
    code = prov.get("code")
    if isinstance(code, Mapping) and code.get("name"):  # the simulation code and its version
        apps.append(_software(str(code["name"]), str(code.get("version") or ""), code.get("url")))
    elif isinstance(simulator, Mapping) and simulator.get("name"):
        sim = _software(
            str(simulator["name"]),
            str(simulator.get("version") or prov.get("simulator_version") or ""),
            simulator.get("url"),
        )
        apps.append(sim)
    elif isinstance(simulator, str) and simulator:
        apps.append(_software(simulator, str(prov.get("simulator_version") or "")))
    sim_ids = {a["@id"] for a in apps}
    requirements = [r for r in requirements if r["@id"] not in sim_ids]
    if requirements:
        apps[0]["softwareRequirements"] = [{"@id": r["@id"]} for r in requirements]
    return apps, requirements


def _software(name: str, version: str, url: Any = None) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "@id": f"#software-{_slug(name)}" + (f"-{_slug(version)}" if version else ""),
        "@type": "SoftwareApplication",
        "name": name,
    }
    if version:
        entity["softwareVersion"] = version
    link = url or _KNOWN_SOFTWARE_URLS.get(name.lower())
    if link:
        entity["url"] = str(link)
    return entity


def _property_values(prov: Mapping[str, Any], extra: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(name, value) of every input worth recording: parameters, seeds, other provenance."""
    values: list[tuple[str, Any]] = []
    params = prov.get("parameters")
    if isinstance(params, Mapping):
        values += [(str(k), v) for k, v in params.items()]
    elif params is not None:
        values.append(("parameters", params))
    for key in ("seed", "seeds"):
        seeds = prov.get(key)
        if isinstance(seeds, Mapping):
            values += [(f"seed {k}", v) for k, v in seeds.items()]
        elif isinstance(seeds, list):
            values += [(f"seed {i}", v) for i, v in enumerate(seeds)]
        elif seeds is not None:
            values.append(("seed", seeds))
    values += [(str(k), v) for k, v in prov.items() if k not in _SPECIAL_KEYS]
    values += list(extra.items())
    seen: set[str] = set()
    unique = []
    for name, value in values:
        if _slug(name) not in seen:
            seen.add(_slug(name))
            unique.append((name, value))
    return unique


def _property_value(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool | int | float | str):
        shown: Any = value
    elif value is None:
        shown = "null"
    else:
        shown = json.dumps(value, sort_keys=True)
    return {"@type": "PropertyValue", "name": name, "value": shown}


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        log.warning("ignoring unreadable time %r in provenance", value)
        return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", str(text)).strip("-").lower() or "x"
