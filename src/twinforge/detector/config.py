"""Detector descriptions: the calorimeter geometry and its readout, as a validated config.

A detector config is what a simulator builds and what a readout bins. Lengths are in mm,
energies in MeV. Named detectors (``siw``, ``pbwo4``, ``tiny``) ship as YAML files in
``twinforge/detector/presets``; :func:`load_detector` takes a name or a path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from twinforge.config import StrictModel, load_yaml, validate_config
from twinforge.detector.readout import Readout
from twinforge.errors import ConfigError, DetectorError

__all__ = [
    "DetectorConfig",
    "HomogeneousBlock",
    "ReadoutSpec",
    "SamplingStack",
    "load_detector",
    "preset_names",
]


class SamplingStack(StrictModel):
    """A stack of ``n_layers`` (absorber, sensitive) pairs, absorber first, along +z from z = 0."""

    kind: Literal["sampling"] = "sampling"
    absorber: str = Field("G4_W", description="Geant4 NIST material of the absorber")
    absorber_thickness: PositiveFloat = Field(description="absorber thickness per layer, mm")
    sensitive: str = Field("G4_Si", description="Geant4 NIST material of the sensitive layer")
    sensitive_thickness: PositiveFloat = Field(description="sensitive thickness per layer, mm")
    n_layers: PositiveInt = Field(description="number of absorber + sensitive pairs")

    @property
    def depth(self) -> float:
        """Total depth in mm."""
        return self.n_layers * (self.absorber_thickness + self.sensitive_thickness)


class HomogeneousBlock(StrictModel):
    """A homogeneous block of one material (all of it sensitive), from z = 0 to ``depth``."""

    kind: Literal["homogeneous"] = "homogeneous"
    material: str = Field("G4_PbWO4", description="Geant4 NIST material")
    depth: PositiveFloat = Field(description="depth along z, mm")


Geometry = Annotated[SamplingStack | HomogeneousBlock, Field(discriminator="kind")]


class ReadoutSpec(StrictModel):
    """How deposits are binned: cylindrical (r, alpha) bins in each z bin.

    Either ``r_edges`` + ``n_alpha`` (the same in every z bin) or ``binning_xml`` (a
    CaloChallenge binning file, per-layer binnings allowed) must be given.
    """

    r_edges: list[float] | None = Field(None, description="radial bin edges, mm")
    n_alpha: PositiveInt = Field(1, description="angular bins over [-pi, pi)")
    binning_xml: str | None = Field(None, description="CaloChallenge binning file (path)")
    layers_per_bin: PositiveInt = Field(
        1, description="sampling stacks: consecutive sensitive layers summed into one z bin"
    )
    n_z: PositiveInt | None = Field(
        None, description="homogeneous blocks: number of equal z slices"
    )
    threshold: float = Field(
        0.0, ge=0.0, description="voxels with less energy are set to zero, MeV"
    )

    @model_validator(mode="after")
    def _one_binning(self) -> ReadoutSpec:
        if (self.r_edges is None) == (self.binning_xml is None):
            raise ValueError("give exactly one of 'r_edges' (with 'n_alpha') or 'binning_xml'")
        return self


class DetectorConfig(StrictModel):
    """A calorimeter: geometry, transverse size and readout."""

    kind: Literal["detector"] = "detector"
    name: str = Field(description="short identifier, recorded in file provenance")
    description: str = ""
    geometry: Geometry
    transverse_size: PositiveFloat = Field(600.0, description="full width in x and y, mm")
    readout: ReadoutSpec

    @model_validator(mode="after")
    def _consistent(self) -> DetectorConfig:
        geo, ro = self.geometry, self.readout
        if isinstance(geo, SamplingStack):
            if ro.n_z is not None:
                raise ValueError("readout.n_z is for homogeneous blocks; use layers_per_bin")
            if geo.n_layers % ro.layers_per_bin:
                raise ValueError(
                    f"geometry.n_layers ({geo.n_layers}) is not a multiple of "
                    f"readout.layers_per_bin ({ro.layers_per_bin})"
                )
        elif ro.n_z is None:
            raise ValueError("homogeneous blocks need readout.n_z (number of z slices)")
        if ro.r_edges is not None:
            Readout.uniform(1, ro.r_edges, ro.n_alpha)  # validates the edges
        return self

    @property
    def n_z(self) -> int:
        """Number of readout layers (z bins)."""
        geo = self.geometry
        if isinstance(geo, SamplingStack):
            return geo.n_layers // self.readout.layers_per_bin
        assert self.readout.n_z is not None
        return self.readout.n_z

    def z_bin_edges(self) -> np.ndarray:
        """Edges in z (mm) of each readout layer's *sensitive* material, shape ``(n_z, 2)``.

        For a sampling stack a z bin spans several sensitive layers with absorber between them;
        the edges given are those of its first and last sensitive slab.
        """
        geo = self.geometry
        if isinstance(geo, HomogeneousBlock):
            edges = np.linspace(0.0, geo.depth, self.n_z + 1)
            return np.stack([edges[:-1], edges[1:]], axis=1)
        pitch = geo.absorber_thickness + geo.sensitive_thickness
        k = self.readout.layers_per_bin
        first = np.arange(self.n_z) * k
        lo = first * pitch + geo.absorber_thickness
        hi = (first + k - 1) * pitch + pitch
        return np.stack([lo, hi], axis=1)

    def binning(self, base_dir: Path | None = None) -> Readout:
        """The :class:`Readout` of this detector (relative ``binning_xml`` from ``base_dir``).

        Raises:
            DetectorError: the binning file does not have one layer per z bin.
        """
        ro = self.readout
        if ro.binning_xml is None:
            assert ro.r_edges is not None
            return Readout.uniform(self.n_z, ro.r_edges, ro.n_alpha)
        path = Path(ro.binning_xml)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        readout = Readout.from_xml(path)
        if readout.n_layers != self.n_z:
            raise DetectorError(
                f"{path}: binning has {readout.n_layers} layers, detector "
                f"{self.name!r} has {self.n_z} readout layers"
            )
        return readout


def preset_names() -> list[str]:
    """Names of the detectors shipped with twinforge."""
    folder = resources.files("twinforge.detector") / "presets"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_detector(name_or_path: str | Path) -> DetectorConfig:
    """A detector config from a preset name (``"siw"``) or a YAML file.

    Raises:
        ConfigError: unknown preset, missing file or invalid config.
    """
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        data = load_yaml(path)
        detector = validate_config(DetectorConfig, data, str(path))
        if detector.readout.binning_xml and not Path(detector.readout.binning_xml).is_absolute():
            xml = (path.parent / detector.readout.binning_xml).resolve()
            detector = detector.model_copy(
                update={"readout": detector.readout.model_copy(update={"binning_xml": str(xml)})}
            )
        return detector
    if text not in preset_names():
        raise ConfigError(
            f"unknown detector {text!r}: use a YAML file or one of {', '.join(preset_names())}"
        )
    resource = resources.files("twinforge.detector") / "presets" / f"{text}.yaml"
    with resources.as_file(resource) as preset:
        return validate_config(DetectorConfig, load_yaml(preset), f"preset {text!r}")
