"""Surrogates of a campaign's scalar outputs with uncertainty (GP by default, deep ensemble).

See :mod:`twinforge.surrogate.base` for the seam, :mod:`~twinforge.surrogate.data` for what
they learn from and :mod:`~twinforge.surrogate.encoding` for how points become numbers.
"""

from twinforge.surrogate.base import Prediction, Surrogate, available, create, load
from twinforge.surrogate.data import Observations, group_replicates, read_observations
from twinforge.surrogate.encoding import SpaceEncoder
from twinforge.surrogate.metrics import coverage, rmse

__all__ = [
    "Observations",
    "Prediction",
    "SpaceEncoder",
    "Surrogate",
    "available",
    "coverage",
    "create",
    "group_replicates",
    "load",
    "read_observations",
    "rmse",
]
