"""schema.org JSON-LD of landing pages, so that dataset search engines can index them.

A dataset is a ``Dataset`` (with a ``DataDownload`` per file, the campaign it came from and the
simulation code as ``isBasedOn``), a simulator a ``SoftwareApplication``, an evaluation a
``Report``, and a model, campaign or training run a ``CreativeWork``. Every entity carries the
catalogue ID as ``identifier`` and its landing page as ``@id`` and ``url``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from twinforge import __version__
from twinforge.catalog import (
    CampaignRecord,
    DatasetRecord,
    EvaluationRecord,
    FileRecord,
    ModelRecord,
    Record,
    TrainingRunRecord,
)
from twinforge.catalog.crate import encoding_format, parse_license
from twinforge.errors import CatalogError
from twinforge.service.views import Related, is_surrogate

__all__ = ["landing_jsonld", "script_tag", "simulator_jsonld"]

UrlFor = Callable[[str], str]
"""Absolute URL of a path of this server (``/datasets/ds-1`` -> ``http://host/datasets/ds-1``)."""

_TYPES = {
    "datasets": "Dataset",
    "campaigns": "CreativeWork",
    "models": "CreativeWork",
    "runs": "CreativeWork",
    "evaluations": "Report",
}


def page_path(record: Record) -> str:
    """The path of a record's landing page."""
    return f"/{record.kind}/{record.global_id}"


def _catalog(url: UrlFor, title: str) -> dict[str, Any]:
    return {"@type": "DataCatalog", "name": title, "url": url("/")}


def _description(record: Record, fallback: str) -> str:
    text = getattr(record, "description", "") or ""
    # Google's dataset search wants 50 to 5000 characters
    text = text if len(text) >= 50 else f"{text} {fallback}".strip()
    return text[:5000]


def landing_jsonld(item: Related, url: UrlFor, *, title: str) -> dict[str, Any]:
    """The JSON-LD object of a record's landing page."""
    record = item.record
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": _TYPES[record.kind],
        "@id": url(page_path(record)),
        "url": url(page_path(record)),
        "identifier": record.global_id,
        "dateCreated": record.created_at.isoformat(),
        "includedInDataCatalog": _catalog(url, title),
    }
    if item.tags:
        data["keywords"] = item.tags
    if item.publications:
        latest = item.publications[-1]
        data["version"] = latest["version"]
        data["license"] = _license_url(latest["license"])
        if latest.get("identifier"):
            data["sameAs"] = latest["identifier"]
    linked = {k: [url(page_path(r)) for r in v] for k, v in item.links.items() if v}
    if isinstance(record, DatasetRecord):
        data |= _dataset(record, item, url)
    elif isinstance(record, ModelRecord):
        data |= {
            "name": record.name,
            "description": _description(
                record,
                f"A {record.architecture or 'generative'} model in the {title}, "
                "with its training provenance, weights and validation.",
            ),
            "genre": "surrogate model" if is_surrogate(record) else
            "generative fast-simulation model",
            "isBasedOn": linked.get("trained_on", []) + linked.get("fitted_on", []),
            "hasPart": [_download(f, url) for f in item.files],
        }  # fmt: skip
    elif isinstance(record, CampaignRecord):
        sim = item.simulator or {}
        data |= {
            "name": record.name,
            "description": _description(
                record,
                f"A simulation campaign of {sim.get('code') or sim.get('name') or 'a simulator'}"
                f" in the {title}: its parameter space, sampler and jobs.",
            ),
            "workExample": linked.get("datasets", []),
        }
        if sim:
            data["isBasedOn"] = _software(sim)
    elif isinstance(record, TrainingRunRecord):
        data |= {
            "name": f"training run {record.global_id}",
            "description": f"Training of {', '.join(linked.get('model', [])) or 'a model'} on "
            f"{', '.join(linked.get('dataset', [])) or 'unrecorded data'}.",
            "isBasedOn": linked.get("dataset", []),
            "workExample": linked.get("model", []),
        }
    elif isinstance(record, EvaluationRecord):
        data |= {
            "name": record.description or f"evaluation {record.global_id}",
            "description": _description(
                record,
                "Validation of a fast-simulation model against a Geant4 reference "
                "(CaloChallenge metrics).",
            ),
            "about": linked.get("model", []),
            "isBasedOn": linked.get("reference", []),
            "hasPart": [_download(f, url) for f in item.files],
        }
    return {k: v for k, v in data.items() if v not in (None, [], {}, "")}


def _dataset(record: DatasetRecord, item: Related, url: UrlFor) -> dict[str, Any]:
    sim = item.simulator or {}
    code = sim.get("code") or sim.get("name")
    prov = record.provenance
    facts = [
        f"{record.n_events:,} events in {record.n_files} file(s)",
        f"simulated with {code} {sim.get('version') or ''}".strip() if code else "",
        f"detector {prov['detector']}" if isinstance(prov.get("detector"), str) else "",
    ]
    summary = "; ".join(f for f in facts if f)
    data: dict[str, Any] = {
        "name": record.name,
        "description": _description(record, f"Simulated showers ({summary}).") if summary
        else _description(record, "A simulated dataset catalogued by twinforge."),
        "distribution": [_download(f, url) for f in item.files],
        "size": f"{record.size_bytes} B",
        "variableMeasured": "energy deposits per readout voxel (MeV)",
        "measurementTechnique": f"Monte Carlo simulation ({code})" if code else None,
        "isBasedOn": [url(page_path(r)) for r in item.links.get("produced_by", [])],
    }  # fmt: skip
    if sim:
        data["isBasedOn"] = [*data["isBasedOn"], _software(sim)]
    return data


def _download(f: FileRecord, url: UrlFor) -> dict[str, Any]:
    return {
        "@type": "DataDownload",
        "identifier": f.global_id,
        "name": Path(f.path).name,
        "contentUrl": url(f"/files/{f.global_id}"),
        "encodingFormat": encoding_format(Path(f.path)),
        "contentSize": f"{f.size_bytes} B",
        "sha256": f.sha256,
    }


def _software(sim: Mapping[str, Any]) -> dict[str, Any]:
    out = {
        "@type": "SoftwareApplication",
        "name": sim.get("code") or sim.get("name"),
        "softwareVersion": sim.get("version"),
        "applicationCategory": "simulation",
    }
    return {k: v for k, v in out.items() if v}


def simulator_jsonld(sim: Mapping[str, Any], url: UrlFor, *, title: str) -> dict[str, Any]:
    """The JSON-LD of a simulator's page: a ``SoftwareApplication`` (the plug-in) whose
    ``softwareVersion`` lists the code versions its datasets were made with."""
    data = {
        "@context": "https://schema.org",
        "@type": "SoftwareApplication",
        "@id": url(f"/simulators/{sim['name']}"),
        "url": url(f"/simulators/{sim['name']}"),
        "name": sim["name"],
        "description": sim.get("summary") or sim.get("error") or "",
        "applicationCategory": "simulation",
        "softwareVersion": sim.get("versions") or None,
        "isPartOf": {"@type": "SoftwareApplication", "name": "twinforge", "version": __version__},
        "includedInDataCatalog": _catalog(url, title),
        "subjectOf": [url(f"/campaigns/{c.global_id}") for c in sim.get("campaigns", [])],
    }
    return {k: v for k, v in data.items() if v not in (None, [], {}, "")}


def _license_url(text: str) -> str:
    try:
        return parse_license(text)[1]
    except CatalogError:  # a licence that is no SPDX id is shown as it is
        return text


def script_tag(data: Mapping[str, Any]) -> str:
    """``data`` as a ``<script type="application/ld+json">`` element, safe inside HTML
    (``<``, ``>`` and ``&`` escaped as JSON unicode escapes)."""
    text = json.dumps(data, indent=1, ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/ld+json">\n{text}\n</script>'
