"""The ``twinforge`` command line: thin Typer commands that call the stage APIs."""

from __future__ import annotations

import sys

from rich.markup import escape

from twinforge.cli._common import err_console, options
from twinforge.cli.app import app
from twinforge.errors import Stopped, TwinforgeError

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and exit code 1."""
    try:
        app()
    except Stopped as exc:
        err_console.print(
            f"[bold red]stopped:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        sys.exit(143)
    except TwinforgeError as exc:
        if options.debug:
            raise
        # escaped: a message may hold brackets ('twinforge[publish]') that are not markup
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        sys.exit(1)
    except KeyboardInterrupt:  # outside a command (Typer turns Ctrl-C in one into exit code 130)
        err_console.print("[bold red]interrupted[/]")
        sys.exit(130)
