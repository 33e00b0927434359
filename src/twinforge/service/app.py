"""The web catalogue's application: :func:`create_app` builds a FastAPI app over a catalogue.

Read-only unless the configuration gives a write token; errors become a page (or, under
``/api/``, a JSON body) with the right HTTP status and one line saying what is wrong, never a
stack trace. The pages are in :mod:`twinforge.service.pages`, the JSON API in
:mod:`twinforge.service.api`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from twinforge import __version__
from twinforge.catalog import Catalog
from twinforge.errors import CatalogUnavailable, RecordNotFound, TwinforgeError
from twinforge.service.config import ServeConfig
from twinforge.service.storage import FileUnavailable, Storage

__all__ = ["API_PREFIX", "State", "WriteDenied", "app_from_environment", "create_app", "state"]

log = logging.getLogger(__name__)

API_PREFIX: Final = "/api/v1"

_SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
}
PAGE_CSP: Final = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "script-src 'none'; frame-src 'self'; object-src 'none'; base-uri 'none'"
)


class WriteDenied(TwinforgeError):
    """A write without the right token; ``status`` is 401 (no token) or 403."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class State:
    """What every request needs: the catalogue, the settings, the storage, the token."""

    def __init__(self, catalog: Catalog, config: ServeConfig, storage: Storage) -> None:
        self.catalog = catalog
        self.config = config
        self.storage = storage
        self._token = config.token()

    @property
    def token(self) -> str | None:
        """The write token, None for a read-only server."""
        return self._token

    @property
    def writable(self) -> bool:
        """Whether write actions are enabled (a token is configured)."""
        return self._token is not None

    def check_token(self, authorization: str | None) -> str:
        """Check an ``Authorization: Bearer <token>`` header; returns who wrote (for the
        record's provenance).

        Raises:
            WriteDenied: read-only server (403), no token given (401), wrong token (403).
        """
        if self._token is None:
            raise WriteDenied(
                "this catalogue is served read-only: writes need a write_token in the serve config",
                403,
            )
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise WriteDenied("this action needs a token: Authorization: Bearer <token>", 401)
        if not secrets.compare_digest(given.strip().encode(), self._token.encode()):
            raise WriteDenied("wrong token", 403)
        return "web (token)"

    def url(self, request: Request, path: str) -> str:
        """The absolute URL of ``path`` on this server (``base_url`` when configured)."""
        base = self.config.base_url or str(request.base_url).rstrip("/")
        return f"{base}{path}"


def state(request: Request) -> State:
    """The application's :class:`State` (a FastAPI dependency)."""
    return request.app.state.twinforge  # type: ignore[no-any-return]


def default_storage(catalog: Catalog, config: ServeConfig) -> Storage:
    """The configured storage folders, else the SQLite catalogue's own folder."""
    if config.storage:
        return Storage.of(config.storage)
    path = catalog.location.path
    return Storage.of([path.parent] if path is not None else [])


def create_app(
    catalog: Catalog, config: ServeConfig | None = None, *, owns_catalog: bool = False
) -> FastAPI:
    """The web catalogue over an open ``catalog``.

    The caller owns ``catalog`` (and closes it) unless ``owns_catalog``: then the app closes it
    when it shuts down. Raises :class:`~twinforge.errors.ConfigError` for an unusable write
    token setting.
    """
    from twinforge.service import api, pages, views

    config = config or ServeConfig()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        # bounded concurrency: fewer worker threads than database connections in the pool
        anyio.to_thread.current_default_thread_limiter().total_tokens = 12
        # load the simulator plug-ins once, before the first request (seconds: Xsuite, Geant4)
        await anyio.to_thread.run_sync(views.describe_simulators)
        yield
        if owns_catalog:
            catalog.close()

    app = FastAPI(
        title=config.title,
        version=__version__,
        description="Datasets, campaigns, simulators, models, training runs, evaluations and "
        "surrogates of a twinforge catalogue. Read-only unless a write token is configured.",
        docs_url=None,  # Swagger UI and ReDoc load their code from a CDN: not here
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.twinforge = State(catalog, config, default_storage(catalog, config))
    app.include_router(api.router, prefix=API_PREFIX)
    app.include_router(pages.router)
    _install_error_pages(app)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for key, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        return response

    return app


def _status_of(exc: Exception) -> int:
    if isinstance(exc, FileUnavailable | WriteDenied):
        return exc.status
    if isinstance(exc, RecordNotFound):
        return 404
    if isinstance(exc, CatalogUnavailable):
        return 503
    return 400


def _install_error_pages(app: FastAPI) -> None:
    def answer(request: Request, status: int, message: str, **headers: str) -> Response:
        if request.url.path.startswith("/api/"):
            body = {"error": {"status": status, "message": message}}
            return JSONResponse(body, status_code=status, headers=headers or None)
        from twinforge.service.pages import render_error

        return HTMLResponse(
            render_error(request, status, message), status_code=status, headers=headers or None
        )

    @app.exception_handler(TwinforgeError)
    async def _user_error(request: Request, exc: TwinforgeError) -> Response:
        status = _status_of(exc)
        extra = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        return answer(request, status, str(exc).splitlines()[0] if str(exc) else "error", **extra)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body",))
        message = f"bad request: {where}: {first.get('msg', 'invalid value')}"
        return answer(request, 400, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no page at {request.url.path}"
        return answer(request, exc.status_code, message, **(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return answer(request, 500, "internal error: the server's log has the details")


def app_from_environment() -> FastAPI:
    """The app of one server process of ``twinforge serve --workers N`` (a uvicorn factory):
    the settings come from ``$TWINFORGE_SERVE_SETTINGS``, the token from
    ``$TWINFORGE_SERVE_TOKEN``; the process opens its own catalogue connections."""
    import os

    from twinforge.service.config import SETTINGS_ENV

    config = ServeConfig.model_validate_json(os.environ[SETTINGS_ENV])
    return create_app(Catalog.open(config.catalog, create=False), config, owns_catalog=True)
