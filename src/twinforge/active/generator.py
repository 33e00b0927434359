"""twinforge's adaptive sampler as a gest-api generator (the standard Xopt also follows).

:class:`SurrogateGenerator` proposes points with ``suggest(n)`` and learns from
``ingest(results)``; each suggested point carries an ``"_id"`` (``returns_id``), and points
suggested but not yet ingested are *pending*: the acquisition conditions on them, so
asynchronous workers asking one at a time never get the same point twice. The first
``initial_points`` come from a scrambled Sobol sequence; after that a surrogate (``gp`` by
default) is refitted on every call that has new data, and the acquisition ranks
``candidates`` Sobol points of the space (its constraints applied).

A result whose objective is missing or not finite (a failed simulation) is recorded in
:attr:`SurrogateGenerator.failed`, and its point is no longer pending; the generator goes on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from gest_api.generator import Generator
from gest_api.vocs import (
    ExploreObjective,
    GreaterThanConstraint,
    LessThanConstraint,
    MaximizeObjective,
    MinimizeObjective,
)

from twinforge._json import plain
from twinforge.active.acquisition import integrated_variance, select
from twinforge.active.config import ActiveConfig
from twinforge.active.vocs import vocs_to_space
from twinforge.errors import ConfigError
from twinforge.space import Points, ResolvedSpace, SamplerConfig, sample_points
from twinforge.surrogate import Observations, Surrogate, create, group_replicates

__all__ = ["ActiveConfig", "SurrogateGenerator"]

log = logging.getLogger(__name__)

_ACQUISITION_OF = {"EXPLORE": "nipv", "MINIMIZE": "ei", "MAXIMIZE": "ei"}


class SurrogateGenerator(Generator):
    """Active learning and Bayesian optimisation behind gest-api's suggest / ingest."""

    returns_id = True

    def __init__(
        self,
        vocs: Any,
        config: ActiveConfig | Mapping[str, Any] | None = None,
        *,
        space: ResolvedSpace | None = None,
    ) -> None:
        self.config = (
            config if isinstance(config, ActiveConfig) else ActiveConfig(**dict(config or {}))
        )
        self.vocs = vocs
        self._validate_vocs(vocs)
        self.space = space if space is not None else vocs_to_space(vocs)
        objectives = {k: _objective_kind(v) for k, v in vocs.objectives.items()}
        self.objectives = objectives
        kinds = set(objectives.values())
        self.acquisition = self.config.acquisition or _ACQUISITION_OF[next(iter(kinds))]
        if self.acquisition in ("nipv", "variance") and kinds != {"EXPLORE"}:
            raise ConfigError(f"acquisition {self.acquisition} learns outputs: give EXPLORE "
                              "objectives")  # fmt: skip
        if self.acquisition in ("ei", "ucb") and (len(objectives) != 1 or "EXPLORE" in kinds):
            raise ConfigError(f"acquisition {self.acquisition} takes one MINIMIZE or MAXIMIZE "
                              "objective")  # fmt: skip
        self.constraints = {
            k: ("LESS_THAN" if isinstance(c, LessThanConstraint) else "GREATER_THAN",
                float(c.value))
            for k, c in vocs.constraints.items()
        }  # fmt: skip
        if self.constraints and self.acquisition != "ei":
            raise ConfigError(f"acquisition {self.acquisition} takes no constraints; use ei")
        self.outputs = [*objectives, *self.constraints]
        self.rows: list[dict[str, Any]] = []
        self.pending: dict[int, dict[str, Any]] = {}
        self.failed: list[dict[str, Any]] = []
        self.model: Surrogate | None = None
        self._fitted_on = -1
        self._full_fit_size = 0
        self.proposed_by: dict[int, str] = {}
        """How each suggested point was chosen: ``sobol`` (initial design), the acquisition's
        name, or ``random`` (too few finite results to fit yet)."""
        self._label = self.acquisition
        self._next_id = 0
        self._suggested = 0

    def _validate_vocs(self, vocs: Any) -> None:
        if not vocs.objectives:
            raise ConfigError("the generator needs at least one objective (an output to "
                              "EXPLORE, MINIMIZE or MAXIMIZE)")  # fmt: skip
        kinds = {_objective_kind(v) for v in vocs.objectives.values()}
        if len(kinds) > 1:
            raise ConfigError("objectives mix EXPLORE with MINIMIZE/MAXIMIZE: choose one")
        for name, c in vocs.constraints.items():
            if not isinstance(c, LessThanConstraint | GreaterThanConstraint):
                raise ConfigError(f"constraint {name!r}: only LESS_THAN and GREATER_THAN")

    # ------------------------------------------------------------------ gest-api

    def suggest(self, num_points: int | None = None) -> list[dict[str, Any]]:
        """``num_points`` points (default 1) of every variable and constant, each with an
        ``"_id"``."""
        n = 1 if num_points is None else int(num_points)
        if n <= 0:
            return []
        known = len(self._observed_points()) + len(self.pending)
        n_sobol = max(0, min(n, self.config.initial_points - known))
        points: list[dict[str, Any]] = []
        if n_sobol:
            draws = sample_points(self.space, SamplerConfig(kind="sobol", seed=self.config.seed),
                                  self._suggested + n_sobol)  # fmt: skip
            points += _rows({k: v[self._suggested :] for k, v in draws.items()})
        labels = ["sobol"] * len(points)
        if n - n_sobol:
            acquired = self._acquire(n - n_sobol)
            points += acquired
            labels += [self._label] * len(acquired)
        out = []
        for point, label in zip(points, labels, strict=True):
            point = {**point, "_id": self._next_id}
            self.pending[self._next_id] = point
            self.proposed_by[self._next_id] = label
            self._next_id += 1
            out.append(point)
        self._suggested += len(points)
        return out

    def ingest(self, results: list[dict[str, Any]]) -> None:
        """Results of evaluations: every variable, constant and output; ``"_id"`` for points
        this generator suggested (several results may share one: replicates).

        Raises:
            ValueError: an ``"_id"`` this generator never suggested (gest-api's contract).
        """
        ids = {r["_id"] for r in results if r.get("_id") is not None}
        unknown = sorted(i for i in ids if i not in self.pending)
        if unknown:
            raise ValueError(f"ingest: _id {unknown[0]} was not suggested by this generator "
                             "or was ingested before")  # fmt: skip
        for i in ids:
            self.pending.pop(i)
        for r in results:
            values = [r.get(k) for k in self.outputs]
            if any(v is None or not math.isfinite(float(v)) for v in values):
                self.failed.append(dict(r))
                continue
            self.rows.append(dict(r))

    def advance(self, n: int) -> None:
        """``n`` points were proposed before (a resumed campaign's journal): the Sobol start
        goes on after them instead of proposing them again."""
        self._suggested = max(self._suggested, n)

    def mark_pending(self, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Register points already running that this generator did not suggest (a resumed
        campaign's interrupted jobs); returns them with their new ``"_id"``."""
        out = []
        for point in points:
            point = {**point, "_id": self._next_id}
            self.pending[self._next_id] = point
            self.proposed_by[self._next_id] = "resumed"
            self._next_id += 1
            out.append(point)
        return out

    # ------------------------------------------------------------------ surrogate

    def fit(self) -> Surrogate | None:
        """The surrogate on every finite result so far (refitted only when there are new
        ones); None before enough points."""
        if len(self.rows) == self._fitted_on and self.model is not None:
            return self.model
        if not self.rows:
            return None
        names = self.space.names
        points = {k: np.asarray([r[k] for r in self.rows]) for k in names}
        values = {k: np.asarray([float(r[k]) for r in self.rows]) for k in self.outputs}
        exact = all(f"{k}_var" in r for r in self.rows for k in self.outputs)
        if exact:  # each result knows its own noise (e.g. a calorimeter point's statistics)
            variances = {k: np.asarray([float(r[f"{k}_var"]) for r in self.rows])
                         for k in self.outputs}  # fmt: skip
            ones = np.ones(len(self.rows), dtype=np.int64)
            data = Observations(self.space, points, values, variances, ones, exact_variances=True)
        else:
            grouped, means, variances, counts = group_replicates(points, values)
            data = Observations(self.space, grouped, means, variances, counts)
        if len(data) < max(3, len([d for d in self.space.dimensions if not d.constant]) + 1):
            return None
        # warm start from the last fit; a full fit (several starts) each time the data have
        # grown by a quarter, so a poor optimum is not carried along
        full = self.model is None or len(data) >= 1.25 * self._full_fit_size
        model = create(self.config.surrogate, self.config.surrogate_options)
        self.model = model.fit(data, warm_start=None if full else self.model)
        if full:
            self._full_fit_size = len(data)
        self._fitted_on = len(self.rows)
        return self.model

    def predicted_error(self) -> dict[str, float] | None:
        """Per objective, the surrogate's RMS standard deviation over the space (what its RMSE
        is expected to be); None before it can be fitted."""
        model = self.fit()
        if model is None or model.encoder is None:
            return None
        mc = model.encoder.encode(sample_points(self.space, SamplerConfig(
            kind="sobol", seed=self.config.seed + 7919), self.config.mc_points))  # fmt: skip
        return integrated_variance(model, mc, list(self.objectives))

    def _observed_points(self) -> set[tuple[str, ...]]:
        return {tuple(repr(r[k]) for k in self.space.names) for r in self.rows}

    def _acquire(self, n: int) -> list[dict[str, Any]]:
        model = self.fit()
        self._label = self.acquisition
        if model is None or model.encoder is None:
            self._label = "random"
            draws = sample_points(self.space, SamplerConfig(kind="random",
                                  seed=self.config.seed + self._suggested + 1), n)  # fmt: skip
            return _rows(draws)
        encoder = model.encoder
        cand = encoder.encode(
            sample_points(
                self.space,
                SamplerConfig(kind="sobol", seed=self.config.seed + 1 + self._suggested),
                self.config.candidates,
            )
        )
        pending = (encoder.encode({k: np.asarray([p[k] for p in self.pending.values()])
                                   for k in self.space.names})
                   if self.pending else None)  # fmt: skip
        mc = None
        if self.acquisition == "nipv":
            mc = encoder.encode(
                sample_points(
                    self.space,
                    SamplerConfig(kind="sobol", seed=self.config.seed + 7919),
                    self.config.mc_points,
                )
            )
        objective = None
        if self.acquisition in ("ei", "ucb"):
            name, kind = next(iter(self.objectives.items()))
            objective = (name, kind.lower())
        chosen = select(
            model, cand, n, acquisition=self.acquisition,  # type: ignore[arg-type]
            outputs=list(self.objectives), pending=pending, mc_points=mc,
            objective=objective, constraints=self.constraints,  # type: ignore[arg-type]
            beta=self.config.beta,
        )  # fmt: skip
        return _rows(encoder.decode(cand[chosen]))


def _objective_kind(objective: Any) -> str:
    """EXPLORE, MINIMIZE or MAXIMIZE of a gest-api objective."""
    for cls, kind in ((ExploreObjective, "EXPLORE"), (MinimizeObjective, "MINIMIZE"),
                      (MaximizeObjective, "MAXIMIZE")):  # fmt: skip
        if isinstance(objective, cls):
            return kind
    raise ConfigError(f"objective {objective!r}: only EXPLORE, MINIMIZE and MAXIMIZE")


def _rows(points: Points) -> list[dict[str, Any]]:
    names = list(points)
    n = len(next(iter(points.values()))) if points else 0
    return [{k: plain(points[k][i]) for k in names} for i in range(n)]
