"""``twinforge simulate`` and ``twinforge convert``: reference showers into shower files."""

from __future__ import annotations

from pathlib import Path

import typer

from twinforge.cli._common import progress, say
from twinforge.errors import ConfigError


def _energy_space(energy: str, distribution: str) -> dict[str, object]:
    """``"10GeV"`` (fixed) or ``"1GeV:64GeV"`` (a range) as an EnergyRange mapping."""
    if ":" in energy:
        low, _, high = energy.partition(":")
        return {"min": low, "max": high, "distribution": distribution}
    return {"values": [energy]}


def simulate(
    config: Path | None = typer.Option(
        None, "--config", help="A 'kind: simulate' YAML instead of the options below."
    ),
    detector: str = typer.Option("siw", help="Preset name (siw, pbwo4, tiny) or detector YAML."),
    particle: str = typer.Option("e-", help="e-, e+, gamma (or a PDG id)."),
    energy: str = typer.Option(
        "10GeV", help="Fixed ('10GeV') or a range ('1GeV:64GeV'); units MeV/GeV/TeV."
    ),
    distribution: str = typer.Option("log-uniform", help="For ranges: log-uniform or uniform."),
    theta: float = typer.Option(0.0, help="Polar angle of incidence, rad."),
    phi: float = typer.Option(0.0, help="Azimuth of incidence, rad."),
    n: int = typer.Option(100, "--n", min=1, help="Number of showers."),
    seed: int = typer.Option(0, min=0, help="Random seed (same seed, same showers)."),
    physics: str = typer.Option(
        "auto", help="'auto', 'datafree-em', or a Geant4 list name (needs the data sets)."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Shower file to write."),
    root: Path | None = typer.Option(None, "--root", help="Also write Geant4's ROOT ntuple."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
) -> None:
    """Simulate showers with Geant4 into a shower file (HDF5).

    For large samples use a campaign (parallel, resumable, catalogued).
    """
    from twinforge.campaign.config import SimulateConfig
    from twinforge.campaign.simulate import run_simulation
    from twinforge.config import load_config, validate_config

    if config is not None:
        cfg = load_config(config, SimulateConfig)
        if output is not None:
            cfg = cfg.model_copy(update={"output": str(output)})
    else:
        if output is None:
            raise ConfigError("give --output FILE (or --config FILE)")
        cfg = validate_config(
            SimulateConfig,
            {
                "detector": detector, "n_events": n, "seed": seed, "physics": physics,
                "output": str(output), "overwrite": overwrite,
                "root_output": str(root) if root else None,
                "space": {
                    "particles": [particle], "energy": _energy_space(energy, distribution),
                    "theta": {"values": [theta]}, "phi": {"values": [phi]},
                },
            },
            "simulate options",
        )  # fmt: skip
    with progress() as bar:
        task = bar.add_task(f"simulating {cfg.detector}", total=cfg.n_events)
        path = run_simulation(cfg, on_progress=lambda done, total: bar.update(task, completed=done))
    say(f"wrote {path}: {cfg.n_events} showers")


def convert(
    inputs: list[Path] = typer.Argument(..., help="ROOT files written by the Geant4 backend."),
    output: Path = typer.Option(..., "--output", "-o", help="Shower file (HDF5) to write."),
    detector: str = typer.Option("siw", help="Detector the ROOT files were simulated with."),
    tree: str = typer.Option("showers", help="Name of the ntuple."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
) -> None:
    """Convert Geant4 ROOT ntuples into one shower file (Geant4 -> ROOT -> HDF5)."""
    from twinforge.simulation.convert import convert_root_files

    path = convert_root_files(inputs, output, detector=detector, tree=tree, overwrite=overwrite)
    say(f"wrote {path}")
