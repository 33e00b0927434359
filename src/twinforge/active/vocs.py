"""twinforge spaces and the gest-api VOCS (variables, objectives, constraints, constants,
observables) that Xopt and other generators speak.

A range becomes a continuous variable ``[min, max]`` (in the space's units; a log scale is
lost on the way, integers become continuous and are rounded by twinforge); categories become a
discrete variable; constants stay constants. Space constraints (expressions over inputs) have
no VOCS equivalent: twinforge applies them to every point a generator proposes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twinforge.errors import ConfigError
from twinforge.space import ParameterSpace, ResolvedSpace

__all__ = ["space_to_vocs", "vocs_to_space"]


def space_to_vocs(
    space: ResolvedSpace,
    objectives: Mapping[str, str],
    constraints: Mapping[str, tuple[str, float]] | None = None,
    observables: set[str] | None = None,
) -> Any:
    """The VOCS of ``space`` with ``objectives`` (output -> MINIMIZE | MAXIMIZE | EXPLORE)."""
    from gest_api.vocs import VOCS

    variables: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    for d in space.dimensions:
        if d.constant:
            constants[d.name] = d.values[0]  # type: ignore[index]
        elif d.values is not None:
            variables[d.name] = set(d.values)
        elif d.high > d.low:
            variables[d.name] = [float(d.low), float(d.high)]
        else:
            constants[d.name] = float(d.low)
    try:
        return VOCS(
            variables=variables,
            objectives={k: v.upper() for k, v in objectives.items()},
            constraints={k: [kind, bound] for k, (kind, bound) in (constraints or {}).items()},
            constants=constants,
            observables=observables or set(),
        )
    except ValueError as exc:
        raise ConfigError(f"cannot describe the space as a VOCS: {exc}") from None


def vocs_to_space(vocs: Any) -> ResolvedSpace:
    """A twinforge space with the VOCS's variables and constants (no units)."""
    from gest_api.vocs import ContinuousVariable, DiscreteVariable

    data: dict[str, Any] = {}
    for name, var in vocs.variables.items():
        if isinstance(var, DiscreteVariable):
            data[name] = {"values": sorted(var.values, key=str)}
        elif isinstance(var, ContinuousVariable):
            lo, hi = var.domain
            data[name] = {"min": float(lo), "max": float(hi)}
        else:
            raise ConfigError(f"VOCS variable {name!r}: {type(var).__name__} is not supported")
    for name, const in vocs.constants.items():
        data[name] = {"value": const.value}
    return ParameterSpace.model_validate(data).resolve(None)
