"""Quantities with units in configs: ``"10 GeV"``, ``"2 mrad"``, ``"5 cm"``.

A simulator declares each parameter's unit; a config may give a plain number (taken in that
unit) or text with a unit of the same dimension, converted here. Units outside the table
(``1/m^2``, ``T``) are accepted only when written exactly as declared.
"""

from __future__ import annotations

import math
import re
from typing import Final

from twinforge.errors import ConfigError

__all__ = ["UNITS", "convert", "parse_quantity"]

# unit -> (dimension, factor to the dimension's base unit)
UNITS: Final[dict[str, tuple[str, float]]] = {
    "eV": ("energy", 1e-6), "keV": ("energy", 1e-3), "MeV": ("energy", 1.0),
    "GeV": ("energy", 1e3), "TeV": ("energy", 1e6),
    "nm": ("length", 1e-6), "um": ("length", 1e-3), "mm": ("length", 1.0),
    "cm": ("length", 10.0), "m": ("length", 1e3), "km": ("length", 1e6),
    "urad": ("angle", 1e-6), "mrad": ("angle", 1e-3), "rad": ("angle", 1.0),
    "deg": ("angle", math.pi / 180),
    "ns": ("time", 1e-9), "us": ("time", 1e-6), "ms": ("time", 1e-3), "s": ("time", 1.0),
}  # fmt: skip

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*$")


def convert(value: float, unit: str, to: str) -> float:
    """``value`` in ``unit`` expressed in ``to`` (both in :data:`UNITS`, same dimension)."""
    (dim_a, fa), (dim_b, fb) = UNITS[unit], UNITS[to]
    if dim_a != dim_b:
        raise ConfigError(f"cannot convert {unit} ({dim_a}) to {to} ({dim_b})")
    return value * fa / fb


def parse_quantity(value: object, unit: str | None, *, where: str = "value") -> float:
    """A number in ``unit`` from a number or text such as ``"10 GeV"``.

    Raises:
        ConfigError: not a number, a unit of another dimension, or text with a unit where the
            parameter has none (naming ``where``).
    """
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(str(value))
    if match is None:
        raise ConfigError(f"{where}: cannot read {value!r} as a number (with a unit)")
    number, given = float(match.group(1)), match.group(2)
    if not given or given == unit:
        return number
    if unit is None:
        raise ConfigError(f"{where}: {value!r} has a unit but the parameter has none")
    if given not in UNITS or unit not in UNITS:
        known = ", ".join(u for u, (d, _) in UNITS.items() if unit in UNITS and d == UNITS[unit][0])
        raise ConfigError(
            f"{where}: unknown unit {given!r} in {value!r}; the parameter is in {unit}"
            + (f" (also accepted: {known})" if known else "")
        )
    try:
        return convert(number, given, unit)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {value!r}: {exc}") from None
