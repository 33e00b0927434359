"""``twinforge detector``: list and describe detector configs and readouts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from twinforge.cli._common import console
from twinforge.detector import load_detector, preset_names

app = typer.Typer(help="Detector geometries and readouts.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """List the detectors shipped with twinforge."""
    table = Table("name", "geometry", "readout", "description")
    for name in preset_names():
        det = load_detector(name)
        table.add_row(name, det.geometry.kind, det.binning().describe(), det.description)
    console.print(table)


@app.command("show")
def show(
    detector: str = typer.Argument(..., help="Preset name (siw, pbwo4, tiny) or YAML file."),
    xml: Path | None = typer.Option(None, "--xml", help="Also write the CaloChallenge XML here."),
) -> None:
    """Describe a detector and its readout."""
    det = load_detector(detector)
    readout = det.binning()
    if xml is not None:  # write first: a failure leaves neither output nor a half-printed report
        from twinforge.showers.io import atomic_write_text

        atomic_write_text(xml, readout.to_xml())
    console.print(f"[bold]{det.name}[/]: {det.description}")
    console.print(f"geometry: {det.geometry.model_dump()}")
    console.print(f"depth: {det.geometry.depth:g} mm, transverse size: {det.transverse_size:g} mm")
    console.print(f"readout: {readout.describe()}, threshold {det.readout.threshold:g} MeV")
    if xml is not None:
        console.print(f"wrote {xml}")
