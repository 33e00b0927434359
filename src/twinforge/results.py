"""Result files: the points a simulation code ran and what it returned, in HDF5.

For every code that does not produce calorimeter showers (those keep the CaloChallenge layout of
:mod:`twinforge.showers`). One file holds ``N`` points::

    /                  attrs: format = "twinforge-results", format_version, simulator,
                       code_name, code_version, provenance (JSON)
    /inputs/<name>     (N,)            each parameter, attrs: unit
    /outputs/<name>    (N, *shape)     each declared output, attrs: unit, description
    /records/<name>    (N,) text       per-point records (the rendered input deck, ...)

Readable with any HDF5 tool (``h5py``, ``h5dump``, pandas via h5py). Writers write to a temporary
name and rename on success: a final name only ever holds a complete file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import h5py
import numpy as np
from numpy.typing import NDArray

from twinforge._json import json_default
from twinforge.errors import TwinforgeError
from twinforge.showers.io import atomic_path

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ResultFile", "merge_result_files", "write_results"]

FORMAT_NAME: Final = "twinforge-results"
FORMAT_VERSION: Final = 1

_TEXT = h5py.string_dtype("utf-8")


class ResultFileError(TwinforgeError, ValueError):
    """A result file is missing, unreadable, or not in the format."""


def _column(values: NDArray[Any]) -> NDArray[Any]:
    values = np.asarray(values)
    if values.dtype.kind in "USO":
        return np.asarray([str(v) for v in values.ravel()], dtype=object).reshape(values.shape)
    return values


def write_results(
    path: str | Path,
    inputs: Mapping[str, NDArray[Any]],
    outputs: Mapping[str, NDArray[Any]],
    *,
    units: Mapping[str, str | None] | None = None,
    descriptions: Mapping[str, str] | None = None,
    records: Mapping[str, Sequence[str]] | None = None,
    code: Mapping[str, str] | None = None,
    simulator: str = "",
    provenance: Mapping[str, Any] | None = None,
    compression: str = "gzip",
    overwrite: bool = False,
) -> Path:
    """Write ``N`` points (inputs, outputs, records) to ``path`` atomically.

    Raises:
        ResultFileError: columns of different lengths, no columns at all.
        TwinforgeError: ``path`` exists (unless ``overwrite``) or its directory is not writable.
    """
    columns = {**{f"inputs/{k}": v for k, v in inputs.items()},
               **{f"outputs/{k}": v for k, v in outputs.items()}}  # fmt: skip
    if not inputs:
        raise ResultFileError(f"{path}: no inputs to write")
    lengths = {k: len(v) for k, v in columns.items()} | {
        f"records/{k}": len(v) for k, v in (records or {}).items()
    }
    if len(set(lengths.values())) != 1:
        raise ResultFileError(f"{path}: columns of different lengths: {lengths}")
    units, descriptions = dict(units or {}), dict(descriptions or {})
    opts: dict[str, Any] = {}
    if compression == "gzip":
        opts = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    elif compression == "lzf":
        opts = {"compression": "lzf"}
    with atomic_path(path, overwrite=overwrite) as tmp, h5py.File(tmp, "w-") as h5:
        h5.attrs["format"] = FORMAT_NAME
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.attrs["simulator"] = simulator
        h5.attrs["code_name"] = (code or {}).get("name", "")
        h5.attrs["code_version"] = (code or {}).get("version", "")
        h5.attrs["provenance"] = json.dumps(dict(provenance or {}), default=json_default)
        for key, values in columns.items():
            data = _column(values)
            kind = {} if data.dtype == object or data.ndim == 0 or len(data) == 0 else opts
            ds = h5.create_dataset(key, data=data, dtype=_TEXT if data.dtype == object else None,
                                   **kind)  # fmt: skip
            name = key.split("/", 1)[1]
            if units.get(name):
                ds.attrs["unit"] = units[name]
            if descriptions.get(name):
                ds.attrs["description"] = descriptions[name]
        for name, texts in (records or {}).items():
            h5.create_dataset(f"records/{name}", data=np.asarray(list(texts), dtype=object),
                              dtype=_TEXT)  # fmt: skip
    return Path(path)


class ResultFile:
    """Read a result file (use as a context manager)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except FileNotFoundError:
            raise ResultFileError(f"{self.path}: file not found") from None
        except OSError as exc:
            raise ResultFileError(f"{self.path}: not an HDF5 file ({exc})") from None
        if self._h5.attrs.get("format") != FORMAT_NAME or "inputs" not in self._h5:
            self._h5.close()
            raise ResultFileError(f"{self.path}: not a twinforge result file")
        version = int(self._h5.attrs.get("format_version", 0))
        if version > FORMAT_VERSION:
            self._h5.close()
            raise ResultFileError(
                f"{self.path}: result format version {version}, newer than this twinforge's"
            )

    def __enter__(self) -> ResultFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._h5.close()

    @property
    def n_points(self) -> int:
        first = next(iter(self._h5["inputs"].values()))
        return int(first.shape[0])

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(json.loads(self._h5.attrs.get("provenance", "{}")))

    @property
    def code(self) -> dict[str, str]:
        return {
            "name": str(self._h5.attrs["code_name"]),
            "version": str(self._h5.attrs["code_version"]),
        }

    @property
    def simulator(self) -> str:
        return str(self._h5.attrs.get("simulator", ""))

    def _group(self, group: str) -> dict[str, NDArray[Any]]:
        if group not in self._h5:
            return {}
        out = {}
        for name, ds in self._h5[group].items():
            data = ds[()]
            if ds.dtype.kind == "O":
                data = np.asarray([v.decode() if isinstance(v, bytes) else v for v in data.ravel()]
                                  ).reshape(data.shape)  # fmt: skip
            out[name] = data
        return out

    def inputs(self) -> dict[str, NDArray[Any]]:
        """Every input column, ``(N,)``."""
        return self._group("inputs")

    def outputs(self) -> dict[str, NDArray[Any]]:
        """Every output, ``(N, *shape)``."""
        return self._group("outputs")

    def records(self) -> dict[str, NDArray[Any]]:
        """Per-point text records."""
        return self._group("records")

    def units(self) -> dict[str, str]:
        """Unit of every input and output that has one."""
        out = {}
        for group in ("inputs", "outputs"):
            for name, ds in self._h5[group].items() if group in self._h5 else []:
                if "unit" in ds.attrs:
                    out[name] = str(ds.attrs["unit"])
        return out

    def descriptions(self) -> dict[str, str]:
        out = {}
        for group in ("inputs", "outputs"):
            for name, ds in self._h5[group].items() if group in self._h5 else []:
                if "description" in ds.attrs:
                    out[name] = str(ds.attrs["description"])
        return out


def merge_result_files(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    provenance: Mapping[str, Any] | None = None,
    compression: str = "gzip",
    overwrite: bool = False,
) -> Path:
    """Concatenate result files with the same columns into ``output`` (atomic).

    The output's provenance holds the entries all inputs agree on, ``merged_from`` (each
    input's path, point count and provenance), updated with ``provenance``.

    Raises:
        ResultFileError: no inputs, an unreadable input, inputs with different columns or units.
    """
    if not inputs:
        raise ResultFileError("merge needs at least one input file")
    parts, records = [], []
    for path in inputs:
        with ResultFile(path) as f:
            part = (f.inputs(), f.outputs(), f.records(), f.units(), f.descriptions(), f.code,
                    f.simulator)  # fmt: skip
            records.append({"path": str(path), "n_points": f.n_points, "provenance": f.provenance})
        if parts:
            first = parts[0]
            for i, what in enumerate(("inputs", "outputs", "records")):
                if set(part[i]) != set(first[i]):
                    raise ResultFileError(
                        f"{path}: {what} {sorted(part[i])} differ from {sorted(first[i])} in "
                        f"{inputs[0]}"
                    )
            if part[3] != first[3]:
                raise ResultFileError(f"{path}: units {part[3]} differ from {first[3]}")
        parts.append(part)
    first = parts[0]

    def join(i: int) -> dict[str, NDArray[Any]]:
        return {k: np.concatenate([p[i][k] for p in parts]) for k in first[i]}

    provs = [r["provenance"] for r in records]
    common = {k: v for k, v in provs[0].items() if all(p.get(k) == v for p in provs[1:])}
    return write_results(
        output, join(0), join(1), units=first[3], descriptions=first[4],
        records={k: list(v) for k, v in join(2).items()}, code=first[5], simulator=first[6],
        provenance={**common, "merged_from": records, **dict(provenance or {})},
        compression=compression, overwrite=overwrite,
    )  # fmt: skip
