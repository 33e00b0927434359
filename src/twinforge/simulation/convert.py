"""ROOT -> HDF5: turn the Geant4 backend's ROOT ntuples into one shower file (uproot)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from twinforge.catalog.hashing import sha256_file
from twinforge.detector.config import load_detector
from twinforge.errors import ShowerFileError
from twinforge.showers.file import ShowerWriter

__all__ = ["convert_root_files"]


def convert_root_files(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    detector: str = "siw",
    tree: str = "showers",
    overwrite: bool = False,
) -> Path:
    """Write the showers of ROOT ``inputs`` (in order) to the shower file ``output``.

    Raises:
        ShowerFileError: no input, an unreadable ROOT file, or voxels that do not match the
            detector's readout; nothing is written then.
    """
    from twinforge.simulation.root import read_root_ntuple

    if not inputs:
        raise ShowerFileError("convert needs at least one ROOT file")
    det = load_detector(detector)
    readout = det.binning()
    sources = [{"path": str(Path(p).resolve()), "sha256": sha256_file(p)} for p in _exist(inputs)]
    with ShowerWriter(output, readout, overwrite=overwrite) as writer:
        recorded = []
        for path, source in zip(inputs, sources, strict=True):
            content = read_root_ntuple(path, tree)
            if content.showers.shape[1] != readout.n_voxels:
                raise ShowerFileError(
                    f"{path}: {content.showers.shape[1]} voxels per shower, detector "
                    f"{det.name!r} has {readout.n_voxels}; pass the --detector it was "
                    "simulated with"
                )
            writer.append(content.conditions, content.showers)
            recorded.append(content.provenance)
            source["provenance"] = content.provenance
        # what all inputs agree on (simulator, version, physics ...) at the top level
        common = {k: v for k, v in recorded[0].items() if all(r.get(k) == v for r in recorded)}
        writer.set_provenance(
            {
                **common,
                "converted_from": sources,
                "converter": "twinforge convert (uproot)",
                "detector": det.name,
                "detector_config": det.model_dump(mode="json"),
            }
        )
    return Path(output)


def _exist(paths: Sequence[str | Path]) -> list[Path]:
    for p in paths:
        if not Path(p).is_file():
            raise ShowerFileError(f"{p}: ROOT file not found")
    return [Path(p) for p in paths]
