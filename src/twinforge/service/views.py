"""The read side of the web catalogue: what a landing page or an API answer shows of a record.

Pure functions of an open :class:`~twinforge.catalog.Catalog`; the HTML pages
(:mod:`twinforge.service.pages`) and the JSON API (:mod:`twinforge.service.api`) render the
same dictionaries, so both always say the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from twinforge.catalog import (
    CampaignRecord,
    Catalog,
    DatasetRecord,
    EvaluationRecord,
    FileRecord,
    ModelRecord,
    Record,
    TrainingRunRecord,
    format_id,
    parse_id,
)
from twinforge.catalog.search import SURROGATE_PREFIX
from twinforge.errors import CatalogError, RecordNotFound

__all__ = [
    "BROWSABLE",
    "REPORT_NAMES",
    "Related",
    "comparison",
    "describe_simulators",
    "related",
    "resolve",
    "simulator",
]

BROWSABLE: Final = ("datasets", "campaigns", "models", "surrogates", "runs", "evaluations")
"""The listings of the web catalogue (``surrogates`` are the models that are surrogates)."""

REPORT_NAMES: Final = ("report.html",)
"""File names of an evaluation's HTML report."""


def is_surrogate(record: Record) -> bool:
    """Whether a model record is a surrogate of a campaign's outputs (``twinforge surrogate``)
    rather than a generative model."""
    return isinstance(record, ModelRecord) and record.architecture.startswith(SURROGATE_PREFIX)


def resolve(catalog: Catalog, ref: str, kind: str | None = None) -> Record:
    """The record named by a global ID (``ds-3``) or, for named kinds, by its name.

    Raises:
        RecordNotFound: nothing has that ID or name (or it is of another kind).
        CatalogError: a malformed reference.
    """
    if len(ref) > 255:
        raise CatalogError("reference too long")
    try:
        found_kind, _ = parse_id(ref)
    except CatalogError:
        if kind not in ("datasets", "campaigns", "models"):
            raise
        record = catalog.find(ref, kind)
        if record is None:
            raise RecordNotFound(f"no such record: {ref}") from None
        return record
    record = catalog.get(ref)
    if kind is not None and found_kind != kind:
        raise RecordNotFound(f"{record.global_id} is not one of the {kind}")
    return record


@dataclass
class Related:
    """A record with everything its landing page links to."""

    record: Record
    files: list[FileRecord]
    tags: list[str]
    publications: list[dict[str, Any]]
    links: dict[str, list[Record]]
    """Named groups of related records: ``campaign``, ``datasets``, ``models``, ``runs``,
    ``evaluations``, ``trained_on``, ``produced_by`` ..."""
    simulator: dict[str, Any] | None = None
    """For a campaign or dataset: the simulator (registry name, code and version)."""
    report: FileRecord | None = None
    """For an evaluation: its HTML report."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the record, its files, tags, publications and related IDs."""
        data = self.record.to_dict()
        data["tags"] = self.tags
        data["publications"] = self.publications
        if self.files:
            data["files"] = [f.to_dict() | {"owner": f.owner} for f in self.files]
        data["links"] = {k: [r.global_id for r in v] for k, v in self.links.items() if v}
        if self.simulator is not None:
            data["simulator"] = self.simulator
        if self.report is not None:
            data["report"] = self.report.global_id
        return data


def related(catalog: Catalog, record: Record, *, limit: int = 200) -> Related:
    """``record`` with its files, tags, publications and related records (at most ``limit``
    of each group)."""
    links: dict[str, list[Record]] = {}
    files: list[FileRecord] = []
    sim: dict[str, Any] | None = None
    report: FileRecord | None = None
    gid = record.global_id

    def search(kind: str, **filters: Any) -> list[Record]:
        return catalog.search(kind, filters=filters, limit=limit).records

    if isinstance(record, DatasetRecord):
        files = catalog.files(record)
        if record.campaign_id is not None:
            links["produced_by"] = [catalog.get(format_id("campaigns", record.campaign_id))]
        links["models"] = search("models", trained_on=gid)
        links["evaluations"] = search("evaluations", dataset=gid)
        sim = _simulator_of(record.provenance, None)
    elif isinstance(record, CampaignRecord):
        links["datasets"] = search("datasets", campaign=gid)
        sim = _simulator_of({}, record.config)
    elif isinstance(record, ModelRecord):
        files = catalog.files(record)
        runs = search("runs", model=gid)
        links["runs"] = runs
        links["trained_on"] = _trained_on(catalog, record, runs)
        links["evaluations"] = search("evaluations", model=gid)
        campaign = record.provenance.get("campaign")
        if is_surrogate(record) and isinstance(campaign, str):
            found = catalog.find(campaign, "campaigns")
            links["fitted_on"] = [found] if found is not None else []
    elif isinstance(record, TrainingRunRecord):
        links["model"] = _get(catalog, "models", record.model_id)
        links["dataset"] = _get(catalog, "datasets", record.dataset_id)
    elif isinstance(record, EvaluationRecord):
        files = catalog.files(record)
        links["model"] = _get(catalog, "models", record.model_id)
        links["reference"] = _get(catalog, "datasets", record.dataset_id)
        report = next((f for f in files if Path(f.path).name in REPORT_NAMES), None)
    taggable = record.kind in ("datasets", "campaigns", "models", "runs", "evaluations")
    tags = list(catalog.tags(record)) if taggable else []
    pubs = (
        [p.to_dict() for p in catalog.publications(record)]
        if record.kind in ("datasets", "models")
        else []
    )
    return Related(record, files, tags, pubs, links, sim, report)


def _get(catalog: Catalog, kind: str, pk: int | None) -> list[Record]:
    if pk is None:
        return []
    try:
        return [catalog.get(format_id(kind, pk))]  # type: ignore[arg-type]
    except RecordNotFound:
        return []


def _trained_on(catalog: Catalog, model: ModelRecord, runs: list[Record]) -> list[Record]:
    """The datasets a model was trained on: its runs' datasets, else (catalogues written
    before runs recorded them) the dataset holding its training files."""
    ids = sorted({r.dataset_id for r in runs if isinstance(r, TrainingRunRecord) and r.dataset_id})
    if ids:
        return [r for pk in ids for r in _get(catalog, "datasets", pk)]
    paths = model.provenance.get("training_files")
    if isinstance(paths, list) and paths:
        found = catalog.dataset_of(str(p) for p in paths)
        return [found] if found is not None else []
    return []


def _simulator_of(provenance: Mapping[str, Any], config: Mapping[str, Any] | None) -> dict | None:
    """The simulator of a dataset (its provenance) or campaign (its config)."""
    name = None
    code: Any = provenance.get("code")
    if config is not None:
        block = config.get("simulator")
        name = block.get("name") if isinstance(block, Mapping) else block
        setup = config.get("simulator_setup")
        if isinstance(setup, Mapping):
            code = setup.get("code", code)
    else:
        value = provenance.get("simulator")
        name = value.get("name") if isinstance(value, Mapping) else value
    if name is None and not code:
        return None
    out: dict[str, Any] = {"name": name}
    if isinstance(code, Mapping):
        out["code"] = code.get("name")
        out["version"] = code.get("version")
    elif provenance.get("simulator_version"):
        out["version"] = provenance.get("simulator_version")
    return out


# ---------------------------------------------------------------------- simulators


@cache
def _simulators() -> tuple[dict[str, Any], ...]:
    from twinforge.simulation import registry

    return tuple(registry.describe())


def describe_simulators() -> list[dict[str, Any]]:
    """The installed simulators (entry points), as ``twinforge simulators --json`` shows them
    (read once per process: plug-ins are installed, not changed, while a server runs)."""
    return [dict(s) for s in _simulators()]


def simulator(catalog: Catalog, name: str, *, limit: int = 200) -> dict[str, Any]:
    """One installed simulator with the campaigns and datasets that used it.

    Raises:
        RecordNotFound: no simulator of that name is installed.
    """
    found = next((s for s in describe_simulators() if s["name"] == name), None)
    if found is None:
        raise RecordNotFound(f"no such simulator: {name}")
    campaigns = catalog.search("campaigns", filters={"simulator": name}, limit=limit)
    datasets = catalog.search("datasets", filters={"simulator": name}, limit=limit)
    versions = sorted(
        {
            str(v)
            for d in datasets.records
            if (v := (_simulator_of(d.provenance, None) or {}).get("version"))
        }
    )
    return found | {
        "campaigns": campaigns.records,
        "n_campaigns": campaigns.total,
        "datasets": datasets.records,
        "n_datasets": datasets.total,
        "versions": versions,
    }


# ---------------------------------------------------------------------- model comparison

COMPARE_COLUMNS: Final = (
    ("auc_low", "AUC low", "low-level classifier AUC (mean over classifier seeds)"),
    ("auc_high", "AUC high", "high-level classifier AUC (mean over classifier seeds)"),
    ("fpd", "FPD", "Fréchet physics distance on the high-level features"),
    ("kpd", "KPD", "kernel physics distance on the high-level features"),
    ("ms_per_shower", "ms/shower", "median time per shower, best backend, batch 1000"),
    ("speedup", "x Geant4", "speed-up over Geant4 on the same machine"),
)
"""Columns of the comparison page: key, heading, meaning."""


def comparison(catalog: Catalog, *, limit: int = 500) -> list[dict[str, Any]]:
    """One row per generative model: its latest validation figures and benchmark.

    A row holds ``model`` (the record), ``evaluation`` / ``benchmark`` (global IDs of the
    evaluations the figures come from), the :data:`COMPARE_COLUMNS` values (None where not
    measured), ``budget`` (the classifier budgets), ``comparable`` (False for a quick or
    custom budget: such AUCs must not be compared with published ones) and ``noise_floor``
    (the same figures for Geant4 against Geant4).
    """
    rows = []
    models = catalog.search("models", filters={"surrogate": False}, limit=limit).records
    for model in models:
        evals = catalog.search("evaluations", filters={"model": model.global_id}, limit=200)
        row: dict[str, Any] = {
            "model": model,
            "evaluation": None,
            "benchmark": None,
            "budget": None,
            "comparable": False,
            "noise_floor": {},
        }
        row |= dict.fromkeys(k for k, _, _ in COMPARE_COLUMNS)
        for ev in evals.records:  # newest first
            assert isinstance(ev, EvaluationRecord)
            m = ev.metrics
            if ev.provenance.get("kind") == "benchmark":
                if row["benchmark"] is None:
                    row["benchmark"] = ev.global_id
                    row |= _bench_figures(m)
            elif row["evaluation"] is None and m:
                row["evaluation"] = ev.global_id
                row |= _validation_figures(m)
        rows.append(row)
    return rows


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _scope_figures(m: Mapping[str, Any]) -> dict[str, float | None]:
    """AUCs and distances of one scope of a validation's metrics (metrics.json's
    ``overall``: ``classifier_low.auc``, ``fpd.value`` ...)."""

    def get(block: str, key: str) -> float | None:
        value = m.get(block)
        return _number(value.get(key)) if isinstance(value, Mapping) else None

    return {
        "auc_low": get("classifier_low", "auc"),
        "auc_high": get("classifier_high", "auc"),
        "fpd": get("fpd", "value"),
        "kpd": get("kpd", "value"),
    }


def _validation_figures(m: Mapping[str, Any]) -> dict[str, Any]:
    budgets = {
        level: block.get("budget")
        for level in ("classifier_low", "classifier_high")
        if isinstance(block := m.get(level), Mapping)
    }
    comparable = all(
        block.get("comparable", False)
        for level in ("classifier_low", "classifier_high")
        if isinstance(block := m.get(level), Mapping)
    )
    floor = m.get("noise_floor")
    return _scope_figures(m) | {
        "budget": ", ".join(sorted({str(b) for b in budgets.values()})) or None,
        "comparable": comparable and bool(budgets),
        "noise_floor": _scope_figures(floor) if isinstance(floor, Mapping) else {},
    }


def _bench_figures(m: Mapping[str, Any]) -> dict[str, Any]:
    rows = [r for r in m.get("results") or [] if isinstance(r, Mapping)]
    at = [r for r in rows if r.get("batch") == 1000] or rows
    timed = [r for r in at if _number(r.get("median_ms_per_shower")) is not None]
    if not timed:
        return {}
    best = min(timed, key=lambda r: float(r["median_ms_per_shower"]))
    return {
        "ms_per_shower": _number(best.get("median_ms_per_shower")),
        "speedup": _number(best.get("speedup_vs_geant4")),
        "backend": best.get("backend"),
        "batch": best.get("batch"),
    }
