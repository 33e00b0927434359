"""Lossless compact copies of shower files, to carry them to a machine with a small transfer limit.

    .venv/bin/python benchmarks/pack_showers.py pack FILE.h5 OUT.npz [--first N]
    .venv/bin/python benchmarks/pack_showers.py unpack OUT.npz FILE.h5

A packed file holds the non-zero voxel energies (float32, byte-planes separated, LZMA), the
non-zero mask (bit-packed, LZMA), the conditions, the binning and the provenance, and the SHA-256
of the showers array; ``unpack`` rebuilds a twinforge shower file (CaloChallenge-compatible) and
refuses to write it unless the rebuilt array has the same SHA-256. About 20 MB per 10k siw
showers against 37 MB for the gzip HDF5. The container is ``np.savez`` of numeric arrays, read
with ``allow_pickle=False``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
from pathlib import Path

import numpy as np

from twinforge.detector.readout import Readout
from twinforge.showers import Conditions, ShowerFile, write_showers


def _sha(showers: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(showers, dtype=np.float32).tobytes()).hexdigest()


def pack(src: Path, dst: Path, first: int | None) -> None:
    with ShowerFile(src) as f:
        cond, showers = f.read(0, first) if first else f.read()
        binning = f.readout.to_xml() if f.readout is not None else ""
        provenance = f.provenance
    mask = showers != 0
    values = showers[mask].astype(np.float32)
    planes = values.view(np.uint8).reshape(-1, 4).T.copy()
    meta = {
        "n": int(showers.shape[0]),
        "v": int(showers.shape[1]),
        "sha256": _sha(showers),
        "binning_xml": binning,
        "provenance": provenance,
        "source": str(src),
    }
    if dst.suffix != ".npz":
        raise SystemExit(f"{dst}: the packed file's name must end in .npz")
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}.npz")
    np.savez(
        tmp,
        values=np.frombuffer(lzma.compress(planes.tobytes(), preset=6), dtype=np.uint8),
        mask=np.frombuffer(lzma.compress(np.packbits(mask, axis=1).tobytes()), dtype=np.uint8),
        energy=cond.energy,
        pdg=cond.pdg,
        theta=cond.theta,
        phi=cond.phi,
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
    )
    os.replace(tmp, dst)
    print(f"{src} ({len(showers)} showers) -> {dst} ({dst.stat().st_size / 1e6:.1f} MB)")


def unpack(src: Path, dst: Path) -> None:
    with np.load(src, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes())
        n, v = meta["n"], meta["v"]
        mask = np.unpackbits(
            np.frombuffer(lzma.decompress(z["mask"].tobytes()), dtype=np.uint8).reshape(n, -1),
            axis=1,
            count=v,
        ).astype(bool)
        planes = np.frombuffer(lzma.decompress(z["values"].tobytes()), dtype=np.uint8)
        values = planes.reshape(4, -1).T.copy().view(np.float32).reshape(-1)
        showers = np.zeros((n, v), dtype=np.float32)
        showers[mask] = values
        cond = Conditions(z["energy"], z["pdg"], z["theta"], z["phi"])
    if _sha(showers) != meta["sha256"]:
        raise SystemExit(f"{src}: the rebuilt showers differ from the packed file's checksum")
    write_showers(
        dst,
        Readout.from_xml(meta["binning_xml"]),
        cond,
        showers,
        meta["provenance"],
        overwrite=True,
    )
    print(f"{src} -> {dst} ({n} showers, checksum verified)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--first", type=int, help="only the first N showers")
    u = sub.add_parser("unpack")
    u.add_argument("src", type=Path)
    u.add_argument("dst", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.src, args.dst, args.first)
    else:
        unpack(args.src, args.dst)


if __name__ == "__main__":
    main()
