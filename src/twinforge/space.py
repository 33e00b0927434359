"""Parameter spaces and samplers: which points of a simulator's inputs a campaign runs.

A :class:`ParameterSpace` is a set of named variables and optional constraints, written in YAML::

    space:
      energy: {min: 1 GeV, max: 64 GeV, scale: log}   # a continuous range, log-uniform
      particle: [e-, gamma]                           # categorical values
      n_turns: {min: 1, max: 100, type: integer}      # integers, both ends included
      theta: 0                                         # a constant
      constraints: ["k1_f * k1_d < 0"]                 # points that break one are not drawn

A simulator declares its parameters (:class:`Parameter`: name, unit, type, hard bounds,
default); :meth:`ParameterSpace.resolve` checks the space against them (unknown names and
values outside the bounds are errors naming the variable) and fills in the defaults, giving a
:class:`ResolvedSpace` whose dimensions follow the simulator's parameter order. A sampler then
turns it into ``n`` points, deterministically in its seed:

- ``grid``: the Cartesian product of the values (ranges cut into ``grid_points`` values,
  log-spaced on a log scale), points shared equally, point by point;
- ``random``: independent draws;
- ``sobol`` / ``lhs``: quasi-random points (``scipy.stats.qmc``) mapped through each dimension.

Every dimension that is not a constant takes one coordinate of the unit cube, in order; a
categorical dimension with one value still takes one, so that the calorimeter spaces of twinforge
0.1 (particles, energy, theta, phi) draw exactly the points they drew then. Points are a mapping
from name to a 1-D array (float64, int64, or the values' own type for categories).
"""

from __future__ import annotations

import ast
import itertools
import math
import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, PositiveInt, model_validator
from scipy.stats import qmc

from twinforge.config import StrictModel
from twinforge.errors import ConfigError
from twinforge.units import parse_quantity

__all__ = [
    "PARTICLES",
    "Dimension",
    "Parameter",
    "ParameterSpace",
    "Points",
    "ResolvedSpace",
    "SamplerConfig",
    "Variable",
    "particle_pdg",
    "sample_points",
]

Points = dict[str, NDArray[Any]]
"""Points of a space: parameter name -> 1-D array, one entry per point."""

PARTICLES: dict[str, int] = {
    "e-": 11, "e+": -11, "gamma": 22, "mu-": 13, "mu+": -13,
    "pi+": 211, "pi-": -211, "proton": 2212, "neutron": 2112,
}  # fmt: skip


def particle_pdg(particle: str | int) -> int:
    """PDG id of a particle name (``"e-"``, ``"gamma"``) or of an integer id."""
    if isinstance(particle, int) and not isinstance(particle, bool):
        return particle
    text = str(particle).strip()
    if text in PARTICLES:
        return PARTICLES[text]
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"unknown particle {particle!r}; use a PDG id or one of {', '.join(PARTICLES)}"
        ) from None


Scalar = float | int | str


class Variable(StrictModel):
    """One variable: a constant ``value``, categorical ``values``, or a ``min``/``max`` range
    (``scale`` linear or log; ``type: integer`` for integers, both ends included).

    Numbers may be text with a unit (``"10 GeV"``), converted to the parameter's unit. A bare
    scalar in YAML is a constant, a bare list categorical values.
    """

    value: Scalar | None = None
    values: list[Scalar] | None = None
    min: Scalar | None = None
    max: Scalar | None = None
    scale: Literal["linear", "log"] | None = Field(
        None, description="range scale; default: the parameter's (linear for most)"
    )
    type: Literal["float", "integer"] | None = None
    unit: str | None = Field(None, description="unit of plain numbers (default: the parameter's)")
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"values": data}
        if not isinstance(data, dict):
            return {"value": data}
        data = {k: v for k, v in data.items() if v is not None}  # older dumps spell out None
        distribution = data.pop("distribution", None)  # twinforge 0.1's spelling of the scale
        if distribution is not None:
            scales = {"log-uniform": "log", "uniform": "linear"}
            if distribution not in scales:
                raise ValueError(f"distribution must be log-uniform or uniform: {distribution!r}")
            data.setdefault("scale", scales[distribution])
        return data

    @model_validator(mode="after")
    def _check(self) -> Variable:
        forms = [self.value is not None, self.values is not None, self.min is not None]
        if self.max is not None and self.min is None:
            raise ValueError("give both 'min' and 'max'")
        if self.min is not None and self.max is None:
            raise ValueError("give both 'min' and 'max'")
        if sum(forms) != 1:
            raise ValueError("give one of 'value', 'values' or 'min'/'max', not both")
        if self.values is not None and not self.values:
            raise ValueError("'values' is empty")
        if self.min is None and (self.scale is not None or self.type is not None):
            raise ValueError("'scale' and 'type' apply to a 'min'/'max' range")
        return self


class ParameterSpace(StrictModel):
    """Named variables and constraints (expressions over them that every point satisfies)."""

    variables: dict[str, Variable] = Field(default_factory=dict)
    constraints: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        """Variables may sit directly under ``space:`` beside ``constraints``; twinforge 0.1's
        ``particles: [...]`` is the variable ``particle``."""
        if not isinstance(data, dict) or "variables" in data:
            return data
        data = dict(data)
        constraints = data.pop("constraints", [])
        if "particles" in data:
            particles = data.pop("particles")
            if particles == []:
                raise ValueError("at least one particle is needed")
            data["particle"] = {"values": particles} if isinstance(particles, list) else particles
        return {"variables": data, "constraints": constraints}

    def resolve(self, parameters: Sequence[Parameter] | None) -> ResolvedSpace:
        """Check the space against a simulator's ``parameters`` (None: a simulator that takes
        whatever the space defines) and fill in their defaults.

        Raises:
            ConfigError: an unknown variable (the parameters are listed), a missing required
                one, a value of the wrong type or outside the parameter's bounds, a constraint
                that cannot be read or names an unknown variable.
        """
        if parameters is None:
            parameters = [
                Parameter(name, unit=v.unit, type="category" if _textual(v) else "float")
                for name, v in self.variables.items()
            ]
        known = {p.name for p in parameters}
        unknown = [name for name in self.variables if name not in known]
        if unknown:
            raise ConfigError(
                f"space: unknown parameter {unknown[0]!r}; the simulator's parameters are "
                + ", ".join(p.describe() for p in parameters)
            )
        dims = []
        for p in parameters:
            variable = self.variables.get(p.name)
            if variable is None:
                if p.default is None:
                    raise ConfigError(f"space: parameter {p.name!r} needs a value ({p.describe()})")
                variable = Variable.model_validate(p.default)
            dims.append(p.dimension(variable))
        names = [d.name for d in dims]
        checks = [Constraint(text, names) for text in self.constraints]
        return ResolvedSpace(dims, checks)


@dataclass(frozen=True)
class Parameter:
    """An input a simulator declares: name, unit, type, hard bounds, default and meaning.

    ``default`` is a :class:`Variable` in YAML form (``0.0``, ``[e-]``, ``{min: .., max: ..}``);
    None makes the parameter required. ``choices`` limits categorical values; ``convert`` maps a
    categorical value to what the simulator receives (a particle name to its PDG id).
    """

    name: str
    unit: str | None = None
    type: Literal["float", "integer", "category"] = "float"
    lower: float | None = None
    upper: float | None = None
    lower_open: bool = False  # True: the bound itself is not allowed (energies > 0)
    default: Any = None
    scale: Literal["linear", "log"] = "linear"
    description: str = ""
    choices: tuple[Scalar, ...] | None = None
    convert: Callable[[Any], Any] | None = field(default=None, compare=False)

    def describe(self) -> str:
        """``name [unit]`` with its bounds, for messages and ``twinforge simulators``."""
        text = self.name + (f" [{self.unit}]" if self.unit else "")
        if self.lower is not None or self.upper is not None:
            lo = "-inf" if self.lower is None else f"{self.lower:g}"
            hi = "inf" if self.upper is None else f"{self.upper:g}"
            text += f" in {'(' if self.lower_open else '['}{lo}, {hi}]"
        if self.choices:
            text += f" in {{{', '.join(map(str, self.choices))}}}"
        return text

    def _number(self, value: object, unit: str | None) -> float:
        where = f"space: {self.name}"
        if unit is not None and self.unit is not None and unit != self.unit:
            number = parse_quantity(f"{value} {unit}", self.unit, where=where)
        else:
            number = parse_quantity(value, self.unit, where=where)
        if not math.isfinite(number):
            raise ConfigError(f"{where}: {value!r} is not finite")
        below = self.lower is not None and (
            number <= self.lower if self.lower_open else number < self.lower
        )
        if below or (self.upper is not None and number > self.upper):
            raise ConfigError(f"{where}: {value!r} is outside the bounds of {self.describe()}")
        if self.type == "integer" and number != int(number):
            raise ConfigError(f"{where}: {value!r} is not an integer")
        return number

    def _category(self, value: Scalar) -> Any:
        where = f"space: {self.name}"
        if self.choices is not None and value not in self.choices:
            choices = ", ".join(map(str, self.choices))
            raise ConfigError(f"{where}: {value!r} is not one of {choices}")
        if self.convert is None:
            return value
        try:
            return self.convert(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def dimension(self, v: Variable) -> Dimension:
        """The variable ``v`` checked against this parameter, in its unit."""
        if v.min is not None:
            if self.type == "category":
                raise ConfigError(f"space: {self.name} is categorical: give 'values', not a range")
            lo, hi = self._number(v.min, v.unit), self._number(v.max, v.unit)
            if hi < lo:
                raise ConfigError(f"space: {self.name}: max ({v.max}) < min ({v.min})")
            scale = v.scale or self.scale
            if scale == "log" and lo <= 0:
                raise ConfigError(f"space: {self.name}: a log scale needs min > 0, got {v.min}")
            integer = (v.type or ("integer" if self.type == "integer" else "float")) == "integer"
            if integer and (lo != int(lo) or hi != int(hi)):
                raise ConfigError(f"space: {self.name}: integer bounds must be whole numbers")
            return Dimension(self.name, self.unit, low=lo, high=hi, scale=scale, integer=integer)
        raw = [v.value] if v.value is not None else list(v.values or [])
        if self.type == "category":
            values: list[Any] = [self._category(x) for x in raw]
        else:
            values = [self._number(x, v.unit) for x in raw]
            if self.type == "integer":
                values = [int(x) for x in values]
        return Dimension(self.name, self.unit, values=values, constant=v.value is not None)


def _textual(v: Variable) -> bool:
    """Whether a variable's values are words (a category such as a particle's name)."""
    raw = [v.value] if v.value is not None else list(v.values or [])
    return any(isinstance(x, str) and not _is_number(x) for x in raw)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Dimension:
    """One resolved dimension: ``values`` (categorical or constant) or a ``low``-``high`` range."""

    name: str
    unit: str | None
    values: list[Any] | None = None
    constant: bool = False
    low: float = 0.0
    high: float = 0.0
    scale: Literal["linear", "log"] = "linear"
    integer: bool = False

    def grid(self, points: int) -> NDArray[Any]:
        """The values, or ``points`` values spanning the range (log-spaced on a log scale)."""
        if self.values is not None:
            return np.asarray(self.values)
        points = points if self.high > self.low else 1
        if self.integer:
            span = np.geomspace if self.scale == "log" else np.linspace
            return np.unique(np.round(span(self.low, self.high, points)).astype(np.int64))
        if self.scale == "log":
            return np.geomspace(self.low, self.high, points)
        return np.linspace(self.low, self.high, points)

    def map_unit(self, u: NDArray[np.float64]) -> NDArray[Any]:
        """Map uniform numbers in [0, 1) onto the values or the range."""
        if self.values is not None:
            vals = np.asarray(self.values)
            return vals[np.minimum((u * len(vals)).astype(int), len(vals) - 1)]
        if self.integer:
            if self.scale == "log":
                lo, hi = np.log(self.low), np.log(self.high + 1)
                x = np.floor(np.exp(lo + u * (hi - lo)))
            else:
                x = np.floor(self.low + u * (self.high - self.low + 1))
            return np.clip(x, self.low, self.high).astype(np.int64)
        if self.scale == "log":
            return np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        return self.low + u * (self.high - self.low)

    def canonical(self) -> Variable:
        """This dimension as a variable in the parameter's unit: how configs are stored, so
        that ``"1GeV"``, ``"1 GeV"`` and ``1000.0`` are the same campaign."""
        if self.values is not None:
            plain = [v.item() if hasattr(v, "item") else v for v in self.values]
            if self.constant:
                return Variable(value=plain[0])
            return Variable(values=plain)
        return Variable(
            min=self.low, max=self.high, scale=self.scale,
            type="integer" if self.integer else "float",
        )  # fmt: skip

    def constant_column(self, n: int) -> NDArray[Any]:
        assert self.values is not None
        return np.repeat(np.asarray(self.values[:1]), n)

    def summary(self, column: NDArray[Any]) -> Any:
        """A short JSON description of this dimension's values in ``column`` (a job's)."""
        if column.dtype.kind in "fiu" and (self.values is None or len(set(self.values)) > 8):
            return [float(column.min()), float(column.max())]
        return sorted({x.item() if hasattr(x, "item") else x for x in column}, key=str)


_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow, ast.Mod: operator.mod,
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: np.logical_not,
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}  # fmt: skip
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": np.abs, "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log10": np.log10,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "min": np.minimum, "max": np.maximum,
}  # fmt: skip


class Constraint:
    """A constraint such as ``"k1_f + k1_d <= 0.1"``: arithmetic, comparisons, ``and``/``or``/
    ``not`` and the functions abs, sqrt, exp, log, log10, sin, cos, tan, min, max, over the
    space's variables (in their units), evaluated on whole arrays of points."""

    def __init__(self, text: str, names: Sequence[str]) -> None:
        self.text = text
        try:
            self._tree = ast.parse(text, mode="eval").body
        except SyntaxError as exc:
            raise ConfigError(f"space: constraint {text!r} cannot be read: {exc.msg}") from None
        for node in ast.walk(self._tree):
            if isinstance(node, ast.Name) and node.id not in names and node.id not in _FUNCTIONS:
                raise ConfigError(
                    f"space: constraint {text!r} names {node.id!r}, which is not a variable "
                    f"({', '.join(names)})"
                )
            allowed = (
                ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call, ast.Name,
                ast.Constant, ast.Load, ast.And, ast.Or, *_OPS,
            )  # fmt: skip
            if not isinstance(node, allowed) or (
                isinstance(node, ast.Constant) and not isinstance(node.value, int | float)
            ):
                raise ConfigError(
                    f"space: constraint {text!r}: {type(node).__name__} is not allowed "
                    "(arithmetic, comparisons, and/or/not, abs/sqrt/exp/log/min/max/...)"
                )

    def __call__(self, points: Mapping[str, NDArray[Any]]) -> NDArray[np.bool_]:
        n = len(next(iter(points.values())))
        with np.errstate(all="ignore"):
            result = np.broadcast_to(np.asarray(self._eval(self._tree, points)), (n,))
        if result.dtype != np.bool_:
            raise ConfigError(f"space: constraint {self.text!r} is not a comparison")
        return result

    def _eval(self, node: ast.AST, env: Mapping[str, NDArray[Any]]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in _FUNCTIONS:
                raise ConfigError(f"space: constraint {self.text!r}: {node.id} is a function")
            return env[node.id]
        if isinstance(node, ast.BinOp):
            return _OPS[type(node.op)](self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.UnaryOp):
            return _OPS[type(node.op)](self._eval(node.operand, env))
        if isinstance(node, ast.BoolOp):
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            values = [self._eval(v, env) for v in node.values]
            out = values[0]
            for v in values[1:]:
                out = combine(out, v)
            return out
        if isinstance(node, ast.Compare):
            left, out = self._eval(node.left, env), True
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self._eval(right_node, env)
                out = np.logical_and(out, _OPS[type(op)](left, right))
                left = right
            return out
        assert isinstance(node, ast.Call)
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
            raise ConfigError(f"space: constraint {self.text!r}: unknown function call")
        return _FUNCTIONS[node.func.id](*(self._eval(a, env) for a in node.args))


@dataclass
class ResolvedSpace:
    """A space checked against a simulator's parameters: dimensions in parameter order."""

    dimensions: list[Dimension]
    constraints: list[Constraint] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def canonical(self) -> ParameterSpace:
        """Every dimension (defaults included) in the parameters' units: the stored form."""
        return ParameterSpace(
            variables={d.name: d.canonical() for d in self.dimensions},
            constraints=[c.text for c in self.constraints],
        )

    def accept(self, points: Points) -> NDArray[np.bool_]:
        """Which points satisfy every constraint."""
        n = len(next(iter(points.values()))) if points else 0
        ok = np.ones(n, dtype=bool)
        for check in self.constraints:
            ok &= check(points)
        return ok


class SamplerConfig(StrictModel):
    """How points are drawn from the space."""

    kind: Literal["grid", "random", "sobol", "lhs"] = "random"
    seed: int = Field(0, ge=0)
    grid_points: PositiveInt = Field(5, description="grid: points per continuous range")


_MAX_ROUNDS = 64  # draws of candidates when constraints reject points


def sample_points(space: ResolvedSpace, sampler: SamplerConfig, n: int) -> Points:
    """``n`` points of ``space`` drawn by ``sampler`` (deterministic in its seed).

    Raises:
        ConfigError: the constraints reject (almost) every point.
    """
    if n < 1:
        raise ValueError(f"need at least one point, got {n}")
    if sampler.kind == "grid":
        return _grid(space, sampler, n)
    free = [d for d in space.dimensions if not d.constant]
    draw = _unit_draws(sampler, len(free))
    u = draw(n)
    points = _map(space, free, u)
    if not space.constraints:
        return points
    kept = [_select(points, space.accept(points))]
    total = len(kept[0][space.names[0]])
    for _ in range(_MAX_ROUNDS):
        if total >= n:
            break
        more = _map(space, free, draw(max(n, 2 * (n - total))))
        kept.append(_select(more, space.accept(more)))
        total += len(kept[-1][space.names[0]])
    else:
        raise ConfigError(
            f"space: the constraints accept only {total} of the points drawn in "
            f"{_MAX_ROUNDS + 1} rounds ({', '.join(c.text for c in space.constraints)})"
        )
    return {k: np.concatenate([p[k] for p in kept])[:n] for k in space.names}


def _unit_draws(sampler: SamplerConfig, d: int) -> Callable[[int], NDArray[np.float64]]:
    """A source of uniform points in [0, 1)^d; successive calls continue one stream."""
    if d == 0:
        return lambda m: np.zeros((m, 0))
    if sampler.kind == "random":
        rng = np.random.default_rng(sampler.seed)
        return lambda m: rng.random((m, d))
    engine = (
        qmc.Sobol(d=d, scramble=True, rng=sampler.seed)
        if sampler.kind == "sobol"
        else qmc.LatinHypercube(d=d, rng=sampler.seed)
    )

    def draw(m: int) -> NDArray[np.float64]:
        with warnings.catch_warnings():  # Sobol prefers powers of 2; any n is still fine
            warnings.simplefilter("ignore", UserWarning)
            return engine.random(m)

    return draw


def _map(space: ResolvedSpace, free: list[Dimension], u: NDArray[np.float64]) -> Points:
    assert u.shape[1] == len(free)
    columns = iter(range(u.shape[1]))
    return {
        d.name: d.constant_column(len(u)) if d.constant else d.map_unit(u[:, next(columns)])
        for d in space.dimensions
    }


def _select(points: Points, mask: NDArray[np.bool_]) -> Points:
    return {k: v[mask] for k, v in points.items()}


def _grid(space: ResolvedSpace, sampler: SamplerConfig, n: int) -> Points:
    axes = [d.grid(sampler.grid_points) for d in space.dimensions]
    index = np.asarray(list(itertools.product(*(range(len(a)) for a in axes))), dtype=np.int64)
    points = {d.name: axes[i][index[:, i]] for i, d in enumerate(space.dimensions)}
    points = _select(points, space.accept(points))
    size = len(points[space.names[0]])
    if size == 0:
        raise ConfigError("space: the constraints reject every grid point")
    per_point = math.ceil(n / size)
    return {k: np.repeat(v, per_point)[:n] for k, v in points.items()}
