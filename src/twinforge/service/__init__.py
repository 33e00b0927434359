"""The web catalogue (``twinforge serve``): landing pages, downloads, a JSON API.

FastAPI and uvicorn are the ``web`` extra (``pip install 'twinforge[web]'``); importing this
package without them raises one line that says so. Nothing runs at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twinforge.errors import TwinforgeError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from twinforge.catalog import Catalog
    from twinforge.service.config import ServeConfig

__all__ = ["create_app", "require_web"]


def require_web() -> None:
    """Check that the web extra is installed.

    Raises:
        TwinforgeError: FastAPI, uvicorn or Jinja2 is missing (what to install is named).
    """
    missing = []
    for module in ("fastapi", "uvicorn", "jinja2"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise TwinforgeError(
            f"the web catalogue needs {', '.join(missing)}: pip install 'twinforge[web]'"
        )


def create_app(catalog: Catalog, config: ServeConfig | None = None, **kwargs: Any) -> FastAPI:
    """The web catalogue over an open catalogue (see :func:`twinforge.service.app.create_app`)."""
    require_web()
    from twinforge.service.app import create_app as _create

    return _create(catalog, config, **kwargs)
