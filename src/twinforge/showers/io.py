"""Small file-system helpers shared by every writer: atomic writes and temporary names.

A final name only ever holds a complete file: writers write to a temporary name in the same
directory and rename it over the final name (an atomic operation on POSIX) once the content is
complete. A crash leaves at most a ``*.tmp-*`` file behind, never a truncated final file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from twinforge.errors import TwinforgeError

__all__ = ["atomic_path", "atomic_write_text", "temporary_name"]


def temporary_name(final: Path) -> Path:
    """A unique temporary path next to ``final`` (same directory, so rename is atomic)."""
    return final.with_name(f"{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


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
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable_target(final: Path, *, overwrite: bool) -> None:
    """Raise a clear :class:`TwinforgeError` unless ``final`` can be created or replaced."""
    parent = final.parent if str(final.parent) else Path(".")
    if final.is_dir():
        raise TwinforgeError(f"{final}: is a directory, expected a file name")
    if final.exists() and not overwrite:
        raise TwinforgeError(f"{final}: already exists (pass overwrite to replace it)")
    if not parent.is_dir():
        raise TwinforgeError(f"{final}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TwinforgeError(f"{final}: directory {parent} is not writable")


def atomic_write_text(final: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``final`` atomically."""
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
