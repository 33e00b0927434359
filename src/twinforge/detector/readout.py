"""Readout binning: per-layer radial and angular bins around the incident axis.

A shower is a float32 vector of voxel energies (MeV). Voxels are ordered layer by layer; inside a
layer, alpha is the outer index and r the inner (fastest) one:
``index = offset[layer] + alpha * n_r[layer] + r``. For a regular readout (every layer binned the
same) this is ``z * n_alpha * n_r + alpha * n_r + r``. ``alpha = atan2(y, x)`` in the plane
transverse to the incident direction; its bin edges are ``linspace(-pi, pi, n_alpha + 1)``.

This is the convention of the CaloChallenge 2022 binning files, which :meth:`Readout.from_xml`
reads and :meth:`Readout.to_xml` writes.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from xml.sax.saxutils import quoteattr

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twinforge.errors import DetectorError

__all__ = ["LayerBinning", "Readout", "VoxelCentres"]


@dataclass(frozen=True, eq=False)
class LayerBinning:
    """Binning of one readout layer.

    Attributes:
        r_edges: radial bin edges in mm, strictly increasing, shape ``(n_r + 1,)``. A single edge
            (``[0.0]``) describes a layer with no voxels, as in CaloChallenge dataset 1.
        n_alpha: number of equal angular bins over ``[-pi, pi)``.
    """

    r_edges: NDArray[np.float64]
    n_alpha: int = 1

    def __post_init__(self) -> None:
        edges = np.asarray(self.r_edges, dtype=np.float64).reshape(-1)
        if edges.size == 0:
            raise DetectorError("a layer needs at least one r edge (use [0] for an empty layer)")
        if not np.all(np.isfinite(edges)) or edges[0] < 0:
            raise DetectorError(f"r edges must be finite and >= 0 mm, got {edges.tolist()}")
        if np.any(np.diff(edges) <= 0):
            raise DetectorError(f"r edges must be strictly increasing, got {edges.tolist()}")
        if int(self.n_alpha) < 1:
            raise DetectorError(f"n_alpha must be >= 1, got {self.n_alpha}")
        edges.setflags(write=False)
        object.__setattr__(self, "r_edges", edges)
        object.__setattr__(self, "n_alpha", int(self.n_alpha))

    @property
    def n_r(self) -> int:
        """Number of radial bins."""
        return self.r_edges.size - 1

    @property
    def n_voxels(self) -> int:
        """Number of voxels, ``n_alpha * n_r``."""
        return self.n_alpha * self.n_r

    @property
    def alpha_edges(self) -> NDArray[np.float64]:
        """Angular bin edges in rad, shape ``(n_alpha + 1,)``."""
        return np.linspace(-math.pi, math.pi, self.n_alpha + 1)

    def _key(self) -> tuple[int, tuple[float, ...]]:
        # edges compared to 1e-9 mm: text round trips (XML) and float noise do not matter
        return self.n_alpha, tuple(np.round(self.r_edges, 9).tolist())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayerBinning):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


class VoxelCentres(NamedTuple):
    """Centre of every voxel, each array of shape ``(V,)``.

    ``layer`` is the layer index; ``r`` (mm) and ``alpha`` (rad) are bin mid-points; ``x`` and
    ``y`` (mm) are ``r cos(alpha)`` and ``r sin(alpha)``.
    """

    layer: NDArray[np.int64]
    r: NDArray[np.float64]
    alpha: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Readout:
    """The voxelisation of a calorimeter: one :class:`LayerBinning` per longitudinal layer.

    Attributes:
        layers: binning of each layer, front to back.
        particle: particle name of the CaloChallenge ``<Bin>`` element (e.g. ``"electron"``).
        pid: PDG id of that element (e.g. 11).
        attributes: any other ``<Bin>`` attributes (``etaMin``, ``etaMax``), kept for round trips.
    """

    layers: tuple[LayerBinning, ...]
    particle: str = "electron"
    pid: int = 11
    attributes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        if not layers:
            raise DetectorError("a readout needs at least one layer")
        if not all(isinstance(layer, LayerBinning) for layer in layers):
            raise DetectorError("readout layers must be LayerBinning objects")
        object.__setattr__(self, "layers", layers)
        sizes = np.array([layer.n_voxels for layer in layers], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        offsets.setflags(write=False)
        object.__setattr__(self, "_offsets", offsets)
        if offsets[-1] == 0:
            raise DetectorError("a readout needs at least one voxel")

    # ----------------------------------------------------------------- construction
    @classmethod
    def uniform(
        cls,
        n_layers: int,
        r_edges: ArrayLike,
        n_alpha: int,
        *,
        particle: str = "electron",
        pid: int = 11,
    ) -> Readout:
        """A regular readout: ``n_layers`` layers with the same r edges (mm) and ``n_alpha``."""
        if int(n_layers) < 1:
            raise DetectorError(f"n_layers must be >= 1, got {n_layers}")
        layer = LayerBinning(np.asarray(r_edges, dtype=np.float64), n_alpha)
        return cls((layer,) * int(n_layers), particle=particle, pid=pid)

    @classmethod
    def from_xml(cls, source: str | Path) -> Readout:
        """Read a CaloChallenge binning XML file (path) or XML text.

        Raises:
            DetectorError: the file is missing or not a valid binning description.
        """
        text, where = _read_xml_source(source)
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise DetectorError(f"{where}: not valid XML ({exc})") from None
        bins = [root] if root.tag == "Bin" else root.findall("Bin")
        if root.tag not in ("Bins", "Bin") or len(bins) != 1:
            raise DetectorError(
                f"{where}: expected <Bins> holding exactly one <Bin> element, "
                f"found <{root.tag}> with {len(bins)} <Bin>"
            )
        (bin_el,) = bins
        layers = []
        for i, el in enumerate(bin_el.findall("Layer")):
            layer_id = el.get("id", str(i))
            if layer_id.strip() != str(i):
                raise DetectorError(f"{where}: layer {i} has id={layer_id!r}, expected {i}")
            try:
                edges = [float(v) for v in el.attrib["r_edges"].split(",") if v.strip()]
                n_alpha = int(el.attrib["n_bin_alpha"])
            except KeyError as exc:
                raise DetectorError(f"{where}: layer {i} lacks attribute {exc.args[0]}") from None
            except ValueError as exc:
                raise DetectorError(f"{where}: layer {i}: {exc}") from None
            try:
                layers.append(LayerBinning(np.asarray(edges), n_alpha))
            except DetectorError as exc:
                raise DetectorError(f"{where}: layer {i}: {exc}") from None
        if not layers:
            raise DetectorError(f"{where}: <Bin> has no <Layer> elements")
        attrs = dict(bin_el.attrib)
        try:
            pid = int(attrs.pop("pid", "0"))
        except ValueError:
            raise DetectorError(f"{where}: pid must be an integer") from None
        particle = attrs.pop("name", "")
        try:
            return cls(tuple(layers), particle=particle, pid=pid, attributes=attrs)
        except DetectorError as exc:
            raise DetectorError(f"{where}: {exc}") from None

    def to_xml(self) -> str:
        """The CaloChallenge binning XML text of this readout."""
        attrs = {"pid": str(self.pid), **self.attributes, "name": self.particle}
        head = " ".join(f"{k}={quoteattr(str(v))}" for k, v in attrs.items())
        lines = ["<Bins>", f"   <Bin {head}>"]
        for i, layer in enumerate(self.layers):
            edges = ",".join(_fmt(v) for v in layer.r_edges)
            lines.append(
                f'      <Layer id="{i}" r_edges="{edges}" n_bin_alpha="{layer.n_alpha}" />'
            )
        lines += ["   </Bin>", "</Bins>", ""]
        return "\n".join(lines)

    # ----------------------------------------------------------------- sizes
    @property
    def n_layers(self) -> int:
        """Number of longitudinal layers."""
        return len(self.layers)

    @property
    def n_voxels(self) -> int:
        """Total number of voxels V."""
        return int(self._offsets[-1])  # type: ignore[attr-defined]

    @property
    def offsets(self) -> NDArray[np.int64]:
        """Index of the first voxel of each layer plus the total, shape ``(n_layers + 1,)``."""
        return self._offsets  # type: ignore[attr-defined,no-any-return]

    @property
    def voxels_per_layer(self) -> NDArray[np.int64]:
        """Number of voxels of each layer, shape ``(n_layers,)``."""
        return np.diff(self.offsets)

    @property
    def is_regular(self) -> bool:
        """True when every layer has the same binning (a dense ``(z, alpha, r)`` grid)."""
        return all(layer == self.layers[0] for layer in self.layers[1:])

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """``(n_layers, n_alpha, n_r)`` of a regular readout.

        Raises:
            DetectorError: the readout is not regular.
        """
        self._require_regular("grid_shape")
        first = self.layers[0]
        return (self.n_layers, first.n_alpha, first.n_r)

    # ----------------------------------------------------------------- geometry
    def voxel_centres(self) -> VoxelCentres:
        """Centre of every voxel in the shower ordering (see :class:`VoxelCentres`)."""
        layer_idx, rs, alphas = [], [], []
        for i, layer in enumerate(self.layers):
            if layer.n_voxels == 0:
                continue
            r_mid = 0.5 * (layer.r_edges[1:] + layer.r_edges[:-1])
            a_edges = layer.alpha_edges
            a_mid = 0.5 * (a_edges[1:] + a_edges[:-1])
            a_grid, r_grid = np.meshgrid(a_mid, r_mid, indexing="ij")  # (alpha, r), r fastest
            layer_idx.append(np.full(layer.n_voxels, i, dtype=np.int64))
            rs.append(r_grid.ravel())
            alphas.append(a_grid.ravel())
        r = np.concatenate(rs)
        alpha = np.concatenate(alphas)
        return VoxelCentres(
            np.concatenate(layer_idx), r, alpha, r * np.cos(alpha), r * np.sin(alpha)
        )

    def voxel_index(self, layer: ArrayLike, r: ArrayLike, alpha: ArrayLike) -> NDArray[np.int64]:
        """Voxel index of points given by layer index, radius r (mm) and angle alpha (rad).

        Points outside the outermost r edge (or on an empty layer) get index -1.
        Arrays broadcast together; the result has their common shape.
        """
        layer_a, r_a, alpha_a = np.broadcast_arrays(
            np.asarray(layer, dtype=np.int64), np.asarray(r, float), np.asarray(alpha, float)
        )
        out = np.full(layer_a.shape, -1, dtype=np.int64)
        for i, binning in enumerate(self.layers):
            if binning.n_voxels == 0:
                continue
            sel = layer_a == i
            if not np.any(sel):
                continue
            r_bin = np.searchsorted(binning.r_edges, r_a[sel], side="right") - 1
            a_bin = np.floor((alpha_a[sel] + math.pi) / (2 * math.pi) * binning.n_alpha)
            a_bin = np.clip(a_bin.astype(np.int64), 0, binning.n_alpha - 1)
            inside = (r_bin >= 0) & (r_bin < binning.n_r)
            idx = self.offsets[i] + a_bin * binning.n_r + r_bin
            out[sel] = np.where(inside, idx, -1)
        return out

    # ----------------------------------------------------------------- reshaping
    def check_showers(self, showers: NDArray[np.floating], what: str = "showers") -> None:
        """Raise :class:`DetectorError` unless ``showers`` has shape ``(N, V)`` for this readout."""
        if showers.ndim != 2 or showers.shape[1] != self.n_voxels:
            raise DetectorError(
                f"{what} have shape {tuple(showers.shape)}, but the readout has "
                f"{self.n_voxels} voxels: expected (N, {self.n_voxels})"
            )

    def split_layers(self, showers: NDArray[np.floating]) -> list[NDArray[np.floating]]:
        """Split ``(N, V)`` showers into one ``(N, n_alpha, n_r)`` array (a view) per layer."""
        self.check_showers(showers)
        n = showers.shape[0]
        return [
            showers[:, lo:hi].reshape(n, layer.n_alpha, layer.n_r)
            for layer, lo, hi in zip(self.layers, self.offsets[:-1], self.offsets[1:], strict=True)
        ]

    def join_layers(self, layers: Sequence[NDArray[np.floating]]) -> NDArray[np.floating]:
        """Inverse of :meth:`split_layers`: per-layer ``(N, n_alpha, n_r)`` arrays to ``(N, V)``."""
        if len(layers) != self.n_layers:
            raise DetectorError(f"got {len(layers)} layer arrays, the readout has {self.n_layers}")
        n = layers[0].shape[0]
        for i, (arr, binning) in enumerate(zip(layers, self.layers, strict=True)):
            if arr.shape != (n, binning.n_alpha, binning.n_r):
                raise DetectorError(
                    f"layer {i} has shape {tuple(arr.shape)}, "
                    f"expected ({n}, {binning.n_alpha}, {binning.n_r})"
                )
        return np.concatenate([a.reshape(n, -1) for a in layers], axis=1)

    def to_grid(self, showers: NDArray[np.floating]) -> NDArray[np.floating]:
        """Reshape ``(N, V)`` showers of a regular readout to ``(N, z, alpha, r)`` (a view)."""
        self._require_regular("to_grid")
        self.check_showers(showers)
        return showers.reshape(showers.shape[0], *self.grid_shape)

    def from_grid(self, grid: NDArray[np.floating]) -> NDArray[np.floating]:
        """Reshape ``(N, z, alpha, r)`` showers of a regular readout back to ``(N, V)``."""
        shape = self.grid_shape
        if grid.ndim != 4 or tuple(grid.shape[1:]) != shape:
            raise DetectorError(f"grid has shape {tuple(grid.shape)}, expected (N, *{shape})")
        return grid.reshape(grid.shape[0], self.n_voxels)

    def layer_energies(self, showers: NDArray[np.floating]) -> NDArray[np.float64]:
        """Energy per layer, ``(N, n_layers)``, in the unit of ``showers`` (MeV); empty layers 0."""
        layers = self.split_layers(showers)
        return np.stack([layer.sum(axis=(1, 2), dtype=np.float64) for layer in layers], axis=1)

    # ----------------------------------------------------------------- comparison
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Readout):
            return NotImplemented
        return self.layers == other.layers

    def __hash__(self) -> int:
        return hash(self.layers)

    def describe(self) -> str:
        """One-line summary, e.g. ``45 layers, 6480 voxels, 16 alpha x 9 r bins``."""
        if self.is_regular:
            _, n_a, n_r = self.grid_shape
            return f"{self.n_layers} layers, {self.n_voxels} voxels, {n_a} alpha x {n_r} r bins"
        return f"{self.n_layers} layers, {self.n_voxels} voxels, per-layer binning"

    def _require_regular(self, what: str) -> None:
        if not self.is_regular:
            raise DetectorError(
                f"{what} needs a regular readout (all layers binned alike); this one is "
                "per-layer: use split_layers()/join_layers()"
            )


def _fmt(value: float) -> str:
    """Shortest text that reads back as the same float ('4.65', '0', '600')."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _read_xml_source(source: str | Path) -> tuple[str, str]:
    if isinstance(source, Path) or (
        isinstance(source, str) and not source.lstrip().startswith("<")
    ):
        path = Path(source)
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except FileNotFoundError:
            raise DetectorError(f"{path}: binning file not found") from None
        except OSError as exc:
            raise DetectorError(f"{path}: cannot read binning file ({exc.strerror})") from None
    return str(source), "binning XML"
