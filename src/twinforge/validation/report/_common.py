"""What the report's HTML and figures share: the raw-shower summary of a sample, the layers a
per-layer figure shows, and reading and formatting numbers of the metrics mapping."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from twinforge.detector.readout import Readout

MAX_LAYER_PANELS: Final = 9
"""At most this many layers in a per-layer figure (tables list them all)."""

NDASH: Final = "\N{EN DASH}"
MISSING: Final = "—"

PER_LAYER: Final[tuple[tuple[str, str, str], ...]] = (
    # (observable key, axis label, panel title)
    ("layer_energy", "E_layer [MeV]", "Energy in layer"),
    ("centre_x", "centre x [mm]", "Centre of energy in x"),
    ("centre_y", "centre y [mm]", "Centre of energy in y"),
    ("width_x", "\N{GREEK SMALL LETTER SIGMA}_x [mm]", "Width in x"),
    ("width_y", "\N{GREEK SMALL LETTER SIGMA}_y [mm]", "Width in y"),
    ("sparsity", "fraction of voxels > 0", "Sparsity"),
)


@dataclass(frozen=True)
class ShowerSample:
    """What the report needs from the raw showers of one sample, beyond the observables.

    Attributes:
        mean_shower: average shower, ``(V,)`` MeV per voxel.
        voxel_energies: energies of non-zero voxels, ``(M,)`` MeV (possibly a random subset).
        n_showers: number of showers averaged.
    """

    mean_shower: NDArray[np.float64]
    voxel_energies: NDArray[np.float64]
    n_showers: int

    @classmethod
    def from_showers(
        cls, showers: NDArray[np.floating], *, max_voxels: int = 2_000_000, seed: int = 0
    ) -> ShowerSample:
        """Summarise ``(N, V)`` showers (MeV); keep at most ``max_voxels`` voxel energies.

        The mean is over all showers; the voxel energies come from a random subset of showers
        (at most ``4 * max_voxels`` voxels' worth), then from a random subset of their non-zero
        voxels, so memory stays bounded for large files.
        """
        from twinforge.validation.observables import voxel_spectrum

        showers = np.asarray(showers)
        n, n_voxels = showers.shape if showers.ndim == 2 else (0, 0)
        if n == 0:
            return cls(np.zeros(n_voxels), np.zeros(0), 0)
        rng = np.random.default_rng(seed)
        mean = showers.mean(axis=0, dtype=np.float64)
        rows = min(n, max(1, math.ceil(4 * max_voxels / max(n_voxels, 1))))
        subset = showers if rows == n else showers[np.sort(rng.choice(n, rows, replace=False))]
        voxels = np.asarray(voxel_spectrum(subset), dtype=np.float64)
        if voxels.size > max_voxels:
            voxels = rng.choice(voxels, max_voxels, replace=False)
        return cls(mean_shower=mean, voxel_energies=voxels, n_showers=n)


def select_layers(readout: Readout, max_layers: int = MAX_LAYER_PANELS) -> list[int]:
    """Indices of the layers shown in per-layer figures: every k-th non-empty layer.

    ``k = ceil(n / max_layers)`` for ``n`` layers with voxels, so at most ``max_layers``.
    """
    filled = [i for i, layer in enumerate(readout.layers) if layer.n_voxels > 0]
    step = max(1, math.ceil(len(filled) / max_layers))
    return filled[::step]


def lookup(data: Any, *keys: str | int) -> Any:
    """``data[k0][k1]...`` or None when any step is missing."""
    for key in keys:
        in_mapping = isinstance(data, Mapping) and key in data
        in_list = isinstance(data, list | tuple) and isinstance(key, int) and key < len(data)
        if in_mapping or in_list:
            data = data[key]
        else:
            return None
    return data


def finite_float(value: Any) -> float | None:
    """A finite float, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (scientific when very small or large)."""
    x = finite_float(value)
    if x is None:
        return MISSING
    if abs(x) < 1e-12:  # round-off (e.g. a JSD of -1e-16)
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
        return f"{x:.{decimals}f}"
    return f"{x:.{digits - 1}e}"


def fmt_pm(value: Any, error: Any, scale: float = 1.0) -> str:
    """``value ± error`` (each times ``scale``), or just the value when there is no error."""
    x, err = finite_float(value), finite_float(error)
    if x is None:
        return MISSING
    if err is None:
        return fmt(x * scale)
    return f"{fmt(x * scale)} ± {fmt(err * scale, 2)}"


def fmt_energy(mev: Any) -> str:
    """An energy in MeV as GeV or MeV text."""
    x = finite_float(mev)
    if x is None:
        return MISSING
    return f"{fmt(x / 1000)} GeV" if x >= 1000 else f"{fmt(x)} MeV"


def separation_values(block: Mapping[str, Any] | None, key: str) -> NDArray[np.float64] | None:
    """Separation powers of ``key`` in a METRICS block (NaN where undefined), or None."""
    raw = lookup(block, "separation", key)
    if raw is None:
        return None
    values = np.asarray(
        [finite_float(v) if finite_float(v) is not None else np.nan for v in np.ravel(raw)],
        dtype=np.float64,
    )
    return values if values.size else None
