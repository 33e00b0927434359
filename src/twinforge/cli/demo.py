"""``twinforge demo``: the end-to-end demo on the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from twinforge.cli._common import console, err_console, options, progress, say


def demo(
    workdir: Path = typer.Option(Path("demo-output"), help="Directory for every demo output."),
    n: int | None = typer.Option(None, "--n", min=1, help="Showers (default: the demo's 400)."),
) -> None:
    """Run the whole chain on the embedded defaults and say where the results are."""
    from twinforge.campaign import CampaignProgress
    from twinforge.demo import run_demo

    def announce(name: str) -> None:
        if not options.quiet:
            err_console.print(f"[bold cyan]>>[/] {name}")

    with progress() as bar:
        task = bar.add_task("jobs", total=None)

        def update(p: CampaignProgress) -> None:
            bar.update(task, total=p.total_jobs, completed=p.done)

        result = run_demo(workdir, n_events=n, on_step=announce, on_progress=update)
    if not options.quiet:
        table = Table("step", "seconds", title="twinforge demo")
        for name, seconds in result.steps.items():
            table.add_row(name, f"{seconds:.1f}")
        console.print(table)
    say(f"shower file : {result.shower_file}")
    say(f"catalogue   : {result.catalog} (dataset {result.dataset_id})")
    say(f"RO-Crate    : {result.crate}")
    say(f"physics     : {result.figures['physics']}")
    say(f"throughput  : {result.figures['showers_per_second']:.1f} showers/s "
        f"({result.figures['executor']})")  # fmt: skip
    fractions = ", ".join(f"{k}: {v:.4f}" for k, v in result.figures["visible_fraction"].items())
    say(f"E_Si / E_inc: {fractions}")
    for note in result.notes:
        say(f"[yellow]note:[/] {note}")
