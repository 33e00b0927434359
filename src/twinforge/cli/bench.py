"""``twinforge bench``: time per shower of a model (PyTorch, ONNX Runtime) against Geant4."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from twinforge.cli._common import (
    catalog_option,
    console,
    no_tracking_option,
    options,
    progress,
    say,
    tracking_config,
    tracking_uri_option,
)
from twinforge.errors import ConfigError

if TYPE_CHECKING:
    from twinforge.tracking import TrackedRun


def bench(
    model: Path = typer.Argument(..., help="Model directory (or an exported .onnx file)."),
    batch_sizes: str = typer.Option(
        "1,100,10000", "--batch-sizes", help="Showers per call, comma-separated."
    ),
    backends: str = typer.Option("torch,onnx", "--backends", help="torch and/or onnx."),
    devices: str | None = typer.Option(
        None, "--devices", help="cpu and/or cuda (default: cpu, plus cuda when present)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Intra-op threads (default: the CPUs this process may use)."
    ),
    energy: str = typer.Option("10GeV", help="Incident energy ('10GeV', '500MeV')."),
    particle: str | None = typer.Option(
        None, help="e-, e+, gamma or a PDG id (default: e- if the model knows it)."
    ),
    geant4_showers: int = typer.Option(
        5, "--geant4-showers", min=0, help="Geant4 showers to time (0: no Geant4)."
    ),
    spectrum: str | None = typer.Option(
        None,
        help="Also time Geant4 over a log-uniform spectrum ('1GeV-64GeV', a test set's) and "
        "give speed-ups against its mean CPU time per shower.",
    ),
    spectrum_showers: int = typer.Option(
        32, "--spectrum-showers", min=1, help="Geant4 showers over --spectrum."
    ),
    block_size: int | None = typer.Option(
        None,
        "--block-size",
        min=1,
        help="Also time ONNX on the CPU cache-blocked: blocks of this many showers over "
        "--threads single-threaded sessions (64 suits small models).",
    ),
    detector: str | None = typer.Option(
        None, help="Geant4 detector, preset or YAML (default: the model's)."
    ),
    int8: bool = typer.Option(False, "--int8", help="Also time ONNX dynamic int8 quantisation."),
    fp16: bool = typer.Option(
        False, "--fp16", help="Also time float16 (ONNX matrix products; torch on GPUs)."
    ),
    reference: Path | None = typer.Option(
        None, "--reference", help="Shower file: validation-suite fidelity of each variant."
    ),
    warmup: int = typer.Option(2, min=0, help="Untimed calls per configuration."),
    min_repeats: int = typer.Option(3, "--min-repeats", min=1, help="Timed calls at least."),
    max_repeats: int = typer.Option(1000, "--max-repeats", min=1, help="Timed calls at most."),
    budget: float = typer.Option(
        3.0, min=0.0, help="Seconds of timed calls per configuration (after --min-repeats)."
    ),
    isolate: bool = typer.Option(
        True, "--isolate/--no-isolate", help="Each configuration in a fresh process."
    ),
    watts_per_core: float = typer.Option(
        5.0,
        "--watts-per-core",
        min=0.001,
        help="Power of one busy CPU core (W) for the energy per shower: CPU time x this.",
    ),
    classifier: Path | None = typer.Option(
        None,
        "--classifier",
        help="The model's validation metrics.json (low-level classifier against Geant4): its "
        "AUC goes into the result and the Pareto figure.",
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the JSON result."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the PNG plot."),
    pareto: Path | None = typer.Option(
        None,
        "--pareto",
        help="Write the PNG of AUC against CPU time per shower: this model (batch 1000), "
        "Geant4 and the published CaloChallenge points (needs --classifier).",
    ),
    catalog: str | None = catalog_option(),
    register: bool = typer.Option(
        True, "--register/--no-register", help="Record the result in the catalogue."
    ),
    tracking_uri: str | None = tracking_uri_option(),
    no_tracking: bool = no_tracking_option(),
) -> None:
    """Time per shower and throughput at each batch size, per backend and precision, with
    peak memory, against Geant4 on the same machine (speed-up per configuration).

    Warm-up calls are excluded; the median and the 16-84 % range over the repeats are shown.
    The run is logged to MLflow (settings, machine, ms/shower and speed-ups, the JSON result).
    """
    from twinforge.bench import Timing, benchmark, write_json, write_plot
    from twinforge.config import parse_energy
    from twinforge.tracking import default_workdir, start_run

    sizes = _ints(batch_sizes, "--batch-sizes")
    if pareto is not None and classifier is None:
        raise ConfigError("--pareto needs --classifier: the model's low-level AUC")
    if pareto is not None and 1000 not in sizes:
        raise ConfigError("--pareto places the model at batch 1000: add it to --batch-sizes")
    low = None
    if classifier is not None:  # read before the (long) run: a bad file fails now
        from twinforge.bench.pareto import classifier_low

        low = classifier_low(classifier)
    pdg = None
    if particle is not None:
        from twinforge.space import particle_pdg

        try:
            pdg = particle_pdg(particle)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    precisions = [p for p, on in (("int8", int8), ("float16", fp16)) if on]
    timing = Timing(
        warmup=warmup, min_repeats=min_repeats, max_repeats=max_repeats, budget_s=budget
    )
    energy_mev = parse_energy(energy)
    spectrum_mev = _spectrum(spectrum) if spectrum is not None else None
    bar = progress()  # started at the first step: input errors print no bar
    task = bar.add_task("benchmark", total=None)

    def step(what: str, done: int, total: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, description=what, completed=done, total=total)

    command = " ".join(["twinforge", *sys.argv[1:]])
    with start_run(
        tracking_config(tracking_uri, no_tracking),
        kind="bench",
        name=f"bench {model.name}",
        workdir=default_workdir(catalog),
        tags={"twinforge.command": command},
    ) as run:
        run.log_params(
            {"input": {"model": str(model.resolve()), "energy_MeV": energy_mev, "pdg": pdg,
                       "reference": None if reference is None else str(reference.resolve()),
                       "detector": detector, "geant4_showers": geant4_showers}}
        )  # fmt: skip
        try:
            result = benchmark(
                model,
                batch_sizes=sizes,
                backends=_words(backends),
                precisions=precisions,
                devices=_words(devices) if devices is not None else None,
                threads=threads,
                timing=timing,
                energy=energy_mev,
                pdg=pdg,
                geant4_showers=geant4_showers,
                spectrum=spectrum_mev,
                spectrum_showers=spectrum_showers,
                block_size=block_size,
                detector=detector,
                reference=reference,
                isolate=isolate,
                watts_per_core=watts_per_core,
                progress=step,
            )
        finally:
            bar.stop()
        if low is not None:
            result["fidelity"]["classifier_low"] = low
        files = []
        if output is not None:
            files.append(write_json(result, output))
        if plot is not None:
            files.append(write_plot(result, plot))
        if pareto is not None:
            files.append(_write_pareto(result, pareto))
        if not options.quiet:
            _print(result)
        for path in files:
            say(f"wrote {path}")
        track_result(run, result, files)
        if register:
            from twinforge.bench import register as register_result
            from twinforge.catalog import Catalog

            with Catalog.open(catalog) as cat:
                record = register_result(cat, result, files=files, mlflow=run.link())
            run.set_tags({"twinforge.record": record.global_id})
            say(f"registered {record.global_id}")
    if run.run_id is not None:
        say(f"MLflow run {run.run_id} ({run.tracking_uri})")


def _write_pareto(result: dict[str, Any], path: Path) -> Path:
    from twinforge.bench.pareto import geant4_point, model_point, published_points, write_pareto

    points = [p for p in (model_point(result), geant4_point(result)) if p is not None]
    if not any(p.source == "ours" for p in points):
        raise ConfigError("--pareto: no CPU timing at batch 1000 (is --devices cpu excluded?)")
    return write_pareto([*points, *published_points()], path)


def track_result(run: TrackedRun, result: dict[str, Any], files: list[Path]) -> None:
    """Log a benchmark result to ``run``: :func:`twinforge.bench.summary.bench_summary`'s params and
    metrics, and the files written (the JSON result, the plot) as artefacts; without
    ``--output`` the JSON result is logged all the same (``bench.json``)."""
    if not run.active:
        return
    import tempfile

    from twinforge.bench import write_json
    from twinforge.bench.summary import bench_summary

    params, metrics = bench_summary(result)
    run.log_params(params)
    run.log_metrics(metrics)
    for path in files:
        run.log_artifact(path)
    if not any(path.suffix == ".json" for path in files):
        with tempfile.TemporaryDirectory(prefix="twinforge-bench-") as tmp:
            run.log_artifact(write_json(result, Path(tmp) / "bench.json"))


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{what}: expected integers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{what}: expected integers >= 1, got {text!r}")
    return values


def _spectrum(text: str) -> tuple[float, float]:
    """``'1GeV-64GeV'`` -> ``(1000.0, 64000.0)`` MeV."""
    import re

    from twinforge.config import parse_energy

    parts = re.split(r"(?<![eE])-", text.replace(" ", ""))  # not the '-' of an exponent
    low, high = parts if len(parts) == 2 else ("", "")
    if not low or not high:
        raise ConfigError(f"--spectrum: expected LOW-HIGH such as '1GeV-64GeV', got {text!r}")
    try:
        bounds = parse_energy(low), parse_energy(high)
    except ConfigError as exc:
        raise ConfigError(f"--spectrum {text!r}: {exc}") from None
    if not 0 < bounds[0] < bounds[1]:
        raise ConfigError(f"--spectrum {text!r}: needs 0 < LOW < HIGH")
    return bounds


def _words(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if value == 0 or abs(value) >= 1e-2:
        return f"{value:.{digits}g}"
    return f"{value:.{max(digits - 2, 0)}e}"


def _print(result: dict[str, Any]) -> None:
    """The result as rich tables on stdout."""
    from rich.markup import escape
    from rich.table import Table

    model, machine, cond = result["model"], result["machine"], result["conditions"]
    settings = result["settings"]
    title = (
        f"{model['family']} model, {cond['energy_MeV'] / 1e3:g} GeV pdg {cond['pdg']}, on "
        f"{machine.get('cpu_model', '?')} ({machine.get('usable_cpus')} usable CPUs)"
    )
    gpu = any(row.get("gpu_peak_mib") is not None for row in result["results"])
    columns = ["configuration", "threads", "batch", "ms/shower", "16-84 %", "showers/s",
               "peak RSS MiB"]  # fmt: skip
    columns += ["GPU MiB"] if gpu else []
    spectrum = (result.get("geant4") or {}).get("spectrum")
    columns += ["x Geant4", *(["x Geant4 spectrum"] if spectrum else []), "J/shower"]
    table = Table(*columns, title=escape(title))
    for row in result["results"]:
        blocks = f" blocks of {row['block_size']}" if row.get("block_size") else ""
        cells = [
            f"{row['backend']} {row['precision']} {row['device']}{blocks}", str(row["threads"]),
            str(row["batch"]), _fmt(row["median_ms_per_shower"]),
            f"{_fmt(row['p16_ms_per_shower'], 2)}-{_fmt(row['p84_ms_per_shower'], 2)}",
            _fmt(row["showers_per_s"]), f"{row['peak_rss_mib']:.0f}",
        ]  # fmt: skip
        if gpu:
            cells.append(_fmt(row.get("gpu_peak_mib")))
        cells.append(_fmt(row.get("speedup_vs_geant4")))
        if spectrum:
            cells.append(_fmt(row.get("speedup_vs_geant4_spectrum")))
        cells.append(_fmt(row.get("joules_per_shower")))
        table.add_row(*cells)
    console.print(table)
    geant4 = result.get("geant4")
    if geant4:
        console.print(
            f"Geant4 ({escape(geant4['physics'])}, {escape(geant4['detector'])}, 1 thread): "
            f"{_fmt(geant4['median_s_per_shower'] * 1e3)} ms/shower median over "
            f"{geant4['n']} showers (16-84 %: {_fmt(geant4['p16_s_per_shower'] * 1e3)}-"
            f"{_fmt(geant4['p84_s_per_shower'] * 1e3)} ms), CPU "
            f"{_fmt(geant4['median_cpu_s_per_shower'] * 1e3)} ms (the speed-ups' numerator); "
            f"{_fmt(geant4['joules_per_shower'])} J/shower",
            highlight=False,
        )
        if spectrum:
            console.print(
                f"Geant4 over {spectrum['low_MeV'] / 1e3:g}-{spectrum['high_MeV'] / 1e3:g} GeV "
                f"(log-uniform, {spectrum['n']} showers, mean "
                f"{spectrum['mean_energy_MeV'] / 1e3:.3g} GeV): mean CPU "
                f"{_fmt(spectrum['mean_cpu_s_per_shower'] * 1e3)} ms/shower, "
                f"{_fmt(spectrum['cpu_s_per_gev'] * 1e3)} ms/GeV",
                highlight=False,
            )
    else:
        console.print("Geant4 not timed (--geant4-showers 0): no speed-ups", highlight=False)
    console.print(
        f"energy: CPU time x {settings['watts_per_core']:g} W per busy core (an estimate; every "
        f"thread of a model counted busy)",
        highlight=False,
    )
    console.print(
        f"timed: {settings['timed']}; warm-up {settings['warmup']} call(s), >= "
        f"{settings['min_repeats']} repeats, {settings['budget_s']:g} s per configuration",
        highlight=False,
    )
    low = result["fidelity"].get("classifier_low")
    if low:
        console.print(
            f"low-level classifier AUC {low['auc']:.4f} ({low['auc_min']:.4f}-"
            f"{low['auc_max']:.4f} over {low['seeds']} seeds, {low['budget']} budget, "
            f"{low['n_test']} held-out showers)",
            highlight=False,
        )
    cost = model.get("training_cost")
    if cost:
        console.print(
            f"training: {cost['wall_s'] / 3600:.2f} h wall in {cost['parts']} part(s), "
            f"{cost['core_hours']:.3g} core-h, {cost['gpu_hours']:.3g} GPU-h, "
            f"{cost['steps']} steps",
            highlight=False,
        )
    same = result["fidelity"].get("same_noise", {})
    if same:
        fid = Table(
            "variant", "showers", "|dE_tot/E_tot| median", "max", "voxel L1", "zero flips",
            "sep. power E_tot", title="fidelity cost vs float32 (same noise)",
        )  # fmt: skip
        for label, f in same.items():
            fid.add_row(
                label, str(f["n"]), _fmt(f["etot_rel_diff_median"], 2),
                _fmt(f["etot_rel_diff_max"], 2), _fmt(f["voxel_rel_l1"], 2),
                _fmt(f["zero_flips"], 2), _fmt(f["separation_etot"], 2),
            )  # fmt: skip
        console.print(fid)
    ref = result["fidelity"].get("reference")
    if ref:
        if ref.get("error"):
            console.print(f"fidelity vs {escape(ref['reference'])}: {escape(ref['error'])}")
        else:
            console.print(f"fidelity vs {escape(ref['reference'])} ({ref['n']} showers):")
            for label, metrics in ref["metrics"].items():
                scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
                text = ", ".join(f"{k} {_fmt(v)}" for k, v in list(scalars.items())[:6])
                console.print(f"  {escape(label)}: {escape(text) or 'see the JSON'}")
    for s in result.get("skipped", []):
        console.print(
            f"skipped {s['backend']} {s['precision']} {s['device']}: {escape(s['reason'])}",
            highlight=False,
        )
