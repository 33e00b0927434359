"""Geant4 geometry of a :class:`~twinforge.detector.DetectorConfig`, with voxel volumes.

Layout (lengths in mm, the detector front face at z = 0, the axis along +z):

- a world box of ``G4_Galactic``; inside it a ``calorimeter`` box (also vacuum) exactly filled by
- sampling stacks: ``n_layers`` absorber slabs and sensitive slabs, placed one after the other
  (absorber first), copy number = physical layer index;
- homogeneous blocks: ``n_z`` slices of the block material, copy number = slice index.

Each sensitive slab / slice holds the readout, centred on the entry point, in one of two layouts
(the voxel boundaries are the same in both):

- **replicas** (every layer with voxels has equal-width r bins starting at 0 and more than one
  alpha bin, e.g. the CaloChallenge presets): one readout cylinder (``G4Tubs``) replicated in phi
  into ``n_alpha`` wedges (copy number = alpha index, wedge 0 starting at -pi), each replicated
  in r (``kRho``) into ``n_r`` cells (copy number = r index). Geant4 finds the cell of a point
  arithmetically, which makes a shower about 6 % cheaper than with the placements below;
  touchable depths: ``r`` 0, ``alpha`` 1, ``layer`` 3;
- **placements** (any other binning): concentric rings (one placement per r bin, copy number =
  r index), each replicated in phi into ``n_alpha`` wedges (with one alpha bin, a single full
  wedge is placed instead, as Geant4 hangs on a one-copy phi replica); touchable depths:
  ``alpha`` 0, ``r`` 1, ``layer`` 2.

A cell is one voxel of one physical layer, so a C++ scorer attached to the cells can bin energy
with no Python call per step: its index is ``layer * n_alpha_max * n_r_max + alpha * n_r_max + r``
(depths in :attr:`BuiltGeometry.depths`); :attr:`BuiltGeometry.lut` maps it to the readout's
voxel index. Sensitive material outside the last r edge is a separate logical volume so that its
energy can be counted but not recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinforge.detector import DetectorConfig, HomogeneousBlock, LayerBinning, Readout
from twinforge.errors import SimulationError

__all__ = [
    "LAYER_DEPTH",
    "BuiltGeometry",
    "build_geometry",
    "describe_geometry",
    "replica_layout",
    "validate_geometry",
    "voxel_lut",
]

LAYER_DEPTH = 2
"""Touchable depth, seen from a wedge, of the volume whose copy number is the physical layer
(placement layout; see :attr:`BuiltGeometry.depths` for the layout actually built)."""
R_DEPTH = 1
ALPHA_DEPTH = 0
_REPLICA_DEPTHS = (3, 1, 0)  # (layer, alpha, r) in the replica layout


@dataclass
class BuiltGeometry:
    """The Geant4 volumes of a detector and what scoring needs to know about them.

    Attributes:
        world: the world physical volume.
        world_lv: the world logical volume (steps there are particles escaping).
        wedge_lvs: logical volumes of the voxels (one per distinct layer binning and r bin, or
            one per distinct layer binning in the replica layout).
        outside_lvs: sensitive logical volumes outside the readout cells.
        absorber_lvs: non-sensitive (absorber) logical volumes.
        n_layers: number of physical layers (sampling) or slices (homogeneous).
        n_alpha: largest number of alpha bins of any layer.
        n_r: largest number of r bins of any layer.
        sensitive_z: z range (mm) of each physical layer's sensitive material, ``(n_layers, 2)``.
        readout_layer: readout layer (z bin) of each physical layer, ``(n_layers,)``.
        lut: voxel index of each scorer index ``layer * n_alpha * n_r + alpha * n_r + r``, -1
            where no voxel exists, shape ``(n_layers * n_alpha * n_r,)``.
        depths: touchable depths, seen from a voxel cell, of the volumes whose copy numbers are
            the physical layer, the alpha bin and the r bin.
    """

    world: Any
    world_lv: Any
    wedge_lvs: list[Any]
    outside_lvs: list[Any]
    absorber_lvs: list[Any]
    n_layers: int
    n_alpha: int
    n_r: int
    sensitive_z: NDArray[np.float64]
    readout_layer: NDArray[np.int64]
    lut: NDArray[np.int64]
    depths: tuple[int, int, int] = (LAYER_DEPTH, ALPHA_DEPTH, R_DEPTH)
    keep: list[Any] = field(default_factory=list, repr=False)


def physical_layers(detector: DetectorConfig) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Sensitive z range (mm) of every physical layer ``(L, 2)`` and its readout layer ``(L,)``."""
    geo = detector.geometry
    if isinstance(geo, HomogeneousBlock):
        edges = detector.z_bin_edges()
        return edges, np.arange(detector.n_z, dtype=np.int64)
    pitch = geo.absorber_thickness + geo.sensitive_thickness
    lo = np.arange(geo.n_layers) * pitch + geo.absorber_thickness
    z = np.stack([lo, lo + geo.sensitive_thickness], axis=1)
    return z, np.arange(geo.n_layers, dtype=np.int64) // detector.readout.layers_per_bin


def voxel_lut(
    readout: Readout, readout_layer: NDArray[np.int64]
) -> tuple[NDArray[np.int64], int, int]:
    """Scorer index -> voxel index table, and the padded ``(n_alpha, n_r)`` it assumes.

    The scorer index of (physical layer ``l``, alpha bin ``a``, r bin ``r``) is
    ``l * n_alpha * n_r + a * n_r + r``; its voxel is
    ``offsets[z] + a * n_r(z) + r`` with ``z = readout_layer[l]``.
    """
    n_alpha = max(layer.n_alpha for layer in readout.layers)
    n_r = max(max(layer.n_r for layer in readout.layers), 1)
    lut = np.full((readout_layer.size, n_alpha, n_r), -1, dtype=np.int64)
    for phys, z in enumerate(readout_layer):
        binning = readout.layers[int(z)]
        if binning.n_voxels == 0:
            continue
        a = np.arange(binning.n_alpha)[:, None]
        r = np.arange(binning.n_r)[None, :]
        lut[phys, : binning.n_alpha, : binning.n_r] = readout.offsets[z] + a * binning.n_r + r
    return lut.reshape(-1), n_alpha, n_r


def replica_layout(readout: Readout) -> bool:
    """Whether the readout cells can be built as replicas: every layer with voxels has more than
    one alpha bin and equal-width r bins starting at 0 (else: ring placements)."""
    layers = [layer for layer in readout.layers if layer.n_voxels]
    if not layers:
        return False
    for layer in layers:
        edges = layer.r_edges
        widths = np.diff(edges)
        if layer.n_alpha < 2 or edges[0] != 0.0:
            return False
        if not np.allclose(widths, edges[-1] / layer.n_r, rtol=1e-9, atol=0.0):
            return False
    return True


def describe_geometry(detector: DetectorConfig) -> dict[str, Any]:
    """A JSON-ready summary of the geometry (for provenance)."""
    geo = detector.geometry
    out: dict[str, Any] = {
        "detector": detector.name,
        "kind": geo.kind,
        "transverse_size_mm": detector.transverse_size,
        "world_material": "G4_Galactic",
    }
    if isinstance(geo, HomogeneousBlock):
        out.update(material=geo.material, depth_mm=geo.depth, n_slices=detector.n_z)
    else:
        out.update(
            absorber=geo.absorber,
            absorber_thickness_mm=geo.absorber_thickness,
            sensitive=geo.sensitive,
            sensitive_thickness_mm=geo.sensitive_thickness,
            n_layers=geo.n_layers,
            depth_mm=geo.depth,
        )
    return out


class _Builder:
    """Creates and keeps the Geant4 objects (Python owns the wrappers; keep them alive)."""

    def __init__(self, g4: ModuleType) -> None:
        self.g4 = g4
        self.keep: list[Any] = []
        self.fillers: list[Any] = []  # mothers exactly filled by replicas (no steps expected)
        self._nist = g4.G4NistManager.Instance()

    def material(self, name: str) -> Any:
        mat = self._nist.FindOrBuildMaterial(name)
        if mat is None:
            raise SimulationError(f"Geant4 knows no NIST material {name!r} (e.g. G4_W, G4_Si)")
        return mat

    def box(self, name: str, material: Any, half_x: float, half_y: float, half_z: float) -> Any:
        solid = self.g4.G4Box(name, half_x, half_y, half_z)
        lv = self.g4.G4LogicalVolume(solid, material, name)
        self.keep += [solid, lv]
        return lv

    def place(self, lv: Any, mother: Any, x: float, y: float, z: float, copy: int) -> Any:
        pv = self.g4.G4PVPlacement(
            None, self.g4.G4ThreeVector(x, y, z), lv, lv.GetName(), mother, False, copy
        )
        self.keep.append(pv)
        return pv

    def readout_replicas(
        self,
        name: str,
        slab: Any,
        material: Any,
        binning: LayerBinning,
        half_z: float,
        centre: tuple[float, float],
    ) -> list[Any]:
        """A readout cylinder in ``slab`` replicated in phi, then in r; returns the cell."""
        g4 = self.g4
        width = 2.0 * math.pi / binning.n_alpha
        r_max = float(binning.r_edges[-1])
        dr = r_max / binning.n_r
        cyl = g4.G4Tubs(f"{name}_readout", 0.0, r_max, half_z, -math.pi, 2.0 * math.pi)
        cyl_lv = g4.G4LogicalVolume(cyl, material, f"{name}_readout")
        wedge = g4.G4Tubs(f"{name}_wedge", 0.0, r_max, half_z, -0.5 * width, width)
        wedge_lv = g4.G4LogicalVolume(wedge, material, f"{name}_wedge")
        cell = g4.G4Tubs(f"{name}_voxel", 0.0, dr, half_z, -0.5 * width, width)
        cell_lv = g4.G4LogicalVolume(cell, material, f"{name}_voxel")
        # wedge k spans phi in [-pi + k * width, -pi + (k + 1) * width), cell i r in [i, i+1) dr
        self.keep += [
            cyl,
            cyl_lv,
            wedge,
            wedge_lv,
            cell,
            cell_lv,
            g4.G4PVReplica(
                f"{name}_wedge", wedge_lv, cyl_lv, g4.kPhi, binning.n_alpha, width, -math.pi
            ),
            g4.G4PVReplica(f"{name}_voxel", cell_lv, wedge_lv, g4.kRho, binning.n_r, dr, 0.0),
        ]
        self.place(cyl_lv, slab, centre[0], centre[1], 0.0, 0)
        self.fillers += [cyl_lv, wedge_lv]
        return [cell_lv]

    def readout_rings(
        self,
        name: str,
        slab: Any,
        material: Any,
        binning: LayerBinning,
        half_z: float,
        centre: tuple[float, float],
    ) -> list[Any]:
        """Rings (one placement per r bin) replicated in phi inside ``slab``; returns wedges."""
        g4 = self.g4
        width = 2.0 * math.pi / binning.n_alpha
        wedges = []
        for i in range(binning.n_r):
            r_lo, r_hi = float(binning.r_edges[i]), float(binning.r_edges[i + 1])
            ring = g4.G4Tubs(f"{name}_ring{i}", r_lo, r_hi, half_z, -math.pi, 2.0 * math.pi)
            ring_lv = g4.G4LogicalVolume(ring, material, f"{name}_ring{i}")
            if binning.n_alpha == 1:  # a 1-copy phi replica makes Geant4 navigation hang
                wedge = g4.G4Tubs(f"{name}_voxel{i}", r_lo, r_hi, half_z, -math.pi, 2 * math.pi)
                wedge_lv = g4.G4LogicalVolume(wedge, material, f"{name}_voxel{i}")
                self.place(wedge_lv, ring_lv, 0.0, 0.0, 0.0, 0)
            else:
                wedge = g4.G4Tubs(f"{name}_voxel{i}", r_lo, r_hi, half_z, -0.5 * width, width)
                wedge_lv = g4.G4LogicalVolume(wedge, material, f"{name}_voxel{i}")
                # copy k spans phi in [-pi + k * width, -pi + (k + 1) * width)
                self.keep.append(
                    g4.G4PVReplica(
                        f"{name}_voxel{i}",
                        wedge_lv,
                        ring_lv,
                        g4.kPhi,
                        binning.n_alpha,
                        width,
                        -math.pi,
                    )
                )
            self.keep += [ring, ring_lv, wedge, wedge_lv]
            self.place(ring_lv, slab, centre[0], centre[1], 0.0, i)
            wedges.append(wedge_lv)
        return wedges


def validate_geometry(
    g4: ModuleType, detector: DetectorConfig, readout: Readout, entry: tuple[float, float]
) -> None:
    """Check what :func:`build_geometry` needs, before any run manager exists.

    Raises:
        SimulationError: unknown material, or the readout rings do not fit transversally.
    """
    half_t = 0.5 * detector.transverse_size
    r_max = max(float(layer.r_edges[-1]) for layer in readout.layers)
    if abs(entry[0]) + r_max > half_t + 1e-9 or abs(entry[1]) + r_max > half_t + 1e-9:
        raise SimulationError(
            f"entry point ({entry[0]:g}, {entry[1]:g}) mm: the readout (r up to {r_max:g} mm) "
            f"does not fit in detector {detector.name!r} ({detector.transverse_size:g} mm wide)"
        )
    geo = detector.geometry
    names = [geo.material] if isinstance(geo, HomogeneousBlock) else [geo.absorber, geo.sensitive]
    builder = _Builder(g4)
    for name in ["G4_Galactic", *names]:
        try:
            builder.material(name)
        except SimulationError as exc:
            raise SimulationError(f"detector {detector.name!r}: {exc}") from None


def build_geometry(
    g4: ModuleType, detector: DetectorConfig, readout: Readout, entry: tuple[float, float]
) -> BuiltGeometry:
    """Build the volumes of ``detector`` with voxel volumes for ``readout``.

    Args:
        g4: the imported ``geant4_pybind`` module.
        detector: the detector description.
        readout: its readout binning (``detector.binning()``).
        entry: (x, y) in mm of the point on the front face the readout axis goes through.

    Raises:
        SimulationError: see :func:`validate_geometry`.
    """
    validate_geometry(g4, detector, readout, entry)
    half_t = 0.5 * detector.transverse_size
    b = _Builder(g4)
    geo = detector.geometry
    sensitive_z, readout_layer = physical_layers(detector)
    depth = float(sensitive_z[-1, 1])
    vacuum = b.material("G4_Galactic")
    world_lv = b.box("world", vacuum, 1.2 * half_t, 1.2 * half_t, depth + 100.0)
    world = b.place(world_lv, None, 0.0, 0.0, 0.0, 0)
    calo = b.box("calorimeter", vacuum, half_t, half_t, 0.5 * depth)
    b.place(calo, world_lv, 0.0, 0.0, 0.5 * depth, 0)

    if isinstance(geo, HomogeneousBlock):
        sensitive_mat, absorber_mat = b.material(geo.material), None
    else:
        sensitive_mat, absorber_mat = b.material(geo.sensitive), b.material(geo.absorber)

    # one sensitive slab logical volume per distinct binning
    slabs: dict[LayerBinning, Any] = {}
    wedge_lvs: list[Any] = []
    replicas = replica_layout(readout)
    readout_cells = b.readout_replicas if replicas else b.readout_rings
    thickness = float(sensitive_z[0, 1] - sensitive_z[0, 0])
    for binning in (readout.layers[int(z)] for z in readout_layer):
        if binning in slabs:
            continue
        name = f"sensitive{len(slabs)}"
        slab = b.box(name, sensitive_mat, half_t, half_t, 0.5 * thickness)
        if binning.n_voxels:
            wedge_lvs += readout_cells(name, slab, sensitive_mat, binning, 0.5 * thickness, entry)
        slabs[binning] = slab
    absorber_lvs = []
    if absorber_mat is not None:
        assert not isinstance(geo, HomogeneousBlock)
        absorber = b.box("absorber", absorber_mat, half_t, half_t, 0.5 * geo.absorber_thickness)
        absorber_lvs.append(absorber)
    for phys, (z_lo, z_hi) in enumerate(sensitive_z):
        slab = slabs[readout.layers[int(readout_layer[phys])]]
        b.place(slab, calo, 0.0, 0.0, 0.5 * (z_lo + z_hi) - 0.5 * depth, phys)
        if absorber_lvs:
            z_abs = z_lo - 0.5 * geo.absorber_thickness  # type: ignore[union-attr]
            b.place(absorber_lvs[0], calo, 0.0, 0.0, z_abs - 0.5 * depth, phys)

    lut, n_alpha, n_r = voxel_lut(readout, readout_layer)
    return BuiltGeometry(
        world=world,
        world_lv=world_lv,
        wedge_lvs=wedge_lvs,
        outside_lvs=list(slabs.values()) + b.fillers,
        absorber_lvs=absorber_lvs,
        n_layers=int(readout_layer.size),
        n_alpha=n_alpha,
        n_r=n_r,
        sensitive_z=sensitive_z,
        readout_layer=readout_layer,
        lut=lut,
        depths=_REPLICA_DEPTHS if replicas else (LAYER_DEPTH, ALPHA_DEPTH, R_DEPTH),
        keep=b.keep,
    )
