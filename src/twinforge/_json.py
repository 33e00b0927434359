"""JSON helpers shared by the stores (shower-file provenance, catalogue rows)."""

from __future__ import annotations

import math
import os
from datetime import date, datetime
from typing import Any

__all__ = ["finite_or_none", "json_default", "plain"]


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


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, or None when it is inf/nan: JSON has neither."""
    value = float(value)
    return value if math.isfinite(value) else None


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds (anything else unchanged)."""
    return value.item() if hasattr(value, "item") else value
