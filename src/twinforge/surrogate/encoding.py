"""Points of a space as numbers a surrogate can learn from, and back.

Every dimension that is not a constant takes one column of an ``(n, d)`` float64 array:

- a range maps onto [0, 1] (through the logarithm on a log scale, so that a surrogate sees
  energies 1-64 GeV spaced as the sampler spaced them); integers are continuous there and rounded
  when decoded;
- categorical values map onto their index 0, 1, ..., k-1 (a GP's categorical kernel compares
  them for equality; the deep ensemble one-hot encodes them).

Constants are left out: a surrogate cannot learn along a dimension that never varies. Decoding
fills them back in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinforge.errors import ConfigError
from twinforge.space import Dimension, ParameterSpace, Points, ResolvedSpace

__all__ = ["SpaceEncoder"]

_TOL = 1e-9  # relative slack at a range's ends (values written and read back as text)


class SpaceEncoder:
    """Maps points of ``space`` to the unit cube (categories to indices) and back."""

    def __init__(self, space: ResolvedSpace) -> None:
        self.space = space
        self.free: list[Dimension] = [d for d in space.dimensions if not d.constant]
        if not self.free:
            raise ConfigError("the space has no variable dimension: nothing to learn")

    @property
    def names(self) -> list[str]:
        """The encoded dimensions, in column order."""
        return [d.name for d in self.free]

    @property
    def dim(self) -> int:
        return len(self.free)

    @property
    def categorical(self) -> dict[int, int]:
        """Column index -> number of categories, for the categorical columns."""
        return {i: len(d.values) for i, d in enumerate(self.free) if d.values is not None}

    def encode(self, points: Mapping[str, Any]) -> NDArray[np.float64]:
        """``(n, d)`` array of ``points`` (name -> 1-D array or scalar).

        Raises:
            ConfigError: a dimension is missing, a value lies outside the space or is not one
                of its categories, a constant differs from the space's (names the first).
        """
        columns = {}
        n = None
        for d in self.space.dimensions:
            if d.name not in points:
                raise ConfigError(f"point has no value for {d.name!r} (the space has {self._list})")
            col = np.atleast_1d(np.asarray(points[d.name]))
            n = len(col) if n is None else n
            if len(col) != n:
                raise ConfigError(f"{d.name}: {len(col)} values where the others have {n}")
            columns[d.name] = col
        unknown = sorted(set(points) - set(self.space.names))
        if unknown:
            raise ConfigError(f"unknown parameter {unknown[0]!r} (the space has {self._list})")
        for d in self.space.dimensions:
            if d.constant:
                value = d.values[0]  # type: ignore[index]
                bad = ~_equal(columns[d.name], value)
                if bad.any():
                    raise ConfigError(
                        f"{d.name} = {columns[d.name][bad][0]!r}, but the space holds it at "
                        f"{value!r}"
                    )
        out = np.empty((n or 0, self.dim))
        for i, d in enumerate(self.free):
            out[:, i] = _encode(d, columns[d.name])
        return out

    def decode(self, u: NDArray[np.floating[Any]]) -> Points:
        """Points of an ``(n, d)`` array (values clipped into the space, categories and integers
        rounded)."""
        u = np.atleast_2d(np.asarray(u, dtype=np.float64))
        if u.shape[1] != self.dim:
            raise ValueError(f"expected {self.dim} columns, got {u.shape[1]}")
        cols = iter(range(self.dim))
        out: Points = {}
        for d in self.space.dimensions:
            out[d.name] = d.constant_column(len(u)) if d.constant else _decode(d, u[:, next(cols)])
        return out

    def bounds(self) -> NDArray[np.float64]:
        """``(2, d)``: lower and upper bound of each column."""
        upper = [len(d.values) - 1 if d.values is not None else 1.0 for d in self.free]
        return np.asarray([[0.0] * self.dim, upper], dtype=np.float64)

    def snap(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        """``u`` moved onto the points the space can hold (categories, integers)."""
        return self.encode(self.decode(u))

    def to_json(self) -> dict[str, Any]:
        return {
            "space": self.space.canonical().model_dump(mode="json"),
            "order": self.space.names,
            "columns": self.names,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SpaceEncoder:
        space = ParameterSpace.model_validate(data["space"]).resolve(None)
        by_name = {d.name: d for d in space.dimensions}
        order = list(data.get("order", by_name))
        if sorted(order) != sorted(by_name):
            raise ConfigError(f"stored dimensions {order} do not match the space's {list(by_name)}")
        space = dataclasses.replace(space, dimensions=[by_name[k] for k in order])
        encoder = cls(space)
        if encoder.names != list(data["columns"]):
            raise ConfigError(f"stored columns {data['columns']} do not match {encoder.names}")
        return encoder

    @property
    def _list(self) -> str:
        return ", ".join(self.space.names)


def _equal(column: NDArray[Any], value: Any) -> NDArray[np.bool_]:
    if column.dtype.kind in "fiu" and isinstance(value, int | float):
        return np.isclose(column.astype(float), float(value), rtol=1e-12, atol=0)
    return np.asarray([str(x) == str(value) for x in column])


def _encode(d: Dimension, column: NDArray[Any]) -> NDArray[np.float64]:
    if d.values is not None:
        keys = [str(v) for v in d.values]
        index = {k: i for i, k in enumerate(keys)}
        out = np.empty(len(column))
        for i, x in enumerate(column):
            key = str(x.item() if hasattr(x, "item") else x)
            if key not in index:
                raise ConfigError(f"{d.name} = {key!r} is not one of {', '.join(keys)}")
            out[i] = index[key]
        return out
    try:
        x = column.astype(np.float64)
    except ValueError:
        raise ConfigError(f"{d.name}: {column[0]!r} is not a number") from None
    span = d.high - d.low
    outside = (x < d.low - _TOL * max(abs(d.low), span, 1e-300)) | (
        x > d.high + _TOL * max(abs(d.high), span, 1e-300)
    )
    if outside.any() or not np.isfinite(x).all():
        bad = x[outside | ~np.isfinite(x)][0]
        unit = f" {d.unit}" if d.unit else ""
        raise ConfigError(
            f"{d.name} = {bad:g}{unit} is outside the space [{d.low:g}, {d.high:g}]{unit}"
        )
    if span == 0:
        return np.zeros(len(x))
    x = np.clip(x, d.low, d.high)
    if d.scale == "log":
        return (np.log(x) - np.log(d.low)) / (np.log(d.high) - np.log(d.low))
    return (x - d.low) / span


def _decode(d: Dimension, u: NDArray[np.float64]) -> NDArray[Any]:
    if d.values is not None:
        index = np.clip(np.rint(u), 0, len(d.values) - 1).astype(int)
        return np.asarray(d.values)[index]
    u = np.clip(u, 0.0, 1.0)
    if d.scale == "log":
        x = np.exp(np.log(d.low) + u * (np.log(d.high) - np.log(d.low)))
    else:
        x = d.low + u * (d.high - d.low)
    if d.integer:
        return np.clip(np.rint(x), d.low, d.high).astype(np.int64)
    return np.clip(x, d.low, d.high)
