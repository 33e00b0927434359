"""Shower files: HDF5, CaloChallenge-compatible, with conditions, binning and provenance.

Layout (a superset of the CaloChallenge 2022 format, so files open in its evaluation code):

=====================  ==========  ===========================================================
dataset                shape       content
=====================  ==========  ===========================================================
``incident_energies``  (N, 1)      incident kinetic energy, MeV (float64)
``showers``            (N, V)      voxel energies, MeV (float32), voxel order of the binning
``incident_theta``     (N,)        polar angle of the incident direction, rad (optional)
``incident_phi``       (N,)        azimuth of the incident direction, rad (optional)
``particle_pdg``       (N,)        PDG id of the incident particle (int32, optional)
=====================  ==========  ===========================================================

Root attributes: ``format`` (``"twinforge-showers"``), ``format_version``, ``binning_xml``
(CaloChallenge binning XML text), ``provenance`` (JSON text), ``created`` (UTC ISO 8601),
``twinforge_version``, and the scalar provenance entries (``simulator``, ``physics``, ...)
repeated as plain attributes for ``h5ls``/``h5dump`` readers.

Datasets are chunked (about 1 MiB per chunk), compressed (gzip + shuffle by default, or lzf)
and resizable, so a writer appends batch by batch. :class:`ShowerWriter` writes to a temporary
name and renames on successful close. :class:`ShowerFile` reads in batches without loading the
file and validates as it reads.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import h5py
import numpy as np
from numpy.typing import ArrayLike, NDArray

from twinforge import __version__
from twinforge._json import json_default
from twinforge.detector.readout import Readout
from twinforge.errors import DetectorError, ShowerFileError, TwinforgeError
from twinforge.showers.conditions import Conditions
from twinforge.showers.io import check_writable_target, commit, temporary_name

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ShowerFile",
    "ShowerWriter",
    "merge_shower_files",
    "read_showers",
    "write_showers",
]

log = logging.getLogger(__name__)

FORMAT_NAME = "twinforge-showers"
FORMAT_VERSION = "1.0"
_CHUNK_BYTES = 1 << 20
_CONDITION_KEYS = ("incident_theta", "incident_phi", "particle_pdg")
Compression = Literal["gzip", "lzf", "none"]


# --------------------------------------------------------------------------- validation
def check_showers_array(
    showers: NDArray[np.floating], *, n_voxels: int | None, where: str, first_event: int = 0
) -> None:
    """Raise :class:`ShowerFileError` unless ``showers`` is (N, V), finite and non-negative.

    ``first_event`` offsets the event indices quoted in messages (for batch-wise checks).
    """
    if showers.ndim != 2:
        raise ShowerFileError(f"{where}: showers must be 2-D (N, V), got shape {showers.shape}")
    if n_voxels is not None and showers.shape[1] != n_voxels:
        raise ShowerFileError(
            f"{where}: showers have {showers.shape[1]} voxels per event but the binning has "
            f"{n_voxels}"
        )
    if showers.dtype.kind != "f":
        raise ShowerFileError(f"{where}: showers must be floating point, got dtype {showers.dtype}")
    finite = np.isfinite(showers)
    if not finite.all():
        event, voxel = np.argwhere(~finite)[0]
        raise ShowerFileError(
            f"{where}: {int((~finite).sum())} non-finite voxel energies (first: event "
            f"{first_event + event}, voxel {voxel} = {showers[event, voxel]})"
        )
    negative = showers < 0
    if negative.any():
        event, voxel = np.argwhere(negative)[0]
        raise ShowerFileError(
            f"{where}: {int(negative.sum())} negative voxel energies (first: event "
            f"{first_event + event}, voxel {voxel} = {showers[event, voxel]:g} MeV)"
        )


# --------------------------------------------------------------------------- reader
class ShowerFile:
    """Read a shower file in batches, validating as it goes.

    Args:
        path: the HDF5 file.
        readout: the expected binning. When the file stores one, the two must agree; a plain
            CaloChallenge file (no binning attribute) takes this one.

    Raises:
        ShowerFileError: missing file, not HDF5 (e.g. truncated), missing or malformed datasets,
            or a binning that does not match ``readout``.

    Example:
        >>> with ShowerFile("showers.h5") as f:                      # doctest: +SKIP
        ...     for cond, showers in f.iter_batches(1024):
        ...         total = showers.sum(axis=1) / cond.energy
    """

    def __init__(self, path: str | Path, readout: Readout | None = None) -> None:
        self.path = Path(path)
        self._h5 = _open_h5(self.path)
        try:
            self._readout = self._check_structure(readout)
        except BaseException:
            self._h5.close()
            raise

    # ---------------------------------------------------------------- structure
    def _check_structure(self, expected: Readout | None) -> Readout | None:
        where = str(self.path)
        h5 = self._h5
        found = sorted(h5.keys())
        for key in ("incident_energies", "showers"):
            if key not in h5:
                raise ShowerFileError(
                    f"{where}: missing dataset '{key}' (found: {', '.join(found) or 'none'})"
                )
            if not isinstance(h5[key], h5py.Dataset):
                raise ShowerFileError(f"{where}: '{key}' is a group, expected a dataset")
        showers, energies = h5["showers"], h5["incident_energies"]
        if showers.ndim != 2:
            raise ShowerFileError(
                f"{where}: 'showers' must be 2-D (N, V), has shape {showers.shape}"
            )
        if showers.dtype.kind != "f":
            raise ShowerFileError(
                f"{where}: 'showers' must be floating point, has dtype {showers.dtype}"
            )
        n = showers.shape[0]
        if energies.shape not in ((n, 1), (n,)):
            raise ShowerFileError(
                f"{where}: 'incident_energies' has shape {energies.shape}, expected ({n}, 1) "
                f"to match 'showers' {showers.shape}"
            )
        if energies.dtype.kind not in "fiu":
            raise ShowerFileError(
                f"{where}: 'incident_energies' must be numeric, has dtype {energies.dtype}"
            )
        for key in _CONDITION_KEYS:
            if key in h5:
                ds = h5[key]
                if not isinstance(ds, h5py.Dataset) or ds.shape not in ((n,), (n, 1)):
                    shape = getattr(ds, "shape", "a group")
                    raise ShowerFileError(f"{where}: '{key}' has shape {shape}, expected ({n},)")
                if ds.dtype.kind not in "fiu":
                    raise ShowerFileError(f"{where}: '{key}' must be numeric, has {ds.dtype}")
        stored: Readout | None = None
        if "binning_xml" in h5.attrs:
            try:
                stored = Readout.from_xml(_attr_text(h5.attrs["binning_xml"]))
            except DetectorError as exc:
                raise ShowerFileError(f"{where}: invalid binning_xml attribute: {exc}") from None
        if stored is not None and expected is not None and stored != expected:
            raise ShowerFileError(
                f"{where}: binning mismatch: file has {stored.describe()}, expected "
                f"{expected.describe()}"
            )
        readout = stored or expected
        if readout is not None and readout.n_voxels != showers.shape[1]:
            raise ShowerFileError(
                f"{where}: 'showers' has {showers.shape[1]} voxels per event but the binning "
                f"has {readout.n_voxels}"
            )
        version = h5.attrs.get("format_version")
        if version is not None and str(_attr_text(version)).split(".")[0] != "1":
            raise ShowerFileError(
                f"{where}: format version {_attr_text(version)} is not readable by this "
                f"twinforge (it reads {FORMAT_VERSION.split('.')[0]}.x)"
            )
        return readout

    # ---------------------------------------------------------------- metadata
    @property
    def n_events(self) -> int:
        """Number of showers N."""
        return int(self._h5["showers"].shape[0])

    @property
    def n_voxels(self) -> int:
        """Voxels per shower V."""
        return int(self._h5["showers"].shape[1])

    @property
    def readout(self) -> Readout | None:
        """The binning stored in the file (or given to the constructor), None if unknown."""
        return self._readout

    @property
    def provenance(self) -> dict[str, Any]:
        """The provenance record (empty for files written by other tools)."""
        raw = self._h5.attrs.get("provenance")
        if raw is None:
            return {}
        try:
            value = json.loads(_attr_text(raw))
        except json.JSONDecodeError as exc:
            raise ShowerFileError(
                f"{self.path}: provenance attribute is not JSON ({exc})"
            ) from None
        return value if isinstance(value, dict) else {"value": value}

    @property
    def threshold(self) -> float | None:
        """The readout threshold the provenance records, MeV (voxels below it were zeroed);
        None when the file does not say (files of other tools)."""
        detector = self.provenance.get("detector_config")
        readout = detector.get("readout") if isinstance(detector, dict) else None
        value = readout.get("threshold") if isinstance(readout, dict) else None
        return float(value) if isinstance(value, int | float) else None

    @property
    def attrs(self) -> dict[str, Any]:
        """All root attributes as plain Python values."""
        return {k: _attr_value(v) for k, v in self._h5.attrs.items()}

    def __len__(self) -> int:
        return self.n_events

    # ---------------------------------------------------------------- data
    def conditions(self, start: int = 0, stop: int | None = None) -> Conditions:
        """Conditions of events ``[start, stop)``; absent optional datasets get defaults
        (theta = phi = 0, pdg = the binning's pid or 0)."""
        start, stop = self._bounds(start, stop)
        h5 = self._h5

        def column(key: str, default: float) -> NDArray[Any]:
            if key not in h5:
                return np.full(stop - start, default)
            try:
                return np.asarray(h5[key][start:stop]).reshape(-1)
            except OSError as exc:
                raise ShowerFileError(
                    f"{self.path}: cannot read '{key}' {start}-{stop} (file damaged? {exc})"
                ) from None

        energy = column("incident_energies", 0.0).astype(np.float64)

        pdg_default = self._readout.pid if self._readout is not None else 0
        bad = ~(np.isfinite(energy) & (energy > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ShowerFileError(
                f"{self.path}: incident energy must be finite and > 0 MeV; event {start + i} "
                f"has {float(energy[i])}"
            )
        try:
            return Conditions(
                energy,
                column("particle_pdg", pdg_default),
                column("incident_theta", 0.0),
                column("incident_phi", 0.0),
            )
        except ShowerFileError as exc:
            raise ShowerFileError(f"{self.path}: events {start}-{stop}: {exc}") from None

    def read(
        self, start: int = 0, stop: int | None = None, *, validate: bool = True
    ) -> tuple[Conditions, NDArray[np.float32]]:
        """Conditions and ``(n, V)`` float32 showers (MeV) of events ``[start, stop)``."""
        start, stop = self._bounds(start, stop)
        cond = self.conditions(start, stop)
        try:
            showers = np.asarray(self._h5["showers"][start:stop], dtype=np.float32)
        except OSError as exc:
            raise ShowerFileError(
                f"{self.path}: cannot read showers {start}-{stop} (file damaged? {exc})"
            ) from None
        if validate:
            check_showers_array(
                showers, n_voxels=self.n_voxels, where=str(self.path), first_event=start
            )
        return cond, showers

    def iter_batches(
        self, batch_size: int = 4096, *, validate: bool = True
    ) -> Iterator[tuple[Conditions, NDArray[np.float32]]]:
        """Yield ``(conditions, showers)`` batches of at most ``batch_size`` events, in order."""
        if batch_size < 1:
            raise ShowerFileError(f"batch size must be >= 1, got {batch_size}")
        for start in range(0, self.n_events, batch_size):
            yield self.read(start, min(start + batch_size, self.n_events), validate=validate)

    def validate(self, batch_size: int = 4096) -> None:
        """Read every event and check energies and voxels (finite, non-negative).

        Raises:
            ShowerFileError: the first problem found, with its event and voxel index.
        """
        for _ in self.iter_batches(batch_size, validate=True):
            pass

    def _bounds(self, start: int, stop: int | None) -> tuple[int, int]:
        n = self.n_events
        stop = n if stop is None else stop
        if not (0 <= start <= stop <= n):
            raise IndexError(f"event range [{start}, {stop}) outside [0, {n})")
        return start, stop

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Close the underlying HDF5 file."""
        if self._h5.id.valid:
            self._h5.close()

    def __enter__(self) -> ShowerFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        binning = self._readout.describe() if self._readout else "unknown binning"
        return f"ShowerFile({str(self.path)!r}, {self.n_events} events, {binning})"


# --------------------------------------------------------------------------- writer
class ShowerWriter:
    """Write (or extend) a shower file batch by batch; the final name appears on close.

    Args:
        path: final file name.
        readout: the binning; fixes V and is stored as CaloChallenge XML.
        provenance: JSON-serialisable record of how the showers were made (simulator, version,
            physics, detector, seeds, ...). Stored as JSON; scalar entries also as attributes.
        mode: ``"w"`` creates (``overwrite`` decides whether an existing file may be replaced);
            ``"a"`` appends to an existing file, which must have the same binning (the file is
            copied to the temporary name first, so a crash leaves the original intact).
        compression: ``"gzip"`` (level 4, with shuffle; default), ``"lzf"`` or ``"none"``.

    Use as a context manager: on an exception the temporary file is removed and nothing
    appears under ``path``. Without one, call :meth:`close` (commit) or :meth:`abort`.
    """

    def __init__(
        self,
        path: str | Path,
        readout: Readout,
        provenance: Mapping[str, Any] | None = None,
        *,
        mode: Literal["w", "a"] = "w",
        overwrite: bool = False,
        compression: Compression = "gzip",
    ) -> None:
        self.path = Path(path)
        self.readout = readout
        self._closed = True  # until the temporary file is open
        if mode not in ("w", "a"):
            raise ValueError(f"mode must be 'w' or 'a', got {mode!r}")
        if compression not in ("gzip", "lzf", "none"):
            raise ShowerFileError(f"compression must be gzip, lzf or none, got {compression!r}")
        try:
            check_writable_target(self.path, overwrite=overwrite or mode == "a")
        except TwinforgeError as exc:
            raise ShowerFileError(str(exc)) from None
        self._tmp = temporary_name(self.path)
        if mode == "a":
            _check_appendable(self.path, readout)
        try:
            if mode == "a":
                shutil.copyfile(self.path, self._tmp)
                self._h5 = h5py.File(self._tmp, "r+")
                if provenance:
                    old = json.loads(_attr_text(self._h5.attrs.get("provenance", "{}")))
                    appended = [*old.pop("appended", []), dict(provenance)]
                    self.set_provenance({**old, "appended": appended})
            else:
                self._h5 = h5py.File(self._tmp, "w-")
                self._create(dict(provenance or {}), compression)
        except BaseException:
            self._discard()
            raise
        self._closed = False

    def _create(self, provenance: dict[str, Any], compression: Compression) -> None:
        h5, v = self._h5, self.readout.n_voxels
        rows = max(1, min(4096, _CHUNK_BYTES // (4 * v)))
        opts: dict[str, Any] = {}
        if compression == "gzip":
            opts = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
        elif compression == "lzf":
            opts = {"compression": "lzf", "shuffle": True}
        h5.create_dataset(
            "showers", (0, v), np.float32, maxshape=(None, v), chunks=(rows, v), **opts
        )
        ev_rows = 16384
        h5.create_dataset(
            "incident_energies", (0, 1), np.float64, maxshape=(None, 1), chunks=(ev_rows, 1), **opts
        )
        for key, dtype in zip(_CONDITION_KEYS, (np.float64, np.float64, np.int32), strict=True):
            h5.create_dataset(key, (0,), dtype, maxshape=(None,), chunks=(ev_rows,), **opts)
        h5["showers"].attrs["unit"] = "MeV"
        h5["incident_energies"].attrs["unit"] = "MeV"
        h5["incident_theta"].attrs["unit"] = "rad"
        h5["incident_phi"].attrs["unit"] = "rad"
        h5.attrs["format"] = FORMAT_NAME
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.attrs["binning_xml"] = self.readout.to_xml()
        h5.attrs["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        h5.attrs["twinforge_version"] = __version__
        self.set_provenance(provenance)

    def set_provenance(self, provenance: Mapping[str, Any]) -> None:
        """Replace the file's provenance record (e.g. once the simulator has reported it)."""
        provenance = dict(provenance)
        try:
            text = json.dumps(provenance, sort_keys=True, default=json_default)
        except (TypeError, ValueError) as exc:
            raise ShowerFileError(
                f"{self.path}: provenance is not JSON-serialisable ({exc})"
            ) from None
        attrs = self._h5.attrs
        for old_key in json.loads(_attr_text(attrs.get("provenance", "{}"))):
            if old_key not in _RESERVED_ATTRS and old_key in attrs:
                del attrs[old_key]  # scalar copies of the record being replaced
        attrs["provenance"] = text
        for key, value in provenance.items():
            if key in _RESERVED_ATTRS:
                continue
            if isinstance(value, str | int | float | bool) and not isinstance(value, np.generic):
                self._h5.attrs[key] = value

    @property
    def n_events(self) -> int:
        """Events written so far (including those of an appended-to file)."""
        return int(self._h5["showers"].shape[0])

    def append(
        self,
        conditions: Conditions,
        showers: ArrayLike,
    ) -> None:
        """Append N showers ``(N, V)`` in MeV with their conditions; validated before writing.

        Raises:
            ShowerFileError: wrong shape, NaN/inf or negative energies, length mismatch.
        """
        if self._closed:
            raise ShowerFileError(f"{self.path}: writer is closed")
        arr = np.asarray(showers)
        where = f"{self.path}: appended batch"
        check_showers_array(arr, n_voxels=self.readout.n_voxels, where=where)
        if arr.shape[0] != len(conditions):
            raise ShowerFileError(
                f"{where}: {arr.shape[0]} showers but {len(conditions)} conditions"
            )
        n0, n = self.n_events, arr.shape[0]
        if n == 0:
            return
        h5 = self._h5
        for key in ("showers", "incident_energies", *_CONDITION_KEYS):
            if key in h5:
                h5[key].resize(n0 + n, axis=0)
        h5["showers"][n0:] = arr.astype(np.float32, copy=False)
        h5["incident_energies"][n0:] = conditions.energy[:, None]
        for key, col in zip(
            _CONDITION_KEYS, (conditions.theta, conditions.phi, conditions.pdg), strict=True
        ):
            if key in h5:
                h5[key][n0:] = col

    def close(self) -> Path:
        """Flush, close and rename the file to its final name; return that name."""
        if self._closed:
            return self.path
        self._closed = True
        try:
            self._h5.close()
            commit(self._tmp, self.path)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        log.debug("wrote %s", self.path)
        return self.path

    def abort(self) -> None:
        """Discard everything written; the final name is untouched."""
        if not self._closed:
            self._closed = True
            self._discard()

    def _discard(self) -> None:
        try:
            if getattr(self, "_h5", None) is not None and self._h5.id.valid:
                self._h5.close()
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ShowerWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # a writer dropped without close() must not leave its temp file
        if not getattr(self, "_closed", True):
            self.abort()


_RESERVED_ATTRS = {
    "format", "format_version", "binning_xml", "provenance", "created", "twinforge_version"
}  # fmt: skip


def _check_appendable(path: Path, readout: Readout) -> None:
    """Raise unless ``path`` is a twinforge shower file with ``readout`` that can grow."""
    if not path.exists():
        raise ShowerFileError(f"{path}: cannot append, file not found")
    with ShowerFile(path, readout) as f:  # structure and binning checked
        h5 = f._h5
        missing = [k for k in _CONDITION_KEYS if k not in h5]
        fixed = [k for k in ("showers", "incident_energies", *_CONDITION_KEYS)
                 if k in h5 and h5[k].maxshape[0] is not None]  # fmt: skip
        if missing or fixed or h5["incident_energies"].ndim != 2 or "binning_xml" not in h5.attrs:
            raise ShowerFileError(
                f"{path}: cannot append: not a resizable twinforge shower file (written by "
                "another tool?); merge it with merge_shower_files / 'twinforge showers merge'"
            )


# --------------------------------------------------------------------------- helpers
def write_showers(
    path: str | Path,
    readout: Readout,
    conditions: Conditions,
    showers: ArrayLike,
    provenance: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
    compression: Compression = "gzip",
) -> Path:
    """Write a whole shower file at once (atomically); return its path."""
    with ShowerWriter(
        path, readout, provenance, overwrite=overwrite, compression=compression
    ) as writer:
        writer.append(conditions, showers)
    return Path(path)


def read_showers(
    path: str | Path, readout: Readout | None = None
) -> tuple[Conditions, NDArray[np.float32]]:
    """Read and validate a whole shower file into memory: ``(conditions, (N, V) showers)``."""
    with ShowerFile(path, readout) as f:
        return f.read()


def merge_shower_files(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    provenance: Mapping[str, Any] | None = None,
    readout: Readout | None = None,
    batch_size: int = 4096,
    overwrite: bool = False,
    compression: Compression = "gzip",
) -> Path:
    """Concatenate shower files (shards) with the same binning into ``output``, streaming.

    The output's provenance holds ``merged_from`` (each input's path, event count and
    provenance) plus the entries all inputs agree on, updated with ``provenance``. Plain
    CaloChallenge files (no binning attribute) can be merged when ``readout`` is given.

    Raises:
        ShowerFileError: no inputs, an unreadable input, or inputs with different binnings.
    """
    if not inputs:
        raise ShowerFileError("merge needs at least one input file")
    paths = [Path(p) for p in inputs]
    out = Path(output)
    if any(p.resolve() == out.resolve() for p in paths if p.exists()):
        raise ShowerFileError(f"{out}: the output is also an input")
    records = []
    for p in paths:
        with ShowerFile(p, readout) as f:
            if f.readout is None:
                raise ShowerFileError(
                    f"{p}: file has no binning_xml; give the binning (readout=) to merge it"
                )
            if readout is None:
                readout = f.readout
            elif f.readout != readout:
                raise ShowerFileError(
                    f"{p}: binning mismatch: {f.readout.describe()} vs {readout.describe()} "
                    f"in {paths[0]}"
                )
            records.append({"path": str(p), "n_events": f.n_events, "provenance": f.provenance})
    assert readout is not None
    common = _common_entries([r["provenance"] for r in records])
    merged = {**common, "merged_from": records, **dict(provenance or {})}
    with ShowerWriter(out, readout, merged, overwrite=overwrite, compression=compression) as w:
        for p in paths:
            with ShowerFile(p, readout) as f:
                for cond, showers in f.iter_batches(batch_size, validate=False):
                    w.append(cond, showers)  # append validates
    return out


def _common_entries(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        raise ShowerFileError(f"{path}: file not found")
    if path.is_dir():
        raise ShowerFileError(f"{path}: is a directory, expected an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).split("(", 1)[-1].rstrip(")") if "(" in str(exc) else str(exc)
        raise ShowerFileError(
            f"{path}: not a readable HDF5 file (truncated or corrupt? {reason})"
        ) from None


def _attr_text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
