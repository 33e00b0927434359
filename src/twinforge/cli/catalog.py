"""``twinforge catalog``: list, show, verify, export and deposit what the catalogue holds."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer
from rich.json import JSON
from rich.markup import escape
from rich.table import Table

from twinforge._text import human_bytes
from twinforge.cli._common import catalog_option, console, progress, say
from twinforge.errors import CatalogError

if TYPE_CHECKING:
    from twinforge.catalog import Catalog, Record, VerifyResult

app = typer.Typer(
    help="The catalogue: datasets, files, campaigns, jobs, models, training runs, evaluations.",
    no_args_is_help=True,
)


class KindChoice(StrEnum):
    """Values of ``--kind``."""

    datasets = "datasets"
    files = "files"
    campaigns = "campaigns"
    jobs = "jobs"
    models = "models"
    runs = "runs"
    evaluations = "evaluations"


def _open(location: str | None) -> Catalog:
    from twinforge.catalog import Catalog  # imported here: keep `twinforge --help` fast

    return Catalog.open(location, create=False)


def _resolve(cat: Catalog, ref: str, kinds: tuple[str, ...] | None = None) -> str:
    """The global ID of ``ref``: an ID (``ds-3``) or the name of a dataset, campaign, model
    (only of ``kinds`` when given, e.g. what can be exported)."""
    from twinforge.catalog import format_id, parse_id

    try:
        kind, pk = parse_id(ref)
    except CatalogError:
        found = [r for k in kinds if (r := cat.find(ref, k))] if kinds else None
        if found is not None and len(found) > 1:
            ids = ", ".join(r.global_id for r in found)
            raise CatalogError(f"{ref!r} names several records ({ids}); use an ID") from None
        record = (found[0] if found else None) if found is not None else cat.find(ref)
        if record is None:
            raise CatalogError(f"no such record: {ref}") from None
        return record.global_id
    return format_id(kind, pk)


@app.command("list")
def list_(
    kind: KindChoice | None = typer.Option(
        None,
        "--kind",
        "-k",
        help="Only this kind of record (default: all but jobs; campaigns count their jobs).",
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="At most N per kind."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    catalog: str | None = catalog_option(),
) -> None:
    """List the records of the catalogue."""
    with _open(catalog) as cat:
        kinds = [kind.value] if kind else [k.value for k in KindChoice if k is not KindChoice.jobs]
        records = [r for k in kinds for r in cat.list(k, limit=limit)]
        if as_json:
            console.print_json(data=[r.to_dict() for r in records])
            return
        if not records:
            say(f"no {kind.value if kind else 'records'} in {escape(cat.location.display)}")
            return
        title = escape(cat.location.display)
        table = Table("ID", "name", "details", "created (UTC)", title=title)
        for record in records:
            name, details = _summary(record)
            table.add_row(record.global_id, escape(name), escape(details), _time(record.created_at))
        console.print(table)


@app.command("show")
def show(
    ref: str = typer.Argument(..., metavar="ID", help="ds-3, job-40 ... or a dataset name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    catalog: str | None = catalog_option(),
) -> None:
    """Show one record: every field, its provenance and (for a dataset) its files."""
    with _open(catalog) as cat:
        record = cat.get(_resolve(cat, ref))
        files = cat.files(record) if record.kind in ("datasets", "models", "evaluations") else []
        if as_json:
            data = record.to_dict()
            if files:
                data["files"] = [f.to_dict() for f in files]
            console.print_json(data=data)
            return
        _show_record(record)
        if files:
            table = Table("ID", "path", "size", "events", "sha256", title="files")
            for f in files:
                events = "" if f.n_events is None else f"{f.n_events:,}"
                table.add_row(
                    f.global_id, escape(f.path), human_bytes(f.size_bytes), events, f.sha256[:16]
                )
            console.print(table)


@app.command("verify")
def verify(
    ref: str | None = typer.Argument(
        None, metavar="[ID]", help="A dataset, model, evaluation, file, campaign or job."
    ),
    catalog: str | None = catalog_option(),
) -> None:
    """Re-hash files and compare them with the catalogue; exit code 1 if any differs."""
    with _open(catalog) as cat:
        target = _resolve(cat, ref) if ref is not None else None
        with progress() as bar:
            task = bar.add_task("verifying", total=None)

            def step(done: int, total: int, result: VerifyResult) -> None:
                bar.update(task, completed=done, total=total, description=result.id)

            results = cat.verify(target, progress=step)
    problems = [r for r in results if not r.ok]
    if not results:
        say("nothing to verify")
        return
    if not problems:
        say(f"[green]ok[/]: {len(results)} file(s) match the catalogue")
        return
    table = Table("ID", "path", "problem", "detail", title="files that do not match")
    for r in problems:
        table.add_row(r.id, escape(r.path), f"[red]{r.status}[/]", escape(r.detail))
    console.print(table)
    console.print(f"{len(problems)} of {len(results)} file(s) do not match the catalogue")
    raise typer.Exit(1)


@app.command("export")
def export(
    ref: str = typer.Argument(..., metavar="ID", help="A dataset, model or evaluation."),
    out_dir: str = typer.Argument(..., metavar="DIR", help="New (or empty) crate directory."),
    no_data: bool = typer.Option(
        False, "--no-data", help="Reference the files by file:// URI instead of copying them."
    ),
    creator: list[str] = typer.Option(
        [], "--creator", metavar="NAME[,ORCID]", help="Credit a person (repeatable)."
    ),
    license_: str = typer.Option(
        "CC-BY-4.0", "--license", metavar="SPDX", help="License of the crate (SPDX id or URL)."
    ),
    catalog: str | None = catalog_option(),
) -> None:
    """Export a record as an RO-Crate (Process Run Crate profile) for a data repository."""
    from twinforge.catalog import export_rocrate

    with _open(catalog) as cat:
        global_id = _resolve(cat, ref, ("datasets", "models"))
        out = export_rocrate(
            cat,
            global_id,
            out_dir,
            include_data=not no_data,
            creators=creator,
            license=license_,
        )
    how = "files referenced" if no_data else "files included"
    say(f"exported {global_id} to {escape(str(out))} ({how})")


@app.command("deposit")
def deposit(
    ref: str = typer.Argument(..., metavar="ID", help="A dataset, model or evaluation."),
    out_dir: str = typer.Argument(..., metavar="OUT_DIR", help="New (or empty) directory."),
    creator: list[str] = typer.Option(
        [],
        "--creator",
        metavar="NAME[,ORCID]",
        help="Credit a person, 'Family, Given' or 'Given Family' (repeatable; at least one).",
    ),
    license_: str = typer.Option(
        ..., "--license", metavar="SPDX", help="License of the deposit (SPDX id, e.g. CC-BY-4.0)."
    ),
    version: str = typer.Option(
        ..., "--version", metavar="TEXT", help="Version of the deposit (e.g. 1.0)."
    ),
    related: list[str] = typer.Option(
        [],
        "--related",
        metavar="RELATION:IDENTIFIER",
        help="A related work: DataCite relation type and DOI, arXiv ID or URL, e.g. "
        "IsSupplementTo:doi:10.5281/zenodo.1234 (repeatable).",
    ),
    title: str | None = typer.Option(
        None, "--title", help="Title of the deposit (default: the record's name)."
    ),
    description: str | None = typer.Option(
        None, "--description", help="Abstract (default: the record's description)."
    ),
    no_data: bool = typer.Option(
        False, "--no-data", help="Reference the files by file:// URI instead of copying them."
    ),
    record: bool = typer.Option(
        False,
        "--record",
        help="Also record this version as published in the catalogue (its web page shows it).",
    ),
    catalog: str | None = catalog_option(),
) -> None:
    """Write a data-repository deposit: the RO-Crate plus DataCite and Zenodo metadata.

    All validated offline (DataCite 4.5 schema, roc-validator); needs twinforge's publish extra.
    """
    from twinforge.catalog.deposit import export_deposit

    with _open(catalog) as cat:
        global_id = _resolve(cat, ref, ("datasets", "models"))
        if record and any(p.version == version for p in cat.publications(global_id)):
            raise CatalogError(f"{global_id} version {version!r} is published already")
        out = export_deposit(
            cat,
            global_id,
            out_dir,
            creators=creator,
            license=license_,
            version=version,
            related=related,
            include_data=not no_data,
            title=title,
            description=description,
        )
        if record:
            datacite = json.loads((out / "datacite.json").read_text())
            cat.publish(global_id, version=version, license=license_, datacite=datacite, by="cli")
    how = "files referenced" if no_data else "files included"
    say(f"deposit of {global_id} written to {escape(str(out))} ({how})")
    if record:
        say(f"recorded {global_id} version {escape(version)} as published in the catalogue")


@app.command("tag")
def tag(
    ref: str = typer.Argument(..., metavar="ID", help="A dataset, campaign, model, run, eval."),
    tags: list[str] = typer.Argument(..., metavar="TAG...", help="Lower-case words."),
    remove: bool = typer.Option(False, "--remove", help="Take these tags off instead."),
    catalog: str | None = catalog_option(),
) -> None:
    """Put tags on a record (or take them off); the web catalogue filters by them."""
    with _open(catalog) as cat:
        target = _resolve(cat, ref)
        if remove:
            for name in tags:
                now = cat.untag(target, name)
        else:
            now = cat.tag(target, *tags, by="cli")
    say(f"{target}: {', '.join(now) or 'no tags'}")


@app.command("info")
def info(catalog: str | None = catalog_option()) -> None:
    """Where the catalogue is and how many records of each kind it holds."""
    from twinforge.catalog import KINDS, SCHEMA_VERSION
    from twinforge.catalog.migrate import head_revision

    with _open(catalog) as cat:
        console.print(f"catalogue: {escape(cat.location.display)}", highlight=False)
        console.print(f"schema version: {SCHEMA_VERSION} (revision {head_revision()})")
        for kind in KINDS:
            console.print(f"{kind}: {cat.count(kind)}")


@app.command("upgrade")
def upgrade(catalog: str | None = catalog_option()) -> None:
    """Upgrade the catalogue's schema to this twinforge's (back the database up first: an
    older twinforge cannot open it afterwards)."""
    from twinforge.catalog import Catalog

    before, after = Catalog.upgrade(catalog)
    if before == after:
        say(f"catalogue schema already at revision {after}")
    else:
        say(f"upgraded the catalogue schema from revision {before} to {after}")


# ---------------------------------------------------------------------- presentation


_JSON_FIELDS = ("provenance", "parameters", "config", "hyperparameters", "metrics", "job_counts")


def _show_record(record: Record) -> None:
    data = record.to_dict()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in data.items():
        if key in _JSON_FIELDS:
            continue
        grid.add_row(key, "" if value is None else escape(str(value)))
    console.print(grid)
    for key in _JSON_FIELDS:
        if key in data and (data[key] or key == "provenance"):
            console.print(f"[bold]{key}[/]")
            console.print(JSON(json.dumps(data[key], sort_keys=False)))


def _summary(record: Record) -> tuple[str, str]:
    """(name, details) of a record for a one-line listing."""
    from twinforge.catalog import (
        CampaignRecord,
        DatasetRecord,
        EvaluationRecord,
        FileRecord,
        JobRecord,
        ModelRecord,
        TrainingRunRecord,
        format_id,
    )

    def ref(kind: Any, pk: int | None) -> str:
        return "-" if pk is None else format_id(kind, pk)

    if isinstance(record, DatasetRecord):
        size = human_bytes(record.size_bytes)
        details = f"{record.n_files} files, {record.n_events:,} events, {size}"
        if record.campaign_id is not None:
            details += f", from {ref('campaigns', record.campaign_id)}"
        return record.name, details
    if isinstance(record, FileRecord):
        events = "" if record.n_events is None else f"{record.n_events:,} events, "
        return record.path, f"{events}{human_bytes(record.size_bytes)}, in {record.owner}"
    if isinstance(record, CampaignRecord):
        counts = ", ".join(f"{n} {state}" for state, n in record.job_counts.items() if n)
        return record.name, counts or "no jobs"
    if isinstance(record, JobRecord):
        details = f"{record.state}, {record.attempts} attempt(s), seed {record.seed}"
        return f"{ref('campaigns', record.campaign_id)} {record.key}", details
    if isinstance(record, ModelRecord):
        return record.name, f"{record.architecture or '?'} {record.path or ''}".strip()
    if isinstance(record, TrainingRunRecord):
        details = (
            f"model {ref('models', record.model_id)}, data {ref('datasets', record.dataset_id)}"
        )
        return "", details
    if isinstance(record, EvaluationRecord):
        metrics = ", ".join(f"{k}={_short(v)}" for k, v in list(record.metrics.items())[:3])
        model = ref("models", record.model_id)
        return "", f"model {model}, reference {ref('datasets', record.dataset_id)} {metrics}"
    return "", ""  # pragma: no cover


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""
