"""Shared pieces of the CLI: consoles, run-wide options, progress bars, error exits."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from twinforge.errors import Stopped

console = Console()


# bound to the stderr of the moment: while Geant4 runs, its output (sys.stdout/stderr) is
# redirected to logging, and log records written here must not be caught up in that
err_console = Console(file=sys.stderr)


@dataclass
class Options:
    """Options of the whole invocation (set by the top-level callback)."""

    quiet: bool = False
    debug: bool = False


options = Options()


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`~twinforge.errors.Stopped` in the main thread
    instead of killing the process at once, so the clean-up of a stop runs (a campaign hands
    its running jobs back) and :func:`main` exits with 143. Does nothing outside the main
    thread. (``train`` does not need it: Lightning turns SIGTERM into a stop of its own.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Stopped("SIGTERM: run the same command again to resume")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def setup_logging(*, quiet: bool, debug: bool) -> None:
    """Route twinforge's ``logging`` records to stderr through rich."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = RichHandler(console=err_console, show_path=debug, show_time=debug, markup=False)
    root = logging.getLogger("twinforge")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def progress() -> Progress:
    """A rich progress bar, disabled under ``--quiet``."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=options.quiet,
        transient=False,
    )


_CATALOG_HELP = (
    "Catalogue file or SQLAlchemy URL (e.g. postgresql://user@host/db). "
    "Default: $TWINFORGE_CATALOG, else ./.twinforge/catalog.sqlite."
)


def catalog_option() -> Any:
    """The ``--catalog`` option every command that touches the catalogue takes."""
    return typer.Option(None, "--catalog", "-c", metavar="URL_OR_PATH", help=_CATALOG_HELP)


def tracking_uri_option() -> Any:
    """The ``--tracking-uri`` option of the commands that log to MLflow."""
    return typer.Option(
        None,
        "--tracking-uri",
        metavar="URL_OR_PATH",
        envvar="TWINFORGE_TRACKING_URI",
        show_envvar=False,
        help="MLflow tracking server URL (http://host:5000), sqlite:/// URL or store directory. "
        "Default: $TWINFORGE_TRACKING_URI, else mlflow.sqlite beside the catalogue file. An "
        "unreachable server costs a warning and the run is logged locally.",
    )


def no_tracking_option() -> Any:
    """The ``--no-tracking`` switch of the commands that log to MLflow."""
    return typer.Option(
        False,
        "--no-tracking",
        envvar="TWINFORGE_NO_TRACKING",
        show_envvar=False,
        help="Do not log this run to MLflow (also: TWINFORGE_NO_TRACKING=1).",
    )


def tracking_config(uri: str | None, no_tracking: bool, base: Any = None) -> Any:
    """``base`` (a :class:`twinforge.tracking.TrackingConfig`, e.g. a study config's; default
    the defaults) with ``--tracking-uri`` and ``--no-tracking`` applied when given."""
    from twinforge.tracking import TrackingConfig

    config = base if base is not None else TrackingConfig()
    if uri:
        config = config.model_copy(update={"uri": uri})
    if no_tracking:
        config = config.model_copy(update={"enabled": False})
    return config


def say(message: str) -> None:
    """Print a result line on stdout unless ``--quiet``."""
    if not options.quiet:
        console.print(message)


def save_figure(fig: Any, out: Path) -> None:
    """Write a matplotlib figure atomically (format from the suffix: .png, .pdf, .svg)."""
    from twinforge.showers.io import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=120)
