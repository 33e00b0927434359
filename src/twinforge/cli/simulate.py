"""``twinforge simulate`` and ``twinforge convert``: reference showers into shower files."""

from __future__ import annotations

from pathlib import Path

import typer

from twinforge.cli._common import progress, say
from twinforge.errors import ConfigError


def _energy_space(energy: str) -> object:
    """``"10GeV"`` (fixed) or ``"1GeV:64GeV"`` (a range)."""
    if ":" in energy:
        low, _, high = energy.partition(":")
        return {"min": low, "max": high}
    return [energy]


def _assignments(items: list[str], what: str) -> dict[str, object]:
    """``NAME=VALUE`` pairs, values read as YAML (numbers, lists, mappings)."""
    import yaml

    out: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{what} {item!r}: write NAME=VALUE")
        try:
            out[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[name.strip()] = value
    return out


def simulate(
    config: Path | None = typer.Option(
        None, "--config", help="A 'kind: simulate' YAML instead of the options below."
    ),
    simulator: str = typer.Option(
        "geant4", "--simulator", "-s", help="An installed simulator (twinforge simulators)."
    ),
    option: list[str] = typer.Option(
        [], "--option", "-O", help="Simulator option NAME=VALUE (repeatable)."
    ),
    param: list[str] = typer.Option(
        [],
        "--param",
        "-p",
        help="Parameter NAME=VALUE: a constant, [a, b] values, {min: .., max: ..} (repeatable).",
    ),
    detector: str | None = typer.Option(
        None, help="Calorimeters: preset name (siw, pbwo4, tiny) or detector YAML."
    ),
    particle: str | None = typer.Option(None, help="Calorimeters: e-, e+, gamma (or a PDG id)."),
    energy: str | None = typer.Option(
        None, help="Calorimeters: fixed ('10GeV') or a range ('1GeV:64GeV', log scale)."
    ),
    theta: float | None = typer.Option(None, help="Calorimeters: polar angle, rad."),
    phi: float | None = typer.Option(None, help="Calorimeters: azimuth, rad."),
    n: int = typer.Option(100, "--n", min=1, help="Number of points (showers)."),
    seed: int = typer.Option(0, min=0, help="Random seed (same seed, same results)."),
    physics: str | None = typer.Option(
        None, help="Geant4: 'auto', 'datafree-em', or a list name (needs the data sets)."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="File (HDF5) to write."),
    root: Path | None = typer.Option(None, "--root", help="Geant4: also write the ROOT ntuple."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
) -> None:
    """Simulate points of any installed simulator into one file (HDF5); Geant4 by default.

    Parameters not given take the simulator's defaults (calorimeters: electrons, 1-64 GeV,
    normal incidence). For large samples use a campaign (parallel, resumable, catalogued).
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
        options = _assignments(option, "--option")
        for key, value in (("detector", detector), ("physics", physics), ("root_output", root)):
            if value is not None:
                options[key] = str(value)
        space = _assignments(param, "--param")
        for key, value in (("particle", particle), ("theta", theta), ("phi", phi)):
            if value is not None:
                space[key] = [value]
        if energy is not None:
            space["energy"] = _energy_space(energy)
        cfg = validate_config(
            SimulateConfig,
            {
                "simulator": {"name": simulator, **options}, "space": space, "n_points": n,
                "seed": seed, "output": str(output), "overwrite": overwrite,
            },
            "simulate options",
        )  # fmt: skip
    sim = cfg.make_simulator()
    with progress() as bar:
        task = bar.add_task(f"simulating ({sim.name})", total=cfg.n_points)
        path = run_simulation(cfg, on_progress=lambda done, total: bar.update(task, completed=done))
    say(f"wrote {path}: {cfg.n_points} {sim.point_noun}")


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


def simulators(
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The installed simulators (entry points 'twinforge.simulators'): options, parameters,
    outputs. Parameters and outputs that depend on required options are shown as such."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from twinforge.cli._common import console
    from twinforge.simulation import registry

    rows = registry.describe()
    if json_out:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table("simulator", "options", "parameters", "outputs", show_lines=True)
    for row in rows:
        if "error" in row:
            table.add_row(escape(str(row["name"])), escape(str(row["error"])), "", "")
            continue

        def cell(value: object) -> str:
            return escape("\n".join(value) if isinstance(value, list) else str(value))

        options = [f"{k}: {v}" for k, v in row["options"].items()]  # type: ignore[attr-defined]
        table.add_row(
            f"[bold]{escape(str(row['name']))}[/]\n{escape(str(row['summary']))}",
            cell(options or ["none"]),
            cell(row["parameters"]),
            cell(row["outputs"]),
        )
    console.print(table)
