"""``twinforge demo``: the end-to-end demo on the embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from twinforge.cli._common import console, err_console, options, progress
from twinforge.errors import ConfigError

if TYPE_CHECKING:
    from twinforge.demo import DemoResult


def demo(
    workdir: Path = typer.Option(Path("demo-output"), help="Directory for every demo output."),
    full: bool = typer.Option(
        False,
        "--full",
        help="The realistic run instead: 20000 + 10000 Geant4 showers (1-64 GeV), the "
        "flow-matching model for 35 minutes, the default validation budget, batches up to "
        "10000. About 2.5 hours on 2 cores.",
    ),
    n: int | None = typer.Option(
        None, "--n", min=1, help="Training showers (the reference campaign scales alike)."
    ),
    settings: list[str] = typer.Option(
        [],
        "--set",
        metavar="KEY=VALUE",
        help="Change one size of the profile, e.g. --set max_minutes=10 (repeatable; YAML "
        "values; the keys are listed in docs/demo.md).",
    ),
) -> None:
    """Run the whole chain on the embedded defaults and say where the results are.

    Geant4 campaigns (siw, e- 1-16 GeV, Dask): 1600 training + 1500 held-out reference showers.

    Catalogue + checksums -> VAE (3 min) -> report.html -> ONNX -> benchmark -> an Xsuite
    accelerator campaign (256 points) -> RO-Crates.

    About 10 minutes on 2 cores; the quality is modest at this size (--full: the realistic run).
    """
    from twinforge.demo import FULL, QUICK, run_demo

    profile = FULL if full else QUICK
    if n is not None:
        profile = profile.scaled(n)
    if settings:
        profile = profile.with_texts(_pairs(settings))

    def announce(name: str) -> None:
        if not options.quiet:
            err_console.print(f"[bold cyan]>>[/] {name}")

    with progress() as bar:
        task = bar.add_task("starting", total=None)

        def update(what: str, done: int | None, total: int | None) -> None:
            bar.update(task, description=what[:60], completed=done or 0, total=total)

        result = run_demo(workdir, profile=profile, on_step=announce, on_progress=update)
        bar.update(task, description="done", completed=1, total=1)
    if not options.quiet:
        table = Table("step", "seconds", title=f"twinforge demo ({profile.name})")
        for name, seconds in result.steps.items():
            table.add_row(name, f"{seconds:.1f}")
        table.add_row("total", f"{sum(result.steps.values()):.1f}")
        console.print(table)
    _print_outputs(result)
    _print_figures(result)
    for note in result.notes:
        say(f"[yellow]note:[/] {note}")
    say(f"open the report: [bold]{result.report}[/]")
    # the last line: the catalogue of everything above, in a browser
    say(f"browse the catalogue: [bold]twinforge serve {result.catalog}[/] (then open "
        "http://127.0.0.1:8000/)")  # fmt: skip


def say(message: str) -> None:
    """A result line on stdout (unless ``--quiet``), never wrapped: paths stay whole."""
    if not options.quiet:
        console.print(message, soft_wrap=True)


def _pairs(settings: list[str]) -> dict[str, str]:
    """``["a=1", "b=[1, 2]"]`` -> ``{"a": "1", "b": "[1, 2]"}``."""
    pairs = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def _print_outputs(result: DemoResult) -> None:
    """Where everything is, with the catalogue IDs."""
    ids = f"datasets {result.dataset_id} (training), {result.reference_id} (reference); model "
    ids += f"{result.model_id}; evaluations {result.evaluation_id} (validation), "
    ids += f"{result.bench_id} (benchmark)"
    say(f"shower files   : {result.shower_file}")
    say(f"                 {result.reference_file} (held-out reference)")
    say(f"catalogue      : {result.catalog} ({ids})")
    say(f"model          : {result.model_dir}")
    say(f"report         : {result.report}")
    say(f"ONNX           : {result.onnx}")
    say(f"benchmark      : {result.bench_json}, {result.bench_plot}")
    if result.xsuite_file is not None:
        say(f"Xsuite results : {result.xsuite_file} (dataset {result.xsuite_id})")
    if result.surrogate_dir is not None:
        say(f"surrogate      : {result.surrogate_dir} (model {result.surrogate_id})")
    crates = ", ".join(str(path) for path in result.crates.values())
    say(f"RO-Crates      : {crates}")


def _print_figures(result: DemoResult) -> None:
    """The key figures: Geant4, the shower response, the validation, the speed."""
    f = result.figures
    say(f"physics        : {f['physics']}")
    say(f"Geant4 campaign: {f['showers_per_second']:.1f} showers/s ({f['executor']})")
    model = f.get("visible_fraction_model") or {}
    parts = [
        f"{label}: {value:.4f}" + (f" (model {model[label]:.4f})" if model.get(label) else "")
        for label, value in f["visible_fraction"].items()
        if value is not None
    ]
    say(f"E_Si / E_inc   : {', '.join(parts)}")
    training = f.get("training") or {}
    say(
        f"training       : {training.get('steps')} steps, {training.get('epochs')} epochs, best "
        f"validation loss {_num(training.get('best_val_loss'))}"
    )
    n_ref, n_gen = f.get("validation_showers", (0, 0))
    budget = f.get("classifier_budget")
    label = (
        ""
        if budget in (None, "challenge", "converged")
        else (f"; classifiers: {budget} budget, NOT COMPARABLE with published figures")
    )
    say(f"validation     : {n_gen} generated vs {n_ref} held-out reference showers{label}")
    for label, value, floor in f.get("validation", []):
        say(f"  {label:<28}: {value}  (Geant4 vs Geant4: {floor})")
    say(_speed_line(f))
    xs = f.get("xsuite")
    if xs:
        say(
            f"Xsuite campaign: {xs['points']} points at {xs['points_per_second']:.1f} points/s; "
            f"{100 * xs['stable_fraction']:.0f} % with stable optics, tunes "
            f"{xs['qx_range'][0]:.3f}-{xs['qx_range'][1]:.3f}, median transmission "
            f"{xs['transmission_median']:.3f}"
        )
    ad = f.get("adaptive")
    if ad:
        say(_adaptive_line(ad))


def _adaptive_line(ad: dict[str, Any]) -> str:
    """The adaptive campaign's surrogate error against Sobol's on the same budget."""
    n, mm = ad["points"], 1e3  # beam sizes in m, printed in mm
    line = (
        f"adaptive       : {ad['output']} surrogate RMSE {ad['rmse_adaptive'] * mm:.3g} mm "
        f"after {n} simulations; Sobol {ad['rmse_sobol'] * mm:.3g} mm after {n}"
    )
    matched = ad.get("sobol_points_to_match")
    if matched is None:
        up_to = ad["sobol_checked_up_to"]
        return line + f"; Sobol does not match it within {up_to} (saving >= {up_to / n:.1f}x)"
    return line + f"; Sobol needs {matched} to match it ({matched / n:.2g}x the simulations)"


def _speed_line(f: dict[str, Any]) -> str:
    """Time per shower of the model at the largest batch, Geant4's, and the speed-up."""
    if f.get("model_ms_per_shower") is None:
        return "speed          : not measured"
    energy = (f.get("bench_energy_MeV") or 0.0) / 1000
    line = (
        f"speed          : {f['model_ms_per_shower']:.3g} ms/shower ({f['bench_backend']}, "
        f"{f['bench_threads']} threads, batch {f['bench_batch']}, {energy:g} GeV)"
    )
    if f.get("geant4_s_per_shower") is None or f.get("speedup") is None:
        return line + "; Geant4 not timed"
    return (
        line + f" vs Geant4 {1e3 * f['geant4_s_per_shower']:.3g} ms/shower (1 thread): "
        f"speed-up {f['speedup']:.3g}x"
    )


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4g}"
