"""What a training run costs: wall time, CPU time and the hardware, over every part of a run.

A training run that is stopped and started again (it resumes from its last checkpoint) is made
of parts. Each part is measured by :class:`CostMeter` and kept in ``cost.json`` in the
run's checkpoint directory, so that the model's provenance can state the whole run's cost
(:func:`total_cost`), not only that of its last part.

A part is timed from the start of its training loop (after the transform's fit and the set-up,
which take seconds to minutes and are not counted) to its last validation or its end.
``cpu_s`` is the user + system CPU time of the first process (the one that writes) and of
its children that ended within the part (data-loader workers), from ``getrusage``; under DDP the
other processes' CPU time is not in it. :func:`total_cost`'s ``core_hours`` and
``gpu_hours`` (wall time x what was held) count every process.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch

from twinforge.errors import TwinforgeError
from twinforge.showers.io import atomic_path

__all__ = ["CostCallback", "CostMeter", "read_parts", "total_cost"]

COST_FILE = "cost.json"


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CostMeter:
    """Measure one part of a training run and keep its record in ``directory/cost.json``.

    Its Lightning callback (:class:`CostCallback`) starts the part when training starts (after a
    resume has restored the step count) and rewrites the part's record after every validation
    and at the end, so that a run killed between epochs still states all but its last epoch's
    cost. ``hardware`` is stored with the part as given, e.g. ``{"accelerator": "cpu",
    "devices": 1, "nodes": 1}``; on a CPU the callback adds the process's torch ``threads``. A
    record holds ``started`` (UTC, ISO), ``wall_s``, ``cpu_s``, ``steps`` (optimiser steps in
    this part), ``host`` and the hardware. Only the first process of a distributed run writes.
    """

    def __init__(self, directory: Path, hardware: Mapping[str, Any]) -> None:
        self.directory = Path(directory)
        self.hardware = dict(hardware)
        self.part: dict[str, Any] = {}
        self._earlier: list[dict[str, Any]] = []
        self._wall: float | None = None

    @property
    def running(self) -> bool:
        """True once :meth:`start` was called."""
        return self._wall is not None

    def start(self, steps: int) -> None:
        """Begin the part at the run's current optimiser step count."""
        self._earlier = read_parts(self.directory)
        self._started = dt.datetime.now(dt.UTC)
        self._wall = time.perf_counter()
        self._cpu = _cpu_seconds()
        self._steps = steps

    def update(self, steps: int) -> list[dict[str, Any]]:
        """Record the part as it stands at ``steps``; return every part of the run."""
        self.part = {
            "started": self._started.isoformat(timespec="seconds"),
            "wall_s": round(time.perf_counter() - (self._wall or 0.0), 3),
            "cpu_s": round(_cpu_seconds() - self._cpu, 3),
            "steps": max(steps - self._steps, 0),
            "host": socket.gethostname(),
            **self.hardware,
        }
        parts = [*self._earlier, self.part]
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.directory / COST_FILE) as tmp:
            tmp.write_text(json.dumps(parts, indent=1))
        return parts


class CostCallback(L.Callback):
    """The Lightning callback that drives a :class:`CostMeter` (a module-level class, so that
    ``ddp_spawn`` can pickle it)."""

    def __init__(self, meter: CostMeter) -> None:
        self.meter = meter

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            if self.meter.hardware.get("accelerator") != "gpu":
                self.meter.hardware["threads"] = torch.get_num_threads()
            self.meter.start(trainer.global_step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.meter.running:
            self.meter.update(trainer.global_step)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.meter.running:
            self.meter.update(trainer.global_step)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:  # a stopped (or failed) part cost its time too
        if trainer.is_global_zero and self.meter.running:
            self.meter.update(trainer.global_step)


def read_parts(directory: Path) -> list[dict[str, Any]]:
    """The parts recorded in ``directory/cost.json`` (none when it does not exist).

    Raises:
        TwinforgeError: the file is not a JSON list of objects.
    """
    path = Path(directory) / COST_FILE
    if not path.exists():
        return []
    try:
        parts = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TwinforgeError(f"{path}: unreadable training-cost record ({exc})") from None
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise TwinforgeError(f"{path}: expected a JSON list of training parts")
    return parts


def total_cost(parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The whole run's cost from its parts.

    Returns sums of ``wall_s``, ``cpu_s`` and ``steps``; ``core_hours`` (CPU parts: wall time x
    processes x threads per process, the cores held) and ``gpu_hours`` (GPU parts: wall time x
    GPUs); the number of ``parts``; and ``hardware``, each distinct set-up once.
    """
    hardware_keys = ("accelerator", "device_name", "devices", "nodes", "threads", "host")
    setups: list[dict[str, Any]] = []
    core_s = gpu_s = 0.0
    for part in parts:
        setup = {k: part[k] for k in hardware_keys if k in part}
        if setup not in setups:
            setups.append(setup)
        held = (
            float(part.get("wall_s", 0.0)) * int(part.get("devices", 1)) * int(part.get("nodes", 1))
        )
        if part.get("accelerator") == "gpu":
            gpu_s += held
        else:
            core_s += held * int(part.get("threads") or 1)
    return {
        "parts": len(parts),
        "wall_s": round(sum(float(p.get("wall_s", 0.0)) for p in parts), 3),
        "cpu_s": round(sum(float(p.get("cpu_s", 0.0)) for p in parts), 3),
        "steps": sum(int(p.get("steps", 0)) for p in parts),
        "core_hours": round(core_s / 3600.0, 5),
        "gpu_hours": round(gpu_s / 3600.0, 5),
        "hardware": setups,
    }
