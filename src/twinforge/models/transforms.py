"""Invertible, serialisable preprocessing shared by every model family.

Showers (MeV) become network-friendly features and back:

1. voxel energies are divided by the incident energy times a fixed ``scale`` (energy
   fractions of order one);
2. ``log``: ``y = log(u + eps)``, or ``logit`` of ``u`` squashed into (0, 1) (CaloINN style);
3. each feature is standardised with the mean and standard deviation fitted on training data;
   the range of each standardised feature in the training data is kept too, and generated
   features are clipped to it on the way back (as CaloFlow and CaloDREAM do): a feature a
   model puts a few standard deviations too far (a log layer energy, say) would otherwise
   become an energy orders of magnitude off after the exponential.

``layers`` (CaloFlow style, the per-layer energy split) needs the readout's ``layer_offsets``
and has ``n_layer_features + V`` features: first ``log(E_layer / (scale * E_inc) + eps)`` of
every layer that has voxels (layers without voxels, as in CaloChallenge dataset 1, carry no
feature), then ``logit`` of each voxel's fraction of its layer's energy (0 in a layer without
energy), both standardised. Its inverse renormalises the fractions of each layer to sum to one,
so the generated layer energies are kept exactly. ``fractions="softmax"`` takes ``log(f + eps)``
of the fractions instead; their inverse is then a softmax over each layer, which sums to one by
construction: one ONNX ``Softmax`` in place of the sigmoid, the training-range clip (two passes),
the offset, the per-layer sum and the renormalisation, so about half the passes over the
``(N, V)`` output that set a fast model's time per shower. A voxel empty in training comes back
with a share of about ``eps`` of its layer, which the readout threshold removes: it needs a
threshold above ``eps`` times the largest layer energy in the training data (:meth:`fit`
checks), and its voxel features are not clipped to their training range (a softmax share
cannot exceed its layer's energy).

``dequantize`` (needs a readout ``threshold``) fills the gap between empty voxels and the
smallest readable energy, as CaloFlow and CaloINN do: each empty voxel gets an energy drawn
uniformly from ``[0, threshold)`` MeV on the way in, which the threshold removes again on the way
out, so the inverse is exact in distribution. Without it every voxel that is sometimes empty
has a spike at ``log(eps)`` far below its readable values, a bimodal feature that flows and flow
matching smear into the gap; generated showers then lack the sparse outer voxels. For
``layers``, an empty layer gets a layer energy drawn from ``[0, threshold)`` likewise, the noise
fractions of a layer are the noise divided by ``max(E_layer, threshold)``, and the inverse
keeps the voxels whose fraction times the generated layer energy reaches the threshold (all
of them below it are noise), renormalising those to the layer energy.

The noise of uniform ``[0, threshold)`` is densest, in log space, right at its upper edge, the
threshold: a model that smooths that cliff puts mass just above it, i.e. spurious voxels of 1-5
times the threshold (twice the Geant4 occupancy on the siw detector). ``noise_edge < 1`` draws
the noise from ``[0, noise_edge * threshold)`` instead, leaving a gap below the threshold that
the inverse cuts away along with whatever a model smears into it.

Conditions become ``[log(E / E_ref), one-hot(pdg), theta, phi]``. The inverse clips negative
energies to zero and applies the readout threshold, so generated showers are valid showers.
The transform is saved as a JSON header plus float arrays (safetensors), never pickled.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.numpy import load_file, save_file

from twinforge.errors import TwinforgeError
from twinforge.showers.conditions import Conditions

__all__ = ["ShowerTransform"]

_ARRAYS = ("mean", "std")

#: standard deviations below this (features that hardly vary in training) are replaced by 1
MIN_STD = 1e-3


def _sigmoid(x: NDArray[np.floating]) -> NDArray[np.float64]:
    """The logistic function, without overflow warnings for large ``|x|``."""
    x = np.asarray(x, np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def _safe_std(std: NDArray[np.floating]) -> NDArray[np.float32]:
    """``std`` with (near-)constant features given 1, as scikit-learn's StandardScaler does.

    Flooring them at a small value instead blows up any other value of such a feature (a voxel
    never hit in 1500 training showers but hit in a validation one became 2.7e4 sigma, and the
    VAE's validation KL infinite).
    """
    return np.where(std < MIN_STD, 1.0, std).astype(np.float32)


@dataclass
class ShowerTransform:
    """Feature transform for ``V`` voxels; ``fit`` it on training data before use.

    Attributes:
        n_voxels: V.
        kind: ``"log"``, ``"logit"`` or ``"layers"`` (see the module docstring).
        eps: regulariser of the log/logit, in units of the energy fraction.
        scale: voxel energies are divided by ``scale * E_inc`` (a sampling fraction, say).
        threshold: voxels below this (MeV) are zeroed on the way back.
        dequantize: fill empty voxels (and layers) with uniform noise below ``threshold`` on the
            way in (see the module docstring); training data then differ by the noise draw.
        noise_edge: the noise is uniform in ``[0, noise_edge * threshold)`` MeV, ``0 < noise_edge
            <= 1``. Below 1 it leaves a gap under the threshold (see the module docstring).
        pdgs: particle ids of the one-hot condition encoding.
        energy_ref: reference energy of the log-energy condition, MeV.
        layer_offsets: first voxel of each readout layer plus V (``Readout.offsets``); required
            by ``kind="layers"``, unused otherwise.
        fractions: ``kind="layers"`` only: the voxel fractions as ``"logit"``, or as
            ``"softmax"`` (``log(f + eps)``, inverted by a softmax over each layer; needs a
            readout ``threshold``; see the module docstring).
    """

    n_voxels: int
    kind: Literal["log", "logit", "layers"] = "log"
    eps: float = 1e-7
    scale: float = 1.0
    threshold: float = 0.0
    dequantize: bool = False
    noise_edge: float = 1.0
    pdgs: list[int] = field(default_factory=lambda: [11])
    energy_ref: float = 1e4
    mean: NDArray[np.float32] | None = None
    std: NDArray[np.float32] | None = None
    lo: NDArray[np.float32] | None = None
    hi: NDArray[np.float32] | None = None
    layer_offsets: list[int] | None = None
    fractions: Literal["logit", "softmax"] = "logit"

    def __post_init__(self) -> None:
        if self.kind not in ("log", "logit", "layers"):
            raise ValueError(f"unknown transform kind {self.kind!r}")
        if self.fractions not in ("logit", "softmax"):
            raise ValueError(f"unknown voxel fractions {self.fractions!r}: logit or softmax")
        if self.fractions == "softmax" and self.kind != "layers":
            raise ValueError("fractions='softmax' splits layers: it needs kind='layers'")
        if self.fractions == "softmax" and not self.threshold > 0:
            raise ValueError(
                "fractions='softmax' needs a readout threshold > 0: it removes the share of "
                "about eps that the softmax gives a voxel empty in training"
            )
        if self.dequantize and not self.threshold > 0:
            raise ValueError("dequantize needs a readout threshold > 0")
        if not 0.0 < self.noise_edge <= 1.0:
            raise ValueError(f"noise_edge must be in (0, 1], got {self.noise_edge}")
        if self.layer_offsets is not None:
            offsets = [int(o) for o in self.layer_offsets]
            if (
                len(offsets) < 2
                or offsets[0] != 0
                or offsets[-1] != self.n_voxels
                or any(b < a for a, b in itertools.pairwise(offsets))
            ):
                raise ValueError(
                    f"layer_offsets must rise from 0 to n_voxels={self.n_voxels}, got {offsets}"
                )
            self.layer_offsets = offsets
        elif self.kind == "layers":
            raise ValueError("kind='layers' needs layer_offsets (the readout's Readout.offsets)")

    # ------------------------------------------------------------------ features
    @property
    def n_layer_features(self) -> int:
        """Layer-energy features at the front (``kind="layers"``: layers with voxels; else 0)."""
        return len(self._active_layers()) if self.kind == "layers" else 0

    @property
    def n_features(self) -> int:
        """Length of the feature vector: V, plus the layer energies for ``kind="layers"``."""
        return self.n_voxels + self.n_layer_features

    def _active_layers(self) -> list[tuple[int, int]]:
        """``(start, stop)`` voxel ranges of the layers that have voxels."""
        off = self.layer_offsets or [0, self.n_voxels]
        return [(a, b) for a, b in itertools.pairwise(off) if b > a]

    def _voxel_layer(self) -> NDArray[np.int64]:
        """Index (among the active layers) of each voxel's layer, ``(V,)``."""
        ranges = self._active_layers()
        return np.repeat(np.arange(len(ranges)), [b - a for a, b in ranges])

    # ------------------------------------------------------------------ conditions
    @property
    def n_conditions(self) -> int:
        """Length of the condition vector."""
        return 1 + (len(self.pdgs) if len(self.pdgs) > 1 else 0) + 2

    def encode_conditions(self, conditions: Conditions) -> NDArray[np.float32]:
        """``(N, n_conditions)`` float32: log energy, one-hot pdg (if several), theta, phi."""
        cols = [np.log(conditions.energy / self.energy_ref)[:, None]]
        if len(self.pdgs) > 1:
            known = np.isin(conditions.pdg, self.pdgs)
            if not known.all():
                bad = int(conditions.pdg[~known][0])
                raise TwinforgeError(f"particle {bad} was not in the training data {self.pdgs}")
            cols.append((conditions.pdg[:, None] == np.asarray(self.pdgs)[None, :]).astype(float))
        cols += [conditions.theta[:, None], conditions.phi[:, None]]
        return np.concatenate(cols, axis=1).astype(np.float32)

    def encode_conditions_torch(
        self, energy: torch.Tensor, pdg: torch.Tensor, theta: torch.Tensor, phi: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`encode_conditions` as torch operations (traceable into ONNX).

        Inputs ``(N,)``: energy (MeV), pdg (integer or float ids), theta and phi (rad). Returns
        ``(N, n_conditions)`` in the dtype of ``energy``. Outside tracing, an unknown particle
        raises as in :meth:`encode_conditions`; in a traced graph its one-hot row is all zero.
        """
        dtype = energy.dtype if energy.is_floating_point() else torch.float32
        energy = energy.to(dtype)
        cols = [torch.log(energy / self.energy_ref)[:, None]]
        if len(self.pdgs) > 1:
            known = torch.tensor(self.pdgs, dtype=pdg.dtype, device=pdg.device)
            hits = pdg[:, None] == known[None, :]
            if not torch.jit.is_tracing() and not bool(hits.any(dim=1).all()):
                bad = int(pdg[~hits.any(dim=1)][0])
                raise TwinforgeError(f"particle {bad} was not in the training data {self.pdgs}")
            cols.append(hits.to(dtype))
        cols += [theta.to(dtype)[:, None], phi.to(dtype)[:, None]]
        return torch.cat(cols, dim=1)

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        showers: NDArray[np.floating],
        energy: NDArray[np.floating],
        rng: np.random.Generator | None = None,
    ) -> ShowerTransform:
        """Fit the per-feature standardisation on ``(N, V)`` showers (MeV), energies (MeV);
        ``rng`` draws the dequantisation noise (see :meth:`forward`)."""
        y = self._squash(showers, energy, rng)
        if self.fractions == "softmax":
            self._check_floor(y[:, : self.n_layer_features], energy)
        self.mean = y.mean(axis=0).astype(np.float32)
        self.std = _safe_std(y.std(axis=0))
        self.set_range(y.min(axis=0), y.max(axis=0))
        return self

    def _check_floor(self, y_layer: NDArray[np.floating], energy: NDArray[np.floating]) -> None:
        """With softmax fractions an empty voxel keeps a share of about ``eps`` of its layer:
        refuse a transform whose threshold would not remove it from the largest layer."""
        unit = self.scale * np.asarray(energy, np.float64)
        largest = float(((np.exp(y_layer) - self.eps) * unit[:, None]).max(initial=0.0))
        if self.eps * largest >= self.threshold:
            raise TwinforgeError(
                f"fractions='softmax': eps={self.eps:g} of the largest layer energy in the "
                f"training data ({largest:.4g} MeV) is not below the readout threshold "
                f"({self.threshold:g} MeV), so empty voxels would come back filled: lower eps "
                f"below {self.threshold / largest:.2g}"
            )

    def set_range(self, low: NDArray[np.floating], high: NDArray[np.floating]) -> None:
        """Record the training range of the (unstandardised) features, ``(n_features,)`` each;
        :meth:`inverse_torch` clips generated features to it. Needs ``mean``/``std`` first."""
        if self.mean is None or self.std is None:
            raise TwinforgeError("set the standardisation (mean, std) before the range")
        self.lo = ((np.asarray(low) - self.mean) / self.std).astype(np.float32)
        self.hi = ((np.asarray(high) - self.mean) / self.std).astype(np.float32)

    def _squash(
        self,
        showers: NDArray[np.floating],
        energy: NDArray[np.floating],
        rng: np.random.Generator | None = None,
    ) -> NDArray:
        v = np.asarray(showers, dtype=np.float64)
        unit = self.scale * np.asarray(energy, dtype=np.float64)[:, None]  # MeV per unit of u
        noise_rng = None
        if self.dequantize:
            noise_rng = rng if rng is not None else np.random.default_rng(0)
        if self.kind == "layers":
            return self._squash_layers(v, unit, noise_rng)
        if noise_rng is not None:
            v = v + self._fill(v, noise_rng)
        if self.kind == "log":
            return np.log(v / unit + self.eps)
        return self._logit(v / unit)

    def _fill(self, energies: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.float64]:
        """Dequantisation noise: uniform in ``[0, noise_edge * threshold)`` MeV where
        ``energies`` are 0."""
        edge = self.noise_edge * self.threshold
        return np.where(energies > 0, 0.0, rng.uniform(0.0, edge, energies.shape))

    def _logit(self, frac: NDArray[np.float64]) -> NDArray[np.float64]:
        p = self.eps + (1 - 2 * self.eps) * np.clip(frac, 0.0, 1.0)
        return np.log(p) - np.log1p(-p)

    def _squash_layers(
        self, v: NDArray[np.float64], unit: NDArray[np.float64], rng: np.random.Generator | None
    ) -> NDArray[np.float64]:
        """``layers`` features before standardisation; ``rng``: dequantise (None: do not)."""
        layer = np.stack([v[:, a:b].sum(axis=1) for a, b in self._active_layers()], axis=1)
        if rng is None:
            denom = layer[:, self._voxel_layer()]
            frac = np.divide(v, denom, out=np.zeros_like(v), where=denom > 0)
        else:  # voxel noise relative to max(E_layer, threshold); empty layers get noise energy
            denom = np.maximum(layer, self.threshold)[:, self._voxel_layer()]
            frac = (v + self._fill(v, rng)) / denom
            layer = layer + self._fill(layer, rng)
        voxels = self._logit(frac) if self.fractions == "logit" else np.log(frac + self.eps)
        return np.concatenate([np.log(layer / unit + self.eps), voxels], axis=1)

    # ------------------------------------------------------------------ numpy
    def forward(
        self,
        showers: NDArray[np.floating],
        energy: NDArray[np.floating],
        rng: np.random.Generator | None = None,
    ) -> NDArray:
        """Showers ``(N, V)`` MeV -> features ``(N, n_features)`` float32.

        With ``dequantize``, ``rng`` draws the noise of the empty voxels (a generator seeded 0
        when omitted, so the features are reproducible either way).
        """
        self._require_fitted()
        y = self._squash(showers, energy, rng)
        return ((y - self.mean) / self.std).astype(np.float32)

    def inverse(self, features: NDArray[np.floating], energy: NDArray[np.floating]) -> NDArray:
        """Features ``(N, n_features)`` -> showers ``(N, V)`` MeV, non-negative, thresholded."""
        out = self.inverse_torch(torch.as_tensor(np.asarray(features, dtype=np.float32)),
                                 torch.as_tensor(np.asarray(energy, dtype=np.float32)))  # fmt: skip
        return out.numpy()

    # ------------------------------------------------------------------ torch (exportable)
    def inverse_torch(self, features: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """The inverse as torch operations only (traceable into ONNX); energy ``(N,)`` MeV.

        Written for few passes over the ``(N, V)`` voxels, since at a fast model's speed those
        passes, not the network, set the time per shower: the training-range clip of the voxel
        fractions happens after the sigmoid (the same values: the sigmoid is monotonic), the
        ``1 / (1 - 2 eps)`` of the fractions cancels in the per-layer renormalisation, and the
        per-layer sums and broadcasts are reshapes where every layer has as many voxels.
        """
        if self.kind == "layers":
            return self._threshold_torch(self._inverse_layers_torch(features, energy))
        y = self._unstandardise_torch(features)
        if self.kind == "log":
            u = torch.exp(y) - self.eps
        else:
            u = (torch.sigmoid(y) - self.eps) / (1 - 2 * self.eps)
        showers = torch.clamp(u, min=0.0) * (self.scale * energy[:, None])
        return self._threshold_torch(showers)

    def _threshold_torch(self, showers: torch.Tensor) -> torch.Tensor:
        """Voxels below ``threshold`` (MeV) set to 0, in one pass (ONNX ``ThresholdedRelu``)."""
        if self.threshold <= 0:
            return showers
        # x > the largest float32 below the threshold  <=>  x >= the float32 threshold
        below = float(np.nextafter(np.float32(self.threshold), np.float32(-np.inf)))
        return torch.nn.functional.threshold(showers, below, 0.0)

    def _tensor(self, values: NDArray[np.floating], like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(values, dtype=like.dtype, device=like.device)

    def _unstandardise_torch(self, features: torch.Tensor, clip: bool = True) -> torch.Tensor:
        """Standardised features back to unstandardised ones, clipped to the training range
        unless ``clip`` is False."""
        self._require_fitted()
        if clip and self.lo is not None and self.hi is not None:  # the training range
            features = torch.minimum(
                torch.maximum(features, self._tensor(self.lo, features)),
                self._tensor(self.hi, features),
            )
        return features * self._tensor(self.std, features) + self._tensor(self.mean, features)

    def layer_sums_torch(
        self, features: torch.Tensor, energy: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer energies ``(N, n_layer_features)`` MeV that the ``layers`` inverse makes of
        features ``(N, n_features)``, and the sums of each layer's voxel fractions (with
        ``dequantize``: of those that reach the threshold) before the inverse renormalises them
        to one. Geant4 showers give exactly one in every layer with energy; a model's
        deviation is the factor by which the inverse rescales that layer's voxels."""
        if self.kind != "layers":
            raise TwinforgeError(f"transform kind {self.kind!r} has no layer split (use 'layers')")
        layer, frac = self._split_layers_torch(features, energy)
        return layer, self._layer_sum(frac) / self._fraction_unit()

    def _fraction_unit(self) -> float:
        """What the fractions of :meth:`_split_layers_torch` sum to where a model is exact."""
        return 1 - 2 * self.eps if self.fractions == "logit" else 1.0

    def _layer_size(self) -> int | None:
        """Voxels per layer where every layer with voxels has as many (a reshape then splits
        them into layers), else None."""
        sizes = {b - a for a, b in self._active_layers()}
        return sizes.pop() if len(sizes) == 1 else None

    def _member_torch(self, like: torch.Tensor) -> torch.Tensor:
        """The one-hot voxel -> layer matrix ``(V, n_layer_features)``: per-layer sums and their
        broadcast back are matmuls where layers differ in size."""
        onehot = np.zeros((self.n_voxels, self.n_layer_features), dtype=np.float32)
        onehot[np.arange(self.n_voxels), self._voxel_layer()] = 1.0
        return self._tensor(onehot, like)

    def _layer_sum(self, voxels: torch.Tensor) -> torch.Tensor:
        """``(N, V)`` -> the sum over each layer's voxels, ``(N, n_layer_features)``."""
        size = self._layer_size()
        if size is not None:
            return voxels.reshape(-1, self.n_layer_features, size).sum(dim=2)
        return voxels @ self._member_torch(voxels)

    def _times_layer(self, voxels: torch.Tensor, per_layer: torch.Tensor) -> torch.Tensor:
        """Each voxel ``(N, V)`` times its layer's value of ``per_layer`` ``(N, n_layers)``."""
        size = self._layer_size()
        if size is not None:
            shaped = voxels.reshape(-1, self.n_layer_features, size)
            return (shaped * per_layer[:, :, None]).reshape(-1, self.n_voxels)
        return voxels * (per_layer @ self._member_torch(voxels).T)

    def _softmax_layers(self, y: torch.Tensor) -> torch.Tensor:
        """Log-fractions ``(N, V)`` -> fractions that sum to one in each layer: one ONNX
        ``Softmax`` where every layer has as many voxels."""
        size = self._layer_size()
        if size is not None:
            shaped = y.reshape(-1, self.n_layer_features, size)
            return torch.softmax(shaped, dim=2).reshape(-1, self.n_voxels)
        # layers of different sizes: padded with -inf into (N, n_layers, largest layer), whose
        # softmax gives the padding nothing, and gathered back
        ranges = self._active_layers()
        width = max(b - a for a, b in ranges)
        into = np.full((len(ranges), width), self.n_voxels)  # the padding column
        back = np.empty(self.n_voxels, dtype=np.int64)
        for i, (a, b) in enumerate(ranges):
            into[i, : b - a] = np.arange(a, b)
            back[a:b] = i * width + np.arange(b - a)
        pad = torch.full_like(y[:, :1], float("-inf"))
        padded = torch.cat([y, pad], dim=1)[:, torch.from_numpy(into).to(y.device)]
        flat = torch.softmax(padded, dim=2).flatten(1)
        return flat[:, torch.from_numpy(back).to(y.device)]

    def _split_layers_torch(
        self, features: torch.Tensor, energy: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised ``layers`` features -> layer energies ``(N, n_layers)`` MeV and voxel
        fractions ``(N, V)`` times :meth:`_fraction_unit` (a constant the renormalisation
        cancels).

        Logit fractions are clipped to their training range after the sigmoid and made
        non-negative by the same clip (a lower bound of at least ``eps``); softmax fractions
        are a softmax over each layer.
        """
        n_layers = self.n_layer_features
        y = self._unstandardise_torch(features, clip=False)
        y_layer, y_voxel = y[:, :n_layers], y[:, n_layers:]
        lo = hi = None
        if self.lo is not None and self.hi is not None:
            lo, hi = self._unstandardise_np(self.lo), self._unstandardise_np(self.hi)
            y_layer = torch.minimum(
                torch.maximum(y_layer, self._tensor(lo[:n_layers], y)),
                self._tensor(hi[:n_layers], y),
            )
        layer = torch.clamp(torch.exp(y_layer) - self.eps, min=0.0)
        layer = layer * (self.scale * energy[:, None])  # MeV per active layer
        if self.fractions == "softmax":
            frac = self._softmax_layers(y_voxel)
        else:
            frac = self._sigmoid_fractions(y_voxel, lo, hi)
        if self.dequantize:  # below the threshold: noise (and noise layers hold no energy)
            layer = self._threshold_torch(layer)
            noise = self._times_layer(frac, layer) < self.threshold * self._fraction_unit()
            frac = torch.where(noise, torch.zeros_like(frac), frac)
        return layer, frac

    def _sigmoid_fractions(
        self,
        y_voxel: torch.Tensor,
        lo: NDArray[np.float64] | None,
        hi: NDArray[np.float64] | None,
    ) -> torch.Tensor:
        """Logit fractions ``(N, V)`` -> their sigmoid clipped to the training range (``lo``,
        ``hi``: unstandardised, ``(n_features,)``; None: none), at least ``eps``, minus ``eps``."""
        n_layers = self.n_layer_features
        if lo is None or hi is None:
            s_lo = np.full(self.n_voxels, self.eps, dtype=np.float32)
            s_hi = np.full(self.n_voxels, 1.0, dtype=np.float32)
        else:
            s_lo = np.maximum(_sigmoid(lo[n_layers:]), self.eps).astype(np.float32)
            s_hi = np.maximum(_sigmoid(hi[n_layers:]), self.eps).astype(np.float32)
        s = torch.sigmoid(y_voxel)
        frac = torch.minimum(torch.maximum(s, self._tensor(s_lo, s)), self._tensor(s_hi, s))
        return frac - self.eps  # >= 0: the lower bound is at least eps

    def _unstandardise_np(self, standardised: NDArray[np.floating]) -> NDArray[np.float64]:
        assert self.mean is not None and self.std is not None
        return np.asarray(standardised, np.float64) * self.std + self.mean

    def _inverse_layers_torch(self, features: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """Standardised ``layers`` features -> showers (MeV) before the threshold."""
        layer, frac = self._split_layers_torch(features, energy)
        if self.fractions == "softmax" and not self.dequantize:  # they sum to one already
            return self._times_layer(frac, layer)
        per_fraction = layer / torch.clamp(self._layer_sum(frac), min=1e-30)
        return self._times_layer(frac, per_fraction)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """The JSON-serialisable settings (everything but the fitted arrays)."""
        return {
            "n_voxels": self.n_voxels, "kind": self.kind, "eps": self.eps, "scale": self.scale,
            "threshold": self.threshold, "dequantize": self.dequantize,
            "noise_edge": self.noise_edge, "pdgs": list(self.pdgs),
            "energy_ref": self.energy_ref, "layer_offsets": self.layer_offsets,
            "fractions": self.fractions,
        }  # fmt: skip

    def save(self, directory: str | Path) -> None:
        """Write ``transform.json`` and ``transform.safetensors`` into ``directory``."""
        self._require_fitted()
        directory = Path(directory)
        (directory / "transform.json").write_text(json.dumps(self.config(), indent=1))
        arrays = {"mean": self.mean, "std": self.std}
        if self.lo is not None and self.hi is not None:
            arrays |= {"lo": self.lo, "hi": self.hi}
        save_file(arrays, str(directory / "transform.safetensors"))

    @classmethod
    def load(cls, directory: str | Path) -> ShowerTransform:
        """Read a transform written by :meth:`save`.

        Raises:
            TwinforgeError: missing, corrupt or inconsistent files.
        """
        directory = Path(directory)
        try:
            config = json.loads((directory / "transform.json").read_text())
            arrays = load_file(str(directory / "transform.safetensors"))
            transform = cls(**config)
        except FileNotFoundError as exc:
            raise TwinforgeError(f"{directory}: missing {Path(exc.filename).name}") from None
        except (json.JSONDecodeError, TypeError, ValueError, OSError) as exc:
            raise TwinforgeError(f"{directory}: corrupt transform ({exc})") from None
        for name in _ARRAYS:
            if name not in arrays or arrays[name].shape != (transform.n_features,):
                raise TwinforgeError(
                    f"{directory}: transform.safetensors lacks '{name}' of shape "
                    f"({transform.n_features},)"
                )
        transform.mean, transform.std = arrays["mean"], arrays["std"]
        if "lo" in arrays or "hi" in arrays:  # optional: transforms saved before ranges existed
            for name in ("lo", "hi"):
                if name not in arrays or arrays[name].shape != (transform.n_features,):
                    raise TwinforgeError(
                        f"{directory}: transform.safetensors has a broken '{name}' array"
                    )
            transform.lo, transform.hi = arrays["lo"], arrays["hi"]
        return transform

    def _require_fitted(self) -> None:
        if self.mean is None or self.std is None:
            raise TwinforgeError("the transform is not fitted: call fit() on training data")
