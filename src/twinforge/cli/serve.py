"""``twinforge serve``: the web catalogue over a catalogue file or database."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from twinforge.cli._common import options, say


def serve(
    catalog: str | None = typer.Argument(
        None,
        metavar="[CATALOG]",
        help="Catalogue file or SQLAlchemy URL (postgresql://user@host/db). Default: the "
        "config's, else $TWINFORGE_CATALOG, else ./.twinforge/catalog.sqlite.",
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Serve settings (YAML): storage, write token, base URL ..."
    ),
    host: str | None = typer.Option(None, "--host", help="Interface (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", min=0, max=65535, help="Port (8000)."),
    storage: list[Path] = typer.Option(
        [],
        "--storage",
        help="A folder whose files may be downloaded (repeatable; default: "
        "the SQLite catalogue's folder).",
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help="Public address, for identifiers in JSON-LD and crates."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, max=64, help="Server processes (default 1; one per core)."
    ),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
) -> None:
    """Serve the catalogue as a website and a JSON API (read-only unless the config gives a
    write token). Stop it with Ctrl-C."""
    from twinforge.service import require_web

    require_web()
    import uvicorn

    from twinforge.catalog import Catalog
    from twinforge.service.app import create_app
    from twinforge.service.config import load_serve_config

    settings = load_serve_config(config)
    given = {"catalog": catalog, "host": host, "port": port, "base_url": base_url,
             "workers": workers, "storage": storage or None}  # fmt: skip
    update = {k: v for k, v in given.items() if v is not None}
    settings = settings.model_validate(settings.model_dump() | update)
    run_options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "debug" if options.debug else "warning",
        "access_log": access_log,
    }
    with Catalog.open(settings.catalog, create=False) as cat:
        app = create_app(cat, settings)
        state = app.state.twinforge
        mode = "writes enabled (token)" if state.writable else "read-only"
        roots = ", ".join(str(r) for r in state.storage.roots) or "none: downloads off"
        say(f"serving {escape(cat.location.display)} ({mode}); files from {escape(roots)}; "
            f"{settings.workers} process(es)")  # fmt: skip
        say(f"open http://{settings.host}:{settings.port}/ in a browser; Ctrl-C stops")
        if settings.workers == 1:
            uvicorn.run(app, **run_options)
            return
        token = state.token
    # several processes: each builds its own app from the settings; the token travels apart
    import os

    from twinforge.service.config import SETTINGS_ENV, TOKEN_ENV

    public = settings.model_copy(update={"write_token": None, "write_token_file": None})
    os.environ[SETTINGS_ENV] = public.model_dump_json()
    if token is not None:
        os.environ[TOKEN_ENV] = token
    uvicorn.run(
        "twinforge.service.app:app_from_environment",
        factory=True,
        workers=settings.workers,
        **run_options,
    )
