"""Detector geometry and readout binning (layers, r edges, alpha bins), CaloChallenge XML I/O."""

from twinforge.detector.config import (
    DetectorConfig,
    HomogeneousBlock,
    ReadoutSpec,
    SamplingStack,
    load_detector,
    preset_names,
)
from twinforge.detector.readout import LayerBinning, Readout, VoxelCentres

__all__ = [
    "DetectorConfig",
    "HomogeneousBlock",
    "LayerBinning",
    "Readout",
    "ReadoutSpec",
    "SamplingStack",
    "VoxelCentres",
    "load_detector",
    "preset_names",
]
