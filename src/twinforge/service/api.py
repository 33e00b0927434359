"""The JSON API of the web catalogue (``/api/v1``), described by OpenAPI at
``/api/openapi.json``. It serves what the pages show; the write actions (register a dataset,
tag, publish) need ``Authorization: Bearer <token>``."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from twinforge.catalog import FileSpec
from twinforge.errors import CatalogError
from twinforge.service import views
from twinforge.service.app import State, state
from twinforge.service.storage import FileUnavailable

__all__ = ["router"]

router = APIRouter(tags=["catalogue"])


class Listing(StrEnum):
    """What can be listed."""

    datasets = "datasets"
    campaigns = "campaigns"
    jobs = "jobs"
    models = "models"
    surrogates = "surrogates"
    runs = "runs"
    evaluations = "evaluations"


class PageOut(BaseModel):
    """One page of a listing."""

    items: list[dict[str, Any]]
    total: int = Field(description="records matching, over all pages")
    limit: int
    offset: int
    next: str | None = Field(description="URL of the next page, null on the last")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TagsIn(_Body):
    """Tags to put on a record."""

    tags: list[str] = Field(min_length=1, max_length=50)


class PublishIn(_Body):
    """A version of a dataset or model to publish."""

    version: str = Field(min_length=1, max_length=64)
    license: str = Field("CC-BY-4.0", max_length=255, description="SPDX identifier or URL")
    identifier: str | None = Field(None, max_length=500, description="a DOI, once minted")
    creators: list[str] = Field(
        min_length=1, max_length=100, description="who made it: 'Name[,ORCID]' each"
    )


class FileIn(_Body):
    """A file of a dataset to register (it must lie inside the server's storage)."""

    path: str = Field(min_length=1, max_length=4096)
    n_events: int = Field(ge=0)


class DatasetIn(_Body):
    """A dataset to register."""

    name: str = Field(min_length=1, max_length=255)
    description: str = Field("", max_length=10_000)
    files: list[FileIn] = Field(min_length=1, max_length=10_000)
    campaign: str | None = Field(None, description="the campaign that produced it (camp-N)")
    provenance: dict[str, Any] = Field(default_factory=dict)


def _item(record: Any, tags: dict[str, list[str]]) -> dict[str, Any]:
    data: dict[str, Any] = record.to_dict()
    data["tags"] = tags.get(record.global_id, [])
    return data


@router.get("/tags", summary="Every tag in use, with how many records carry it")
def all_tags(st: State = Depends(state)) -> dict[str, int]:
    tags = st.catalog.tags()
    assert isinstance(tags, dict)
    return tags


@router.get("/simulators", summary="The installed simulators")
def simulators() -> list[dict[str, Any]]:
    return views.describe_simulators()


@router.get("/simulators/{name}", summary="One simulator, with the campaigns and datasets it made")
def simulator(name: str, st: State = Depends(state)) -> dict[str, Any]:
    if len(name) > 100:
        raise CatalogError("simulator name too long")
    sim = views.simulator(st.catalog, name)
    for key in ("campaigns", "datasets"):
        sim[key] = [r.global_id for r in sim[key]]
    return sim


@router.get("/compare", summary="Each generative model's newest validation and benchmark")
def compare(st: State = Depends(state)) -> list[dict[str, Any]]:
    rows = views.comparison(st.catalog)
    return [r | {"model": r["model"].global_id, "name": r["model"].name} for r in rows]


@router.get("/records/{ref}", summary="One record: fields, files, tags, publications, links")
def record(ref: str, st: State = Depends(state)) -> dict[str, Any]:
    return views.related(st.catalog, views.resolve(st.catalog, ref)).to_dict()


@router.get("/{listing}", response_model=PageOut, summary="Search and filter a kind of record")
def listing(
    request: Request,
    listing: Listing,
    q: str | None = Query(None, max_length=200, description="text anywhere in the record"),
    tag: list[str] = Query([], description="records carrying every one of these tags"),
    sort: str = Query("-id", max_length=16, description="id, name, created; '-' descending"),
    limit: int = Query(25, ge=1, le=200),
    offset: int = Query(0, ge=0, le=10_000_000),
    campaign: str | None = Query(None, description="datasets, jobs: of this campaign"),
    dataset: str | None = Query(None, description="runs, evaluations: of this dataset"),
    model: str | None = Query(None, description="runs, evaluations: of this model"),
    state_: str | None = Query(None, alias="state", description="jobs: in this state"),
    architecture: str | None = Query(None, description="models: of this architecture"),
    trained_on: str | None = Query(None, description="models: trained on this dataset"),
    simulator: str | None = Query(None, description="campaigns, datasets: of this simulator"),
    published: bool | None = Query(None, description="datasets, models: published or not"),
    st: State = Depends(state),
) -> PageOut:
    kind = "models" if listing is Listing.surrogates else listing.value
    filters: dict[str, Any] = {
        "campaign": campaign, "dataset": dataset, "model": model, "state": state_,
        "architecture": architecture, "trained_on": trained_on, "simulator": simulator,
        "published": published,
    }  # fmt: skip
    if listing in (Listing.models, Listing.surrogates):
        filters["surrogate"] = listing is Listing.surrogates
    page = st.catalog.search(
        kind,
        text=q,
        tags=tag,
        filters={k: v for k, v in filters.items() if v is not None},
        sort=sort,
        limit=limit,
        offset=offset,
    )
    tags = st.catalog.tags_of(page.records)
    nxt = None
    if page.has_next:
        nxt = str(request.url.include_query_params(offset=offset + limit))
    return PageOut(
        items=[_item(r, tags) for r in page.records],
        total=page.total,
        limit=limit,
        offset=offset,
        next=nxt,
    )


# ---------------------------------------------------------------------- writes


@router.post("/records/{ref}/tags", summary="Tag a record (token)")
def add_tags(
    ref: str,
    body: TagsIn,
    authorization: str | None = Header(None),
    st: State = Depends(state),
) -> dict[str, Any]:
    who = st.check_token(authorization)
    target = views.resolve(st.catalog, ref)
    return {"id": target.global_id, "tags": st.catalog.tag(target, *body.tags, by=who)}


@router.delete("/records/{ref}/tags/{tag}", summary="Remove a tag from a record (token)")
def remove_tag(
    ref: str,
    tag: str,
    authorization: str | None = Header(None),
    st: State = Depends(state),
) -> dict[str, Any]:
    st.check_token(authorization)
    target = views.resolve(st.catalog, ref)
    return {"id": target.global_id, "tags": st.catalog.untag(target, tag)}


@router.post(
    "/records/{ref}/publications", status_code=201, summary="Publish a dataset or model (token)"
)
def publish(
    request: Request,
    ref: str,
    body: PublishIn,
    authorization: str | None = Header(None),
    st: State = Depends(state),
) -> dict[str, Any]:
    who = st.check_token(authorization)
    target = views.resolve(st.catalog, ref)
    landing = st.url(request, f"/{target.kind}/{target.global_id}")
    datacite = _datacite(st, target.global_id, body, landing)
    pub = st.catalog.publish(
        target,
        version=body.version,
        license=body.license,
        identifier=body.identifier,
        datacite=datacite,
        by=who,
    )
    return pub.to_dict()


def _datacite(st: State, global_id: str, body: PublishIn, landing: str) -> dict[str, Any]:
    """The DataCite metadata of the release, validated against the DataCite schema."""
    from twinforge.catalog import deposit

    related = [f"IsIdenticalTo:{body.identifier}"] if body.identifier else []
    metadata = deposit.datacite_metadata(
        st.catalog, global_id, creators=body.creators, license=body.license,
        version=body.version, related=related, catalog_url=landing,
    )  # fmt: skip
    deposit.validate_datacite(metadata)
    return metadata


@router.post("/datasets", status_code=201, summary="Register a dataset of stored files (token)")
def register_dataset(
    body: DatasetIn,
    authorization: str | None = Header(None),
    st: State = Depends(state),
) -> dict[str, Any]:
    who = st.check_token(authorization)
    for f in body.files:
        if not f.path.startswith("/"):
            raise CatalogError(f"{f.path}: give the absolute path of a file in the storage")
        if not st.storage.contains(f.path):
            raise FileUnavailable(f"{f.path} is outside this server's storage", 403)
    record = st.catalog.add_dataset(
        body.name,
        description=body.description,
        files=[FileSpec(f.path, f.n_events) for f in body.files],
        campaign_id=body.campaign,
        provenance={**body.provenance, "registered_by": who},
    )
    return record.to_dict()
