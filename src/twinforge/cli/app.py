"""The Typer application and its top-level options."""

from __future__ import annotations

import typer

from twinforge import __version__
from twinforge.cli import (
    bench,
    campaign,
    catalog,
    config,
    demo,
    detector,
    export,
    scale,
    serve,
    showers,
    simulate,
    surrogate,
    train,
    tune,
    validate,
)
from twinforge.cli._common import options, setup_logging

app = typer.Typer(
    name="twinforge",
    help="Fast calorimeter simulation end to end: simulate, store, train, validate, deploy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"twinforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or info messages."),
    debug: bool = typer.Option(False, "--debug", help="Debug logging and full tracebacks."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    options.quiet = quiet
    options.debug = debug
    setup_logging(quiet=quiet, debug=debug)


app.add_typer(config.app, name="config")
app.add_typer(detector.app, name="detector")
app.add_typer(showers.app, name="showers")
app.add_typer(catalog.app, name="catalog")
app.add_typer(campaign.app, name="campaign")
app.add_typer(surrogate.app, name="surrogate")
app.command(name="simulate")(simulate.simulate)
app.command(name="convert")(simulate.convert)
app.command(name="simulators")(simulate.simulators)
app.command(name="train")(train.train)
app.command(name="sample")(train.sample)
app.command(name="tune")(tune.tune)
app.command(name="scale")(scale.scale)
app.command(name="validate")(validate.validate)
app.command(name="export")(export.export)
app.command(name="bench")(bench.bench)
app.command(name="demo")(demo.demo)
app.command(name="serve")(serve.serve)
