"""The 3DGAN-style conditional GAN: training through run_training, sampling, persistence,
periodic azimuth, spectral norm, the auxiliary energy regression, ONNX parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from twinforge.catalog import Catalog
from twinforge.errors import ConfigError
from twinforge.models import Surrogate, model_class
from twinforge.models.gan import CircularAlphaConv3d, ConditionalGAN, grid_schedule
from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file
from twinforge.training.train import TrainConfig, run_training

SMALL = {
    "latent_dim": 8, "hidden": 32, "channels": 8, "stages": 1, "critic_channels": 4,
    "critic_hidden": 16,
}  # fmt: skip
ENERGIES = [1e3, 4e3, 1.6e4, 6.4e4]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """A GAN trained for 6 batches on a tiny synthetic file; its directory and logged metrics."""
    tmp = tmp_path_factory.mktemp("gan")
    data = write_synthetic_file(
        SyntheticConfig(detector="tiny", n_events=400, seed=5), tmp / "d.h5"
    )
    config = TrainConfig.model_validate(
        {
            "name": "gan-test",
            "data": {"files": [str(data)], "val_fraction": 0.2},
            "model": {"family": "gan", "config": SMALL},
            "optim": {"max_steps": 6, "batch_size": 64, "lr": 2e-4, "gradient_clip": 1.0},
            "output": str(tmp / "model"),
        }
    )
    with Catalog.open(tmp / "cat.sqlite") as cat:
        out = run_training(config, catalog=cat, quiet=True)
        metrics = cat.list("runs")[0].metrics
    return out, metrics


def test_training_fills_the_grid_and_logs_every_term(trained) -> None:
    out, metrics = trained
    header = json.loads((out / "model.json").read_text())
    assert header["family"] == "gan"
    assert header["config"]["grid"] == [6, 4, 4]  # (z, alpha, r) of the tiny readout
    for name in ("critic", "generator", "aux_real", "aux_fake", "wasserstein"):
        assert np.isfinite(metrics[f"train/{name}"]), name
    for name in ("loss", "generator", "aux_real", "aux_fake"):
        assert np.isfinite(metrics[f"val/{name}"]), name
    surrogate = Surrogate.load(out)
    assert surrogate.provenance["steps"] == 6  # one step per batch, not per optimiser update
    assert surrogate.provenance["best_val_loss"] is not None


def test_samples_shapes_units_determinism_and_round_trip(trained, tmp_path: Path) -> None:
    surrogate = Surrogate.load(trained[0])
    a = surrogate.sample(ENERGIES, seed=3)
    assert a.shape == (4, 96)
    assert a.dtype == np.float32
    assert np.all(np.isfinite(a))
    assert np.all(a >= 0)
    assert np.all((a == 0) | (a >= surrogate.transform.threshold))  # MeV, readout threshold
    np.testing.assert_array_equal(a, surrogate.sample(ENERGIES, seed=3))
    assert not np.array_equal(a, surrogate.sample(ENERGIES, seed=4))
    again = Surrogate.load(surrogate.save(tmp_path / "copy"))
    np.testing.assert_array_equal(again.sample(ENERGIES, seed=3), a)
    state, loaded = surrogate.model.state_dict(), again.model.state_dict()
    assert state.keys() == loaded.keys()
    assert any(k.endswith("_u") for k in loaded)  # spectral-norm power-iteration state kept
    for key in state:
        torch.testing.assert_close(loaded[key], state[key], rtol=0, atol=0)


@pytest.mark.parametrize(("n_alpha", "kernel"), [(4, 3), (2, 5), (1, 3)])
def test_alpha_is_periodic(n_alpha: int, kernel: int) -> None:
    torch.manual_seed(0)
    conv = CircularAlphaConv3d(2, 3, n_alpha, kernel)
    x = torch.randn(2, 2, 5, n_alpha, 4)
    y = conv(x)
    assert y.shape == (2, 3, 5, n_alpha, 4)
    # equivariant under rotations in alpha ...
    torch.testing.assert_close(conv(torch.roll(x, 1, dims=3)), torch.roll(y, 1, dims=3))
    # ... and equal to a convolution of the circularly padded (alpha) / zero-padded (z, r) input
    p = kernel // 2
    wrapped = torch.cat([x] * (2 * p + 1), dim=3)  # enough copies for any n_alpha
    start = p * n_alpha - p
    padded = F.pad(wrapped[:, :, :, start : start + n_alpha + 2 * p], (p, p, 0, 0, p, p))
    torch.testing.assert_close(y, F.conv3d(padded, conv.weight, conv.bias))


def test_grid_schedule_never_crops_alpha() -> None:
    sizes, strides = grid_schedule((45, 16, 9), 2)
    assert sizes == [(45, 16, 9), (23, 8, 5), (12, 4, 3)]
    sizes, strides = grid_schedule((6, 3, 4), 1)
    assert sizes == [(6, 3, 4), (3, 3, 2)]
    assert strides == [(2, 1, 2)]


def test_critic_is_spectrally_normalised_and_generator_is_not() -> None:
    model = ConditionalGAN({**SMALL, "grid": [6, 4, 4]}, 96, 3)
    normalised = {
        name for name, m in model.critic.named_modules() if hasattr(m, "parametrizations")
    }
    layers = {
        name for name, m in model.critic.named_modules()
        if isinstance(m, torch.nn.Conv3d | torch.nn.Linear)
    }  # fmt: skip
    assert layers - normalised == {"aux"}  # only the energy regression head is free
    assert not any(hasattr(m, "parametrizations") for m in model.generator.modules())
    for _ in range(30):  # power iterations converge in training mode
        model.critic(torch.randn(8, 96), torch.randn(8, 3))
    sigma = torch.linalg.matrix_norm(model.critic.head.weight.detach(), ord=2)
    assert float(sigma) < 1.05


def test_adversarial_step_trains_the_aux_head_on_real_and_penalises_fakes() -> None:
    torch.manual_seed(1)
    model = ConditionalGAN({**SMALL, "grid": [6, 4, 4], "n_critic": 2}, 96, 3)
    critic_opt, generator_opt = model.configure_optimizers(1e-3, 0.0)
    assert critic_opt.param_groups[0]["lr"] == pytest.approx(2e-3)  # two time-scale default
    updated: list[str] = []

    class Plain:
        def __init__(self, opt: torch.optim.Optimizer, name: str) -> None:
            self.opt, self.name = opt, name

        def step(self, loss: torch.Tensor) -> None:
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            updated.append(self.name)

    x, c = torch.randn(16, 96), torch.randn(16, 3)
    updaters = [Plain(critic_opt, "critic"), Plain(generator_opt, "generator")]
    first = model.adversarial_step(x, c, updaters, step=0)
    assert set(first) == {"critic", "aux_real", "wasserstein"}  # n_critic=2: critic only
    second = model.adversarial_step(x, c, updaters, step=1)
    assert {"generator", "aux_fake", "aux_real"} <= set(second)
    assert updated == ["critic", "critic", "generator"]
    assert all(p.requires_grad for p in model.critic.parameters())  # unfrozen afterwards


def test_grid_fallback_and_config_errors() -> None:
    gan = model_class("gan")
    assert gan is ConditionalGAN
    flat = gan(SMALL, 96, 3)
    assert flat.grid == (1, 1, 96)  # irregular readout: a 1-D sequence
    assert flat.decode(flat.noise(2), torch.zeros(2, 3)).shape == (2, 96)
    with pytest.raises(ConfigError, match="does not hold 96 voxels"):
        gan({"grid": [6, 4, 5]}, 96, 3)
    with pytest.raises(ConfigError, match="gan model config: unknown key 'latent'"):
        gan({"latent": 3}, 96, 3)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_decode_onnx_parity(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(2)
    model = ConditionalGAN({**SMALL, "stages": 2, "grid": [6, 4, 4]}, 96, 3).eval()

    class Decode(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            return self.model.decode(z, c)

    z, c = model.noise(3, torch.Generator().manual_seed(0)), torch.randn(3, 3)
    path = tmp_path / "gan.onnx"
    axes = {"z": {0: "n"}, "c": {0: "n"}, "x": {0: "n"}}
    torch.onnx.export(Decode(), (z, c), str(path), dynamo=False, opset_version=17,
                      input_names=["z", "c"], output_names=["x"], dynamic_axes=axes)  # fmt: skip
    z, c = model.noise(7, torch.Generator().manual_seed(1)), torch.randn(7, 3)
    got = ort.InferenceSession(str(path)).run(None, {"z": z.numpy(), "c": c.numpy()})[0]
    with torch.no_grad():
        want = model.decode(z, c).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
