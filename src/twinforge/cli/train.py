"""``twinforge train`` and ``twinforge sample``: fit a model, generate showers from it."""

from __future__ import annotations

from pathlib import Path

import typer

from twinforge.cli._common import catalog_option, options, say
from twinforge.errors import ConfigError


def train(
    config: Path = typer.Argument(..., help="Training YAML (kind: train)."),
    catalog: str | None = catalog_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the model directory."),
) -> None:
    """Train a model on shower files; write and register its directory.

    Started again after a kill with the same config, it resumes from its last checkpoint.
    """
    from twinforge.catalog import Catalog
    from twinforge.config import load_config
    from twinforge.training.train import TrainConfig, run_training

    cfg = load_config(config, TrainConfig)
    with Catalog.open(catalog) as cat:
        out = run_training(cfg, catalog=cat, quiet=options.quiet, overwrite=overwrite)
    say(f"wrote model {out}")


def sample(
    model: Path = typer.Argument(..., help="Model directory."),
    energy: str | None = typer.Option(
        None, help="Fixed ('10GeV') or a log-uniform range ('1GeV:64GeV')."
    ),
    n: int = typer.Option(1000, "--n", min=1, help="Number of showers."),
    conditions_from: Path | None = typer.Option(
        None,
        "--conditions-from",
        help="Sample one shower at each shower's conditions (energy, particle, angles) of this "
        "shower file, e.g. a Geant4 reference; replaces --energy, --n and the others.",
    ),
    particle: str = typer.Option("e-", help="e-, e+, gamma or a PDG id."),
    theta: float = typer.Option(0.0, help="Polar angle, rad."),
    phi: float = typer.Option(0.0, help="Azimuth, rad."),
    seed: int = typer.Option(0, min=0, help="Random seed."),
    output: Path = typer.Option(..., "--output", "-o", help="Shower file to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
) -> None:
    """Generate showers with a trained model into a shower file."""
    import numpy as np

    from twinforge.config import parse_energy
    from twinforge.detector.readout import Readout
    from twinforge.models import Surrogate
    from twinforge.showers import Conditions, write_showers
    from twinforge.space import particle_pdg

    if (energy is None) == (conditions_from is None):
        raise ConfigError("give the conditions: --energy (with --n) or --conditions-from FILE")
    surrogate = Surrogate.load(model)
    rng = np.random.default_rng(seed)
    if conditions_from is not None:
        from twinforge.showers import ShowerFile

        with ShowerFile(conditions_from) as f:
            cond = f.conditions()
        n = len(cond)
    elif ":" in (energy := str(energy)):
        low_text, _, high_text = energy.partition(":")
        low, high = parse_energy(low_text), parse_energy(high_text)
        energies = np.exp(rng.uniform(np.log(low), np.log(high), n))
    else:
        energies = np.full(n, parse_energy(energy))
    if conditions_from is None:
        try:
            pdg = particle_pdg(particle)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        cond = Conditions.make(energies, pdg, theta, phi)
    showers = surrogate.sample(cond.energy, cond.pdg, cond.theta, cond.phi, seed=seed)
    provenance = {
        "simulator": f"twinforge {surrogate.family} model",
        "model": str(model.resolve()),
        "seed": seed,
        "model_provenance": surrogate.provenance,
    }
    if conditions_from is not None:
        provenance["conditions_from"] = str(conditions_from)
    readout = Readout.from_xml(surrogate.binning_xml)
    write_showers(output, readout, cond, showers, provenance, overwrite=overwrite)
    say(f"wrote {output}: {n} showers from {surrogate.family} model {model}")
