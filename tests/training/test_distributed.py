"""Distributed training: data shards, 2 gloo processes against 1, Slurm scripts, CLI errors."""

from __future__ import annotations

import io
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from rich.console import Console

from twinforge.catalog import Catalog
from twinforge.cli import main
from twinforge.errors import ConfigError
from twinforge.models import Surrogate
from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file
from twinforge.training.data import ShowerStream, fit_transform
from twinforge.training.distributed import DistributedSpec, SlurmSpec, is_launch_zero, slurm_script
from twinforge.training.train import TrainConfig, run_training

# a flow without dequantisation noise has a deterministic loss: two processes, each on half of
# every global batch with the gradients averaged, then take exactly the one-process steps
FLOW = {
    "energy_transforms": 2, "energy_hidden": [16, 16], "energy_passes": 2,
    "shape_transforms": 2, "shape_hidden": [16, 16], "noise": 0.0,
}  # fmt: skip
VAE = {"latent_dim": 4, "hidden": [32, 16]}


@pytest.fixture(scope="module")
def showers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    return write_synthetic_file(SyntheticConfig(detector="tiny", n_events=1500, seed=2), path)


def config(data: Path, out: Path, family: str = "vae", **optim: object) -> TrainConfig:
    # 1500 events, 10% validation: chunks of 500 hold 450 training events, 9 batches of 50
    # (no short last batch, which two processes would skip: fewer than 2 events each)
    return TrainConfig.model_validate(
        {
            "name": f"{family}-ddp",
            "data": {"files": [str(data)], "chunk_events": 500},
            "model": {"family": family, "config": FLOW if family == "flow" else VAE},
            "optim": {"max_steps": 30, "batch_size": 50, **optim},
            "output": str(out),
        }
    )


def rows(batches: list[torch.Tensor]) -> np.ndarray:
    """The events of ``batches`` as rows in a canonical (sorted) order."""
    x = np.concatenate([b.numpy() for b in batches])
    return x[np.lexsort(x.T[::-1])]


@pytest.mark.parametrize("cache", [0, 2**30], ids=["streamed", "cached"])
def test_shards_are_disjoint_cover_the_epoch_and_have_equal_batch_counts(
    showers_file: Path, cache: int
) -> None:
    from twinforge.models import ShowerTransform

    t = fit_transform(ShowerTransform(96, scale=0.015), [showers_file], val_fraction=0.2)
    opts = {"val_fraction": 0.2, "batch_size": 60, "chunk_events": 400, "cache_bytes": cache}
    one = ShowerStream([showers_file], t, split="train", **opts)
    world = 3
    ranks = [ShowerStream([showers_file], t, split="train", shard=(r, world), **opts)
             for r in range(world)]  # fmt: skip
    for _epoch in range(2):  # the first pass streams (and caches), the second reshuffles
        single = [x for x, _ in one]
        parts = [[x for x, _ in stream] for stream in ranks]
        assert len({len(p) for p in parts}) == 1  # the same number of batches everywhere
        # a global batch too short for 2 events per process is left out by all processes
        kept = [b for b in single if len(b) >= 2 * world]
        assert len(parts[0]) == len(kept)
        for k, batch in enumerate(kept):  # part r of W of each global batch, in order
            joined = torch.cat([p[k] for p in parts])
            np.testing.assert_array_equal(joined.numpy(), batch.numpy())
            assert max(len(p[k]) for p in parts) - min(len(p[k]) for p in parts) <= 1
        assert all(len(p[0]) == 60 // world for p in parts)
        # disjoint, and together every event of the epoch's kept batches
        together = rows([b for p in parts for b in p])
        np.testing.assert_array_equal(together, rows(kept))
        assert len(np.unique(together, axis=0)) == len(together)
    # the validation split is not divided: every process evaluates all of it
    val = ShowerStream([showers_file], t, split="val", shard=(1, world), **opts)
    full = ShowerStream([showers_file], t, split="val", **opts)
    np.testing.assert_array_equal(rows([x for x, _ in val]), rows([x for x, _ in full]))
    with pytest.raises(ValueError, match="rank"):
        ShowerStream([showers_file], t, split="train", shard=(3, 3), **opts)


@pytest.mark.parametrize("family", ["flow", "vae"])
def test_two_gloo_processes_match_one_process(
    tmp_path: Path, showers_file: Path, family: str
) -> None:
    """Two CPU processes (gloo, ddp_fork: in this process's tree) at the same global batch.

    flow (deterministic loss): the same weights up to float32 summation order (seen: 4e-8
    after 30 Adam steps; a single different batch moves them by ~0.1). vae: its sampling noise
    is drawn per process and batch normalisation sees each process's half batch (no CPU
    SyncBatchNorm), so only within noise: seen 0.5-0.7% apart on three seeds, while one
    process's best validation loss varies by ~7% between seeds (91-98).
    """
    one = Surrogate.load(run_training(config(showers_file, tmp_path / "one", family), quiet=True))
    spec = DistributedSpec(devices=2, strategy="ddp_fork", accelerator="cpu")
    with Catalog.open(tmp_path / "cat.sqlite") as cat:
        out = run_training(config(showers_file, tmp_path / "two", family), quiet=True,
                           distributed=spec, catalog=cat)  # fmt: skip
        assert cat.count("models") == 1
    two = Surrogate.load(out)
    # the loop progress and best score come back from the worker processes
    for key in ("steps", "epochs"):
        assert two.provenance[key] == one.provenance[key]
    assert two.provenance["steps"] == 30
    loss1, loss2 = one.provenance["best_val_loss"], two.provenance["best_val_loss"]
    if family == "flow":
        for name, weight in one.model.state_dict().items():
            torch.testing.assert_close(two.model.state_dict()[name], weight, atol=1e-5, rtol=0)
        assert loss2 == pytest.approx(loss1, rel=1e-5)
    else:
        assert loss2 == pytest.approx(loss1, rel=0.03)


@pytest.mark.slow
def test_ddp_spawn_from_python_matches_one_process(tmp_path: Path, showers_file: Path) -> None:
    """ddp_spawn (fresh interpreters: everything is pickled; ~25 s of imports on 2 cores):
    the same weights as one process, and the loop progress brought back."""
    one = Surrogate.load(run_training(config(showers_file, tmp_path / "one", "flow"), quiet=True))
    spec = DistributedSpec(devices=2, strategy="ddp_spawn", accelerator="cpu")
    out = run_training(config(showers_file, tmp_path / "two", "flow"), quiet=True,
                       distributed=spec)  # fmt: skip
    two = Surrogate.load(out)
    assert two.provenance["steps"] == 30
    # the cost callback was pickled into the processes; the first one recorded the part
    assert two.provenance["cost"]["steps"] == 30
    assert two.provenance["cost"]["hardware"][0]["devices"] == 2
    assert two.provenance["epochs"] == one.provenance["epochs"]
    for name, weight in one.model.state_dict().items():
        torch.testing.assert_close(two.model.state_dict()[name], weight, atol=1e-5, rtol=0)


def test_resolve_checks_combinations(monkeypatch: pytest.MonkeyPatch) -> None:
    from twinforge.training import distributed

    monkeypatch.setattr(distributed, "_launcher_starts_processes", lambda: False)  # no srun
    plan = DistributedSpec(devices=2, strategy="ddp_spawn", accelerator="cpu").resolve(
        batch_size=64
    )
    assert (plan.strategy, plan.backend, plan.world_size) == ("ddp_spawn", "gloo", 2)
    kwargs = plan.trainer_kwargs()
    assert (kwargs["devices"], kwargs["accelerator"], kwargs["sync_batchnorm"]) == (2, "cpu", False)
    alone = DistributedSpec(accelerator="cpu").resolve(batch_size=64)
    assert (alone.strategy, alone.backend, alone.threads) == ("auto", None, None)
    fork = DistributedSpec(devices=2, strategy="ddp_fork", accelerator="cpu")
    assert fork.resolve().threads == 1
    with pytest.raises(ConfigError, match="does not split evenly over 3 processes"):
        DistributedSpec(devices=3, strategy="ddp_spawn", accelerator="cpu").resolve(batch_size=64)
    with pytest.raises(ConfigError, match="fewer than 2 events per process"):
        DistributedSpec(devices=2, strategy="ddp_spawn", accelerator="cpu").resolve(batch_size=2)
    with pytest.raises(ConfigError, match="several nodes need strategy ddp"):
        DistributedSpec(devices=2, num_nodes=2, strategy="ddp_spawn", accelerator="cpu").resolve()
    # auto with several processes is ddp, which runs the program again in each: not pytest
    with pytest.raises(ConfigError, match="ddp would start every other process by running"):
        DistributedSpec(devices=2, accelerator="cpu").resolve()
    monkeypatch.setattr(distributed, "_launcher_starts_processes", lambda: True)  # under srun
    assert DistributedSpec(devices=2, accelerator="cpu").resolve().strategy == "ddp"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
        DistributedSpec(accelerator="gpu").resolve()
    assert DistributedSpec().resolve().accelerator == "cpu"  # auto without a GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    gpu = DistributedSpec(devices=2).resolve(batch_size=64)  # auto: the GPUs
    assert (gpu.accelerator, gpu.backend) == ("gpu", "nccl")
    assert gpu.trainer_kwargs()["sync_batchnorm"]
    with pytest.raises(ConfigError, match="only 2 GPU"):
        DistributedSpec(devices=4).resolve()
    with pytest.raises(ConfigError, match="ddp_fork is for CPUs"):
        DistributedSpec(devices=2, strategy="ddp_fork").resolve()


def test_more_processes_than_cores_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    cores = len(os.sched_getaffinity(0))
    spec = DistributedSpec(devices=cores + 1, strategy="ddp_spawn", accelerator="cpu")
    logger = logging.getLogger("twinforge.training.distributed")
    logger.addHandler(caplog.handler)  # the CLI may have stopped propagation to the root
    try:
        plan = spec.resolve()
    finally:
        logger.removeHandler(caplog.handler)
    assert plan.threads == 1
    assert f"{cores + 1} training processes share {cores} core(s)" in caplog.text


def test_launch_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert is_launch_zero()
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert is_launch_zero()
    monkeypatch.setenv("LOCAL_RANK", "1")  # a process Lightning's ddp started
    assert not is_launch_zero()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("SLURM_PROCID", "5")  # task 5 of an srun
    assert not is_launch_zero()


def test_slurm_script_text(tmp_path: Path) -> None:
    cfg = tmp_path / "my runs" / "train it.yaml"
    spec = SlurmSpec(nodes=4, gpus_per_node=8, partition="gpu", time="1-02:00:00",
                     account="calo", job_name="twinforge-vae", cpus_per_task=6,
                     prologue=["module load cuda/12.4"])  # fmt: skip
    text = slurm_script(cfg, spec, extra_args=["--catalog", "/data/my cat.sqlite"],
                        program=["/opt/tf env/bin/twinforge"])  # fmt: skip
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    directives = [line for line in lines if line.startswith("#SBATCH")]
    assert directives == [
        "#SBATCH --job-name=twinforge-vae",
        "#SBATCH --nodes=4",
        "#SBATCH --ntasks-per-node=8",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --cpus-per-task=6",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=1-02:00:00",
        "#SBATCH --account=calo",
        "#SBATCH --output=%x-%j.out",
    ]
    assert lines.index("module load cuda/12.4") < len(lines) - 1
    srun = [line for line in lines if line.startswith("srun ")]
    assert len(srun) == 1
    assert shlex.split(srun[0]) == [
        "srun", "/opt/tf env/bin/twinforge", "train", str(cfg.resolve()), "--devices", "8",
        "--num-nodes", "4", "--strategy", "ddp", "--accelerator", "gpu",
        "--catalog", "/data/my cat.sqlite",
    ]  # fmt: skip
    assert f"'{cfg.resolve()}'" in srun[0]  # the path with a space is quoted
    assert 'export SRUN_CPUS_PER_TASK="$SLURM_CPUS_PER_TASK"' in lines
    # CPU nodes: tasks per node are the processes, no GPU directive
    cpu = slurm_script("t.yaml", SlurmSpec(nodes=2, gpus_per_node=0, tasks_per_node=4))
    assert "#SBATCH --ntasks-per-node=4" in cpu
    assert "--gpus-per-node" not in cpu
    assert "--devices 4 --num-nodes 2 --strategy ddp --accelerator cpu" in cpu
    for bad, match in [
        ({"time": "2 hours"}, "slurm time '2 hours'"),
        ({"partition": "gpu\n#SBATCH --x"}, "slurm partition"),
        ({"gpus_per_node": 4, "tasks_per_node": 2}, "one process per GPU"),
    ]:
        with pytest.raises(ConfigError, match=match):
            slurm_script("t.yaml", SlurmSpec(**bad))


Cli = Callable[..., tuple[int, str]]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """``twinforge ARGS`` in this process (the console-script entry point ``main``): its exit
    code and stderr; the loggers and run-wide options restored afterwards."""
    import twinforge.cli
    from twinforge.cli import _common

    stream = io.StringIO()
    console = Console(file=stream, width=200)
    monkeypatch.setattr(twinforge.cli, "err_console", console)
    monkeypatch.setattr(_common, "err_console", console)
    logger = logging.getLogger("twinforge")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    options = (_common.options.quiet, _common.options.debug)

    def run(*args: str) -> tuple[int, str]:
        stream.seek(0)
        stream.truncate()
        monkeypatch.setattr(sys, "argv", ["twinforge", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return code, stream.getvalue().strip()

    yield run
    logger.handlers[:], logger.level, logger.propagate = saved
    _common.options.quiet, _common.options.debug = options


def test_cli_writes_the_slurm_script_without_training(
    tmp_path: Path, showers_file: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWINFORGE_NO_TRACKING")  # (the tests' setting would be passed on)
    cfg = config(showers_file, tmp_path / "m")
    path = tmp_path / "a dir" / "t.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"kind": "train", **cfg.model_dump(mode="json")}))
    out = tmp_path / "train.sh"
    code, err = cli("train", str(path), "--slurm-script", str(out), "--nodes", "2",
                    "--gpus-per-node", "5", "--partition", "p", "--time", "00:30:00",
                    "--catalog", str(tmp_path / "c.sqlite"))  # fmt: skip
    assert code == 0, err
    text = out.read_text()
    assert "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=5\n#SBATCH --gpus-per-node=5" in text
    srun = shlex.split(next(line for line in text.splitlines() if line.startswith("srun ")))
    assert srun[2:] == [
        "train", str(path.resolve()), "--devices", "5", "--num-nodes", "2", "--strategy", "ddp",
        "--accelerator", "gpu", "--catalog", str(tmp_path / "c.sqlite"),
    ]  # fmt: skip
    assert Path(srun[1]).name == "twinforge"
    assert not (tmp_path / "m").exists()
    assert not (tmp_path / "m.checkpoints").exists()
    # the training's own options travel to every process
    code, err = cli("train", str(path), "--slurm-script", str(out), "--overwrite",
                    "--nodes", "2", "--gpus-per-node", "5", "--init-from", "siw model",
                    "--no-tracking")  # fmt: skip
    assert code == 0, err
    srun = shlex.split(next(line for line in out.read_text().splitlines() if "srun " in line))
    assert srun[-4:] == ["--overwrite", "--init-from", "siw model", "--no-tracking"]
    # 50 events do not split over 2 x 4 processes
    code, err = cli("train", str(path), "--slurm-script", str(out), "--nodes", "2",
                    "--gpus-per-node", "4")  # fmt: skip
    assert code == 1
    assert "does not split evenly over 8 processes" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--devices", "0"], "--devices 0: input should be greater than 0"),
        (["--num-nodes", "-1"], "--num-nodes -1: input should be greater than 0"),
        (["--strategy", "horovod"], "--strategy horovod: input should be 'auto', 'ddp'"),
        (["--accelerator", "tpu"], "--accelerator tpu: input should be 'auto', 'cpu' or 'gpu'"),
        (["--devices", "3"], "optim.batch_size 50 does not split evenly over 3 processes"),
        (["--partition", "gpu"], "--partition describes a Slurm job"),
        (["--slurm-script", "x.sh", "--strategy", "ddp_spawn"], "a Slurm job runs ddp"),
        (["--slurm-script", "x.sh", "--time", "soon"], "slurm time 'soon'"),
    ],
)
def test_cli_bad_distributed_options(
    tmp_path: Path, showers_file: Path, cli: Cli, args: list[str], message: str
) -> None:
    path = tmp_path / "t.yaml"
    cfg = config(showers_file, tmp_path / "m")
    path.write_text(yaml.safe_dump({"kind": "train", **cfg.model_dump(mode="json")}))
    code, err = cli("train", str(path), *args)
    assert code == 1
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert message in err
    assert not (tmp_path / "m").exists()
    assert not (tmp_path / "x.sh").exists()


def test_cli_gpu_without_a_gpu(
    tmp_path: Path, showers_file: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.yaml"
    cfg = config(showers_file, tmp_path / "m")
    path.write_text(yaml.safe_dump({"kind": "train", **cfg.model_dump(mode="json")}))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, err = cli("train", str(path), "--accelerator", "gpu")
    assert code == 1
    assert err == (
        "error: accelerator 'gpu': no CUDA GPU is visible (torch.cuda.is_available() is "
        "False); use --accelerator cpu or auto"
    )
    # ddp would run this program (pytest) again in each process: refused, ddp_spawn named
    code, err = cli("train", str(path), "--accelerator", "cpu", "--devices", "2")
    assert code == 1
    assert "use ddp_spawn" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_cli_ddp_from_python_c_is_one_line(tmp_path: Path, showers_file: Path) -> None:
    """``python -c 'from twinforge.cli import main; main()' train --strategy ddp``: the
    program cannot be run again; one line on stderr, exit code 1, nothing trained."""
    path = tmp_path / "t.yaml"
    cfg = config(showers_file, tmp_path / "m")
    path.write_text(yaml.safe_dump({"kind": "train", **cfg.model_dump(mode="json")}))
    proc = subprocess.run(
        [sys.executable, "-c", "from twinforge.cli import main; main()", "train", str(path),
         "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == (
        "error: strategy ddp starts the other processes by running this program again, which "
        "'-c' cannot be; use ddp_spawn (or ddp_fork on CPU)"
    )
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_cli_ddp_relaunches_the_console_script(tmp_path: Path, showers_file: Path) -> None:
    """``twinforge train CFG --devices 2 --strategy ddp`` from the installed console script:
    Lightning runs the command again for the second process; only the first writes the model,
    registers it and says so."""
    script = Path(sys.executable).with_name("twinforge")
    if not script.is_file():
        pytest.skip("no twinforge console script beside this Python")
    path = tmp_path / "t.yaml"
    cfg = config(showers_file, tmp_path / "m")
    path.write_text(yaml.safe_dump({"kind": "train", **cfg.model_dump(mode="json")}))
    proc = subprocess.run([str(script), "train", str(path), "--devices", "2", "--strategy",
                           "ddp", "--accelerator", "cpu", "--catalog", str(tmp_path / "c.sqlite")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("wrote model") == 1
    assert Surrogate.load(tmp_path / "m").provenance["steps"] == 30
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        assert cat.count("models") == 1
        assert cat.count("training_runs") == 1
