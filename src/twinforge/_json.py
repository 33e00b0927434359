"""JSON helpers shared by the stores (shower-file provenance, catalogue rows)."""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import Any

__all__ = ["json_default"]


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for paths, datetimes, sets and NumPy scalars/arrays."""
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
