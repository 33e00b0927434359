"""Simulators are found through Python entry points, group ``twinforge.simulators``.

A package adds one with, in its ``pyproject.toml``::

    [project.entry-points."twinforge.simulators"]
    my-code = "my_package.twinforge_plugin:MyCodeSimulator"

where ``MyCodeSimulator`` subclasses :class:`~twinforge.simulation.base.Simulator`. Nothing
in twinforge outside a plug-in refers to a simulator by its name.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from twinforge.errors import ConfigError
from twinforge.simulation.base import Simulator

__all__ = ["GROUP", "available", "create", "describe", "load"]

GROUP = "twinforge.simulators"


def available() -> dict[str, EntryPoint]:
    """Installed simulators by name (not imported)."""
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)}


@cache
def _load(name: str, value: str) -> type[Simulator]:
    cls = EntryPoint(name, value, GROUP).load()
    if not (isinstance(cls, type) and issubclass(cls, Simulator)):
        raise ConfigError(f"simulator {name!r} ({value}) is not a twinforge Simulator subclass")
    return cls


def load(name: str) -> type[Simulator]:
    """The simulator class registered as ``name``.

    Raises:
        ConfigError: no simulator of that name is installed (the installed ones are listed),
            or its entry point does not load (the import error is named).
    """
    found = available()
    if name not in found:
        raise ConfigError(
            f"unknown simulator {name!r}; installed: {', '.join(found) or 'none'} "
            "(a package adds one through the 'twinforge.simulators' entry points)"
        )
    try:
        return _load(name, found[name].value)
    except ImportError as exc:
        raise ConfigError(
            f"simulator {name!r} ({found[name].value}) cannot be imported: {exc}"
        ) from None


def create(name: str, options: Any = None) -> Simulator:
    """An instance of simulator ``name`` with ``options`` (a mapping, validated by its model).

    Raises:
        ConfigError: unknown simulator or invalid options (the first bad key named).
    """
    from twinforge.config import validate_config

    cls = load(name)
    return cls(validate_config(cls.Options, dict(options or {}), f"simulator {name}"))


def describe() -> list[dict[str, Any]]:
    """Every installed simulator as JSON-ready facts, by name: ``name``, ``entry_point``,
    ``summary``, ``options`` (name -> default, or ``"required"``), ``parameters`` and
    ``outputs`` (described, or a line saying they depend on the options), or ``error`` for one
    that does not load."""
    from twinforge.errors import TwinforgeError

    rows: list[dict[str, Any]] = []
    for name, entry in available().items():
        row: dict[str, Any] = {"name": name, "entry_point": entry.value}
        try:
            cls = load(name)
        except TwinforgeError as exc:
            rows.append({**row, "error": str(exc)})
            continue
        fields = cls.Options.model_fields
        row |= {
            "summary": cls.summary,
            "options": {
                k: ("required" if f.is_required() else f.default) for k, f in fields.items()
            },
        }
        try:
            sim = cls()
            params = sim.parameters()
            row["parameters"] = (
                "whatever the space defines" if params is None else [p.describe() for p in params]
            )
            row["outputs"] = [o.describe() for o in sim.outputs()]
        except (TwinforgeError, ValueError) as exc:
            row["parameters"] = row["outputs"] = f"depend on the options ({exc})".split("\n")[0]
        rows.append(row)
    return rows
