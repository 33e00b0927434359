"""``twinforge scale``: fidelity against training-set size, model size and training length."""

from __future__ import annotations

from pathlib import Path

import typer

from twinforge.cli._common import (
    catalog_option,
    no_tracking_option,
    progress,
    say,
    tracking_config,
    tracking_uri_option,
)
from twinforge.errors import TwinforgeError


def scale(
    config: Path = typer.Argument(..., help="Scaling YAML (kind: scaling)."),
    catalog: str | None = catalog_option(),
    tracking_uri: str | None = tracking_uri_option(),
    no_tracking: bool = no_tracking_option(),
) -> None:
    """Train a base config along each axis of a scaling study (data_sizes, model_sizes,
    train_steps) over its seeds, validate every model against the held-out reference as
    `twinforge validate` does, and plot each figure against each axis with the training cost.

    Run again, it skips the points already done. Writes STUDY_DIR/results.json and
    STUDY_DIR/report.html.
    """
    from twinforge.tune.scaling import load_scaling_config, plan_points, run_scaling

    cfg = load_scaling_config(config)
    tracking = tracking_config(tracking_uri, no_tracking, cfg.tracking)
    cfg = cfg.model_copy(update={"tracking": tracking})
    total = len(plan_points(cfg, dict.fromkeys(cfg.data_sizes, Path())))
    with progress() as bar:
        task = bar.add_task(f"scaling {cfg.name}", total=total)

        def on_point(point: str, state: str) -> None:
            if state != "queued":
                bar.advance(task)
            bar.update(task, description=f"scaling {cfg.name}: {point} {state}")

        outcome = run_scaling(cfg, catalog=catalog, on_point=on_point)
    say(
        f"{len(outcome.results)} points done, {len(outcome.failed)} failed; report {outcome.report}"
    )
    if outcome.failed:
        first, message = next(iter(outcome.failed.items()))
        raise TwinforgeError(f"{len(outcome.failed)} points failed; {first}: {message}")
