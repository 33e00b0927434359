"""Server-rendered HTML pages of the web catalogue (Jinja2 templates beside this module).

Listings with text search, tag and named filters, sorting and pagination; a landing page per
record with its provenance, related records, checksummed downloads, RO-Crate zip and schema.org
JSON-LD; simulators; evaluation reports; a model comparison with its AUC-against-speed plot.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.background import BackgroundTask

from twinforge import __version__
from twinforge._text import human_bytes
from twinforge.catalog import (
    CampaignRecord,
    DatasetRecord,
    EvaluationRecord,
    FileRecord,
    JobRecord,
    ModelRecord,
    Record,
    TrainingRunRecord,
    format_id,
    parse_id,
)
from twinforge.catalog.crate import encoding_format
from twinforge.catalog.search import FILTERS, NAMED, SORTS
from twinforge.errors import CatalogError, RecordNotFound, TwinforgeError
from twinforge.service import views
from twinforge.service.app import State, state
from twinforge.service.jsonld import landing_jsonld, page_path, script_tag, simulator_jsonld
from twinforge.service.plot import Point, auc_speed_svg, error_curve_svg
from twinforge.service.storage import FileUnavailable

__all__ = ["render_error", "router"]

router = APIRouter(include_in_schema=False)

_REPORT_CSP: Final = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "sandbox allow-scripts"
)

# what each listing shows: the kind it searches, fixed filters, a heading and an intro
_LISTINGS: Final[dict[str, dict[str, Any]]] = {
    "datasets": {"kind": "datasets", "heading": "Datasets"},
    "campaigns": {"kind": "campaigns", "heading": "Simulation campaigns"},
    "models": {
        "kind": "models",
        "heading": "Generative models",
        "fixed": {"surrogate": False},
    },
    "surrogates": {
        "kind": "models",
        "heading": "Surrogates",
        "fixed": {"surrogate": True},
        "intro": "Gaussian-process and ensemble surrogates of campaign outputs, with "
        "uncertainty (twinforge surrogate fit).",
    },
    "runs": {"kind": "runs", "heading": "Training runs"},
    "evaluations": {"kind": "evaluations", "heading": "Evaluations"},
}
_FILTER_LABELS: Final = {"trained_on": "trained on (ds-N)", "campaign": "campaign (camp-N)"}


@cache
def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("twinforge.service", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _render(request: Request, template: str, **context: Any) -> HTMLResponse:
    st = state(request)
    html = (
        _templates()
        .get_template(template)
        .render(site=st.config.title, q=request.query_params.get("q"), **context)
    )
    return HTMLResponse(html)


def render_error(request: Request, status: int, message: str) -> str:
    """The HTML of an error page (no stack trace, ever)."""
    try:
        site = state(request).config.title
    except AttributeError:
        site = "twinforge catalogue"
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return (
        _templates()
        .get_template("error.html")
        .render(site=site, status=status, reason=reason, message=message, q=None)
    )


# ---------------------------------------------------------------------- presentation helpers


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _href(record: Record) -> str:
    if views.is_surrogate(record):
        return f"/surrogates/{record.global_id}"
    return page_path(record)


def _name(record: Record) -> str:
    if isinstance(record, DatasetRecord | CampaignRecord | ModelRecord):
        return record.name
    if isinstance(record, EvaluationRecord):
        return record.description or ""
    if isinstance(record, JobRecord):
        return record.key
    return ""


def _details(record: Record) -> str:
    if isinstance(record, DatasetRecord):
        size = human_bytes(record.size_bytes)
        return f"{record.n_events:,} events, {record.n_files} file(s), {size}"
    if isinstance(record, CampaignRecord):
        return ", ".join(f"{n} {s}" for s, n in record.job_counts.items() if n) or "no jobs"
    if isinstance(record, ModelRecord):
        return record.architecture
    if isinstance(record, TrainingRunRecord):
        parts = []
        if record.model_id:
            parts.append(f"model {format_id('models', record.model_id)}")
        if record.dataset_id:
            parts.append(f"on {format_id('datasets', record.dataset_id)}")
        return ", ".join(parts)
    if isinstance(record, EvaluationRecord):
        kind = record.provenance.get("kind")
        return "benchmark" if kind == "benchmark" else "validation"
    return ""


def _brief(record: Record) -> dict[str, str]:
    return {
        "global_id": record.global_id,
        "href": _href(record),
        "name": _name(record),
        "details": _details(record),
    }


def _cell(text: Any, href: str | None = None, *, num: bool = False, **extra: Any) -> dict:
    return {"text": _fmt(text), "href": href, "num": num, **extra}


def _page_links(request: Request, page: int, has_next: bool) -> tuple[str | None, str | None]:
    params = dict(request.query_params)

    def link(n: int) -> str:
        return f"{request.url.path}?{urlencode(params | {'page': str(n)})}"

    return (link(page - 1) if page > 1 else None, link(page + 1) if has_next else None)


# ---------------------------------------------------------------------- home and search


@router.get("/", response_class=HTMLResponse)
def home(request: Request, st: State = Depends(state)) -> Response:
    from twinforge.catalog.migrate import head_revision

    cat = st.catalog
    counts = [
        ("datasets", cat.count("datasets")),
        ("campaigns", cat.count("campaigns")),
        ("simulators", len(views.describe_simulators())),
        ("models", cat.search("models", filters={"surrogate": False}, limit=1).total),
        ("surrogates", cat.search("models", filters={"surrogate": True}, limit=1).total),
        ("runs", cat.count("runs")),
        ("evaluations", cat.count("evaluations")),
    ]
    newest = [
        (kind, [_brief(r) for r in cat.search(kind, limit=5).records])
        for kind in ("datasets", "models", "evaluations")
    ]
    return _render(
        request,
        "home.html",
        counts=counts,
        newest=newest,
        tags=cat.tags(),
        location=cat.location.display,
        revision=head_revision(),
        version=__version__,
        writable=st.writable,
        description="Simulated datasets, campaigns, models and their validations.",
    )


@router.get("/search", response_class=HTMLResponse)
def search(
    request: Request,
    q: str | None = Query(None, max_length=200),
    tag: str | None = Query(None, max_length=64),
    st: State = Depends(state),
) -> Response:
    groups = []
    tags = (tag,) if tag else ()
    matches = 0
    for kind in ("datasets", "campaigns", "models", "runs", "evaluations"):
        found = st.catalog.search(kind, text=q, tags=tags, limit=20)
        matches += found.total
        if found.total:
            groups.append(
                {
                    "key": kind,
                    "title": f"{kind} ({found.total})",
                    "records": [_brief(r) for r in found.records],
                }
            )
    what = " ".join(p for p in (f'"{q}"' if q else "", f"tag {tag}" if tag else "") if p)
    return _render(
        request,
        "record.html",
        kind_label="search",
        heading=f"Search {what}" if what else "Search",
        groups=groups,
        facts=[("matches", matches)],
        listing="datasets",
        jsonld="",
    )


# ---------------------------------------------------------------------- listings


def _listing_columns(kind: str) -> list[str]:
    return {
        "datasets": ["ID", "name", "events", "files", "size", "campaign", "created (UTC)"],
        "campaigns": ["ID", "name", "simulator", "jobs", "created (UTC)"],
        "models": ["ID", "name", "architecture", "created (UTC)"],
        "runs": ["ID", "model", "dataset", "finished (UTC)"],
        "evaluations": ["ID", "description", "kind", "model", "reference", "created (UTC)"],
    }[kind]


def _listing_row(record: Record, tags: list[str]) -> list[dict]:
    created = record.created_at.strftime("%Y-%m-%d %H:%M")
    first = _cell(record.global_id, _href(record))

    def ref(kind: str, pk: int | None) -> dict:
        return _cell(format_id(kind, pk), page_path_of(kind, pk)) if pk else _cell("")

    if isinstance(record, DatasetRecord):
        return [
            first,
            _cell(record.name, _href(record), tags=tags),
            _cell(f"{record.n_events:,}", num=True),
            _cell(record.n_files, num=True),
            _cell(human_bytes(record.size_bytes), num=True),
            ref("campaigns", record.campaign_id),
            _cell(created),
        ]
    if isinstance(record, CampaignRecord):
        sim = record.config.get("simulator")
        name = sim.get("name") if isinstance(sim, Mapping) else sim
        return [
            first,
            _cell(record.name, _href(record), tags=tags),
            _cell(name, f"/simulators/{name}" if name else None),
            _cell(_details(record)),
            _cell(created),
        ]
    if isinstance(record, ModelRecord):
        return [first, _cell(record.name, _href(record), tags=tags),
                _cell(record.architecture), _cell(created)]  # fmt: skip
    if isinstance(record, TrainingRunRecord):
        finished = record.finished_at.strftime("%Y-%m-%d %H:%M") if record.finished_at else ""
        return [first, ref("models", record.model_id), ref("datasets", record.dataset_id),
                _cell(finished)]  # fmt: skip
    assert isinstance(record, EvaluationRecord)
    return [
        first,
        _cell(record.description, _href(record), tags=tags),
        _cell(_details(record)),
        ref("models", record.model_id),
        ref("datasets", record.dataset_id),
        _cell(created),
    ]


def page_path_of(kind: str, pk: int) -> str:
    """The landing page of record ``pk`` of ``kind``."""
    return f"/{kind}/{format_id(kind, pk)}"  # type: ignore[arg-type]


def _listing(request: Request, name: str, page: int, sort: str, st: State) -> Response:
    spec = _LISTINGS[name]
    kind = spec["kind"]
    fixed = spec.get("fixed", {})
    params = request.query_params
    text, tag = params.get("q"), params.get("tag")
    chosen = {f: params.get(f) for f in FILTERS[kind] if f not in fixed and f != "surrogate"}
    size = st.config.page_size
    found = st.catalog.search(
        kind,
        text=text,
        tags=(tag,) if tag else (),
        filters={**chosen, **fixed},
        sort=sort,
        limit=size,
        offset=(page - 1) * size,
    )
    if page > 1 and not found.records:
        raise RecordNotFound(f"page {page} is past the end ({found.total} records)")
    tags = st.catalog.tags_of(found.records)
    prev_href, next_href = _page_links(request, page, found.has_next)
    choices = {"published": ["true", "false"], "state": ["pending", "running", "done", "failed"]}
    return _render(
        request,
        "list.html",
        heading=spec["heading"],
        intro=spec.get("intro"),
        action=request.url.path,
        total=found.total,
        columns=_listing_columns(kind),
        rows=[_listing_row(r, tags.get(r.global_id, [])) for r in found.records],
        taggable=True,
        tag=tag,
        filter_fields=[
            {"name": f, "label": _FILTER_LABELS.get(f, f), "value": v, "choices": choices.get(f)}
            for f, v in chosen.items()
        ],
        sorts=[s for s in SORTS if kind in NAMED or "name" not in s],
        sort=sort,
        first=found.offset + 1 if found.records else 0,
        last=found.offset + len(found.records),
        prev_href=prev_href,
        next_href=next_href,
    )


def _listing_route(name: str) -> None:
    def endpoint(
        request: Request,
        page: int = Query(1, ge=1, le=1_000_000),
        sort: str = Query("-id", max_length=16),
        q: str | None = Query(None, max_length=200),
        tag: str | None = Query(None, max_length=64),
        st: State = Depends(state),
    ) -> Response:
        return _listing(request, name, page, sort, st)

    router.add_api_route(f"/{name}", endpoint, methods=["GET"], response_class=HTMLResponse)


for _name_ in _LISTINGS:
    _listing_route(_name_)


# ---------------------------------------------------------------------- landing pages


_KIND_LABELS: Final = {
    "datasets": "dataset",
    "campaigns": "simulation campaign",
    "models": "generative model",
    "runs": "training run",
    "evaluations": "evaluation",
}
_GROUP_TITLES: Final = {
    "produced_by": "Produced by the campaign",
    "datasets": "Datasets it produced",
    "models": "Models trained on it",
    "evaluations": "Evaluations",
    "runs": "Training runs",
    "trained_on": "Trained on",
    "fitted_on": "Fitted on the campaign",
    "model": "Model",
    "dataset": "Dataset",
    "reference": "Reference dataset",
}


def _mlflow_facts(provenance: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The facts "MLflow run <id>" (a link to it on an http(s) tracking server) and the
    command that opens a local store in MLflow's UI, from the provenance's ``mlflow`` entry."""
    link = provenance.get("mlflow")
    if not isinstance(link, Mapping) or not link.get("run_id"):
        return []
    run_id, uri = str(link["run_id"]), str(link.get("tracking_uri") or "")
    run: Any = run_id
    if uri.lower().startswith(("http://", "https://")) and link.get("experiment_id"):
        exp = quote(str(link["experiment_id"]), safe="")
        run = {"text": run_id, "href": f"{uri.rstrip('/')}/#/experiments/{exp}/runs/"
               f"{quote(run_id, safe='')}"}  # fmt: skip
        return [("MLflow run", run)]
    facts: list[tuple[str, Any]] = [("MLflow run", run)]
    if link.get("ui"):
        facts.append(("MLflow UI", str(link["ui"])))
    return facts


def _landing(request: Request, kind: str, ref: str, st: State) -> Response:
    record = views.resolve(st.catalog, ref, kind)
    if ref != record.global_id:  # a name: send to the canonical address
        return RedirectResponse(_href(record), status_code=308)
    item = views.related(st.catalog, record)
    surrogate = views.is_surrogate(record)
    jsonld = landing_jsonld(item, lambda p: st.url(request, p), title=st.config.title)
    created = record.created_at.strftime("%Y-%m-%d %H:%M:%S")
    facts: list[tuple[str, Any]] = [("ID", record.global_id), ("created (UTC)", created)]
    actions: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    figures: list[dict[str, str]] = []
    blocks: list[tuple[str, str]] = []
    if isinstance(record, DatasetRecord):
        facts += [("events", f"{record.n_events:,}"), ("files", record.n_files),
                  ("size", human_bytes(record.size_bytes))]  # fmt: skip
    if item.simulator:
        sim = item.simulator
        if sim.get("name"):
            facts.append(("simulator", {"text": sim["name"], "href": f"/simulators/{sim['name']}"}))
        if sim.get("code"):
            facts.append(("code", f"{sim.get('code')} {sim.get('version') or ''}".strip()))
    if isinstance(record, ModelRecord):
        facts += [("architecture", record.architecture), ("path", record.path or "")]
    if isinstance(record, CampaignRecord):
        facts.append(("jobs", _details(record)))
        figures += _error_figure(st, record)
        tables.append(_jobs_table(st, record))
        blocks.append(("Configuration", json.dumps(record.config, indent=2)))
    if isinstance(record, TrainingRunRecord):
        blocks += [("Hyper-parameters", json.dumps(record.hyperparameters, indent=2)),
                   ("Metrics", json.dumps(record.metrics, indent=2))]  # fmt: skip
    if isinstance(record, EvaluationRecord):
        facts.append(("kind", _details(record)))
        blocks.append(("Metrics", json.dumps(record.metrics, indent=2)))
    if record.kind in ("datasets", "models", "evaluations"):
        crate = f"{page_path(record)}/ro-crate.zip"
        actions.append({"text": "RO-Crate (zip, files referenced)", "href": crate})
        actions.append({"text": "RO-Crate with the data (zip)", "href": f"{crate}?data=true"})
    facts += _mlflow_facts(record.provenance)
    actions.append({"text": "JSON", "href": f"/api/v1/records/{record.global_id}"})
    blocks.append(("Provenance", json.dumps(record.provenance, indent=2, default=str)))
    groups = [
        {"key": key, "title": _GROUP_TITLES.get(key, key), "records": [_brief(r) for r in recs]}
        for key, recs in item.links.items()
        if recs
    ]
    files = [
        {"global_id": f.global_id, "name": Path(f.path).name, "size": human_bytes(f.size_bytes),
         "events": "" if f.n_events is None else f"{f.n_events:,}", "sha256": f.sha256}
        for f in item.files
    ]  # fmt: skip
    heading = _name(record) or record.global_id
    return _render(
        request,
        "record.html",
        kind_label="surrogate" if surrogate else _KIND_LABELS[record.kind],
        heading=heading,
        listing="surrogates" if surrogate else record.kind,
        description_text=getattr(record, "description", "") if record.kind != "evaluations" else "",
        description=jsonld.get("description", ""),
        tags=item.tags,
        facts=facts,
        actions=actions,
        publications=item.publications,
        groups=groups,
        tables=tables,
        figures=figures,
        files=files,
        report_href=f"{page_path(record)}/report" if item.report is not None else None,
        json_blocks=blocks,
        jsonld=script_tag(jsonld),
    )


def _error_figure(st: State, campaign: CampaignRecord) -> list[dict[str, str]]:
    """An adaptive campaign's predicted error against simulations (from the journal's done
    jobs), with its stop targets; none for a campaign whose jobs recorded no error."""
    from twinforge.campaign.figures import error_curve

    jobs = st.catalog.jobs(campaign.global_id, "done")
    try:
        curves = error_curve(jobs)
    except TwinforgeError:  # not adaptive, or no surrogate fitted yet
        return []
    sampler = campaign.config.get("sampler") if isinstance(campaign.config, Mapping) else None
    targets = sampler.get("target_error") if isinstance(sampler, Mapping) else None
    caption = (
        "The surrogate's predicted RMSE of each output after each simulation (the adaptive "
        "sampler's own estimate, recorded in the journal; `twinforge campaign plot` draws it "
        "too)" + ("; dashed: the stop targets." if targets else ".")
    )
    return [{"title": "Error against simulations", "caption": caption,
             "svg": error_curve_svg(curves, targets)}]  # fmt: skip


def _jobs_table(st: State, campaign: CampaignRecord, limit: int = 100) -> dict[str, Any]:
    jobs = st.catalog.search("jobs", filters={"campaign": campaign.global_id}, sort="id",
                             limit=limit)  # fmt: skip
    rows = []
    for job in jobs.records:
        assert isinstance(job, JobRecord)
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in list(job.parameters.items())[:6])
        problem = job.error or ""
        if job.exit_code is not None:
            problem = f"exit {job.exit_code}: {problem}"
        rows.append(
            [
                _cell(job.global_id),
                _cell(job.state),
                _cell(job.seed, num=True),
                _cell(params),
                _cell(job.attempts, num=True),
                _cell(problem[:200]),
            ]
        )
    more = f"the first {limit} of {jobs.total} jobs" if jobs.total > limit else ""
    return {"title": "Jobs", "columns": ["ID", "state", "seed", "parameters", "attempts",
            "error"], "rows": rows, "more": more}  # fmt: skip


def _landing_route(path: str, kind: str) -> None:
    def endpoint(request: Request, ref: str, st: State = Depends(state)) -> Response:
        return _landing(request, kind, ref, st)

    router.add_api_route(f"/{path}/{{ref}}", endpoint, methods=["GET"], response_class=HTMLResponse)


for _path_, _kind_ in [
    ("datasets", "datasets"),
    ("campaigns", "campaigns"),
    ("models", "models"),
    ("surrogates", "models"),
    ("runs", "runs"),
    ("evaluations", "evaluations"),
]:
    _landing_route(_path_, _kind_)


# ---------------------------------------------------------------------- simulators


@router.get("/simulators", response_class=HTMLResponse)
def simulators(request: Request, st: State = Depends(state)) -> Response:
    rows = []
    for sim in views.describe_simulators():
        used = st.catalog.search("campaigns", filters={"simulator": sim["name"]}, limit=1).total
        rows.append([
            _cell(sim["name"], f"/simulators/{sim['name']}"),
            _cell(sim.get("summary") or sim.get("error", "")),
            _cell(used, f"/campaigns?simulator={sim['name']}", num=True),
        ])  # fmt: skip
    return _render(
        request, "list.html", heading="Simulators", total=len(rows),
        intro="Simulation codes installed as twinforge plug-ins (entry points "
        "'twinforge.simulators'), with the campaigns that ran them.",
        columns=["name", "summary", "campaigns"], rows=rows, action="/simulators",
        filter_fields=[], taggable=False, sorts=[], first=1 if rows else 0, last=len(rows),
    )  # fmt: skip


@router.get("/simulators/{name}", response_class=HTMLResponse)
def simulator_page(request: Request, name: str, st: State = Depends(state)) -> Response:
    if len(name) > 100:
        raise CatalogError("simulator name too long")
    sim = views.simulator(st.catalog, name)
    jsonld = simulator_jsonld(sim, lambda p: st.url(request, p), title=st.config.title)
    params = sim.get("parameters")
    facts: list[tuple[str, Any]] = [
        ("entry point", sim.get("entry_point", "")),
        ("parameters", ", ".join(params) if isinstance(params, list) else params or ""),
        ("outputs", ", ".join(o) if isinstance(o := sim.get("outputs"), list) else o or ""),
        ("code versions used", ", ".join(sim["versions"]) or "none recorded"),
        ("campaigns", sim["n_campaigns"]),
        ("datasets", sim["n_datasets"]),
    ]
    groups = [
        {"key": key, "title": title, "records": [_brief(r) for r in sim[key]]}
        for key, title in (("campaigns", "Campaigns"), ("datasets", "Datasets"))
        if sim[key]
    ]
    return _render(
        request, "record.html", kind_label="simulator", heading=sim["name"],
        description_text=sim.get("summary") or sim.get("error", ""), listing="datasets",
        facts=facts, groups=groups, json_blocks=[("Options", json.dumps(sim.get("options", {}),
        indent=2, default=str))], jsonld=script_tag(jsonld), description=jsonld["description"],
    )  # fmt: skip


# ---------------------------------------------------------------------- files and exports


def _file_response(st: State, f: FileRecord, *, media_type: str | None = None,
                   inline: bool = False) -> FileResponse:  # fmt: skip
    real = st.storage.open_file(f)
    response = FileResponse(
        real,
        media_type=media_type or encoding_format(real),
        filename=None if inline else Path(f.path).name,
        content_disposition_type="inline" if inline else "attachment",
    )
    response.headers["ETag"] = f'"{f.sha256}"'
    response.headers["Digest"] = f"sha-256={f.sha256}"
    return response


@router.get("/files/{ref}")
def download(ref: str, st: State = Depends(state)) -> Response:
    """A catalogued file, with HTTP range requests (resumable, partial downloads)."""
    kind, _ = parse_id(ref)
    if kind != "files":
        raise RecordNotFound(f"{ref} is not a file")
    record = st.catalog.get(ref)
    assert isinstance(record, FileRecord)
    return _file_response(st, record)


@router.get("/evaluations/{ref}/report")
def report(ref: str, st: State = Depends(state)) -> Response:
    """An evaluation's HTML report, sandboxed (its own scripts run, nothing else)."""
    record = views.resolve(st.catalog, ref, "evaluations")
    item = views.related(st.catalog, record)
    if item.report is None:
        raise RecordNotFound(f"{record.global_id} has no HTML report")
    response = _file_response(st, item.report, media_type="text/html", inline=True)
    response.headers["Content-Security-Policy"] = _REPORT_CSP
    return response


def _crate_route(kind: str) -> None:
    def endpoint(
        request: Request, ref: str, data: bool = Query(False), st: State = Depends(state)
    ) -> Response:
        record = views.resolve(st.catalog, ref, kind)
        return crate_zip(request, st, record, include_data=data)

    router.add_api_route(f"/{kind}/{{ref}}/ro-crate.zip", endpoint, methods=["GET"])


def crate_zip(request: Request, st: State, record: Record, *, include_data: bool) -> Response:
    """The record's RO-Crate as a zip: with its files (``include_data``, each one checked
    against its checksum) or referencing them by their download URL on this server."""
    from twinforge.catalog import export_rocrate

    if include_data:
        files = st.catalog.files(record)
        total = sum(f.size_bytes for f in files)
        limit = st.config.crate_data_limit_mib * 2**20
        if total > limit:
            raise FileUnavailable(
                f"{record.global_id} holds {human_bytes(total)}, more than this server zips on "
                f"request ({human_bytes(limit)}): download its files one by one",
                413,
            )
        for f in files:
            st.storage.open_file(f)  # only files this server may serve go into a crate
    tmp = Path(tempfile.mkdtemp(prefix="twinforge-crate-"))
    try:
        crate = export_rocrate(
            st.catalog,
            record.global_id,
            tmp / "crate",
            include_data=include_data,
            file_url=lambda f: st.url(request, f"/files/{f.global_id}"),
        )
        archive = tmp / f"{record.global_id}-ro-crate.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(p for p in crate.rglob("*") if p.is_file()):
                zf.write(path, path.relative_to(crate).as_posix())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(
        archive,
        media_type="application/zip",
        filename=archive.name,
        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
    )


for _kind_ in ("datasets", "models", "evaluations"):
    _crate_route(_kind_)


@router.get("/evaluations/{ref}/{name}")
def evaluation_file(ref: str, name: str, st: State = Depends(state)) -> Response:
    """A file of an evaluation by its name (what the report's relative links ask for:
    ``metrics.json``); only names among the evaluation's catalogued files."""
    record = views.resolve(st.catalog, ref, "evaluations")
    found = [f for f in st.catalog.files(record) if Path(f.path).name == name]
    if len(found) != 1:
        raise RecordNotFound(f"{record.global_id} has no file named {name!r}")
    inline = name.endswith((".json", ".png", ".svg", ".txt"))
    return _file_response(st, found[0], inline=inline)


# ---------------------------------------------------------------------- comparison


_SORT_KEYS: Final = ("model", *(k for k, _, _ in views.COMPARE_COLUMNS), "budget")


def _sorted_rows(rows: Sequence[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    key = sort.lstrip("-")
    if key not in _SORT_KEYS:
        raise CatalogError(f"unknown sort {sort!r} (sorts: {', '.join(_SORT_KEYS)})")
    reverse = sort.startswith("-")

    def value(row: dict[str, Any]) -> tuple[int, Any]:
        v = row["model"].name if key == "model" else row.get(key)
        return (0, v) if v is not None else (1, 0)  # unmeasured last, whatever the order

    measured = [r for r in rows if value(r)[0] == 0]
    missing = [r for r in rows if value(r)[0] == 1]
    return sorted(measured, key=lambda r: value(r)[1], reverse=reverse) + missing


@router.get("/compare", response_class=HTMLResponse)
def compare(
    request: Request,
    sort: str = Query("auc_low", max_length=32),
    level: str = Query("low", pattern="^(low|high)$"),
    st: State = Depends(state),
) -> Response:
    rows = _sorted_rows(views.comparison(st.catalog), sort)
    geant4 = _geant4_ms(st)
    points = [
        Point(r["model"].name, r["ms_per_shower"], r[f"auc_{level}"], bool(r["comparable"]),
              _href(r["model"]))
        for r in rows
        if r["ms_per_shower"] and r[f"auc_{level}"] is not None
    ]  # fmt: skip
    table = []
    for r in rows:
        budget = r.get("budget") or ""
        if budget and not r["comparable"]:
            budget += " (not comparable)"
        floor = r.get("noise_floor") or {}
        cells = [_cell(r["model"].name, _href(r["model"]))]
        for key, _, _ in views.COMPARE_COLUMNS:
            href = None
            source = r["benchmark"] if key in ("ms_per_shower", "speedup") else r["evaluation"]
            if source and r.get(key) is not None:
                href = page_path_of("evaluations", parse_id(source)[1])
            title = f"Geant4 vs Geant4: {_fmt(floor[key])}" if floor.get(key) is not None else None
            cells.append(_cell(r.get(key), href, num=True, title=title))
        cells.append(_cell(budget))
        table.append(cells)
    columns = [("model", "model", "model name"), *views.COMPARE_COLUMNS,
               ("budget", "classifier budget", "the classifier's training budget")]  # fmt: skip
    return _render(
        request, "compare.html", rows=table, columns=columns, sort=sort, level=level,
        svg=auc_speed_svg(points, geant4_ms=geant4, level=level), geant4_ms=geant4,
    )  # fmt: skip


def _geant4_ms(st: State) -> float | None:
    """Geant4's median time per shower (ms) from the newest benchmark that timed it."""
    for ev in st.catalog.search("evaluations", text="benchmark", limit=50).records:
        g4 = ev.metrics.get("geant4") if isinstance(ev, EvaluationRecord) else None
        if isinstance(g4, Mapping) and isinstance(g4.get("median_s_per_shower"), int | float):
            return float(g4["median_s_per_shower"]) * 1e3
    return None


@router.get("/api", response_class=HTMLResponse)
def api_index(request: Request, st: State = Depends(state)) -> Response:
    routes = [
        (", ".join(sorted(r.methods - {"HEAD"})), r.path, r.summary or "")
        for r in request.app.routes
        if getattr(r, "path", "").startswith("/api/v1") and getattr(r, "methods", None)
    ]
    return _render(request, "api.html", routes=routes, writable=st.writable)


@router.get("/healthz")
def healthz(st: State = Depends(state)) -> dict[str, Any]:
    """Liveness: the catalogue answers."""
    return {"ok": True, "datasets": st.catalog.count("datasets")}
