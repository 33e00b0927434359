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

__all__ = ["GROUP", "available", "create", "load"]

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
