"""``twinforge tune``: hyper-parameter search over a training config (Optuna)."""

from __future__ import annotations

from pathlib import Path

import typer

from twinforge.cli._common import (
    catalog_option,
    no_tracking_option,
    options,
    progress,
    say,
    tracking_config,
    tracking_uri_option,
)
from twinforge.errors import TwinforgeError


def tune(
    config: Path = typer.Argument(..., help="Tune YAML (kind: tune)."),
    catalog: str | None = catalog_option(),
    n_trials: int | None = typer.Option(
        None, "--n-trials", min=1, help="Finished trials wanted (overrides n_trials)."
    ),
    timeout_minutes: float | None = typer.Option(
        None, "--timeout-minutes", min=0.01, help="Wall-clock budget of this run, minutes."
    ),
    tracking_uri: str | None = tracking_uri_option(),
    no_tracking: bool = no_tracking_option(),
) -> None:
    """Search hyper-parameters of a training config; the objective is a figure of the
    validation suite on a held-out reference.

    The study is stored beside the catalogue and continues where it stopped when run again
    (also after a kill). Writes STUDY_DIR/best-train.yaml (for twinforge train),
    STUDY_DIR/report.html and STUDY_DIR/study.json.
    """
    import logging

    import optuna

    from twinforge.tune import load_tune_config, run_study

    cfg = load_tune_config(config)
    updates: dict[str, object] = {}
    if n_trials is not None:
        updates["n_trials"] = n_trials
    if timeout_minutes is not None:
        updates["timeout_minutes"] = timeout_minutes
    tracking = tracking_config(tracking_uri, no_tracking, cfg.tracking)
    cfg = cfg.model_copy(update={**updates, "tracking": tracking})
    optuna.logging.set_verbosity(logging.DEBUG if options.debug else logging.WARNING)

    bar = progress()  # shown once the study has started (after the checks of its inputs)
    task = bar.add_task(f"study {cfg.study}", total=cfg.n_trials, start=False)

    def started(done: int, total: int) -> None:
        bar.start()
        bar.start_task(task)
        bar.update(task, completed=min(done, total), total=total)

    def stage(number: int, text: str) -> None:
        bar.update(task, description=f"study {cfg.study}: trial {number} {text}")

    def finished(result: object) -> None:
        if getattr(result, "state", "") in ("COMPLETE", "PRUNED"):
            bar.advance(task)
        bar.update(task, description=f"study {cfg.study}")

    try:
        outcome = run_study(
            cfg, catalog=catalog, on_start=started, on_trial=finished, on_stage=stage
        )
    finally:
        bar.stop()
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(outcome.counts.items()))
    if outcome.best_number is None:
        last = f"; last error: {outcome.last_error}" if outcome.last_error else ""
        raise TwinforgeError(
            f"study {outcome.study}: no trial completed ({counts or 'no trials'}; "
            f"{outcome.stopped}){last}"
        )
    say(
        f"study {outcome.study}: {counts}; best trial {outcome.best_number}: "
        f"{outcome.objective} = {outcome.best_value:.6g}; stopped: {outcome.stopped}"
    )
    say(
        f"wrote {_shown(outcome.best_config)} and {_shown(outcome.report)} "
        f"(storage {_shown(outcome.storage)})"
    )
    if outcome.tracking_run is not None:
        say(f"MLflow run {outcome.tracking_run}")


def _shown(path: object) -> str:
    """A path relative to the current directory when it lies below it."""
    try:
        return str(Path(str(path)).relative_to(Path.cwd()))
    except ValueError:
        return str(path)
