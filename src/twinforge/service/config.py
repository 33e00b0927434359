"""Settings of the web catalogue (``twinforge serve --config serve.yaml``).

Example::

    catalog: postgresql://twinforge@db.example.org/twinforge   # or an SQLite file
    host: 127.0.0.1
    port: 8000
    storage: [/data/twinforge]      # files are served from these folders only
    write_token_file: /etc/twinforge/token   # enables register, tag and publish
    base_url: https://catalogue.example.org  # the public address, for JSON-LD identifiers

Unknown keys are rejected by name. The write token may also be given inline
(``write_token``) or through ``$TWINFORGE_SERVE_TOKEN``; without one the server is read-only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from pydantic import Field, SecretStr, field_validator

from twinforge.config import StrictModel, load_yaml, validate_config
from twinforge.errors import ConfigError

__all__ = ["SETTINGS_ENV", "TOKEN_ENV", "ServeConfig", "load_serve_config"]

TOKEN_ENV: Final = "TWINFORGE_SERVE_TOKEN"
"""Environment variable holding the write token (when the config gives none)."""

SETTINGS_ENV: Final = "TWINFORGE_SERVE_SETTINGS"
"""How ``twinforge serve --workers N`` hands its settings (JSON, no token) to each process."""


class ServeConfig(StrictModel):
    """How and what ``twinforge serve`` serves."""

    catalog: str | None = Field(
        None, description="catalogue file or SQLAlchemy URL (default: $TWINFORGE_CATALOG)"
    )
    host: str = Field("127.0.0.1", description="interface to listen on")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free one)")
    storage: list[Path] = Field(
        default_factory=list,
        description="folders whose files may be downloaded; default: the SQLite catalogue's "
        "folder. A catalogued file outside every one is never served.",
    )
    write_token: SecretStr | None = Field(
        None, description="bearer token that enables the write API (register, tag, publish)"
    )
    write_token_file: Path | None = Field(None, description="a file holding the write token")
    base_url: str | None = Field(
        None, description="public address of the server, for identifiers in JSON-LD and crates"
    )
    page_size: int = Field(25, ge=1, le=200, description="records per page of a listing")
    crate_data_limit_mib: int = Field(
        2048,
        ge=0,
        description="largest RO-Crate zip with its data built on request, MiB "
        "(bigger records: download the files, or 'twinforge catalog export' on the server)",
    )
    workers: int = Field(
        1, ge=1, le=64, description="server processes (each with its own database connections)"
    )
    title: str = Field("twinforge catalogue", description="name shown on every page")

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return None if value is None else value.rstrip("/")

    def token(self) -> str | None:
        """The write token: inline, else from its file, else ``$TWINFORGE_SERVE_TOKEN``.

        Raises:
            ConfigError: the token file is missing or empty, or a token is shorter than 16
                characters (a guessable token is worse than none).
        """
        value: str | None = None
        if self.write_token is not None:
            value = self.write_token.get_secret_value()
        elif self.write_token_file is not None:
            try:
                value = self.write_token_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"write_token_file {self.write_token_file}: {exc.strerror}"
                ) from None
            if not value:
                raise ConfigError(f"write_token_file {self.write_token_file} is empty")
        else:
            value = os.environ.get(TOKEN_ENV) or None
        if value is not None and len(value) < 16:
            raise ConfigError("the write token must be at least 16 characters long")
        return value


def load_serve_config(path: Path | None) -> ServeConfig:
    """The settings in ``path`` (YAML), or the defaults when None.

    Raises:
        ConfigError: unreadable YAML, an unknown key (named), a bad value.
    """
    if path is None:
        return ServeConfig()
    return validate_config(ServeConfig, load_yaml(path), str(path))
