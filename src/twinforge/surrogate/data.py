"""What a surrogate learns from: scalar outputs at points of a space, with their noise.

A campaign's result file holds one row per simulated point. Rows at the same point (replicates:
an adaptive job simulates one point several times, a grid revisits it) are one observation:
their mean, with the variance of that mean (sample variance / n) as its noise, so a
heteroscedastic surrogate weighs a point by how well it was measured. Rows without replicates
give no noise estimate; the surrogate then learns one noise level per output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinforge.errors import ConfigError
from twinforge.space import ParameterSpace, Points, ResolvedSpace

__all__ = ["Observations", "group_replicates", "read_observations", "shrink_variances"]


@dataclass
class Observations:
    """``n`` observed points of ``space``: ``points`` (name -> ``(n,)``), ``values`` and
    ``variances`` (output -> ``(n,)``; variances None where unknown) and ``replicates`` (rows
    averaged per point, ``(n,)``). ``units``: output -> unit; ``sources``: the files and jobs
    they came from (recorded with the surrogate). Variances from replicates are shrunk towards
    their pooled value before fitting (:func:`shrink_variances`); ``exact_variances`` ones are
    not."""

    space: ResolvedSpace
    points: Points
    values: dict[str, NDArray[np.float64]]
    variances: dict[str, NDArray[np.float64]] | None
    replicates: NDArray[np.int64]
    units: dict[str, str | None] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    exact_variances: bool = False
    """True: the variances come with the data (a point's counting statistics), not from a few
    replicates, and are used as they are."""

    def __len__(self) -> int:
        return len(self.replicates)


def group_replicates(
    points: Points, outputs: Mapping[str, NDArray[Any]]
) -> tuple[Points, dict[str, NDArray[np.float64]], dict[str, NDArray[np.float64]] | None,
           NDArray[np.int64]]:  # fmt: skip
    """Rows at identical points joined: (points, means, variances of the means or None, counts).

    Variances are given only when every point has at least two finite replicates.
    """
    names = list(points)
    n = len(next(iter(points.values()))) if points else 0
    keys = np.empty(n, dtype=object)
    keys[:] = list(zip(*(np.asarray(points[k]).tolist() for k in names), strict=True))
    _, first, inverse, counts = np.unique(
        np.asarray([repr(k) for k in keys]), return_index=True, return_inverse=True,
        return_counts=True,
    )  # fmt: skip
    order = np.argsort(first)  # keep the points in the order they were first simulated
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    group = rank[inverse]
    grouped_points = {k: np.asarray(points[k])[first[order]] for k in names}
    counts = counts[order].astype(np.int64)
    means: dict[str, NDArray[np.float64]] = {}
    variances: dict[str, NDArray[np.float64]] = {}
    for name, column in outputs.items():
        y = np.asarray(column, dtype=np.float64)
        total = np.bincount(group, weights=y, minlength=len(counts))
        mean = total / counts
        dev = np.bincount(group, weights=(y - mean[group]) ** 2, minlength=len(counts))
        means[name] = mean
        with np.errstate(divide="ignore", invalid="ignore"):
            variances[name] = dev / (counts - 1) / counts
    known = (
        len(counts) > 0
        and int(counts.min()) >= 2
        and all(np.isfinite(v).all() for v in variances.values())
    )
    return grouped_points, means, (variances if known else None), counts


def shrink_variances(
    variances: NDArray[np.float64], replicates: NDArray[np.int64], prior_dof: float = 4.0
) -> NDArray[np.float64]:
    """Each point's variance of the mean pulled towards the pooled one (empirical Bayes).

    A variance from ``k`` replicates has ``k - 1`` degrees of freedom: from 4 replicates it
    is often several times too small, and a GP that trusts it overfits that point (measured:
    68 % intervals covering 36 % of a test grid). The estimate used is
    ``((k - 1) s_i^2 + prior_dof * s_pool^2) / (k - 1 + prior_dof)`` on the single-run variances
    ``s^2 = k * var``, with ``s_pool^2`` their mean, then divided by ``k`` again.
    """
    k = np.asarray(replicates, dtype=np.float64)
    single = np.asarray(variances, dtype=np.float64) * k
    pooled = float(np.sum(single * (k - 1)) / max(float(np.sum(k - 1)), 1.0))
    return ((k - 1) * single + prior_dof * pooled) / (k - 1 + prior_dof) / k


def read_observations(
    path: str | Path,
    outputs: Sequence[str] | None = None,
    *,
    space: ParameterSpace | ResolvedSpace | None = None,
) -> Observations:
    """Observations of a result table (a merged campaign file or one job's file).

    ``outputs``: the scalar outputs to learn (None: every scalar float output). ``space``: the
    space the surrogate covers; None takes the campaign's own, stored in the merged file.

    Raises:
        ConfigError: an unknown or non-scalar output (the file's are listed), no space known,
            a point outside the space, a non-finite value, an empty file.
    """
    path = Path(path)
    provenance, inputs, table, known, units = _read(path)
    scalar = [k for k, v in table.items() if v.ndim == 1 and v.dtype.kind in "fiu"]
    wanted = list(outputs) if outputs else [k for k in scalar if table[k].dtype.kind == "f"]
    for name in wanted:
        if name not in scalar:
            raise ConfigError(
                f"{path}: no scalar output {name!r}; it has {', '.join(scalar) or 'none'}"
            )
    if not wanted:
        raise ConfigError(f"{path}: no scalar output to learn")
    resolved = _space(space, provenance, path)
    points = {d.name: inputs[d.name] if d.name in inputs else d.constant_column(len(
        next(iter(inputs.values())))) for d in resolved.dimensions}  # fmt: skip
    values = {name: table[name].astype(np.float64) for name in wanted}
    for name, y in values.items():
        bad = ~np.isfinite(y)
        if bad.any():
            raise ConfigError(
                f"{path}: output {name!r} is not finite at {int(bad.sum())} point(s) "
                f"(first: row {int(np.flatnonzero(bad)[0])}); drop them before fitting"
            )
    if known is not None:  # one row per point already, with its statistical variance
        grouped, means = points, values
        variances: dict[str, NDArray[np.float64]] | None = {k: known[k] for k in wanted}
        counts = np.ones(len(next(iter(values.values()))), dtype=np.int64)
    else:
        grouped, means, variances, counts = group_replicates(points, values)
    if not len(counts):
        raise ConfigError(f"{path}: no point to learn from")
    return Observations(
        space=resolved,
        points=grouped,
        values=means,
        variances=variances,
        replicates=counts,
        exact_variances=known is not None,
        units={name: units.get(name) for name in wanted},
        sources={
            "file": str(path),
            "campaign": provenance.get("campaign"),
            "campaign_id": provenance.get("campaign_id"),
            "simulator": provenance.get("simulator"),
            "simulator_setup": provenance.get("simulator_setup"),
            "jobs": [s["job"] for s in provenance.get("shards", [])]
            or sorted({*provenance.get("seeds", {})}),
        },
    )


def _read(path: Path) -> tuple[dict[str, Any], dict[str, NDArray[Any]], dict[str, NDArray[Any]],
                               dict[str, NDArray[Any]] | None, dict[str, str]]:  # fmt: skip
    """(provenance, inputs, observables, their variances or None, units) of a result table or,
    through the calorimeter format, of a shower file (response and resolution per point)."""
    from twinforge.errors import ShowerFileError
    from twinforge.results import ResultFile, ResultFileError

    try:
        with ResultFile(path) as f:
            return f.provenance, f.inputs(), f.outputs(), None, f.units()
    except (ResultFileError, OSError, KeyError) as table_error:
        from twinforge.showers import ShowerFile
        from twinforge.simulation.calorimeter import ShowerFormat

        try:
            with ShowerFile(path) as sf:
                provenance = sf.provenance
            inputs, values, variances = ShowerFormat.observe(path)
        except (ShowerFileError, OSError, KeyError):
            raise ConfigError(f"{path}: neither a result table nor a shower file "
                              f"({table_error})") from None  # fmt: skip
        return provenance, inputs, values, variances, {}


def _space(
    space: ParameterSpace | ResolvedSpace | None, provenance: Mapping[str, Any], path: Path
) -> ResolvedSpace:
    if isinstance(space, ResolvedSpace):
        return space
    if space is None:
        config = provenance.get("campaign_config")
        if not config:
            raise ConfigError(
                f"{path}: not a merged campaign file, so its space is unknown; give the space "
                "(--space) or the campaign config"
            )
        from twinforge.campaign.config import CampaignConfig

        return CampaignConfig.model_validate(config).resolved_space
    return space.resolve(None)
