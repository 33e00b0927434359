"""Shower files (HDF5, CaloChallenge-compatible) and conditions."""

from twinforge.showers.conditions import Conditions
from twinforge.showers.file import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ShowerFile,
    ShowerWriter,
    merge_shower_files,
    read_showers,
    write_showers,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Conditions",
    "ShowerFile",
    "ShowerWriter",
    "merge_shower_files",
    "read_showers",
    "write_showers",
]
