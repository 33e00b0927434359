"""Flow matching: training objective, fixed-step ODE sampling, options, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from twinforge.models import ShowerTransform, Surrogate, model_class
from twinforge.models.flow_matching import FlowMatching
from twinforge.showers import Conditions
from twinforge.simulation.synthetic import SyntheticConfig, synthetic_showers, write_synthetic_file

SMALL = {"hidden": 32, "blocks": 2, "time_dim": 8, "embed_dim": 16, "steps": 4}
THRESHOLD = 0.01515  # MeV, the tiny detector's readout threshold
ENERGIES = np.geomspace(1e3, 6.4e4, 12)  # MeV


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    cond = SyntheticConfig(detector="tiny", n_events=300, seed=5).conditions()
    return synthetic_showers("tiny", cond, 1), cond.energy


@pytest.fixture(scope="module")
def transform(data) -> ShowerTransform:
    showers, energy = data
    return ShowerTransform(96, scale=0.015, threshold=THRESHOLD, eps=1e-6).fit(showers, energy)


def active(model: FlowMatching, seed: int = 0) -> FlowMatching:
    """Perturb the zero-initialised residual branches, so that every block matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model.eval()


def test_registered_family() -> None:
    assert model_class("flow-matching") is FlowMatching
    assert FlowMatching.family == "flow-matching"


def test_loss_trains(data, transform) -> None:
    torch.manual_seed(0)
    model = FlowMatching(SMALL, 96, transform.n_conditions)
    x = torch.from_numpy(transform.forward(*data))
    c = torch.from_numpy(transform.encode_conditions(Conditions.make(data[1])))
    losses = model.loss(x[:64], c[:64])
    assert set(losses) == {"loss"}
    assert losses["loss"].shape == ()
    assert torch.isfinite(losses["loss"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for step in range(60):
        batch = slice(64 * (step % 4), 64 * (step % 4 + 1))
        loss = model.loss(x[batch], c[batch])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    # the velocity regression starts near E|x - z|^2 ~ 2 per feature and must go down
    assert np.mean(history[-10:]) < 0.8 * np.mean(history[:10])


def test_sample_shapes_units_determinism(transform, data) -> None:
    torch.manual_seed(1)
    surrogate = Surrogate(active(FlowMatching(SMALL, 96, transform.n_conditions)), transform)
    a = surrogate.sample(ENERGIES, seed=7)
    assert a.shape == (12, 96)
    assert a.dtype == np.float32
    assert np.all(np.isfinite(a))
    assert np.all(a >= 0)
    assert np.all((a == 0) | (a >= THRESHOLD))  # readout threshold, MeV
    np.testing.assert_array_equal(a, surrogate.sample(ENERGIES, seed=7))
    assert not np.array_equal(a, surrogate.sample(ENERGIES, seed=8))
    assert surrogate.sample([], seed=7).shape == (0, 96)


def test_decode_solvers_and_steps(transform) -> None:
    torch.manual_seed(2)
    model = active(FlowMatching(SMALL, 96, transform.n_conditions))
    z = model.noise(5, torch.Generator().manual_seed(0))
    assert z.shape == (5, 96)
    c = torch.from_numpy(transform.encode_conditions(Conditions.make(ENERGIES[:5])))
    calls = []
    model.net.out.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        exact = model.decode(z, c, steps=64, solver="rk4")
        errors = {}
        for solver, per_step in (("euler", 1), ("midpoint", 2), ("rk4", 4)):
            calls.clear()
            x = model.decode(z, c, steps=6, solver=solver)
            assert x.shape == (5, 96)
            assert len(calls) == 6 * per_step  # network evaluations of a fixed-step solver
            errors[solver] = float((x - exact).abs().max())
        # higher-order solvers are closer to the converged ODE solution
        assert errors["rk4"] < errors["midpoint"] < errors["euler"]
        # configured sampler == explicit arguments; config defaults
        configured = FlowMatching({**SMALL, "steps": 3, "solver": "euler"}, 96, 3)
        configured.load_state_dict(model.state_dict())
        np.testing.assert_array_equal(
            configured.decode(z, c).numpy(), model.decode(z, c, steps=3, solver="euler").numpy()
        )
    defaults = FlowMatching({}, 96, 3).config
    assert defaults["steps"] == 20
    assert defaults["solver"] == "midpoint"


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"n_steps": 4, "width": 3}, "unknown key 'n_steps'; unknown key 'width'"),
        ({"solver": "dopri5"}, "solver"),
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"time_dim": 7}, "time_dim"),
        ({"hidden": 0}, "hidden"),
        ({"sigma_min": 1.0}, "sigma_min"),
    ],
)
def test_bad_config(config: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FlowMatching(config, 96, 3)


def test_bad_decode_options(transform) -> None:
    model = FlowMatching(SMALL, 96, 3)
    z, c = torch.zeros(1, 96), torch.zeros(1, 3)
    with pytest.raises(ValueError, match="solver"):
        model.decode(z, c, solver="heun")
    with pytest.raises(ValueError, match="steps"):
        model.decode(z, c, steps=0)


def test_sigma_min_objective(transform) -> None:
    torch.manual_seed(3)
    model = FlowMatching({**SMALL, "sigma_min": 1e-3}, 96, 3)
    loss = model.loss(torch.randn(8, 96), torch.randn(8, 3))["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    assert model.net.inp.weight.grad is not None


def test_train_save_load_round_trip(tmp_path: Path) -> None:
    from twinforge.training.train import TrainConfig, run_training

    data = write_synthetic_file(
        SyntheticConfig(detector="tiny", n_events=300, seed=4), tmp_path / "tiny.h5"
    )
    cfg = TrainConfig.model_validate(
        {
            "name": "fm-test",
            "data": {"files": [str(data)], "chunk_events": 300},
            "model": {"family": "flow-matching", "config": {**SMALL, "solver": "euler"}},
            "optim": {"max_steps": 6, "batch_size": 64},
            "output": str(tmp_path / "fm"),
        }
    )
    out = run_training(cfg, quiet=True)
    surrogate = Surrogate.load(out)
    assert surrogate.family == "flow-matching"
    assert surrogate.model.config["solver"] == "euler"
    assert surrogate.provenance["steps"] == 6
    a = surrogate.sample(ENERGIES, seed=3)
    assert a.shape == (12, 96)
    assert np.all(a >= 0)
    assert np.all((a == 0) | (a >= THRESHOLD))
    # units: the visible energy is a sampling fraction of E_inc (MeV in, MeV out), within
    # a generous band for a barely trained model
    fraction = a.sum(axis=1) / ENERGIES
    assert 1e-4 < np.median(fraction) < 1.0
    again = Surrogate.load(surrogate.save(tmp_path / "copy"))
    np.testing.assert_array_equal(again.sample(ENERGIES, seed=3), a)
    for key, value in surrogate.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[key], value), key
    assert again.model.config == surrogate.model.config


def test_two_stage_energy_network_trains_samples_and_exports(tmp_path: Path) -> None:
    """CaloDREAM-style: layer energies by their own network, then the shape given them."""
    from twinforge.inference.export import export_onnx, onnx_session, run_onnx
    from twinforge.training.train import TrainConfig, run_training

    data = write_synthetic_file(
        SyntheticConfig(detector="tiny", n_events=300, seed=4), tmp_path / "tiny.h5"
    )
    cfg = TrainConfig.model_validate(
        {
            "name": "fm2-test",
            "data": {"files": [str(data)], "chunk_events": 300},
            "model": {
                "family": "flow-matching",
                "config": {**SMALL, "energy_network": True, "energy_hidden": 16},
            },
            "transform": {"kind": "layers"},
            "optim": {"max_steps": 6, "batch_size": 64},
            "output": str(tmp_path / "fm2"),
        }
    )
    surrogate = Surrogate.load(run_training(cfg, quiet=True))
    model = surrogate.model
    assert model.n_layers == surrogate.transform.n_layer_features > 0
    assert set(model.loss(torch.zeros(4, model.n_voxels), torch.zeros(4, 3))) == {
        "loss", "energy", "shape"
    }  # fmt: skip
    a = surrogate.sample(ENERGIES, seed=3)
    assert a.shape == (12, 96)
    assert np.all(a >= 0)
    np.testing.assert_array_equal(Surrogate.load(tmp_path / "fm2").sample(ENERGIES, seed=3), a)
    session = onnx_session(export_onnx(surrogate, tmp_path / "fm2.onnx"))
    noise = model.noise(12, torch.Generator().manual_seed(3))
    cond = Conditions.make(ENERGIES)
    out = run_onnx(session, noise.numpy(), cond.energy, cond.pdg, cond.theta, cond.phi)
    np.testing.assert_allclose(out, a, rtol=1e-4, atol=1e-4 * a.max())


def test_two_stage_needs_layer_count() -> None:
    with pytest.raises(ValueError, match="n_layers"):
        FlowMatching({**SMALL, "energy_network": True}, 96, 3)
