"""Published CaloChallenge 2022 numbers, for comparison in validation reports.

The package ships one small CSV per CaloChallenge dataset under ``validation/data/``
(``calochallenge_{1-photons,1-pions,2,3}.csv``): the scalar columns of the official result
tables (arXiv:2410.21611) — submission name, parameter count, KPD and FPD (both times 1e3, as
published) with their standard deviations, the AUCs of the low- and high-level binary
classifiers with theirs, and the generation time per shower (ms) on CPU and GPU for batch sizes
1, 100 and 10000. The official tables are much larger because of their per-layer list columns.
The compact files were made once from the official ones with::

    python -c "from pathlib import Path; from twinforge.validation.published import \\
        compact_all; compact_all(Path('../shared/calochallenge/results'))"

The ``GEANT4`` row of each table compares two independent Geant4 samples: it is the noise floor
of the published metrics.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Final

__all__ = [
    "COLUMNS",
    "DATASETS",
    "compact_all",
    "compact_table",
    "load_published",
]

log = logging.getLogger(__name__)

DATASETS: Final[dict[str, str]] = {
    "1-photons": "CaloChallenge_results_ds1_photons.csv",
    "1-pions": "CaloChallenge_results_ds1_pions.csv",
    "2": "CaloChallenge_results_ds2.csv",
    "3": "CaloChallenge_results_ds3.csv",
}
"""CaloChallenge dataset key -> file name of its official result table."""

COLUMNS: Final[dict[str, str]] = {
    "submission": "submission name",
    "parameters": "Parameters generation",
    "kpd_e3": "KPD * 1e3",
    "kpd_e3_std": "KPD * 1e3 std",
    "fpd_e3": "FPD * 1e3",
    "fpd_e3_std": "FPD * 1e3 std",
    "auc_low": "binary cls low",
    "auc_low_std": "binary cls low std",
    "auc_high": "binary cls high",
    "auc_high_std": "binary cls high std",
    "time_cpu_1_ms": "time CPU 1",
    "time_cpu_100_ms": "time CPU 100",
    "time_cpu_10000_ms": "time CPU 10000",
    "time_gpu_1_ms": "time GPU 1",
    "time_gpu_100_ms": "time GPU 100",
    "time_gpu_10000_ms": "time GPU 10000",
}
"""Compact column name -> column of the official table (times: ms per shower)."""


def _file_name(dataset: str) -> str:
    return f"calochallenge_ds{dataset}.csv"


def load_published(dataset: str | None) -> list[dict[str, str | float | None]]:
    """The published rows of a CaloChallenge dataset (``"2"``, ``"1-photons"``, ...).

    Returns one dict per submission with the keys of :data:`COLUMNS`: ``submission`` is text,
    every other value a float or None where the table has no number. Unknown or None
    ``dataset`` gives an empty list.
    """
    if dataset is None or dataset not in DATASETS:
        return []
    source = resources.files("twinforge.validation").joinpath("data", _file_name(dataset))
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        log.warning("published CaloChallenge table for dataset %s is missing", dataset)
        return []
    rows = []
    for raw in csv.DictReader(text.splitlines()):
        row: dict[str, str | float | None] = {"submission": raw["submission"]}
        for key in COLUMNS:
            if key != "submission":
                row[key] = _number(raw.get(key, ""))
        rows.append(row)
    return rows


def _number(text: str | None) -> float | None:
    """A float from a table cell; None for empty or non-numeric cells (e.g. list columns)."""
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def compact_table(source: Path, dest: Path) -> int:
    """Write the scalar columns of an official result table ``source`` to ``dest``.

    Returns the number of rows written.
    """
    csv.field_size_limit(1 << 30)  # the official list columns are long
    with source.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with dest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(list(COLUMNS))
        for row in rows:
            writer.writerow([_cell(row, official) for official in COLUMNS.values()])
    return len(rows)


def _cell(row: Mapping[str, str], column: str) -> str:
    value = (row.get(column) or "").strip()
    if column == "submission name":
        return value
    number = _number(value)
    return "" if number is None else repr(round(number, 6))


def compact_all(results_dir: Path, dest_dir: Path | None = None) -> None:
    """Regenerate every compact table from the official ``CaloChallenge_results_*.csv``."""
    dest_dir = dest_dir or Path(__file__).with_name("data")
    dest_dir.mkdir(exist_ok=True)
    for key, name in DATASETS.items():
        n = compact_table(results_dir / name, dest_dir / _file_name(key))
        log.info("dataset %s: %d rows", key, n)
