"""Result tables: the output format of every simulator that is not a calorimeter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from twinforge.results import ResultFile, merge_result_files, write_results
from twinforge.simulation.base import OutputFormat, RunResult, Simulator
from twinforge.space import Points

__all__ = ["TableFormat"]


class TableFormat(OutputFormat):
    """One result file per job (:mod:`twinforge.results`): inputs, outputs with units, per-point
    records, the code's name and version."""

    @classmethod
    def write(
        cls,
        path: Path,
        simulator: Simulator,
        points: Points,
        result: RunResult,
        provenance: Mapping[str, Any],
        *,
        compression: str = "gzip",
        overwrite: bool = True,
    ) -> int:
        outputs = simulator.outputs()
        params = simulator.parameters()
        units: dict[str, str | None] = {o.name: o.unit for o in outputs}
        units |= {p.name: p.unit for p in params or []}
        write_results(
            path,
            points,
            {o.name: result.outputs[o.name] for o in outputs},
            units=units,
            descriptions={o.name: o.description for o in outputs if o.description},
            records=result.records,
            code=simulator.code(),
            simulator=simulator.name,
            provenance=provenance,
            compression=compression,
            overwrite=overwrite,
        )
        return len(next(iter(points.values())))

    @classmethod
    def merge(
        cls,
        paths: Sequence[Path],
        output: Path,
        provenance: Mapping[str, Any],
        *,
        compression: str = "gzip",
        overwrite: bool = False,
    ) -> int:
        merge_result_files(
            paths, output, provenance=provenance, compression=compression, overwrite=overwrite
        )
        with ResultFile(output) as f:
            return f.n_points

    @classmethod
    def describe(cls, path: Path) -> tuple[int, dict[str, Any]]:
        with ResultFile(path) as f:
            return f.n_points, f.provenance

    @classmethod
    def input_column(cls, path: Path, name: str) -> NDArray[Any]:
        with ResultFile(path) as f:
            return f.inputs()[name]

    @classmethod
    def observe(
        cls, path: Path
    ) -> tuple[dict[str, NDArray[Any]], dict[str, NDArray[Any]], dict[str, NDArray[Any]] | None]:
        """Every row: its inputs and scalar outputs (noise unknown: replicates tell it)."""
        with ResultFile(path) as f:
            outputs = {k: v for k, v in f.outputs().items()
                       if v.ndim == 1 and v.dtype.kind in "fiu"}  # fmt: skip
            return f.inputs(), outputs, None
