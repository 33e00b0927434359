"""Scaling studies (``twinforge scale CONFIG``): fidelity against training-set size, model size
and training length, with the training cost of each point.

One base training config; each axis varies one thing and keeps the others as the base has them:

- ``data_sizes``: the first N showers of the training files (their order is the campaign's
  Sobol sequence, so a prefix covers the energy range), written once as a subset file;
- ``model_sizes``: labelled overrides of the training config (dotted paths, as a search space
  names them, e.g. ``model.config.hidden: [512, 256, 128]``); a model's size is its number of
  trainable parameters;
- ``train_steps``: ``optim.max_steps`` (early stopping and ``max_minutes`` as in the base).

Every point is trained once per seed of ``seeds``, validated against the held-out reference
exactly as ``twinforge validate`` does (the same code as ``twinforge tune``'s objective), and
its figures, training seconds (wall clock of ``run_training``), steps, epochs and parameters
written to ``points/<id>/result.json``. Points run through the campaigns' executors (in
process, or in parallel on Dask). Run again, a study skips the points that have a result, so a
killed study resumes. ``results.json`` gathers them; ``report.html`` plots each figure against
each axis (median over seeds, min-max bars) beside the training cost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, field_validator, model_validator

from twinforge import __version__
from twinforge.campaign.executors import ExecutorConfig
from twinforge.config import StrictModel, load_config
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.tracking import TrackingConfig
from twinforge.training.train import TrainConfig
from twinforge.validation.suite import ValidationConfig

__all__ = [
    "AXES",
    "ModelSize",
    "ScalingConfig",
    "ScalingOutcome",
    "load_scaling_config",
    "plan_points",
    "run_scaling",
]

log = logging.getLogger(__name__)

AXES = {
    "data": "training showers",
    "model": "trainable parameters",
    "steps": "optimiser steps",
}
"""The axes of a study and what their x coordinate counts."""


class ModelSize(StrictModel):
    """One model size: a label and the training-config values that make it."""

    label: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="names the point's directory")
    params: dict[str, Any] = Field(
        min_length=1, description="dotted training-config path: value (model.config.hidden ...)"
    )


class ScalingConfig(StrictModel):
    """A scaling study (``kind: scaling``); see the module docstring."""

    kind: Literal["scaling"] = "scaling"
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="the study and its directory")
    train: str | TrainConfig = Field(
        description="base training YAML (relative to this file) or the config inline"
    )
    reference: str = Field(description="held-out reference shower file (not a training file)")
    max_showers: PositiveInt | None = Field(
        None, description="validate on at most this many reference showers (seeded subset)"
    )
    validation: str | ValidationConfig | None = Field(
        None, description="suite settings (a validation YAML relative to this file, or inline)"
    )
    figures: list[str] = Field(
        ["fpd", "auc_high"], min_length=1, description="figures of the suite to plot"
    )
    data_sizes: list[PositiveInt] = Field(default_factory=list)
    model_sizes: list[ModelSize] = Field(default_factory=list)
    train_steps: list[PositiveInt] = Field(default_factory=list)
    seeds: list[NonNegativeInt] = Field([0], min_length=1, description="training seeds")
    executor: ExecutorConfig = Field(default_factory=lambda: ExecutorConfig(kind="local"))
    output: str = Field("scaling/{name}", description="study directory")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @field_validator("figures")
    @classmethod
    def _known_figures(cls, value: list[str]) -> list[str]:
        from twinforge.tune.objective import check_objective

        for name in value:
            check_objective(name)
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _some_axis(self) -> ScalingConfig:
        if not (self.data_sizes or self.model_sizes or self.train_steps):
            raise ValueError("give at least one axis: data_sizes, model_sizes or train_steps")
        labels = [m.label for m in self.model_sizes]
        if len(set(labels)) != len(labels):
            raise ValueError(f"model_sizes: labels must differ, got {labels}")
        return self

    def study_dir(self) -> Path:
        return Path(self.output.format(name=self.name))

    def train_config(self) -> TrainConfig:
        if not isinstance(self.train, TrainConfig):
            raise ConfigError(f"train: {self.train!r} not loaded yet (use load_scaling_config)")
        return self.train

    def suite_config(self) -> ValidationConfig:
        from twinforge.tune.objective import WeightedObjective, suite_config

        if isinstance(self.validation, str):
            raise ConfigError(f"validation: {self.validation!r} not loaded yet")
        every = WeightedObjective(weighted=dict.fromkeys(self.figures, 1.0))
        return suite_config(every, self.validation)


def load_scaling_config(path: str | Path) -> ScalingConfig:
    """Read a scaling YAML and the training (and validation) config it names; check that every
    model size's values are accepted by the training config.

    Raises:
        ConfigError: any problem, in one line naming the file and the key.
    """
    from twinforge.tune.config import apply_params, load_linked, tunable_paths

    path = Path(path)
    config = load_config(path, ScalingConfig)
    assert isinstance(config, ScalingConfig)
    config = config.model_copy(update=load_linked(path, config.train, config.validation))
    train = config.train_config()
    known = set(tunable_paths(train))
    for size in config.model_sizes:
        try:
            unknown = sorted(set(size.params) - known)
            if unknown:
                raise ConfigError(f"unknown training-config path '{unknown[0]}'")
            apply_params(train, size.params)
        except ConfigError as exc:
            raise ConfigError(f"{path}: model_sizes '{size.label}': {exc}") from None
    return config


# --------------------------------------------------------------------------- the points
@dataclass(frozen=True)
class Point:
    """One training run of the study (picklable: it travels to Dask workers)."""

    axis: str
    label: str
    seed: int
    train: TrainConfig
    x: float | None  # the axis coordinate; model size: known after building the model

    @property
    def id(self) -> str:
        return f"{self.axis}-{self.label}-seed{self.seed}"


def plan_points(config: ScalingConfig, data_files: dict[int, Path]) -> list[Point]:
    """Every point of the study, in axis order (``data_files``: the subset file of each
    data size)."""
    from twinforge.tune.config import apply_params

    base = config.train_config()
    points: list[Point] = []
    for seed in config.seeds:
        for n in config.data_sizes:
            train = apply_params(base, {"data.files": [str(data_files[n])], "seed": seed})
            points.append(Point("data", str(n), seed, train, float(n)))
        for size in config.model_sizes:
            train = apply_params(base, {**size.params, "seed": seed})
            points.append(Point("model", size.label, seed, train, None))
        for steps in config.train_steps:
            train = apply_params(base, {"optim.max_steps": steps, "seed": seed})
            points.append(Point("steps", str(steps), seed, train, float(steps)))
    axis_order = list(AXES)
    return sorted(points, key=lambda p: (axis_order.index(p.axis), p.seed))


def write_subsets(config: ScalingConfig, directory: Path) -> dict[int, Path]:
    """The first N showers of the training files, one file per data size (kept between runs).

    Raises:
        ConfigError: a size larger than the training files hold.
    """
    from twinforge.showers.file import ShowerFile, ShowerWriter

    files = [Path(f) for f in config.train_config().data.files]
    counts = []
    for f in files:
        try:
            with ShowerFile(f) as sf:
                counts.append(sf.n_events)
        except TwinforgeError as exc:
            raise ConfigError(f"train: {exc}") from None
    total = sum(counts)
    out: dict[int, Path] = {}
    for n in sorted(config.data_sizes):
        if n > total:
            raise ConfigError(f"data_sizes: {n} showers asked, the training files hold {total}")
        path = directory / f"train-{n}.h5"
        out[n] = path
        if path.exists():
            continue
        directory.mkdir(parents=True, exist_ok=True)
        left = n
        with contextlib.ExitStack() as stack:
            writer = None
            for f, count in zip(files, counts, strict=True):
                if left == 0:
                    break
                sf = stack.enter_context(ShowerFile(f))
                cond, showers = sf.read(0, min(count, left))
                if writer is None:
                    provenance = dict(sf.provenance or {})
                    provenance |= {"subset_of": [str(p.resolve()) for p in files],
                                   "subset_showers": n}  # fmt: skip
                    writer = stack.enter_context(ShowerWriter(path, sf.readout, provenance))
                writer.append(cond, showers)
                left -= len(cond)
    return out


@dataclass(frozen=True)
class PointTask:
    point: Point
    directory: str
    reference: str
    max_showers: int | None
    suite: ValidationConfig
    figures: tuple[str, ...]
    tracking: TrackingConfig
    tracking_workdir: str
    study: str


def run_point(task: PointTask) -> dict[str, Any]:
    """Train and validate one point; write and return its ``result.json`` mapping."""
    from twinforge.models.base import Surrogate
    from twinforge.tracking import start_run
    from twinforge.training.train import run_training
    from twinforge.tune.objective import evaluate_model, read_figures

    point = task.point
    here = Path(task.directory)
    here.mkdir(parents=True, exist_ok=True)
    train = point.train.model_copy(
        update={"name": f"{task.study}-{point.id}", "output": str(here / "model")}
    )
    tags = {"twinforge.study": task.study, "twinforge.axis": point.axis}
    with start_run(
        task.tracking, kind="train", name=train.name, workdir=Path(task.tracking_workdir),
        tags=tags,
    ) as run:  # fmt: skip
        start = time.perf_counter()
        model_dir = run_training(train, quiet=True, overwrite=True, tracker=run)
        seconds = time.perf_counter() - start
        surrogate = Surrogate.load(model_dir)
        n_params = sum(p.numel() for p in surrogate.model.parameters() if p.requires_grad)
        metrics = evaluate_model(
            model_dir, Path(task.reference), here / "validation", task.suite,
            max_showers=task.max_showers, title=f"{task.study}: {point.id}",
        )  # fmt: skip
        figures = read_figures(metrics, list(task.figures))
        run.log_metrics({f"figure/{k}": v for k, v in figures.items()})
    provenance = surrogate.provenance
    result = {
        "id": point.id,
        "axis": point.axis,
        "label": point.label,
        "seed": point.seed,
        "x": float(n_params) if point.axis == "model" else point.x,
        "figures": figures,
        "train_seconds": round(seconds, 3),
        "steps": provenance.get("steps"),
        "epochs": provenance.get("epochs"),
        "parameters": n_params,
        "best_val_loss": provenance.get("best_val_loss"),
        "model": str(model_dir),
        "mlflow": run.link(),
    }
    _write_json(here / "result.json", result)
    return result


def _write_json(path: Path, data: Any) -> None:
    from twinforge.showers.io import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1, default=str))


# --------------------------------------------------------------------------- the study
@dataclass
class ScalingOutcome:
    """What a study run did: the study directory, every point's result, the failures."""

    directory: Path
    results: list[dict[str, Any]]
    failed: dict[str, str]
    report: Path


def run_scaling(
    config: ScalingConfig,
    *,
    catalog: str | None = None,
    on_point: Callable[[str, str], None] | None = None,
) -> ScalingOutcome:
    """Run (or resume) the study; write ``results.json`` and ``report.html``.

    ``on_point(id, state)`` is called as points start being run and finish.

    Raises:
        ConfigError: a reference that cannot give the figures, or data sizes beyond the data.
    """
    from twinforge.campaign.executors import make_executor
    from twinforge.tracking import default_workdir
    from twinforge.tune.objective import check_reference
    from twinforge.tune.scaling_report import write_report

    directory = config.study_dir().resolve()
    train = config.train_config()
    suite = config.suite_config()
    reference = Path(config.reference).resolve()
    check_reference(reference, [Path(f) for f in train.data.files], suite, config.max_showers)
    subsets = write_subsets(config, directory / "data")
    points = plan_points(config, subsets)
    workdir = str(default_workdir(catalog).resolve())
    done: dict[str, dict[str, Any]] = {}
    todo: list[PointTask] = []
    for point in points:
        result_file = directory / "points" / point.id / "result.json"
        if result_file.exists():
            done[point.id] = json.loads(result_file.read_text())
            continue
        task = PointTask(
            point=point,
            directory=str(directory / "points" / point.id),
            reference=str(reference),
            max_showers=config.max_showers,
            suite=suite,
            figures=tuple(config.figures),
            tracking=config.tracking,
            tracking_workdir=workdir,
            study=config.name,
        )
        todo.append(task)
    if done:
        log.info("resuming %s: %d of %d points done", config.name, len(done), len(points))
    failed: dict[str, str] = {}
    if todo:
        with make_executor(config.executor) as executor:
            for task in todo:
                if on_point:
                    on_point(task.point.id, "queued")
            for task, result in executor.run(run_point, todo):
                if isinstance(result, BaseException):
                    message = str(result).splitlines()[0] if str(result) else type(result).__name__
                    failed[task.point.id] = message
                    log.warning("point %s failed: %s", task.point.id, message)
                    if on_point:
                        on_point(task.point.id, "failed")
                    continue
                done[task.point.id] = result
                if on_point:
                    on_point(task.point.id, "done")
    results = [done[p.id] for p in points if p.id in done]
    summary = {
        "study": config.name,
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"node": platform.node(), "processor": platform.processor() or None},
        "twinforge": __version__,
        "config": config.model_dump(mode="json", exclude={"train"}),
        "train_config": train.model_dump(mode="json"),
        "results": results,
        "failed": failed,
    }
    _write_json(directory / "results.json", summary)
    report = write_report(summary, directory / "report.html")
    return ScalingOutcome(directory, results, failed, report)


def summarise(results: list[dict[str, Any]], axis: str, figure: str) -> list[dict[str, Any]]:
    """Per label of ``axis``: x, the median and min-max of ``figure`` over seeds, and the
    median training seconds; in increasing x."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if r["axis"] == axis:
            groups.setdefault(r["label"], []).append(r)
    rows = []
    for label, members in groups.items():
        values = sorted(
            v for m in members if (v := m["figures"].get(figure)) is not None and math.isfinite(v)
        )
        seconds = sorted(m["train_seconds"] for m in members)
        rows.append(
            {
                "label": label,
                "x": members[0]["x"],
                "n": len(values),
                "median": _median(values),
                "min": values[0] if values else None,
                "max": values[-1] if values else None,
                "train_seconds": _median(seconds),
            }
        )
    return sorted(rows, key=lambda r: (r["x"] is None, r["x"] or 0.0))


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])
