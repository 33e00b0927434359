from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from twinforge.catalog import Catalog
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.models import Surrogate
from twinforge.showers import ShowerFile
from twinforge.showers.file import ShowerWriter
from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file
from twinforge.training.data import ShowerStream, fit_transform, is_validation
from twinforge.training.train import TrainConfig, run_training


@pytest.fixture(scope="module")
def showers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    return write_synthetic_file(SyntheticConfig(detector="tiny", n_events=1500, seed=2), path)


def config(path: Path, out: Path, **optim) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": "vae-test",
            "data": {"files": [str(path)], "chunk_events": 500},
            "model": {"family": "vae", "config": {"latent_dim": 4, "hidden": [32, 16]}},
            "optim": {"max_steps": 40, "batch_size": 64, **optim},
            "output": str(out),
        }
    )


def test_split_is_deterministic_and_about_right() -> None:
    idx = np.arange(100_000)
    val = is_validation(idx, 0.1)
    assert 0.09 < val.mean() < 0.11
    np.testing.assert_array_equal(val, is_validation(idx, 0.1))


def test_stream_covers_the_split_once_per_epoch(showers_file: Path) -> None:
    from twinforge.models import ShowerTransform

    t = fit_transform(ShowerTransform(96, scale=0.015), [showers_file], val_fraction=0.2)
    train = ShowerStream([showers_file], t, split="train", val_fraction=0.2, batch_size=100,
                         chunk_events=400)  # fmt: skip
    val = ShowerStream([showers_file], t, split="val", val_fraction=0.2, batch_size=100)
    n_train = sum(len(x) for x, _ in train)
    n_val = sum(len(x) for x, _ in val)
    assert n_train + n_val == 1500
    assert 0.15 < n_val / 1500 < 0.25
    first = next(iter(train))[0]
    assert not np.array_equal(first.numpy(), next(iter(train))[0].numpy())  # reshuffled


def test_cached_stream_gives_the_same_events_as_streaming(showers_file: Path) -> None:
    from twinforge.models import ShowerTransform

    t = fit_transform(ShowerTransform(96, scale=0.015), [showers_file], val_fraction=0.2)
    opts = {"split": "train", "val_fraction": 0.2, "batch_size": 64, "chunk_events": 400}
    plain = ShowerStream([showers_file], t, **opts)
    cached = ShowerStream([showers_file], t, cache_bytes=2**30, **opts)
    tiny = ShowerStream([showers_file], t, cache_bytes=1000, **opts)  # does not fit: streams

    def rows(stream: ShowerStream) -> np.ndarray:
        x = np.concatenate([b.numpy() for b, _ in stream])
        return x[np.lexsort(x.T[::-1])]

    reference = rows(plain)
    np.testing.assert_array_equal(rows(cached), reference)  # first pass fills the cache
    assert cached._cached is not None
    np.testing.assert_array_equal(rows(cached), reference)  # second pass: from memory
    rows(tiny)
    assert tiny._cached is None


def test_dequantised_stream_draws_fresh_training_noise_every_epoch(showers_file: Path) -> None:
    """Training noise changes between epochs (cached or not, the same features in an epoch);
    the validation split keeps one draw, so its losses compare between epochs."""
    from twinforge.models import ShowerTransform

    def rows(stream: ShowerStream) -> np.ndarray:
        x = np.concatenate([b.numpy() for b, _ in stream])
        return x[np.lexsort(x.T[::-1])]

    sparse = showers_file.parent / "sparse.h5"
    if not sparse.exists():  # a third of the voxels empty, as in a real calorimeter
        with ShowerFile(showers_file) as f:
            cond, showers = f.read()
            readout, provenance = f.readout, f.provenance
        showers[np.random.default_rng(0).random(showers.shape) < 0.3] = 0.0
        with ShowerWriter(sparse, readout, provenance) as w:
            w.append(cond, showers)
    t = ShowerTransform(96, scale=0.015, threshold=0.01515, dequantize=True)
    fit_transform(t, [sparse], val_fraction=0.2)
    opts = {"val_fraction": 0.2, "batch_size": 64, "chunk_events": 400}
    plain = ShowerStream([sparse], t, split="train", **opts)
    cached = ShowerStream([sparse], t, split="train", cache_bytes=2**30, **opts)
    first = rows(plain)
    np.testing.assert_array_equal(rows(cached), first)  # epoch 1: streamed and cached agree
    second = rows(plain)
    assert first.shape == second.shape
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(rows(cached), second)  # epoch 2 from memory, fresh noise
    assert cached._cached_raw is not None
    val = ShowerStream([sparse], t, split="val", cache_bytes=2**30, **opts)
    np.testing.assert_array_equal(rows(val), rows(val))


# an epoch's end; SIGTERM at step 5, 8 (an epoch's last), 11 (the second epoch), 5 then 7
@pytest.mark.parametrize("stops", [(), (5,), (8,), (11,), (5, 7)])
def test_resumed_training_sees_the_batches_an_uninterrupted_run_sees(
    tmp_path: Path, showers_file: Path, stops: tuple[int, ...]
) -> None:
    """Stopped at an epoch's end (its checkpoint), or by SIGTERM at each step of ``stops``
    (the checkpoint SaveLast writes, resumed each time), the run trains on the uninterrupted
    run's batches, in its order: the checkpoint holds the stream's pass count and position."""
    import lightning as L
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from twinforge.models import ShowerTransform
    from twinforge.models.base import model_class
    from twinforge.training.module import StreamPosition, SurrogateModule, checkpointing

    t = fit_transform(ShowerTransform(96, scale=0.015), [showers_file], val_fraction=0.2)

    class Batches(L.Callback):  # the first event of every batch trained on, by global step
        def __init__(self, stop_at: int | None) -> None:
            self.seen: dict[int, np.ndarray] = {}
            self.stop_at = stop_at

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self.seen[trainer.global_step] = batch[0][0].numpy().copy()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if trainer.global_step == self.stop_at:  # as Lightning's SIGTERM handler does
                trainer._signal_connector.received_sigterm = True

    def fit(epochs: int, ckpt: str, *, stop_at: int | None = None, resume: Path | None = None):
        L.seed_everything(0, verbose=False)
        stream = ShowerStream([showers_file], t, split="train", val_fraction=0.2,
                              batch_size=200, chunk_events=400)  # fmt: skip
        val = ShowerStream([showers_file], t, split="val", val_fraction=0.2, batch_size=200)
        vae = model_class("vae")({"latent_dim": 2, "hidden": [8]}, t.n_features, t.n_conditions)
        module = SurrogateModule(vae, lr=1e-3, weight_decay=0.0, max_steps=1000)
        record = Batches(stop_at)
        callbacks = [record, StreamPosition(stream), *checkpointing(tmp_path / ckpt)]
        trainer = L.Trainer(max_epochs=epochs, callbacks=callbacks, logger=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            num_sanity_val_steps=0)  # fmt: skip
        if stop_at is not None:
            with pytest.raises(SIGTERMException):
                trainer.fit(module, stream, val, ckpt_path=resume, weights_only=True)
        else:
            trainer.fit(module, stream, val, ckpt_path=resume, weights_only=True)
        return record.seen, trainer

    whole, trainer = fit(3, "whole")
    per_epoch = trainer.global_step // 3
    assert per_epoch == 8  # 1600 training events, batches of 200
    firsts = [whole[k * per_epoch] for k in range(3)]
    assert not np.array_equal(firsts[0], firsts[1])  # reshuffled every epoch
    if not stops:
        fit(1, "part")
        stopped = per_epoch
    resume = None
    for stop_at in stops:
        seen, _ = fit(3, "part", stop_at=stop_at, resume=resume)
        assert sorted(seen) == list(range(stopped if resume else 0, stop_at))  # to that step
        for step, first in seen.items():
            np.testing.assert_array_equal(first, whole[step])
        stopped, resume = stop_at, tmp_path / "part" / "last.ckpt"
    resumed, trainer = fit(3, "part", resume=tmp_path / "part" / "last.ckpt")
    assert trainer.global_step == 3 * per_epoch
    assert sorted(resumed) == list(range(stopped, 3 * per_epoch))
    for step, first in resumed.items():
        np.testing.assert_array_equal(first, whole[step])
    # every validation, improved or not, overwrites the one last.ckpt (no last-v1.ckpt beside
    # a stop's), with the best score that validation left
    assert sorted(p.name for p in (tmp_path / "part").glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
    last, best = (torch.load(tmp_path / "part" / f"{name}.ckpt", weights_only=True)
                  for name in ("last", "best"))  # fmt: skip
    assert last["global_step"] == 3 * per_epoch
    (state,) = (v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint"))
    (at_best,) = (v for k, v in best["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert state["best_model_score"] == at_best["current_score"]


def test_train_writes_registers_and_samples(tmp_path: Path, showers_file: Path) -> None:
    with Catalog.open(tmp_path / "cat.sqlite") as cat:
        out = run_training(config(showers_file, tmp_path / "m"), catalog=cat, quiet=True)
        model = cat.find("vae-test", "models")
        assert model is not None
        runs = cat.list("runs")
        assert len(runs) == 1
        assert "val/loss" in runs[0].metrics
    surrogate = Surrogate.load(out)
    prov = surrogate.provenance
    assert prov["steps"] == 40
    cost = prov["cost"]  # what the run cost, measured (twinforge.training.cost)
    assert cost["parts"] == 1
    assert cost["steps"] == 40
    assert cost["wall_s"] > 0
    assert cost["cpu_s"] > 0
    assert cost["gpu_hours"] == 0
    assert cost["hardware"][0]["accelerator"] == "cpu"
    threads = cost["hardware"][0]["threads"]
    assert threads >= 1
    assert cost["core_hours"] == pytest.approx(cost["wall_s"] * threads / 3600, abs=1e-5)
    assert prov["best_val_loss"] is not None
    assert prov["split"]["val_fraction"] == 0.1
    showers = surrogate.sample(np.geomspace(1e3, 6.4e4, 20), seed=1)
    assert showers.shape == (20, 96)
    assert np.all(showers >= 0)
    # a second run with the same seed gives the same model
    again = run_training(config(showers_file, tmp_path / "m2"), quiet=True)
    np.testing.assert_array_equal(Surrogate.load(again).sample([1e4], seed=3),
                                  surrogate.sample([1e4], seed=3))  # fmt: skip
    with pytest.raises(TwinforgeError, match="already exists"):
        run_training(config(showers_file, tmp_path / "m"), quiet=True)
    # the same name again in the catalogue: refused before training, nothing written
    with (
        Catalog.open(tmp_path / "cat.sqlite") as cat,
        pytest.raises(
            TwinforgeError, match=r"model 'vae-test' is already in the catalogue \(model-1\)"
        ),
    ):
        run_training(config(showers_file, tmp_path / "m3"), catalog=cat, quiet=True)
    assert not (tmp_path / "m3").exists()
    assert not (tmp_path / "m3.checkpoints").exists()


def test_bad_training_configs(tmp_path: Path, showers_file: Path) -> None:
    from twinforge.config import validate_config

    with pytest.raises(ConfigError, match=r"unknown key 'optim\.lr_max'"):
        validate_config(TrainConfig, {"name": "x", "data": {"files": ["a.h5"]},
                                      "optim": {"lr_max": 1}}, "t")  # fmt: skip
    with pytest.raises(ConfigError, match="at least one shower file"):
        validate_config(TrainConfig, {"name": "x", "data": {"files": []}}, "t")
    with pytest.raises(ConfigError, match="noise_edge is the edge of the dequantisation noise"):
        validate_config(TrainConfig, {"name": "x", "data": {"files": ["a.h5"]},
                                      "transform": {"noise_edge": 0.1}}, "t")  # fmt: skip
    with pytest.raises(
        ConfigError, match=r"t: key 'model': vae model config: unknown key 'latent'"
    ):
        validate_config(TrainConfig, {"name": "x", "data": {"files": ["a.h5"]},
                                      "model": {"config": {"latent": 3}}}, "t")  # fmt: skip
    with pytest.raises(ConfigError, match="unknown model family 'vea'; known: flow, flow-match"):
        validate_config(TrainConfig, {"name": "x", "data": {"files": ["a.h5"]},
                                      "model": {"family": "vea"}}, "t")  # fmt: skip
    cfg = config(tmp_path / "missing.h5", tmp_path / "m")
    with pytest.raises(TwinforgeError, match="file not found"):
        run_training(cfg, quiet=True)
    # dequantisation needs the readout threshold recorded with the data
    with ShowerFile(showers_file) as f:
        cond, showers = f.read()
        readout = f.readout
    bare = tmp_path / "no-threshold.h5"
    with ShowerWriter(bare, readout, {"note": "no detector config"}) as w:
        w.append(cond, showers)
    cfg = config(bare, tmp_path / "m")
    cfg.transform.dequantize = True
    with pytest.raises(ConfigError, match=r"transform\.dequantize: .*no-threshold\.h5 records no"):
        run_training(cfg, quiet=True)
    cfg.transform.dequantize = False
    cfg.transform.fractions = "softmax"  # so do softmax voxel fractions
    with pytest.raises(ConfigError, match=r"transform\.fractions: .*h5 records no .*softmax"):
        run_training(cfg, quiet=True)
    assert not (tmp_path / "m").exists()
    with pytest.raises(
        ConfigError, match=r"key 'transform\.fractions': Input should be 'logit' or 'softmax'"
    ):
        validate_config(TrainConfig, {"name": "x", "data": {"files": ["a.h5"]},
                                      "transform": {"fractions": "exp"}}, "t")  # fmt: skip


def _default_sigint() -> None:
    """In the child: Ctrl-C as in a terminal (a background job inherits SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_training_resumes(tmp_path: Path, showers_file: Path, sig: int) -> None:
    """SIGKILL: the run resumes from its last epoch's checkpoint. SIGTERM (``timeout``, a
    batch system) and Ctrl-C: it writes a checkpoint at the step it stopped at and exits with
    143 (with a line saying so) or 130."""
    # long enough that the kill lands well before the end, even on a loaded machine
    cfg = config(showers_file, tmp_path / "m", max_steps=600, patience=1000)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"kind": "train", **cfg.model_dump(mode="json")}))
    cmd = [sys.executable, "-c", "from twinforge.cli import main; main()", "--quiet", "train",
           str(path), "--catalog", str(tmp_path / "cat.sqlite")]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_default_sigint)  # fmt: skip
    last = tmp_path / "m.checkpoints" / cfg.digest() / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    time.sleep(0.5)
    os.kill(proc.pid, sig)
    rc = proc.wait(timeout=120)
    assert not (tmp_path / "m").exists()  # no model directory from a killed run
    if sig != signal.SIGKILL:
        assert rc == (143 if sig == signal.SIGTERM else 130)
        if sig == signal.SIGTERM:
            assert "stopped:" in proc.stderr.read().decode()  # type: ignore[union-attr]
        state = torch.load(last, map_location="cpu", weights_only=True)
        assert 0 < state["global_step"] < 600
    # the killed part's cost, as recorded at its last validation (none on a machine so loaded
    # that the kill came before the first one)
    killed = json.loads(cost.read_text()) if (cost := last.with_name("cost.json")).exists() else []
    out = run_training(cfg, quiet=True)
    prov = Surrogate.load(out).provenance
    assert prov["steps"] == 600
    # every part is costed: the killed one kept as it was, then the resumed one
    assert prov["cost"]["parts"] == len(killed) + 1
    assert prov["cost"]["wall_s"] > sum(part["wall_s"] for part in killed)


def test_cli_train_and_sample(tmp_path: Path, showers_file: Path) -> None:
    cfg = config(showers_file, tmp_path / "m")
    (tmp_path / "t.yaml").write_text(
        yaml.safe_dump({"kind": "train", **cfg.model_dump(mode="json")})
    )
    run = [sys.executable, "-c", "from twinforge.cli import main; main()"]
    proc = subprocess.run([*run, "-q", "train", str(tmp_path / "t.yaml"), "--catalog",
                           str(tmp_path / "c.sqlite")], capture_output=True, text=True,
                          check=False, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([*run, "sample", str(tmp_path / "m"), "--energy", "1GeV:64GeV",
                           "--n", "30", "-o", str(tmp_path / "g.h5")], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with ShowerFile(tmp_path / "g.h5") as f:
        cond, showers = f.read()
        assert f.provenance["simulator"] == "twinforge vae model"
    assert showers.shape == (30, 96)
    assert 1e3 <= cond.energy.min() <= cond.energy.max() <= 6.4e4
    # one shower at each of a file's conditions
    proc = subprocess.run([*run, "sample", str(tmp_path / "m"), "--conditions-from",
                           str(tmp_path / "g.h5"), "-o", str(tmp_path / "h.h5")],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with ShowerFile(tmp_path / "h.h5") as f:
        np.testing.assert_array_equal(f.conditions().energy, cond.energy)
        assert f.provenance["conditions_from"] == str(tmp_path / "g.h5")
    proc = subprocess.run([*run, "sample", str(tmp_path / "m"), "-o", str(tmp_path / "y.h5")],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 1
    assert "--conditions-from" in proc.stderr
    bad = [*run, "sample", str(tmp_path / "nope"), "--energy", "1GeV", "-o", str(tmp_path / "x.h5")]
    proc = subprocess.run(bad, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "model directory not found" in proc.stderr


def test_losses_are_logged_per_epoch(tmp_path: Path, showers_file: Path) -> None:
    out = run_training(config(showers_file, tmp_path / "m", max_steps=60), quiet=True)
    history = Surrogate.load(out).provenance["history"]
    assert len(history) >= 2
    assert [h["epoch"] for h in history] == list(range(len(history)))
    # the last epoch may stop at max_steps before its validation pass
    assert all("train/loss" in h and "val/loss" in h for h in history[:-1])


def test_write_split_partitions_the_events(tmp_path: Path, showers_file: Path) -> None:
    from twinforge.training.data import write_split

    n_val = write_split([showers_file], tmp_path / "v.h5", split="val", val_fraction=0.2)
    n_train = write_split([showers_file], tmp_path / "t.h5", split="train", val_fraction=0.2)
    with ShowerFile(showers_file) as f:
        energy = f.conditions().energy
    val = is_validation(np.arange(len(energy)), 0.2)
    assert (n_val, n_train) == (val.sum(), (~val).sum())
    with ShowerFile(tmp_path / "v.h5") as f:
        np.testing.assert_array_equal(f.conditions().energy, energy[val])
        assert f.provenance["split"]["split"] == "val"
    with pytest.raises(TwinforgeError, match="exists"):
        write_split([showers_file], tmp_path / "v.h5", split="val", val_fraction=0.2)
