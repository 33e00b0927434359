"""How good a surrogate is on a test set: error and the calibration of its intervals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm

__all__ = ["coverage", "rmse"]


def rmse(predicted: ArrayLike, truth: ArrayLike) -> float:
    """Root-mean-square error of ``predicted`` against ``truth`` (same shape, same units)."""
    d = np.asarray(predicted, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return float(np.sqrt(np.mean(d**2)))


def coverage(
    mean: ArrayLike,
    var: ArrayLike,
    observed: ArrayLike,
    levels: Sequence[float] = (0.68, 0.95),
) -> dict[float, float]:
    """Fraction of ``observed`` inside the central Gaussian interval of each level.

    ``var``: the variance of what is compared: the latent variance against the truth, or the
    latent variance plus each test value's own noise variance against noisy test values. A
    calibrated surrogate covers about ``level`` of the points at each level.
    """
    m = np.asarray(mean, dtype=np.float64)
    s = np.sqrt(np.maximum(np.asarray(var, dtype=np.float64), 1e-300))
    z = np.abs(np.asarray(observed, dtype=np.float64) - m) / s
    return {level: float(np.mean(z <= norm.ppf(0.5 + level / 2))) for level in levels}
