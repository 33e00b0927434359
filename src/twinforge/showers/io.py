"""Small file-system helpers shared by every writer: atomic writes and temporary names.

A final name only ever holds a complete file: writers write to a temporary name in the same
directory and rename it over the final name (an atomic operation on POSIX) once the content is
complete. A crash leaves at most a ``*.tmp-*`` file behind, never a truncated final file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

from twinforge.errors import TwinforgeError

__all__ = [
    "atomic_path",
    "atomic_write_text",
    "commit",
    "host_tag",
    "temporary_name",
    "temporary_owner",
]

_TMP = ".tmp-"


def temporary_name(final: Path) -> Path:
    """A unique temporary path next to ``final`` (same directory, so rename is atomic).

    The name records the writer, ``{final}.tmp-{host}-{pid}-{random}``, so that a clean-up can
    tell the temporaries of dead local processes from those of live or remote writers.
    """
    return final.with_name(f"{final.name}{_TMP}{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}")


def host_tag() -> str:
    """This host's name as it appears in temporary names (no '-' or '/')."""
    return socket.gethostname().replace("-", "_").replace("/", "_")


def temporary_owner(path: Path) -> tuple[str, int] | None:
    """``(host, pid)`` of the writer of a :func:`temporary_name` file, None for other names."""
    _, sep, tail = path.name.rpartition(_TMP)
    parts = tail.split("-")
    if not sep or len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def commit(tmp: Path, final: Path) -> None:
    """fsync ``tmp``, rename it to ``final`` atomically, fsync the directory.

    After this returns, ``final`` holds the complete file even across a power loss.
    """
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    try:
        fd = os.open(final.parent if str(final.parent) else ".", os.O_RDONLY)
    except OSError:  # some file systems do not open directories; the rename is done anyway
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(final: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``final`` when the block succeeds.

    On any exception the temporary file is removed and ``final`` is left untouched.

    Raises:
        TwinforgeError: the directory does not exist or is not writable, or ``final`` exists
            and ``overwrite`` is False.
    """
    final = Path(final)
    check_writable_target(final, overwrite=overwrite)
    tmp = temporary_name(final)
    try:
        yield tmp
        commit(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable_target(final: Path, *, overwrite: bool) -> None:
    """Raise a clear :class:`TwinforgeError` unless ``final`` can be created or replaced."""
    parent = final.parent if str(final.parent) else Path(".")
    if final.is_dir():
        raise TwinforgeError(f"{final}: is a directory, expected a file name")
    if final.exists() and not overwrite:
        raise TwinforgeError(f"{final}: already exists (--overwrite / overwrite=True replaces it)")
    if not parent.is_dir():
        raise TwinforgeError(f"{final}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TwinforgeError(f"{final}: directory {parent} is not writable")


def atomic_write_text(final: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``final`` atomically."""
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
