"""``twinforge campaign``: run, resume, inspect and merge simulation campaigns."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import TextColumn
from rich.table import Table

from twinforge.cli._common import (
    catalog_option,
    console,
    progress,
    save_figure,
    say,
    stop_on_sigterm,
)

_MAX_ROWS = 20  # failed jobs listed after a run

app = typer.Typer(help="Simulation campaigns (Geant4 on Dask), resumable.", no_args_is_help=True)


def _config(path: Path):
    from twinforge.campaign import CampaignConfig
    from twinforge.config import load_config

    return load_config(path, CampaignConfig)


@app.command("run")
def run(
    config: Path = typer.Argument(..., help="Campaign YAML (kind: campaign)."),
    catalog: str | None = catalog_option(),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Also re-run jobs that used up their retries before."
    ),
    force: bool = typer.Option(
        False, "--force", help="Take over jobs left running by a run on another host."
    ),
) -> None:
    """Run a campaign, or resume it: finished jobs are never run again.

    Exit code 1 when some jobs failed after all retries (the others are kept).
    """
    from twinforge.campaign import CampaignProgress, run_campaign
    from twinforge.catalog import Catalog
    from twinforge.errors import SimulationError

    cfg = _config(config)
    noun = cfg.make_simulator().point_noun
    with stop_on_sigterm(), Catalog.open(catalog) as cat, progress() as bar:
        bar.columns = (*bar.columns, TextColumn("{task.fields[rate]}"))
        task = bar.add_task(f"campaign {cfg.name}", total=cfg.n_jobs, rate="")

        def update(p: CampaignProgress) -> None:
            rate = f"{p.points_per_second:.1f} {noun}/s" if p.points else ""
            fail = f", {p.failed} failed" if p.failed else ""
            bar.update(task, completed=p.done, rate=rate + fail)

        report = run_campaign(
            cfg,
            cat,
            base_dir=Path.cwd(),
            retry_failed=retry_failed,
            force=force,
            on_progress=update,
        )
    say(
        f"{report.campaign_id}: {report.done}/{report.total_jobs} jobs done "
        f"({report.ran} run now, {report.skipped} already done, {report.adopted} adopted), "
        f"{report.points} {noun} in {report.seconds:.1f} s on {report.executor}"
    )
    if report.stopped:
        error = ", ".join(f"{k} {v:.3g}" for k, v in (report.predicted_error or {}).items())
        say(f"stopped: {report.stopped}" + (f"; predicted RMSE {error}" if error else ""))
    if report.failed:
        table = Table("job", "error", title="failed jobs")
        failed = sorted(report.failed.items())
        for key, error in failed[:_MAX_ROWS]:
            table.add_row(key, error)
        if len(failed) > _MAX_ROWS:
            table.add_row("...", f"and {len(failed) - _MAX_ROWS} more: twinforge campaign "
                          f"status {cfg.name} --jobs")  # fmt: skip
        console.print(table)
        raise SimulationError(
            f"{len(report.failed)} job(s) failed after {cfg.max_retries} retries; fix the cause "
            f"and run again (finished jobs are kept)"
        )


@app.command("status")
def status(
    campaign: str = typer.Argument(..., help="Campaign YAML, name or id (camp-N)."),
    catalog: str | None = catalog_option(),
    jobs: bool = typer.Option(False, "--jobs", help="List every job."),
) -> None:
    """Jobs per state, failures with their errors."""
    from twinforge.campaign import campaign_status
    from twinforge.catalog import Catalog

    name = _config(Path(campaign)).name if campaign.endswith((".yaml", ".yml")) else campaign
    with Catalog.open(catalog, create=False) as cat:
        record, job_list = campaign_status(cat, name)
    counts: dict[str, int] = {}
    for job in job_list:
        counts[job.state] = counts.get(job.state, 0) + 1
    say(f"[bold]{record.global_id}[/] {record.name}: {len(job_list)} jobs, "
        + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))  # fmt: skip
    failed = [j for j in job_list if j.state == "failed"]
    shown = job_list if jobs else failed
    if shown:
        table = Table("job", "state", "attempts", "seed", "exit", "worker", "error / output")
        for j in shown:
            detail = j.error or j.output_path or ""
            if j.state == "failed" and j.stderr_tail:
                detail += "\n" + "\n".join(j.stderr_tail.splitlines()[-5:])
            table.add_row(
                j.key, j.state, str(j.attempts), str(j.seed),
                "" if j.exit_code is None else str(j.exit_code), j.worker or "", escape(detail),
            )  # fmt: skip
        console.print(table)


@app.command("plot")
def plot(
    campaign: str = typer.Argument(..., help="Campaign YAML, name or id (camp-N)."),
    out: Path = typer.Option(..., "--out", "-o", help="Figure to write (.png or .pdf)."),
    catalog: str | None = catalog_option(),
) -> None:
    """An adaptive campaign's surrogate error (predicted RMSE) against simulations, from its
    journal."""
    from twinforge.campaign import campaign_status
    from twinforge.campaign.figures import error_curve, error_figure
    from twinforge.catalog import Catalog

    name = _config(Path(campaign)).name if campaign.endswith((".yaml", ".yml")) else campaign
    with Catalog.open(catalog, create=False) as cat:
        record, jobs = campaign_status(cat, name)
    curves = error_curve(jobs)
    fig = error_figure(curves, f"{record.name} ({record.global_id}): error against simulations")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out)
    last = ", ".join(f"{k} {v[1][-1]:.3g} after {v[0][-1]}" for k, v in curves.items())
    say(f"wrote {out} (predicted RMSE {last})")


@app.command("merge")
def merge(
    config: Path = typer.Argument(..., help="Campaign YAML (kind: campaign)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Merged file."),
    catalog: str | None = catalog_option(),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Merge the done jobs only."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the output file."),
) -> None:
    """Merge the shards of a finished campaign and register the dataset."""
    from twinforge.campaign import merge_campaign
    from twinforge.catalog import Catalog

    cfg = _config(config)
    with Catalog.open(catalog, create=False) as cat:
        dataset = merge_campaign(
            cat, cfg, output=output, base_dir=Path.cwd(), allow_partial=allow_partial,
            overwrite=overwrite,
        )  # fmt: skip
    noun = cfg.make_simulator().point_noun
    say(f"registered {dataset.global_id} ({dataset.name}): {dataset.n_events} {noun}")
