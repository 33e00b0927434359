"""The validation report: ``metrics.json`` and a self-contained ``report.html``.

The HTML page needs no network and no other file: every figure is a PNG embedded as a
``data:`` URI, the style sheet and a three-line script (it counts the images that loaded, for the
headless-browser test) are inline. Sections, top to bottom:

1. Summary: classifier AUCs (low-level voxels, high-level observables), FPD and KPD with their
   errors, each next to its *noise floor* (the same metric between two halves of the reference).
2. Warnings and metrics that could not be computed, with the reason.
3. Per incident-energy bin: the same metrics, plus the separation power of E_tot/E_inc.
4. Separation powers of every observable (overall, worst layer) and per layer.
5. Published CaloChallenge 2022 numbers for the same readout, when the readout is one of the
   challenge's (:mod:`twinforge.validation.published`).
6. Histograms, reference filled, generated as a line, with a generated/reference ratio panel:
   E_tot/E_inc (all energies and per energy bin), energy per layer, centres and widths of energy
   in x and y per layer, sparsity per layer, the voxel energy spectrum, and the longitudinal and
   radial profiles. Histograms are normalised to unit sum; the first and last bins hold the
   under- and overflow; the separation power quoted on a panel is the metric's own number
   (computed on the metric's binning), its noise floor in brackets.
7. Average shower per layer (polar r-alpha images) for reference and generated, and their
   relative difference.
8. Provenance of both inputs, the configuration and the timings (collapsible).

Readouts with many layers show a selection of layers in the per-layer figures: every k-th
non-empty layer with k = ceil(n / 9), starting at the first (every 5th for the 45 layers of
CaloChallenge dataset 2). Tables always cover every layer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinforge.detector.readout import Readout
from twinforge.showers.io import commit, temporary_name
from twinforge.validation.report._common import MAX_LAYER_PANELS, ShowerSample, select_layers
from twinforge.validation.report.html import headline_metrics, render_report

if TYPE_CHECKING:
    from twinforge.validation.suite import ValidationResult

__all__ = [
    "MAX_LAYER_PANELS",
    "ShowerSample",
    "headline_metrics",
    "render_report",
    "select_layers",
    "write_report",
]

log = logging.getLogger(__name__)


def write_report(
    directory: str | Path,
    result: ValidationResult,
    readout: Readout,
    *,
    reference: ShowerSample,
    generated: ShowerSample,
    published: Sequence[Mapping[str, Any]] | None = None,
    title: str = "twinforge validation report",
) -> Path:
    """Write ``metrics.json`` and ``report.html`` into ``directory``; return the HTML's path.

    Both files are rendered in memory first, then written under temporary names and renamed
    (report last): an exception leaves no partial file, neither of the two new files, and no
    directory this call created.

    Args:
        directory: the report directory (created when missing).
        result: the metrics and observables of :func:`~twinforge.validation.run_validation`.
        readout: the binning of both samples.
        reference: mean shower and voxel energies of the reference sample.
        generated: the same for the generated sample.
        published: CaloChallenge rows to compare with; None looks them up for the readout's
            CaloChallenge dataset (none when it is not one); ``[]`` leaves the section out.
        title: the page title.
    """
    directory = Path(directory)
    page = render_report(
        result, readout, reference=reference, generated=generated, published=published, title=title
    )
    texts = {directory / "metrics.json": result.to_json(), directory / "report.html": page}
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    temporaries: list[Path] = []
    committed: list[Path] = []
    try:
        for final, text in texts.items():
            tmp = temporary_name(final)
            temporaries.append(tmp)
            tmp.write_text(text, encoding="utf-8")
        for tmp, final in zip(temporaries, texts, strict=True):
            commit(tmp, final)
            committed.append(final)
    except BaseException:
        for path in (*temporaries, *committed):
            path.unlink(missing_ok=True)
        if created and not any(directory.iterdir()):
            directory.rmdir()
        raise
    log.info("wrote %s", directory / "report.html")
    return directory / "report.html"
