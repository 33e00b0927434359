"""What the web catalogue may hand out: files inside its storage folders, nothing else.

A download names a catalogued file by its ID; its path comes from the catalogue, never from
the request. Even so, a path is served only when, with every symbolic link resolved, it lies
inside one of the configured storage folders, and only while its size is the catalogued one:
a catalogue that records ``/etc/passwd`` (or a link to it) still cannot leak it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from twinforge.catalog import FileRecord
from twinforge.errors import TwinforgeError

__all__ = ["FileUnavailable", "Storage"]


class FileUnavailable(TwinforgeError):
    """A catalogued file that cannot be served; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Storage:
    """The folders files may be served from (absolute, links resolved)."""

    roots: tuple[Path, ...]

    @classmethod
    def of(cls, roots: Sequence[str | os.PathLike[str]]) -> Storage:
        """Storage over ``roots`` (each made absolute, links resolved; missing ones kept:
        they serve nothing)."""
        return cls(tuple(Path(r).expanduser().resolve() for r in roots))

    def contains(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path``, links resolved, lies inside a storage folder."""
        real = Path(os.path.realpath(os.fspath(path)))
        return any(real == root or real.is_relative_to(root) for root in self.roots)

    def open_file(self, record: FileRecord) -> Path:
        """The real path of a catalogued file that may be served.

        Raises:
            FileUnavailable: outside the storage (403), missing (410), or not the size the
                catalogue recorded (409: changed since it was catalogued).
        """
        if not self.roots:
            raise FileUnavailable(
                "this server has no storage folders configured: downloads are off", 403
            )
        if not self.contains(record.path):
            raise FileUnavailable(f"{record.global_id} is outside this server's storage", 403)
        real = Path(os.path.realpath(record.path))
        try:
            size = real.stat().st_size
        except OSError:
            raise FileUnavailable(f"{record.global_id} is missing from the storage", 410) from None
        if not real.is_file():
            raise FileUnavailable(f"{record.global_id} is not a regular file", 403)
        if size != record.size_bytes:
            raise FileUnavailable(
                f"{record.global_id} changed since it was catalogued ({size} bytes, "
                f"catalogued {record.size_bytes}); run 'twinforge catalog verify'",
                409,
            )
        return real
