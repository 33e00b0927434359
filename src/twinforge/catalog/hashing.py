"""Streaming SHA-256 of files: constant memory whatever the file size."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHUNK_SIZE",
    "Digest",
    "copy_with_digest",
    "file_digest",
    "is_sha256",
    "resolve_file",
    "sha256_file",
]

CHUNK_SIZE = 1 << 20
"""Bytes read per chunk (1 MiB): large enough for full disk throughput, small in memory."""


@dataclass(frozen=True, slots=True)
class Digest:
    """The SHA-256 (lower-case hex) and size in bytes of a file's content."""

    sha256: str
    size: int


def file_digest(path: str | os.PathLike[str], *, chunk_size: int = CHUNK_SIZE) -> Digest:
    """Hash ``path`` in chunks of ``chunk_size`` bytes; the size is the number of bytes hashed.

    Raises:
        OSError: the file cannot be opened or read (``FileNotFoundError`` when missing).
    """
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as stream:
        while n := stream.readinto(buffer):
            digest.update(view[:n])
            size += n
    return Digest(digest.hexdigest(), size)


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = CHUNK_SIZE) -> str:
    """The lower-case hex SHA-256 of the file at ``path``, read in chunks."""
    return file_digest(path, chunk_size=chunk_size).sha256


def copy_with_digest(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, chunk_size: int = CHUNK_SIZE
) -> Digest:
    """Copy ``src`` to ``dst`` (permission bits and times too), hashing what is written.

    Hashing the bytes as they are copied proves that the copy holds exactly the content whose
    checksum is returned, with a single read of the source.
    """
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    with open(src, "rb", buffering=0) as source, open(dst, "xb") as target:
        while n := source.readinto(buffer):
            digest.update(view[:n])
            target.write(view[:n])
            size += n
    shutil.copystat(src, dst)
    return Digest(digest.hexdigest(), size)


def is_sha256(text: str) -> bool:
    """Whether ``text`` looks like a hex SHA-256 (64 hex digits)."""
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


def resolve_file(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute (symbolic links resolved), as stored in the catalogue."""
    return Path(path).expanduser().resolve()
