"""The runtime Generator: model directories (torch) and ONNX files, without the training stack."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from tests.imports import assert_imports_none_of
from twinforge.errors import TwinforgeError
from twinforge.inference import Generator, export_onnx
from twinforge.models import ShowerTransform, Surrogate, model_class

THRESHOLD = 0.01515  # MeV, the tiny detector's readout threshold
RTOL, ATOL = 1e-4, 1e-5  # as tests/inference/test_onnx.py (ATOL in MeV)
SMALL_VAE = {"latent_dim": 4, "hidden": [32, 16]}


def make_surrogate(pdgs: tuple[int, ...] = (11, 22)) -> Surrogate:
    """A small VAE on the tiny detector (96 voxels) with non-trivial weights, untrained."""
    from twinforge.detector import load_detector
    from twinforge.simulation.synthetic import SyntheticConfig, synthetic_showers

    cond = SyntheticConfig(detector="tiny", n_events=200, seed=6).conditions()
    showers = synthetic_showers("tiny", cond, 1)
    transform = ShowerTransform(
        96, scale=0.015, threshold=THRESHOLD, eps=1e-6, pdgs=list(pdgs)
    ).fit(showers, cond.energy)
    torch.manual_seed(0)
    model = model_class("vae")(SMALL_VAE, 96, transform.n_conditions)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point() and not p.any():
                p.add_(0.02 * torch.randn(p.shape, generator=gen))
    model.eval()
    return Surrogate(model, transform, load_detector("tiny").binning().to_xml(), {"note": "test"})


def make_model_dir(path: Path, pdgs: tuple[int, ...] = (11, 22)) -> Path:
    """Write :func:`make_surrogate` as a model directory at ``path``; return it."""
    return make_surrogate(pdgs).save(path)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("runtime") / "model")


@pytest.fixture(scope="module")
def onnx_file(model_dir: Path) -> Path:
    return export_onnx(Surrogate.load(model_dir), model_dir.parent / "model.onnx")


def assert_valid(showers: np.ndarray, n: int) -> None:
    assert showers.shape == (n, 96)
    assert showers.dtype == np.float32
    assert np.isfinite(showers).all()
    assert (showers >= 0).all()
    assert ((showers == 0) | (showers >= THRESHOLD)).all()  # readout threshold applied
    assert (showers.sum(axis=1) > 0).all()


def test_model_directory_uses_torch(model_dir: Path) -> None:
    gen = Generator(model_dir)
    assert (gen.backend, gen.device, gen.providers) == ("torch", "cpu", [])
    assert (gen.family, gen.n_voxels, gen.noise_shape) == ("vae", 96, (4,))
    assert gen.info.pdgs == (11, 22)
    assert gen.readout.n_voxels == 96
    showers = gen.generate([5000.0, 10000.0, 20000.0], pdg=[11, 22, 11], theta=0.1, seed=3)
    assert_valid(showers, 3)
    np.testing.assert_array_equal(showers, gen.generate([5e3, 1e4, 2e4], [11, 22, 11], 0.1, seed=3))
    assert not np.array_equal(showers, gen.generate([5e3, 1e4, 2e4], [11, 22, 11], 0.1, seed=4))
    # the same noise as Surrogate.sample draws for that seed: the same showers
    reference = Surrogate.load(model_dir).sample(
        [5000.0, 10000.0, 20000.0], [11, 22, 11], 0.1, seed=3
    )
    np.testing.assert_allclose(showers, reference, rtol=RTOL, atol=ATOL)


def test_onnx_file_uses_onnxruntime(onnx_file: Path, model_dir: Path) -> None:
    gen = Generator(onnx_file, threads=1)
    assert (gen.backend, gen.providers) == ("onnx", ["CPUExecutionProvider"])
    assert (gen.family, gen.n_voxels, gen.noise_shape) == ("vae", 96, (4,))
    assert gen.info.pdgs == (11, 22)
    assert gen.binning_xml == Surrogate.load(model_dir).binning_xml
    assert gen.info.metadata["units"].startswith("energy MeV")
    assert "onnx" in repr(gen)
    showers = gen.generate(np.full(5, 8000.0), pdg=22, seed=11)
    assert_valid(showers, 5)
    np.testing.assert_array_equal(showers, gen.generate(np.full(5, 8000.0), pdg=22, seed=11))
    assert not np.array_equal(showers, gen.generate(np.full(5, 8000.0), pdg=22, seed=12))
    # the noise is numpy's PCG64 standard normal, drawn once: batching changes no shower
    # (beyond float rounding: the matrix products are blocked differently)
    np.testing.assert_allclose(
        showers, gen.generate(np.full(5, 8000.0), pdg=22, seed=11, batch_size=2), rtol=1e-5
    )
    np.testing.assert_array_equal(
        gen.noise(3, 5), np.random.Generator(np.random.PCG64(5)).standard_normal((3, 4), np.float32)
    )
    assert gen.generate([], seed=1).shape == (0, 96)


def test_backends_agree_on_the_same_noise(model_dir: Path, onnx_file: Path) -> None:
    torch_gen = Generator(model_dir)
    onnx_gen = Generator(onnx_file)
    exported = Generator(model_dir, backend="onnx")  # exported on the fly, in memory
    assert (exported.backend, exported.family) == ("onnx", "vae")
    energy = np.array([2000.0, 15000.0, 60000.0, 9000.0])
    pdg, theta, phi = np.array([11, 22, 22, 11]), np.array([0.0, 0.1, 0.2, 0.3]), 0.5
    noise = onnx_gen.noise(4, 0)
    a = torch_gen.generate(energy, pdg, theta, phi, noise=noise)
    b = onnx_gen.generate(energy, pdg, theta, phi, noise=noise)
    c = exported.generate(energy, pdg, theta, phi, noise=noise)
    for other in (b, c):
        near_threshold = (np.minimum(a, other) == 0) & (
            np.abs(np.maximum(a, other) - THRESHOLD) <= RTOL * THRESHOLD
        )
        keep = ~near_threshold
        np.testing.assert_allclose(other[keep], a[keep], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("n", "threads", "block"), [(37, 2, 5), (37, 3, 16), (6, 2, 8)])
def test_blocked_runs_give_the_same_showers(
    onnx_file: Path, n: int, threads: int, block: int
) -> None:
    """Cache-blocked runs (sessions x blocks, uneven shares) equal one whole run; a call no
    larger than a block runs whole."""
    whole = Generator(onnx_file, threads=1)
    blocked = Generator(onnx_file, threads=threads, block_size=block)
    assert blocked.block_size == block
    assert blocked._blocks is not None
    assert len(blocked._blocks.sessions) == threads
    rng = np.random.default_rng(n)
    energy = np.exp(rng.uniform(np.log(1e3), np.log(6e4), n))
    pdg = rng.choice([11, 22], n)
    noise = whole.noise(n, 3)
    a = whole.generate(energy, pdg, 0.1, noise=noise)
    b = blocked.generate(energy, pdg, 0.1, noise=noise)
    assert b.dtype == np.float32
    assert b.flags.c_contiguous
    np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(blocked.generate(energy, pdg, 0.1, seed=5),
                                  whole.generate(energy, pdg, 0.1, seed=5))  # fmt: skip


def test_threads_are_restored(model_dir: Path) -> None:
    before = torch.get_num_threads()
    Generator(model_dir, threads=2).generate([1000.0], seed=0)
    assert torch.get_num_threads() == before


def test_bad_input(model_dir: Path, onnx_file: Path, tmp_path: Path) -> None:
    with pytest.raises(TwinforgeError, match="not found"):
        Generator(tmp_path / "nope")
    with pytest.raises(TwinforgeError, match="unknown backend 'tf'"):
        Generator(model_dir, backend="tf")  # type: ignore[arg-type]
    with pytest.raises(TwinforgeError, match="needs a model directory"):
        Generator(onnx_file, backend="torch")
    with pytest.raises(TwinforgeError, match="threads"):
        Generator(onnx_file, threads=0)
    with pytest.raises(TwinforgeError, match="block_size must be >= 1"):
        Generator(onnx_file, block_size=0)
    with pytest.raises(TwinforgeError, match="block_size is an option of the onnx backend"):
        Generator(model_dir, block_size=64)
    with pytest.raises(TwinforgeError, match="not available"):
        Generator(onnx_file, providers=["NoSuchExecutionProvider"])
    if not torch.cuda.is_available():
        with pytest.raises(TwinforgeError, match="cuda"):
            Generator(model_dir, device="cuda")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage that is not a protobuf")
    with pytest.raises(TwinforgeError, match="not a loadable ONNX model"):
        Generator(corrupt)
    with pytest.raises(TwinforgeError, match=r"no model\.json"):
        Generator(tmp_path)
    foreign = tmp_path / "identity.onnx"
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    vi = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [node], "g", [vi("x", onnx.TensorProto.FLOAT, [1])], [vi("y", onnx.TensorProto.FLOAT, [1])]
    )
    opset = [onnx.helper.make_opsetid("", 17)]
    onnx.save(onnx.helper.make_model(graph, opset_imports=opset, ir_version=8), str(foreign))
    with pytest.raises(TwinforgeError, match="not a twinforge ONNX export"):
        Generator(foreign)
    gen = Generator(onnx_file)
    with pytest.raises(TwinforgeError, match="pdg: expected 1 or 3 values"):
        gen.generate([1e3, 2e3, 3e3], pdg=[11, 22])
    with pytest.raises(TwinforgeError, match="finite and > 0 MeV"):
        gen.generate([1e3, -1.0])
    with pytest.raises(TwinforgeError, match="theta must be finite"):
        gen.generate([1e3], theta=np.nan)
    with pytest.raises(TwinforgeError, match=r"noise: expected shape \(2, 4\)"):
        gen.generate([1e3, 2e3], noise=np.zeros((2, 5)))
    with pytest.raises(TwinforgeError, match="batch_size"):
        gen.generate([1e3], batch_size=0)


def test_importing_inference_imports_no_backend() -> None:
    assert_imports_none_of(["twinforge.inference"], ["torch", "onnxruntime", "lightning"])


def test_generator_without_the_training_stack(model_dir: Path, onnx_file: Path) -> None:
    """Lightning and twinforge.training cannot be imported: the Generator still works on both
    kinds of path, and an ONNX file does not even import torch."""
    code = textwrap.dedent(
        f"""
        import sys
        for name in ("lightning", "pytorch_lightning", "twinforge.training"):
            sys.modules[name] = None  # import of these now raises ImportError
        import numpy as np
        from twinforge.inference import Generator

        gen = Generator({str(onnx_file)!r})
        showers = gen.generate(np.full(3, 1e4), pdg=11, seed=1)
        assert showers.shape == (3, 96) and (showers >= 0).all()
        assert "torch" not in sys.modules, "the ONNX path imported torch"

        gen = Generator({str(model_dir)!r})
        showers = gen.generate(np.full(3, 1e4), pdg=11, seed=1)
        assert gen.backend == "torch" and showers.shape == (3, 96)
        loaded = {{"lightning", "pytorch_lightning", "twinforge.training"}}
        assert not any(sys.modules.get(m) for m in loaded)
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
