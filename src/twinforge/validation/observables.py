"""High-level shower observables, following the CaloChallenge 2022 definitions.

For N showers of a readout with L layers (MeV per voxel, voxel order of
:class:`~twinforge.detector.readout.Readout`), :func:`compute_observables` returns, per shower:

* ``e_ratio``: total deposited energy over the incident energy, E_tot / E_inc;
* ``layer_energy``: energy per layer (MeV); its mean over showers is the longitudinal profile;
* ``centre_x``/``centre_y``: energy-weighted mean of ``x = r cos(alpha)`` and
  ``y = r sin(alpha)`` over the voxel centres of each layer (mm);
* ``width_x``/``width_y``: energy-weighted standard deviation of x and y per layer (mm);
* ``sparsity``: fraction of the layer's voxels with energy above zero;
* ``centre_r``/``width_r``: energy-weighted mean and standard deviation of the voxel-centre
  radius per layer (mm), the CaloChallenge ``EC_r`` and ``width_r``;
* ``radial``: energy per radial bin, summed over layers and angles (MeV).

Conventions where the CaloChallenge code differs or is silent:

* a layer with no energy has NaN centre and width (CaloChallenge writes 0 there, through a
  ``+1e-16`` in the denominator); so do layers with fewer than two angular bins (their x/y
  centre is not defined by the binning; CaloChallenge computes centres only for
  "layers binned in alpha") and layers without voxels (dataset 1 has such layers);
* ``sparsity`` is the *non-zero* fraction; CaloChallenge's ``HighLevelFeatures`` reports
  ``1 -`` this value. Separation power is unchanged by that mirror image (same bins, mirrored);
* ``radial`` bins are the readout's r bins when all layers share them. For per-layer binnings
  (dataset 1) they are the union of all layers' r edges, and each voxel's energy is shared among
  the union bins it covers in proportion to their area (``r_hi^2 - r_lo^2``), i.e. assuming a
  uniform energy density over the voxel.

Everything is vectorised: one matrix product per chunk of showers, no Python loop over showers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twinforge.detector.readout import Readout
from twinforge.errors import TwinforgeError

__all__ = [
    "Observables",
    "ValidationInputError",
    "check_inputs",
    "compute_observables",
    "energy_label",
    "radial_weights",
    "voxel_spectrum",
]

_CHUNK = 2048  # showers per matrix product: bounds the float64 temporary to ~100 MB for siw
_LOG_FLOOR = 1e-8  # MeV, added before log10 of layer energies (CaloChallenge convention)


class ValidationInputError(TwinforgeError, ValueError):
    """Showers or energies given to the validation cannot be compared (shape, NaN, sign)."""


@dataclass(frozen=True)
class Observables:
    """High-level observables of N showers (readout with L layers). Units MeV and mm.

    Attributes:
        energy: (N,) incident energy, MeV.
        e_ratio: (N,) E_tot / E_inc.
        layer_energy: (N, L) MeV (longitudinal profile = its mean over showers).
        centre_x: (N, L) mm, energy-weighted centre in x = r cos(alpha); NaN for an empty layer.
        centre_y: (N, L) mm, same in y = r sin(alpha).
        width_x: (N, L) mm, energy-weighted standard deviation in x; NaN for an empty layer.
        width_y: (N, L) mm, same in y.
        sparsity: (N, L) fraction of the layer's voxels above zero (NaN for a layer without
            voxels).
        centre_r: (N, L) mm, energy-weighted mean radius of the voxel centres; NaN for an empty
            layer.
        width_r: (N, L) mm, energy-weighted standard deviation of that radius.
        radial: (N, R) MeV per radial bin, summed over layers and alpha.
        radial_edges: (R + 1,) radial bin edges, mm.
        layer_n_voxels: (L,) voxels per layer (None: every layer has voxels).
        layer_n_alpha: (L,) angular bins per layer (None: every layer has at least two).
    """

    energy: NDArray[np.float64]
    e_ratio: NDArray[np.float64]
    layer_energy: NDArray[np.float64]
    centre_x: NDArray[np.float64]
    centre_y: NDArray[np.float64]
    width_x: NDArray[np.float64]
    width_y: NDArray[np.float64]
    sparsity: NDArray[np.float64]
    radial: NDArray[np.float64]
    radial_edges: NDArray[np.float64]
    centre_r: NDArray[np.float64]
    width_r: NDArray[np.float64]
    layer_n_voxels: NDArray[np.int64] | None = None
    layer_n_alpha: NDArray[np.int64] | None = None

    @property
    def n_showers(self) -> int:
        """Number of showers N."""
        return int(self.energy.shape[0])

    @property
    def n_layers(self) -> int:
        """Number of layers L."""
        return int(self.layer_energy.shape[1])

    @property
    def layers_with_voxels(self) -> NDArray[np.bool_]:
        """(L,) True for layers that have voxels."""
        if self.layer_n_voxels is None:
            return np.ones(self.n_layers, dtype=bool)
        return np.asarray(self.layer_n_voxels) > 0

    @property
    def layers_binned_in_alpha(self) -> NDArray[np.bool_]:
        """(L,) True for layers with voxels and at least two angular bins (centres defined)."""
        if self.layer_n_alpha is None:
            return self.layers_with_voxels
        return self.layers_with_voxels & (np.asarray(self.layer_n_alpha) >= 2)

    def subset(self, index: ArrayLike) -> Observables:
        """The observables of the showers selected by ``index`` (integer indices or a mask)."""
        idx = np.asarray(index)
        per_shower = {
            "energy",
            "e_ratio",
            "layer_energy",
            "centre_x",
            "centre_y",
            "width_x",
            "width_y",
            "sparsity",
            "radial",
            "centre_r",
            "width_r",
        }
        values = {
            f.name: (getattr(self, f.name)[idx] if f.name in per_shower else getattr(self, f.name))
            for f in fields(self)
        }
        return Observables(**values)

    def high_level_matrix(self) -> NDArray[np.float64]:
        """(N, F) features for FPD/KPD and the high-level classifier.

        The CaloChallenge ``prepare_high_data_for_classifier`` set, in its order:
        ``log10(E_inc / MeV)``; ``log10(E_layer / MeV + 1e-8)`` for each layer with voxels;
        for each layer binned in alpha ``centre_x / 100 mm``, then ``centre_y``, ``width_x``,
        ``width_y`` (four blocks, each / 100 mm); ``log10(E_tot / MeV + 1e-8)``; for each layer
        with voxels the challenge's sparsity ``1 - non-zero fraction``, ``centre_r / 100 mm``
        and ``width_r / 100 mm`` (three blocks). NaN (empty layer) is replaced by 0, which is
        what the CaloChallenge code produces there.
        F = 2 + 4 L_voxels + 4 L_alpha (362 for dataset 2).
        """
        with_voxels = self.layers_with_voxels
        in_alpha = self.layers_binned_in_alpha
        e_tot = self.layer_energy.sum(axis=1)
        blocks = [
            np.log10(self.energy)[:, None],
            np.log10(self.layer_energy[:, with_voxels] + _LOG_FLOOR),
            self.centre_x[:, in_alpha] / 100.0,
            self.centre_y[:, in_alpha] / 100.0,
            self.width_x[:, in_alpha] / 100.0,
            self.width_y[:, in_alpha] / 100.0,
            np.log10(e_tot + _LOG_FLOOR)[:, None],
            1.0 - self.sparsity[:, with_voxels],
            self.centre_r[:, with_voxels] / 100.0,
            self.width_r[:, with_voxels] / 100.0,
        ]
        return np.nan_to_num(np.concatenate(blocks, axis=1), nan=0.0)


def check_inputs(
    showers: NDArray[np.floating], energy: ArrayLike, readout: Readout, what: str
) -> NDArray[np.float64]:
    """Check ``showers`` (N, V) and ``energy`` (N,) or (N, 1); return energy as (N,) float64.

    Raises:
        ValidationInputError: wrong shape, no showers, non-finite or negative voxel energies,
            non-finite or non-positive incident energies. Messages start with ``what``.
    """
    showers = np.asarray(showers)
    if showers.ndim != 2 or showers.shape[1] != readout.n_voxels:
        raise ValidationInputError(
            f"{what} showers have shape {tuple(showers.shape)}, but the readout "
            f"({readout.describe()}) needs (N, {readout.n_voxels})"
        )
    if showers.shape[0] == 0:
        raise ValidationInputError(f"{what}: no showers to validate")
    if showers.dtype.kind != "f":
        raise ValidationInputError(f"{what} showers must be floating point, got {showers.dtype}")
    e = np.asarray(energy, dtype=np.float64)
    if e.shape not in ((showers.shape[0],), (showers.shape[0], 1)):
        raise ValidationInputError(
            f"{what} incident energies have shape {e.shape}, expected ({showers.shape[0]},) to "
            f"match {showers.shape[0]} showers"
        )
    e = e.reshape(-1)
    bad = ~(np.isfinite(e) & (e > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationInputError(
            f"{what}: {int(bad.sum())} incident energies are not finite and > 0 MeV "
            f"(first: shower {i}, {e[i]})"
        )
    # chunked checks: no (N, V) boolean temporaries of the whole array
    for lo in range(0, showers.shape[0], _CHUNK):
        chunk = showers[lo : lo + _CHUNK]
        finite = np.isfinite(chunk)
        if not finite.all():
            event, voxel = np.argwhere(~finite)[0]
            raise ValidationInputError(
                f"{what}: non-finite voxel energies (first: shower {lo + event}, voxel {voxel} "
                f"= {chunk[event, voxel]})"
            )
        if (chunk < 0).any():
            event, voxel = np.argwhere(chunk < 0)[0]
            raise ValidationInputError(
                f"{what}: negative voxel energies (first: shower {lo + event}, voxel {voxel} = "
                f"{chunk[event, voxel]:g} MeV)"
            )
    return e


def radial_weights(readout: Readout) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(W, edges)``: W (V, R) shares each voxel's energy among the radial bins ``edges``.

    For a readout whose layers share their r edges, W is one-hot (voxel -> its r bin). Otherwise
    the bins are the union of all layers' r edges (mm) and a voxel ``[a, b)`` gives the union bin
    ``[c, d)`` inside it the fraction ``(d^2 - c^2) / (b^2 - a^2)`` of its energy.
    """
    all_edges = np.concatenate([layer.r_edges for layer in readout.layers if layer.n_r > 0])
    edges = np.unique(np.round(all_edges, 9))
    lo_edge = np.empty(readout.n_voxels)
    hi_edge = np.empty(readout.n_voxels)
    for i, layer in enumerate(readout.layers):  # loop over layers, not showers
        if layer.n_voxels == 0:
            continue
        sl = slice(readout.offsets[i], readout.offsets[i + 1])
        r_bin = np.tile(np.arange(layer.n_r), layer.n_alpha)
        lo_edge[sl] = layer.r_edges[r_bin]
        hi_edge[sl] = layer.r_edges[r_bin + 1]
    c, d = edges[:-1][None, :], edges[1:][None, :]
    a, b = lo_edge[:, None], hi_edge[:, None]
    inside = (c >= a - 1e-9) & (d <= b + 1e-9)
    weights = np.where(inside, (d**2 - c**2) / (b**2 - a**2), 0.0)
    return weights, edges


def _feature_matrix(readout: Readout) -> tuple[NDArray[np.float64], int, NDArray[np.float64]]:
    """(V, 7L + R) weights (layer indicator, x, y, x^2, y^2, r, r^2 per layer, then radial
    weights), L, and the radial edges (mm)."""
    centres = readout.voxel_centres()
    n_layers = readout.n_layers
    onehot = np.zeros((readout.n_voxels, n_layers))
    onehot[np.arange(readout.n_voxels), centres.layer] = 1.0
    x, y, r = centres.x[:, None], centres.y[:, None], centres.r[:, None]
    radial, edges = radial_weights(readout)
    mats = [onehot, onehot * x, onehot * y, onehot * x**2, onehot * y**2, onehot * r,
            onehot * r**2, radial]  # fmt: skip
    return np.concatenate(mats, axis=1), n_layers, edges


def compute_observables(
    showers: NDArray[np.floating], energy: ArrayLike, readout: Readout
) -> Observables:
    """Observables of ``showers`` (N, V) MeV with incident ``energy`` (N,) or (N, 1) MeV.

    Vectorised: chunks of showers times one (V, 7L + R) weight matrix, in float64.

    Raises:
        ValidationInputError: shapes do not match the readout, or values are not finite,
            voxel energies negative, incident energies not positive.
    """
    e_inc = check_inputs(showers, energy, readout, "showers")
    weights, n_layers, radial_edges = _feature_matrix(readout)
    onehot = weights[:, :n_layers]
    n = showers.shape[0]
    sums = np.empty((n, weights.shape[1]))
    nonzero = np.empty((n, n_layers))
    for lo in range(0, n, _CHUNK):
        chunk = np.asarray(showers[lo : lo + _CHUNK], dtype=np.float64)
        sums[lo : lo + _CHUNK] = chunk @ weights
        nonzero[lo : lo + _CHUNK] = (chunk > 0).astype(np.float64) @ onehot
    e_layer, sx, sy, sxx, syy, sr, srr = (
        sums[:, k * n_layers : (k + 1) * n_layers] for k in range(7)
    )
    radial = sums[:, 7 * n_layers :]

    n_vox = readout.voxels_per_layer.astype(np.int64)
    n_alpha = np.array([layer.n_alpha for layer in readout.layers], dtype=np.int64)
    defined = (e_layer > 0) & (n_vox > 0)[None, :] & (n_alpha >= 2)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.where(defined, e_layer, 1.0)
        cx = np.where(defined, sx / safe, np.nan)
        cy = np.where(defined, sy / safe, np.nan)
        wx = np.sqrt(np.clip(sxx / safe - cx**2, 0.0, None))
        wy = np.sqrt(np.clip(syy / safe - cy**2, 0.0, None))
        has_energy = (e_layer > 0) & (n_vox > 0)[None, :]
        safe_r = np.where(has_energy, e_layer, 1.0)
        cr = np.where(has_energy, sr / safe_r, np.nan)
        wr = np.sqrt(np.clip(srr / safe_r - cr**2, 0.0, None))
        sparsity = np.where(n_vox > 0, nonzero / np.maximum(n_vox, 1), np.nan)
    return Observables(
        energy=e_inc,
        e_ratio=e_layer.sum(axis=1) / e_inc,
        layer_energy=e_layer,
        centre_x=cx,
        centre_y=cy,
        width_x=wx,
        width_y=wy,
        sparsity=sparsity,
        radial=radial,
        radial_edges=radial_edges,
        centre_r=cr,
        width_r=wr,
        layer_n_voxels=n_vox,
        layer_n_alpha=n_alpha,
    )


def voxel_spectrum(showers: NDArray[np.floating]) -> NDArray[np.floating]:
    """Non-zero voxel energies of ``showers`` (N, V), MeV, as a 1-D array of their dtype."""
    arr = np.asarray(showers)
    return arr[arr > 0]


def energy_label(lo: float, hi: float) -> str:
    """A short label of an incident-energy range in MeV, e.g. ``"E 1-2 GeV"``."""
    for unit, scale in (("TeV", 1e6), ("GeV", 1e3), ("MeV", 1.0)):
        if hi >= scale or unit == "MeV":
            return f"E {_num(lo / scale)}-{_num(hi / scale)} {unit}"
    raise AssertionError  # pragma: no cover


def _num(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{round(value, digits):g}"
