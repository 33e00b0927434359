"""``twinforge demo``: the end-to-end demo on the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from twinforge.cli._common import console, err_console, options, say


def demo(
    workdir: Path = typer.Option(Path("demo-output"), help="Directory for every demo output."),
    n: int = typer.Option(2000, "--n", min=10, help="Number of showers."),
) -> None:
    """Run the whole chain on the embedded defaults and say where the results are."""
    from twinforge.demo import run_demo

    def announce(name: str) -> None:
        if not options.quiet:
            err_console.print(f"[bold cyan]>>[/] {name}")

    result = run_demo(workdir, n_events=n, on_step=announce)
    if not options.quiet:
        table = Table("step", "seconds", title="twinforge demo")
        for name, seconds in result.steps.items():
            table.add_row(name, f"{seconds:.1f}")
        console.print(table)
    say(f"shower file : {result.shower_file}")
    say(f"catalogue   : {result.catalog} (dataset {result.dataset_id})")
    say(f"RO-Crate    : {result.crate}")
    for note in result.notes:
        say(f"[yellow]note:[/] {note}")
