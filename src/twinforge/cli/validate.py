"""``twinforge validate``: compare generated showers with reference showers, write a report.

A thin wrapper around :func:`twinforge.validation.evaluate` (reads both shower files or samples
a model at the reference's conditions, runs the suite, writes ``metrics.json`` and the
self-contained ``report.html``) that registers the evaluation in the catalogue and prints the
headline metrics.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from twinforge.cli._common import (
    catalog_option,
    console,
    err_console,
    no_tracking_option,
    options,
    say,
    tracking_config,
    tracking_uri_option,
)

if TYPE_CHECKING:
    from twinforge.detector.readout import Readout
    from twinforge.tracking import TrackedRun
    from twinforge.validation import ValidationConfig, ValidationResult
    from twinforge.validation.evaluate import EvaluationOutcome

Status = Callable[[str], None]


def validate(
    reference: Path = typer.Option(
        ..., "--reference", "-r", help="Reference shower file (HDF5), e.g. Geant4."
    ),
    generated: Path | None = typer.Option(
        None, "--generated", "-g", help="Generated shower file; optional with --model."
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Model directory. Without --generated, it is sampled at the reference's conditions "
        "(written to OUTPUT/generated.h5); with it, it names the model for the catalogue.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Report directory to write."),
    config: Path | None = typer.Option(
        None, "--config", help="Validation YAML (kind: validation); defaults otherwise."
    ),
    budget: str | None = typer.Option(
        None,
        "--budget",
        help="Classifier budget of both levels: challenge (50 epochs, the default), converged "
        "(>= 50 epochs and >= 2000 steps, for small samples) or quick (tests only, not "
        "comparable). Overrides the config.",
    ),
    quick: bool = typer.Option(
        False, "--quick", help="Same as --budget quick: seconds, and NOT comparable with anything."
    ),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        min=1,
        help="Epochs of both classifiers (overrides the budget: a custom, not comparable run).",
    ),
    seeds: int | None = typer.Option(
        None, "--seeds", min=1, help="Classifier seeds per metric (default 3: mean and min-max)."
    ),
    device: str | None = typer.Option(
        None, "--device", help="Classifier device: auto (a CUDA GPU if there is one), cpu, cuda."
    ),
    floor_reference: Path | None = typer.Option(
        None,
        "--floor-reference",
        help="A second, independent reference file (e.g. Geant4, other seeds) for the noise "
        "floor at the full sample size; without it the floor compares two reference halves.",
    ),
    cache_dir: Path | None = typer.Option(
        None,
        "--cache-dir",
        help="Where the noise floor is cached per reference and configuration (default: "
        "$XDG_CACHE_HOME/twinforge/validation or ~/.cache/twinforge/validation).",
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Compute the noise floor afresh."),
    max_showers: int | None = typer.Option(
        None, "--max-showers", min=1, help="Use at most N random showers of each file."
    ),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Seed of subsets, splits, classifiers and sampling."
    ),
    no_noise_floor: bool = typer.Option(
        False, "--no-noise-floor", help="Skip the reference-vs-reference noise floor."
    ),
    binning: Path | None = typer.Option(
        None,
        "--binning",
        help="CaloChallenge binning XML, for files that do not store theirs (plain "
        "CaloChallenge files).",
    ),
    catalog: str | None = catalog_option(),
    no_catalog: bool = typer.Option(
        False, "--no-catalog", help="Do not register the evaluation in the catalogue."
    ),
    tracking_uri: str | None = tracking_uri_option(),
    no_tracking: bool = no_tracking_option(),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Write into OUTPUT even if it holds files."
    ),
) -> None:
    """Validate generated showers against reference showers: metrics.json + report.html.

    Separation powers, classifier AUCs and FPD/KPD, overall and per incident-energy bin, each
    next to its noise floor (reference half vs half); the HTML report embeds every figure.
    The run is logged to MLflow (parameters, headline metrics, metrics.json and report.html).
    """
    from twinforge.tracking import default_workdir, start_run
    from twinforge.validation import evaluate

    cfg = _config(
        config,
        budget="quick" if quick else budget,
        epochs=epochs,
        seeds=seeds,
        device=device,
        noise_floor=not no_noise_floor,
        cache_dir=cache_dir,
        no_cache=no_cache,
    )
    given = _readout_from(binning) if binning is not None else None
    command = " ".join(["twinforge", *sys.argv[1:]])
    inputs = tracked_inputs(
        reference=reference, generated=generated, model=model, output=output,
        floor_reference=floor_reference, binning=binning, max_showers=max_showers, seed=seed,
    )  # fmt: skip
    with start_run(
        tracking_config(tracking_uri, no_tracking),
        kind="validate",
        name=f"{(model or generated or output).name} vs {reference.name}",
        workdir=default_workdir(catalog),
        tags={"twinforge.command": command},
    ) as run:
        run.log_params(inputs)
        with _status() as status:
            outcome = evaluate(
                reference,
                output,
                generated=generated,
                model=model,
                config=cfg,
                max_showers=max_showers,
                seed=seed,
                readout=given,
                overwrite=overwrite,
                progress=status,
                floor_reference=floor_reference,
            )
            if run.active:
                status("logging to MLflow")
            track_outcome(run, outcome)
            if not no_catalog:
                from twinforge.catalog import Catalog
                from twinforge.validation import register_evaluation

                status("registering the evaluation")
                with Catalog.open(catalog) as cat:
                    register_evaluation(cat, outcome, command=command, mlflow=run.link())
                run.set_tags({"twinforge.record": str(outcome.evaluation_id)})
    _print_summary(outcome.result, outcome.report, outcome.evaluation_id)
    if run.run_id is not None:
        say(f"MLflow run {run.run_id} ({run.tracking_uri})")


def tracked_inputs(
    *,
    reference: Path,
    generated: Path | None,
    model: Path | None,
    output: Path,
    floor_reference: Path | None,
    binning: Path | None,
    max_showers: int | None,
    seed: int | None,
) -> dict[str, Any]:
    """The command's inputs as MLflow parameters (absolute paths; None where not given)."""

    def where(path: Path | None) -> str | None:
        return None if path is None else str(path.resolve())

    return {
        "reference": where(reference),
        "generated": where(generated),
        "model": where(model),
        "output": where(output),
        "floor_reference": where(floor_reference),
        "binning": where(binning),
        "max_showers": max_showers,
        "seed": seed,
    }


def track_outcome(run: TrackedRun, outcome: EvaluationOutcome) -> None:
    """Log an evaluation to ``run``: the config as run, protocol and sample sizes (params), the
    headline metrics and their noise floor, per-energy figures (step = energy bin), the
    sampling time per shower (when sampled here) and ``metrics.json`` + ``report.html``
    (artefacts under ``report/``)."""
    from twinforge.validation.summary import validation_summary

    params, metrics, per_energy = validation_summary(outcome.result.metrics)
    params["sampled_here"] = outcome.sampled
    metrics["ms_per_shower"] = outcome.ms_per_shower
    run.log_params(params)
    run.log_metrics(metrics)
    for index, figures in per_energy:
        run.log_metrics(figures, step=index)
    for path in (outcome.metrics, outcome.report):
        run.log_artifact(path, "report")


@contextmanager
def _status() -> Iterator[Status]:
    """A transient spinner on stderr showing the current stage (nothing under ``--quiet``)."""
    if options.quiet:
        yield lambda _message: None
        return
    with err_console.status("starting") as spinner:
        yield lambda message: spinner.update(message)


def _config(
    path: Path | None,
    *,
    budget: str | None,
    epochs: int | None,
    seeds: int | None,
    device: str | None,
    noise_floor: bool,
    cache_dir: Path | None,
    no_cache: bool,
) -> ValidationConfig:
    """The validation config from YAML (or defaults) with the command-line overrides."""
    from twinforge.config import load_config, validate_config
    from twinforge.validation import ValidationConfig

    cfg = load_config(path, ValidationConfig) if path is not None else ValidationConfig()
    assert isinstance(cfg, ValidationConfig)
    update: dict[str, object] = {}
    if budget is not None:
        update["budget"] = budget
    if epochs is not None:
        update["epochs"] = epochs
    if device is not None:
        update["device"] = device
    if update:
        data = cfg.model_dump()
        for key in ("classifier", "high_classifier"):
            data[key] = {**data[key], **update}
        cfg = validate_config(ValidationConfig, data, where="command line")
    if seeds is not None:
        cfg.classifier_seeds = list(range(seeds))
    if not noise_floor:
        cfg.noise_floor = False
    if no_cache:
        cfg.cache_dir = None
    elif cache_dir is not None:
        cfg.cache_dir = str(cache_dir)
    elif cfg.cache_dir is None:
        cfg.cache_dir = str(_default_cache())
    return cfg


def _default_cache() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "twinforge" / "validation"


def _readout_from(path: Path) -> Readout:
    from twinforge.detector.readout import Readout

    return Readout.from_xml(path)


# --------------------------------------------------------------------------- summary
def _print_summary(result: ValidationResult, html: Path, evaluation: str | None) -> None:
    """Headline metrics beside their noise floor, what was skipped, where the report is."""
    if options.quiet:
        return
    from rich.table import Table

    from twinforge.validation.report import headline_metrics

    table = Table(title="Validation summary", title_justify="left")
    table.add_column("Metric")
    table.add_column("Generated vs reference", justify="right")
    table.add_column("Noise floor", justify="right")
    for label, value, floor in headline_metrics(result.metrics):
        table.add_row(label, value, floor)
    console.print(table)
    for item in result.metrics.get("skipped") or []:
        if item.get("scope") in ("overall", "noise floor"):
            where = "" if item["scope"] == "overall" else f" ({item['scope']})"
            console.print(
                f"not computed: {item.get('metric')}{where}: {item.get('reason')}", highlight=False
            )
    if evaluation is not None:
        say(f"registered evaluation {evaluation}")
    say(f"wrote {html}")
