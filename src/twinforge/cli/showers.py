"""``twinforge showers``: inspect, validate, merge shower files; synthetic test files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from twinforge.cli._common import console, progress, say
from twinforge.errors import ShowerFileError

app = typer.Typer(help="Shower files: inspect, validate, merge.", no_args_is_help=True)


@app.command("inspect")
def inspect(
    file: Path = typer.Argument(..., help="Shower file (HDF5)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarise a shower file: events, binning, energies, provenance (reads conditions only)."""
    from twinforge.showers import ShowerFile

    with ShowerFile(file) as f:
        cond = f.conditions()
        summary = {
            "path": str(file),
            "events": f.n_events,
            "voxels": f.n_voxels,
            "binning": f.readout.describe() if f.readout else "unknown (no binning_xml)",
            "incident_energy_MeV": [float(cond.energy.min()), float(cond.energy.max())]
            if len(cond)
            else None,
            "particles": sorted({int(p) for p in np.unique(cond.pdg)}),
            "attributes": {
                k: v for k, v in f.attrs.items() if k not in ("binning_xml", "provenance")
            },
            "provenance": f.provenance,
        }
    if as_json:
        console.print_json(data=summary)
        return
    table = Table(show_header=False, box=None)
    for key, value in summary.items():
        text = json.dumps(value, indent=1) if isinstance(value, dict | list) else str(value)
        table.add_row(f"[bold]{key}[/]", text)
    console.print(table)


@app.command("validate")
def validate(
    files: list[Path] = typer.Argument(..., help="Shower files to check."),
    batch_size: int = typer.Option(4096, min=1, help="Events read at a time."),
) -> None:
    """Read every event of each file and check shapes, dtypes, NaN/inf and negative energies.

    Exits with code 1 and names the first problem of each bad file.
    """
    from twinforge.showers import ShowerFile

    failures = []
    with progress() as bar:
        for path in files:
            try:
                with ShowerFile(path) as f:
                    task = bar.add_task(path.name, total=f.n_events)
                    for cond, _ in f.iter_batches(batch_size):
                        bar.advance(task, len(cond))
            except ShowerFileError as exc:
                failures.append(str(exc))
    for message in failures:
        console.print(f"[red]invalid:[/] {message}", highlight=False)
    if failures:
        raise ShowerFileError(f"{len(failures)} of {len(files)} file(s) invalid")
    say(f"[green]ok[/]: {len(files)} file(s) valid")


@app.command("merge")
def merge(
    output: Path = typer.Argument(..., help="Merged file to write."),
    inputs: list[Path] = typer.Argument(..., help="Shards to merge (same binning)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
) -> None:
    """Concatenate shower files with the same binning (streaming, atomic)."""
    from twinforge.showers import ShowerFile, merge_shower_files

    merge_shower_files(inputs, output, overwrite=overwrite)
    with ShowerFile(output) as f:
        say(f"wrote {output}: {f.n_events} events from {len(inputs)} file(s)")


@app.command("split")
def split(
    inputs: list[Path] = typer.Argument(..., help="Shower files, in training order."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write."),
    which: str = typer.Option("val", "--split", help="'val' (held out by training) or 'train'."),
    val_fraction: float = typer.Option(0.1, min=0.0, max=0.5, help="As data.val_fraction."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
) -> None:
    """Write one split (training's rule) of shower files: the held-out reference to validate on."""
    from twinforge.errors import TwinforgeError
    from twinforge.training.data import write_split

    if which not in ("val", "train"):
        raise TwinforgeError(f"--split must be 'val' or 'train', not {which!r}")
    n = write_split(inputs, output, split=which, val_fraction=val_fraction, overwrite=overwrite)  # type: ignore[arg-type]
    say(f"wrote {output}: {n} events of the {which} split (val_fraction {val_fraction})")


@app.command("synthetic")
def synthetic(
    output: Path = typer.Option(..., "--output", "-o", help="File to write."),
    detector: str = typer.Option("tiny", help="Preset name or detector YAML."),
    n: int = typer.Option(1000, "--n", min=1, help="Number of showers."),
    energy_min: str = typer.Option("1GeV", help="Lowest incident energy (unit optional, MeV)."),
    energy_max: str = typer.Option("64GeV", help="Highest incident energy."),
    seed: int = typer.Option(12345, help="Random seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
) -> None:
    """Write showers from the synthetic TEST generator (parametrised, not Geant4)."""
    from twinforge.config import validate_config
    from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file

    cfg = validate_config(
        SyntheticConfig,
        {
            "detector": detector,
            "n_events": n,
            "energy_min": energy_min,
            "energy_max": energy_max,
            "seed": seed,
        },
        "synthetic options",
    )
    write_synthetic_file(cfg, output, overwrite=overwrite)
    say(f"wrote {output}: {n} synthetic test showers ({cfg.detector})")
