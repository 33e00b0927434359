"""Start a model from one trained on another detector (``twinforge train --init-from MODEL``).

How the weights map, parameter by parameter (buffers such as autoregressive masks, feature
orders and batch-norm statistics always stay the new model's own):

1. **Same name, same shape: copied.** Hidden layers, the condition embeddings, convolution
   kernels: everything whose size does not depend on the readout.
2. **Same name, one axis differing by the change in the number of features: resampled.**
   An axis of size ``F + k`` (``F`` features first, then ``k`` others such as the
   conditions: the first layer of an encoder, the last of a decoder, a per-voxel bias) is
   gathered through a feature map: target layer ``l`` takes the source layer holding its
   centre at equal fractional depth, ``floor((l + 0.5) * L_src / L_tgt)``, and within a layer
   the voxel of the same (alpha, r) bin; the ``k`` trailing entries are copied. ``F`` is
   tried as the whole feature vector (layer energies then voxels, for the ``layers``
   transform), the voxels alone and the layer energies alone. This needs layers binned alike
   (same r edges and number of alpha bins) in both readouts, as for ``siw`` and ``pbsi``.
3. **Anything else: left at its initialisation** (e.g. the GAN's first generator layer, sized
   by the coarse volume).

Refused, with one line: a model of another family, other conditions (particles, angles), a
readout that cannot be mapped (irregular, layers binned differently, another transform kind),
or one of which nothing maps. On the same readout (fine-tuning on new data) every parameter is
copied. The new transform is fitted on the new data as usual.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from twinforge.detector.readout import Readout
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.models.base import GenerativeModel, Surrogate
from twinforge.models.transforms import ShowerTransform

__all__ = ["Transfer", "feature_maps", "initialise_from"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transfer:
    """What :func:`initialise_from` did: parameter names copied, resampled and left alone, and
    the numbers of values (scalars) each holds."""

    source: str
    copied: tuple[str, ...]
    resampled: tuple[str, ...]
    initialised: tuple[str, ...]
    values_transferred: int
    values_total: int

    def summary(self) -> dict[str, object]:
        """JSON-ready, for the model's provenance."""
        return {
            "init_from": self.source,
            "copied": len(self.copied),
            "resampled": len(self.resampled),
            "initialised": list(self.initialised),
            "fraction_transferred": round(self.values_transferred / max(1, self.values_total), 4),
        }


def _layer_map(n_src: int, n_tgt: int) -> NDArray[np.int64]:
    """Source layer holding each target layer's centre, at equal fractional depth."""
    centres = (np.arange(n_tgt) + 0.5) * n_src / n_tgt
    return np.minimum(np.floor(centres), n_src - 1).astype(np.int64)


def feature_maps(
    source: ShowerTransform, source_xml: str, target: ShowerTransform, target_xml: str
) -> dict[str, tuple[int, int, NDArray[np.int64]]]:
    """Index maps from target to source features: ``name -> (F_src, F_tgt, index)`` for
    ``features`` (the whole feature vector), ``voxels`` and ``layers`` (layer energies, the
    ``layers`` transform only).

    Raises:
        ConfigError: the readouts cannot be mapped (irregular, layers binned differently, or
            other transform kinds); the message says which.
    """
    src, tgt = Readout.from_xml(source_xml), Readout.from_xml(target_xml)
    if source.kind != target.kind:
        raise ConfigError(f"transform kind {source.kind!r} there, {target.kind!r} here")
    if source.fractions != target.fractions:
        raise ConfigError(f"voxel fractions {source.fractions!r} there, {target.fractions!r} here")
    if not (src.is_regular and tgt.is_regular):
        raise ConfigError("only regular readouts (every layer binned alike) can be mapped")
    a, b = src.layers[0], tgt.layers[0]
    if a != b:
        raise ConfigError(
            f"layers binned differently ({a.n_alpha} alpha x r edges {a.r_edges.tolist()} mm "
            f"there, {b.n_alpha} x {b.r_edges.tolist()} mm here)"
        )
    per_layer = a.n_voxels
    layers = _layer_map(src.n_layers, tgt.n_layers)
    voxels = (layers[:, None] * per_layer + np.arange(per_layer)[None, :]).ravel()
    maps = {"voxels": (src.n_voxels, tgt.n_voxels, voxels)}
    if target.kind == "layers":
        n_src, n_tgt = source.n_layer_features, target.n_layer_features
        maps["layers"] = (n_src, n_tgt, layers)
        maps["features"] = (
            n_src + src.n_voxels,
            n_tgt + tgt.n_voxels,
            np.concatenate([layers, n_src + voxels]),
        )
    return maps


def _resample(
    value: torch.Tensor, shape: torch.Size, maps: dict[str, tuple[int, int, NDArray[np.int64]]]
) -> torch.Tensor | None:
    """``value`` gathered along the one axis where its shape differs from ``shape`` through a
    feature map (features first, then ``k`` copied entries); None when no map fits."""
    if value.dim() != len(shape):
        return None
    axes = [d for d, (a, b) in enumerate(zip(value.shape, shape, strict=True)) if a != b]
    if len(axes) != 1:
        return None
    axis = axes[0]
    for n_src, n_tgt, index in maps.values():
        extra = value.shape[axis] - n_src
        if extra < 0 or shape[axis] - n_tgt != extra:
            continue
        full = np.concatenate([index, n_src + np.arange(extra)])
        return value.index_select(axis, torch.as_tensor(full, dtype=torch.long))
    return None


def initialise_from(
    model: GenerativeModel,
    transform: ShowerTransform,
    binning_xml: str,
    source_path: str | Path,
) -> Transfer:
    """Load the parameters of the model directory ``source_path`` into ``model`` (see the
    module docstring for the mapping); return what was transferred.

    Raises:
        ConfigError: not a loadable model directory, another family, other conditions, a
            readout that cannot be mapped, or nothing transferable.
    """
    where = f"--init-from {source_path}"
    try:
        source = Surrogate.load(source_path)
    except TwinforgeError as exc:
        raise ConfigError(f"--init-from: {exc}") from None
    if source.family != model.family:
        raise ConfigError(
            f"{where}: a {source.family} model cannot initialise a {model.family} model"
        )
    if source.model.n_conditions != model.n_conditions or (source.transform.pdgs != transform.pdgs):
        raise ConfigError(
            f"{where}: its conditions differ (particles {source.transform.pdgs}, "
            f"{source.model.n_conditions} condition features) from this training's "
            f"(particles {transform.pdgs}, {model.n_conditions})"
        )
    maps: dict[str, tuple[int, int, NDArray[np.int64]]] = {}
    if Readout.from_xml(source.binning_xml) != Readout.from_xml(binning_xml):
        try:
            maps = feature_maps(source.transform, source.binning_xml, transform, binning_xml)
        except ConfigError as exc:
            raise ConfigError(
                f"{where}: its readout cannot be mapped onto this one: {exc}"
            ) from None
    theirs = dict(source.model.named_parameters())
    copied, resampled, initialised = [], [], []
    moved = total = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            total += param.numel()
            value = theirs.get(name)
            if value is not None and value.shape == param.shape:
                param.copy_(value)
                copied.append(name)
            elif (
                value is not None and (gathered := _resample(value, param.shape, maps)) is not None
            ):
                param.copy_(gathered)
                resampled.append(name)
            else:
                initialised.append(name)
                continue
            moved += param.numel()
    if not copied and not resampled:
        raise ConfigError(
            f"{where}: no parameter of it fits this readout's {model.family} model (readouts "
            "binned differently, or other options)"
        )
    transfer = Transfer(
        str(source_path), tuple(copied), tuple(resampled), tuple(initialised), moved, total
    )
    log.info(
        "initialised from %s: %d parameters copied, %d resampled to the new readout, %d left "
        "at initialisation (%.0f %% of the values transferred)",
        source_path, len(copied), len(resampled), len(initialised), 100 * moved / max(1, total),
    )  # fmt: skip
    return transfer
