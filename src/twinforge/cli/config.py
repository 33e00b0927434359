"""``twinforge config``: inspect configuration files."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from twinforge.cli._common import console
from twinforge.config import config_kinds, load_config

app = typer.Typer(help="Inspect configuration files.", no_args_is_help=True)


@app.command("show")
def show(
    file: Path = typer.Argument(..., help="A YAML config with a 'kind' key."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
) -> None:
    """Validate FILE and print it with every default filled in."""
    cfg = load_config(file)
    data = cfg.model_dump(mode="json")
    if as_json:
        console.print_json(data=data)
    else:
        console.print(yaml.safe_dump(data, sort_keys=False).rstrip(), highlight=False, markup=False)


@app.command("kinds")
def kinds() -> None:
    """List the config kinds twinforge knows."""
    for kind in config_kinds():
        console.print(kind)
