"""Distributed training: devices, processes and strategy of a fit; Slurm batch scripts.

:class:`DistributedSpec` says how many processes train (``devices`` per node times
``num_nodes``), on what (``accelerator``) and how they are started (``strategy``);
:meth:`DistributedSpec.resolve` checks the combination (one-line :class:`ConfigError`) and
gives the Lightning ``Trainer`` arguments. Several processes train with data parallelism
(Lightning DDP): every process holds the whole network, takes its slice of each global batch
(:class:`twinforge.training.data.ShowerStream`) and the gradients are averaged, so a run of N
processes follows the one-process run at the same global batch. Backends: gloo on CPU, NCCL on
GPUs.

Strategies:

- ``auto``: one process when ``devices x num_nodes`` is 1, else ``ddp``;
- ``ddp``: the other processes of a node run this program again (``twinforge train ...``);
  under ``srun`` (Slurm) or ``torchrun`` the launcher starts every process instead;
- ``ddp_spawn``: the processes are started from inside this one (multiprocessing ``spawn``;
  for Python callers whose program cannot be run again: notebooks, test suites);
- ``ddp_fork``: like ``ddp_spawn`` with ``fork`` (CPU only; starts fast, nothing is pickled;
  one torch thread per process, as OpenMP cannot start threads again after a fork).

:func:`slurm_script` writes the ``sbatch`` script of a multi-node run.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from pydantic import Field, NonNegativeInt, PositiveInt

from twinforge.config import StrictModel
from twinforge.errors import ConfigError

__all__ = [
    "DistributedPlan",
    "DistributedSpec",
    "SlurmSpec",
    "is_launch_zero",
    "slurm_script",
]

log = logging.getLogger(__name__)

Strategy = Literal["auto", "ddp", "ddp_spawn", "ddp_fork"]
Accelerator = Literal["auto", "cpu", "gpu"]
STRATEGIES: tuple[str, ...] = ("auto", "ddp", "ddp_spawn", "ddp_fork")
ACCELERATORS: tuple[str, ...] = ("auto", "cpu", "gpu")


class DistributedSpec(StrictModel):
    """How many processes train, on what, started how (see the module docstring)."""

    devices: PositiveInt = Field(1, description="processes per node: GPUs, or CPU processes")
    num_nodes: PositiveInt = Field(1, description="nodes (each runs `devices` processes)")
    strategy: Strategy = "auto"
    accelerator: Accelerator = Field(
        "auto", description="auto: the GPU when torch sees one (CUDA), else the CPU"
    )

    @property
    def world_size(self) -> int:
        """Processes in all: ``devices x num_nodes``."""
        return self.devices * self.num_nodes

    def resolve(self, *, batch_size: int | None = None, warn: bool = True) -> DistributedPlan:
        """Check the combination against this machine and the global ``batch_size`` (events),
        and resolve ``auto``. Raises :class:`ConfigError` (one line) for what cannot run; more
        CPU processes than cores is only a warning (logged when ``warn``)."""
        import torch

        if self.accelerator == "gpu" and not torch.cuda.is_available():
            raise ConfigError(
                "accelerator 'gpu': no CUDA GPU is visible (torch.cuda.is_available() is "
                "False); use --accelerator cpu or auto"
            )
        accelerator = self.accelerator
        if accelerator == "auto":
            accelerator = "gpu" if torch.cuda.is_available() else "cpu"
        world = self.world_size
        if accelerator == "gpu" and self.devices > (visible := torch.cuda.device_count()):
            raise ConfigError(
                f"devices {self.devices}: only {visible} GPU(s) are visible on this node"
            )
        if batch_size is not None and batch_size % world:
            raise ConfigError(
                f"optim.batch_size {batch_size} does not split evenly over {world} processes "
                f"(devices {self.devices} x nodes {self.num_nodes}); use a multiple of {world}"
            )
        if batch_size is not None and batch_size // world < 2:
            raise ConfigError(
                f"optim.batch_size {batch_size} over {world} processes leaves fewer than 2 "
                "events per process (batch normalisation needs 2)"
            )
        strategy = self.strategy
        if strategy == "auto":
            strategy = "ddp" if world > 1 else "auto"
        if strategy in ("ddp_spawn", "ddp_fork") and self.num_nodes > 1:
            raise ConfigError(
                f"strategy {strategy} starts processes on this node only; several nodes need "
                "strategy ddp (srun or torchrun starts one process per device)"
            )
        if strategy == "ddp_fork" and accelerator == "gpu":
            raise ConfigError("strategy ddp_fork is for CPUs (CUDA cannot be forked); use ddp")
        if strategy == "ddp" and self.devices > 1 and not _launcher_starts_processes():
            _check_rerunnable()
        threads = None
        if accelerator == "cpu" and strategy != "auto":
            cores = _cores()
            if self.devices > cores and warn:
                log.warning(
                    "%d training processes share %d core(s) on this node: processes beyond "
                    "the cores only add contention",
                    self.devices,
                    cores,
                )
            threads = 1 if strategy == "ddp_fork" else max(1, cores // self.devices)
        return DistributedPlan(
            accelerator=accelerator,
            devices=self.devices,
            num_nodes=self.num_nodes,
            strategy=strategy,
            backend=None if strategy == "auto" else "nccl" if accelerator == "gpu" else "gloo",
            threads=threads,
        )


@dataclass(frozen=True)
class DistributedPlan:
    """A checked :class:`DistributedSpec`: what the Trainer gets.

    Attributes:
        accelerator: ``"cpu"`` or ``"gpu"``.
        devices: processes per node.
        num_nodes: nodes.
        strategy: ``"auto"`` (one process), ``"ddp"``, ``"ddp_spawn"`` or ``"ddp_fork"``.
        backend: the process group's backend (``gloo`` on CPU, ``nccl`` on GPU; None alone).
        threads: torch threads per CPU process, cores // processes (Lightning sets it in each
            process unless ``OMP_NUM_THREADS`` is set; 1 with ``ddp_fork``); None on GPU or
            alone.
    """

    accelerator: str
    devices: int
    num_nodes: int
    strategy: str
    backend: str | None
    threads: int | None

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes

    def trainer_kwargs(self, *, partial_backward: bool = False) -> dict[str, Any]:
        """``accelerator``, ``devices``, ``num_nodes``, ``strategy`` (and ``sync_batchnorm``)
        for ``L.Trainer``.

        ``partial_backward``: the model's backward passes leave some parameters without a
        gradient (adversarial models: the critic's loss does not reach the generator); DDP then
        looks for them in every pass (``find_unused_parameters``, a graph traversal per pass).
        On GPUs batch normalisation uses the statistics of the global batch (SyncBatchNorm), as
        one process would; torch has no CPU SyncBatchNorm, so on CPUs each process normalises
        its own slice.
        """
        if self.strategy == "auto":
            return {"accelerator": self.accelerator, "devices": 1, "num_nodes": 1}
        start = {"ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork"}[self.strategy]
        strategy = _DDPStrategy(
            start_method=start,  # type: ignore[arg-type]
            process_group_backend=self.backend,
            find_unused_parameters=partial_backward,
        )
        return {
            "accelerator": self.accelerator,
            "devices": self.devices,
            "num_nodes": self.num_nodes,
            "strategy": strategy,
            "sync_batchnorm": self.accelerator == "gpu",
        }

    def describe(self) -> str:
        """One line for the log, e.g. ``2 processes (1 node x 2 cpu), ddp, gloo``."""
        if self.strategy == "auto":
            return f"1 process on {self.accelerator}"
        return (
            f"{self.world_size} processes ({self.num_nodes} node(s) x {self.devices} "
            f"{self.accelerator}), {self.strategy}, {self.backend}"
        )


class _ProgressLauncher(_MultiProcessingLauncher):
    """Lightning's spawn/fork launcher, also bringing back to the main process what it leaves
    behind: the loop progress (``trainer.current_epoch``, ``global_step``) and the best score
    of the checkpoint callback, read after the fit for the model's provenance."""

    def launch(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        # the started processes apply the caller's warning filters and quiet Lightning's
        # loggers as the caller does (a spawned process starts from a fresh interpreter)
        self._warning_filters = list(warnings.filters)
        self._log_levels = {
            name: logging.getLogger(name).level
            for name in ("lightning.pytorch", "lightning.fabric")
        }
        return super().launch(function, *args, **kwargs)

    def _wrapping_function(self, *args: Any, **kwargs: Any) -> None:
        warnings.filters[:] = getattr(self, "_warning_filters", warnings.filters)
        for name, level in getattr(self, "_log_levels", {}).items():
            logging.getLogger(name).setLevel(level)
        if self._start_method == "fork":
            # GNU OpenMP cannot start threads again in a process forked from one that used its
            # pool (the process hangs): forked processes compute on one thread
            import torch

            torch.set_num_threads(1)
            os.environ["OMP_NUM_THREADS"] = "1"  # and Lightning leaves it so
        super()._wrapping_function(*args, **kwargs)

    def get_extra_results(self, trainer: Any) -> dict[str, Any]:
        extra = super().get_extra_results(trainer)
        extra["twinforge_fit_loop"] = trainer.fit_loop.state_dict()
        score = getattr(trainer.checkpoint_callback, "best_model_score", None)
        extra["twinforge_best_score"] = None if score is None else float(score)
        return extra

    def update_main_process_results(self, trainer: Any, extra: dict[str, Any]) -> None:
        import torch

        super().update_main_process_results(trainer, extra)
        trainer.fit_loop.load_state_dict(extra["twinforge_fit_loop"])
        score = extra["twinforge_best_score"]
        if score is not None and trainer.checkpoint_callback is not None:
            trainer.checkpoint_callback.best_model_score = torch.tensor(score)


class _DDPStrategy(DDPStrategy):
    """DDP whose spawn/fork launcher is :class:`_ProgressLauncher`."""

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if isinstance(self._launcher, _MultiProcessingLauncher):
            self._launcher = _ProgressLauncher(self, start_method=self._start_method)


def _cores() -> int:
    """Cores this process may run on (its affinity mask, as Slurm and taskset set it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _launcher_starts_processes() -> bool:
    """Whether srun (Slurm) or torchrun started this process as one of several."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    return SLURMEnvironment.detect() or TorchElasticEnvironment.detect()


def _check_rerunnable() -> None:
    """Strategy ``ddp`` starts the other processes by running this program again with the same
    arguments; refuse where that cannot work (``python -c``, an interactive session) or would
    run something else (a test suite)."""
    import __main__

    spec = getattr(__main__, "__spec__", None)
    program = getattr(__main__, "__file__", None)
    name = spec.name if spec is not None else Path(sys.argv[0]).name if sys.argv else ""
    if name.split(".")[0] == "ipykernel_launcher" or name.startswith(("pytest", "py.test")):
        raise ConfigError(
            f"strategy ddp would start every other process by running {name} again; use "
            "ddp_spawn (or ddp_fork on CPU) from here"
        )
    if spec is None and (program is None or not Path(sys.argv[0]).is_file()):
        raise ConfigError(
            f"strategy ddp starts the other processes by running this program again, which "
            f"{sys.argv[0] if sys.argv else 'an interactive session'!r} cannot be; use "
            "ddp_spawn (or ddp_fork on CPU)"
        )


def is_launch_zero() -> bool:
    """Whether this process is the first of its run as its launcher numbered it (Lightning's
    ``ddp`` children, srun, torchrun set rank variables; a process no launcher started is).

    Lets a command open shared resources (the catalogue) in one process only, before the
    Trainer (and ``trainer.is_global_zero``) exists.
    """
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        value = os.environ.get(key)
        if value not in (None, "", "0"):
            return False
    return True


# --- Slurm ---------------------------------------------------------------------------------

_TIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$|^\d+-\d{1,2}(:\d{2})?$|^\d+$")
_WORD = re.compile(r"^[A-Za-z0-9_.,+@%=-]+$")


class SlurmSpec(StrictModel):
    """The resources of a Slurm training job (``sbatch`` directives).

    With ``gpus_per_node`` G > 0 each node runs G processes (one per GPU); with 0 the job trains
    on CPUs with ``tasks_per_node`` processes of ``cpus_per_task`` cores each.
    """

    nodes: PositiveInt = 1
    gpus_per_node: NonNegativeInt = 1
    tasks_per_node: PositiveInt | None = Field(
        None, description="processes per node; default and required value with GPUs: the GPUs"
    )
    cpus_per_task: PositiveInt | None = Field(None, description="cores per process")
    partition: str | None = None
    time: str | None = Field(None, description="wall-clock limit, HH:MM:SS or D-HH:MM:SS")
    account: str | None = None
    job_name: str = "twinforge-train"
    prologue: list[str] = Field(
        default_factory=list, description="shell lines before srun (module load ..., source ...)"
    )

    @property
    def processes_per_node(self) -> int:
        return self.gpus_per_node or self.tasks_per_node or 1

    def check(self) -> None:
        """One-line :class:`ConfigError` for values sbatch would reject or misread."""
        if self.gpus_per_node and self.tasks_per_node not in (None, self.gpus_per_node):
            raise ConfigError(
                f"slurm: {self.tasks_per_node} tasks per node with {self.gpus_per_node} GPUs "
                "per node; training runs one process per GPU"
            )
        if self.time is not None and not _TIME.match(self.time):
            raise ConfigError(f"slurm time {self.time!r}: use HH:MM:SS or D-HH:MM:SS")
        for key in ("partition", "account", "job_name"):
            value = getattr(self, key)
            if value is not None and not _WORD.match(value):
                raise ConfigError(f"slurm {key} {value!r}: letters, digits and _.,+@%=- only")
        for line in self.prologue:
            if "\n" in line or "\r" in line:
                raise ConfigError("slurm prologue: one shell line per entry")


def slurm_script(
    config: str | Path,
    slurm: SlurmSpec,
    *,
    extra_args: Sequence[str] = (),
    program: Sequence[str] | None = None,
) -> str:
    """The text of an ``sbatch`` script that trains ``config`` with DDP on ``slurm``'s nodes.

    ``srun`` starts ``processes_per_node`` tasks on each node, each running
    ``twinforge train CONFIG --devices G --num-nodes K --strategy ddp --accelerator gpu|cpu``
    (Lightning reads its rank from Slurm). ``extra_args`` are appended to that command line
    (``--catalog URL``, ``--overwrite``); ``program`` is the command that runs twinforge
    (default: the ``twinforge`` script beside this Python, so the job uses this environment).
    Every argument is shell-quoted; ``config`` is made absolute.
    """
    slurm.check()
    per_node = slurm.processes_per_node
    if program is None:
        script = Path(sys.executable).with_name("twinforge")
        program = [str(script)] if script.is_file() else ["twinforge"]
    command = [
        *program, "train", str(Path(config).resolve()),
        "--devices", str(per_node), "--num-nodes", str(slurm.nodes), "--strategy", "ddp",
        "--accelerator", "gpu" if slurm.gpus_per_node else "cpu", *extra_args,
    ]  # fmt: skip
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={slurm.job_name}",
        f"#SBATCH --nodes={slurm.nodes}",
        f"#SBATCH --ntasks-per-node={per_node}",
    ]
    if slurm.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={slurm.gpus_per_node}")
    if slurm.cpus_per_task:
        lines.append(f"#SBATCH --cpus-per-task={slurm.cpus_per_task}")
    for key, value in (("partition", slurm.partition), ("time", slurm.time),
                       ("account", slurm.account)):  # fmt: skip
        if value is not None:
            lines.append(f"#SBATCH --{key}={value}")
    lines += [
        "#SBATCH --output=%x-%j.out",
        "# written by twinforge train --slurm-script; submit with: sbatch <this file>",
        "set -euo pipefail",
        *slurm.prologue,
        *(['export SRUN_CPUS_PER_TASK="$SLURM_CPUS_PER_TASK"'] if slurm.cpus_per_task else []),
        # no thread oversubscription: each process gets its task's cores
        'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"',
        "srun " + shlex.join(command),
        "",
    ]
    return "\n".join(lines)
