"""``twinforge train`` and ``twinforge sample``: fit a model, generate showers from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from twinforge.cli._common import (
    catalog_option,
    no_tracking_option,
    options,
    say,
    tracking_config,
    tracking_uri_option,
)
from twinforge.errors import ConfigError


def train(
    config: Path = typer.Argument(..., help="Training YAML (kind: train)."),
    catalog: str | None = catalog_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the model directory."),
    init_from: Path | None = typer.Option(
        None,
        "--init-from",
        metavar="MODEL",
        help="Start from this model directory's weights (same family and particles; it may be "
        "trained on another readout whose layers are binned alike: docs/models.md); "
        "overrides the config's init_from.",
    ),
    tracking_uri: str | None = tracking_uri_option(),
    no_tracking: bool = no_tracking_option(),
    devices: int = typer.Option(
        1,
        "--devices",
        metavar="N",
        help="Training processes per node: GPUs, or CPU processes (data-parallel, DDP).",
    ),
    strategy: str = typer.Option(
        "auto",
        "--strategy",
        metavar="auto|ddp|ddp_spawn|ddp_fork",
        help="How the processes start. auto: one process, or ddp for several. ddp: runs this "
        "command again per process (and under srun/torchrun). ddp_spawn/ddp_fork: started "
        "from inside this process (one node; fork: CPU only).",
    ),
    num_nodes: int = typer.Option(
        1,
        "--num-nodes",
        "--nodes",
        metavar="K",
        help="Nodes, each running --devices processes (a Slurm job, see --slurm-script).",
    ),
    accelerator: str = typer.Option(
        "auto",
        "--accelerator",
        metavar="auto|cpu|gpu",
        help="auto: the GPU when torch sees one (CUDA), else the CPU (gloo between processes).",
    ),
    slurm_script: Path | None = typer.Option(
        None,
        "--slurm-script",
        metavar="OUT.sh",
        help="Write an sbatch script that runs this training on --nodes nodes with srun (one "
        "process per GPU) and stop; nothing is submitted or trained.",
    ),
    gpus_per_node: int | None = typer.Option(
        None,
        "--gpus-per-node",
        metavar="G",
        help="With --slurm-script: GPUs (= processes) per node; 0: CPU nodes running --devices "
        "processes each. Default 1.",
    ),
    cpus_per_task: int | None = typer.Option(
        None, "--cpus-per-task", metavar="C", help="With --slurm-script: cores per process."
    ),
    partition: str | None = typer.Option(
        None, "--partition", metavar="P", help="With --slurm-script: Slurm partition."
    ),
    time: str | None = typer.Option(
        None, "--time", metavar="HH:MM:SS", help="With --slurm-script: wall-clock limit."
    ),
    account: str | None = typer.Option(
        None, "--account", metavar="A", help="With --slurm-script: account to charge."
    ),
) -> None:
    """Train a model on shower files; write and register its directory.

    Started again after a kill with the same config, it resumes from its last checkpoint.
    With --devices N (and --num-nodes K) N x K processes train together (DDP) at the config's
    global batch size; only the first writes and registers the model.
    """
    from twinforge.config import load_config
    from twinforge.training.train import TrainConfig

    if slurm_script is None:
        slurm_only = {"--gpus-per-node": gpus_per_node, "--cpus-per-task": cpus_per_task,
                      "--partition": partition, "--time": time, "--account": account}  # fmt: skip
        for name, value in slurm_only.items():
            if value is not None:
                raise ConfigError(f"{name} describes a Slurm job: it goes with --slurm-script")
        spec = _spec(devices, num_nodes, strategy, accelerator)
        cfg = load_config(config, TrainConfig)
        if init_from is not None:
            cfg = cfg.model_copy(update={"init_from": str(init_from)})
        _train(cfg, catalog, overwrite, spec, tracking_config(tracking_uri, no_tracking))
        return
    passed = [*(["--init-from", str(init_from)] if init_from else []),
              *(["--tracking-uri", tracking_uri] if tracking_uri else []),
              *(["--no-tracking"] if no_tracking else [])]  # fmt: skip
    _write_slurm_script(
        config, load_config(config, TrainConfig), slurm_script, catalog=catalog, passed=passed,
        overwrite=overwrite, devices=devices, nodes=num_nodes, strategy=strategy,
        accelerator=accelerator, gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task,
        partition=partition, time=time, account=account,
    )  # fmt: skip


def _spec(devices: int, num_nodes: int, strategy: str, accelerator: str) -> Any:
    """The :class:`DistributedSpec` of the options; a bad value is one line naming its option."""
    from pydantic import ValidationError

    from twinforge.training.distributed import DistributedSpec

    values = {"devices": devices, "num_nodes": num_nodes, "strategy": strategy,
              "accelerator": accelerator}  # fmt: skip
    try:
        return DistributedSpec.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0])
        raise ConfigError(
            f"--{key.replace('_', '-')} {values[key]}: {err['msg'].lower()}"
        ) from None


def _train(cfg: Any, catalog: str | None, overwrite: bool, spec: Any, tracking: Any) -> None:
    import contextlib
    import logging

    from twinforge.catalog import Catalog
    from twinforge.tracking import default_workdir, start_run
    from twinforge.training.distributed import is_launch_zero
    from twinforge.training.train import run_training

    spec.resolve(batch_size=cfg.optim.batch_size, warn=False)  # fail before any work
    first = is_launch_zero()  # under DDP every process runs this command; one keeps the books
    if not first:  # the others say only what goes wrong
        logging.getLogger("twinforge").setLevel(logging.WARNING)
    with contextlib.ExitStack() as stack:
        cat = stack.enter_context(Catalog.open(catalog)) if first else None
        run = None
        if first:
            run = stack.enter_context(
                start_run(tracking, kind="train", name=cfg.name, workdir=default_workdir(catalog))
            )
        out = run_training(
            cfg, catalog=cat, quiet=options.quiet, overwrite=overwrite, distributed=spec,
            tracker=run,
        )  # fmt: skip
    if first:
        say(f"wrote model {out}")


def _write_slurm_script(
    config: Path,
    cfg: Any,
    out: Path,
    *,
    catalog: str | None,
    passed: list[str],
    overwrite: bool,
    devices: int,
    nodes: int,
    strategy: str,
    accelerator: str,
    gpus_per_node: int | None,
    cpus_per_task: int | None,
    partition: str | None,
    time: str | None,
    account: str | None,
) -> None:
    """``--slurm-script``: check the options against the config and write the sbatch script."""
    import re

    from pydantic import ValidationError

    from twinforge.config import format_validation_error
    from twinforge.showers.io import atomic_path
    from twinforge.training.distributed import SlurmSpec, slurm_script

    if strategy not in ("auto", "ddp"):
        raise ConfigError(f"--strategy {strategy}: a Slurm job runs ddp (srun starts processes)")
    gpus = 1 if gpus_per_node is None else gpus_per_node
    if not gpus and accelerator == "gpu":
        raise ConfigError("--accelerator gpu with --gpus-per-node 0: give the GPUs per node")
    if gpus and accelerator == "cpu":
        raise ConfigError(f"--accelerator cpu with --gpus-per-node {gpus}: use --gpus-per-node 0")
    if gpus and devices not in (1, gpus):
        raise ConfigError(
            f"--devices {devices} with --gpus-per-node {gpus}: a Slurm job runs one process per GPU"
        )
    try:
        slurm = SlurmSpec(
            nodes=nodes, gpus_per_node=gpus, tasks_per_node=None if gpus else devices,
            cpus_per_task=cpus_per_task, partition=partition, time=time, account=account,
            job_name="twinforge-" + re.sub(r"[^A-Za-z0-9_.-]", "_", cfg.name),
        )  # fmt: skip
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "--slurm-script")) from None
    _spec(slurm.processes_per_node, nodes, "ddp", "gpu" if gpus else "cpu")
    world = slurm.processes_per_node * nodes
    if cfg.optim.batch_size % world:
        raise ConfigError(
            f"{config}: optim.batch_size {cfg.optim.batch_size} does not split evenly over "
            f"{world} processes ({nodes} node(s) x {slurm.processes_per_node}); use a "
            f"multiple of {world}"
        )
    extra = [*(["--catalog", catalog] if catalog else []), *(["--overwrite"] if overwrite else []),
             *passed]  # fmt: skip
    text = slurm_script(config, slurm, extra_args=extra)
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    out.chmod(0o755)
    say(f"wrote {out}: {nodes} node(s) x {slurm.processes_per_node} process(es); submit with "
        f"sbatch {out}")  # fmt: skip


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
