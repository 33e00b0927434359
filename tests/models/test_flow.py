"""CaloFlow (family "flow"): training, sampling, save/load and ONNX parity on the tiny detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from twinforge.errors import ConfigError
from twinforge.models import Surrogate, model_class
from twinforge.models.transforms import ShowerTransform
from twinforge.showers import Conditions, ShowerFile
from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file
from twinforge.training.train import TrainConfig, data_facts, run_training

THRESHOLD = 0.01515  # tiny detector readout threshold, MeV
ENERGIES = np.geomspace(1e3, 6.4e4, 24)
# small, and covering both flow kinds: spline energy flow, affine shape flow (both couplings)
# behind an element-wise marginal spline
SMALL = {
    "energy_transforms": 2, "energy_hidden": [32, 32], "energy_passes": 2,
    "shape_transforms": 2, "shape_hidden": [32, 32], "shape_marginal_bins": 4,
}  # fmt: skip


def train_config(data: Path, out: Path, **model) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": "flow-test",
            "data": {"files": [str(data)], "chunk_events": 400},
            "model": {"family": "flow", "config": {**SMALL, **model}},
            "optim": {"max_steps": 20, "batch_size": 64, "lr": 2e-3},
            "output": str(out),
        }
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    return write_synthetic_file(SyntheticConfig(detector="tiny", n_events=500, seed=4), path)


# the joint shape flow (behind the marginal spline), the layer-wise one, and the layer-wise
# one with spline couplings (examples/train/flow-layerwise.yaml)
SHAPE_FLOWS = {
    "joint": {},
    "layerwise": {"shape_layerwise": True},
    "layerwise-nsf": {"shape_layerwise": True, "shape_flow": "nsf", "shape_marginal_bins": 0},
}


@pytest.fixture(scope="module", params=sorted(SHAPE_FLOWS))
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Path:
    out = tmp_path_factory.mktemp("models") / "flow"
    return run_training(train_config(data, out, **SHAPE_FLOWS[request.param]), quiet=True)


def test_training_writes_a_flow_model(trained: Path) -> None:
    surrogate = Surrogate.load(trained)
    assert surrogate.family == "flow"
    t = surrogate.transform
    assert t.kind == "layers"
    assert t.layer_offsets == [0, 16, 32, 48, 64, 80, 96]
    assert surrogate.model.config["n_layers"] == t.n_layer_features == 6
    assert surrogate.model.n_voxels == t.n_features == 102
    assert surrogate.provenance["steps"] == 20
    assert np.isfinite(surrogate.provenance["best_val_loss"])


def test_samples_shapes_units_and_determinism(tmp_path: Path, trained: Path) -> None:
    surrogate = Surrogate.load(trained)
    a = surrogate.sample(ENERGIES, seed=3)
    assert a.shape == (24, 96)
    assert a.dtype == np.float32
    assert np.isfinite(a).all()
    assert np.all(a >= 0)
    assert np.all((a == 0) | (a >= THRESHOLD))
    # MeV: the visible energy is a sampling fraction of the incident energy
    fraction = np.median(a.sum(axis=1) / ENERGIES) / surrogate.transform.scale
    assert 0.1 < fraction < 10
    np.testing.assert_array_equal(a, surrogate.sample(ENERGIES, seed=3))
    assert not np.array_equal(a, surrogate.sample(ENERGIES, seed=4))
    # save/load round trip
    again = Surrogate.load(surrogate.save(tmp_path / "copy"))
    np.testing.assert_array_equal(again.sample(ENERGIES, seed=3), a)


def test_decode_inverts_both_flows(trained: Path, data: Path) -> None:
    surrogate = Surrogate.load(trained)
    model, t = surrogate.model, surrogate.transform
    with ShowerFile(data) as f:
        cond, showers = f.read(0, 32)
    x = torch.from_numpy(t.forward(showers, cond.energy))
    c = torch.from_numpy(t.encode_conditions(cond))
    with torch.no_grad():
        z = model.encode(x, c)
        back = model.decode(z, c)
        n = model.n_layers  # the energy part is the energy flow's own transform
        torch.testing.assert_close(z[:, :n], model.energy_flow(c).transform(x[:, :n]))
    torch.testing.assert_close(back, x, rtol=1e-3, atol=1e-3)


def test_layerwise_shape_flow_is_causal_in_depth() -> None:
    """Layer i of a layer-wise flow depends on the noise of layers <= i only, and its network
    is sized by one layer (16 voxels), not the whole shower."""
    config = {**SMALL, **SHAPE_FLOWS["layerwise"], "n_layers": 6}
    torch.manual_seed(0)
    model = model_class("flow")(config, 102, 3).eval()
    coupling = model.shape_flow.transform.transforms[1]  # after the marginal splines
    assert coupling.hyper[0].in_features == 16 + 3 + 6 + 6 + 1 + 16  # voxels + context
    z, c = torch.randn(4, 102), torch.randn(4, 3)
    changed = z.clone()
    changed[:, 6 + 3 * 16 : 6 + 4 * 16] += 1.0  # the noise of layer 3
    with torch.no_grad():
        a, b = model.decode(z, c), model.decode(changed, c)
    layer = lambda x, i: x[:, 6 + i * 16 : 6 + (i + 1) * 16]  # noqa: E731
    for i in range(3):
        torch.testing.assert_close(layer(a, i), layer(b, i))
    for i in range(3, 6):
        assert not torch.allclose(layer(a, i), layer(b, i))


def test_loss_terms_and_gradients(trained: Path, data: Path) -> None:
    surrogate = Surrogate.load(trained)
    model, t = surrogate.model, surrogate.transform
    with ShowerFile(data) as f:
        cond, showers = f.read(0, 32)
    x = torch.from_numpy(t.forward(showers, cond.energy))
    c = torch.from_numpy(t.encode_conditions(cond))
    model.train()
    losses = model.loss(x, c)
    assert set(losses) == {"loss", "nll_energy", "nll_shape"}
    torch.testing.assert_close(losses["loss"], losses["nll_energy"] + losses["nll_shape"])
    losses["loss"].backward()
    for flow in (model.energy_flow, model.shape_flow):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())


def test_onnx_parity(tmp_path: Path, trained: Path) -> None:
    from twinforge.inference.export import export_onnx, onnx_session, run_onnx

    surrogate = Surrogate.load(trained)
    model, t = surrogate.model, surrogate.transform
    path = export_onnx(surrogate, tmp_path / "flow.onnx")
    n = len(ENERGIES)  # not the export's example batch size: N is dynamic
    z = model.noise(n, torch.Generator().manual_seed(11))
    got = run_onnx(onnx_session(path, threads=1), z.numpy(), ENERGIES)
    with torch.no_grad():
        c = torch.from_numpy(t.encode_conditions(Conditions.make(ENERGIES)))
        energy = torch.tensor(ENERGIES, dtype=torch.float32)
        want = t.inverse_torch(model.decode(z, c), energy).numpy()
    assert got.shape == want.shape == (n, 96)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.max()))


@pytest.mark.parametrize("shape", ["joint", "layerwise"])
def test_marginal_spline_starts_as_identity_and_learns(shape: str) -> None:
    config = {**SMALL, **SHAPE_FLOWS[shape], "n_layers": 6, "noise": 0.0}  # no random loss term
    klass = model_class("flow")
    torch.manual_seed(0)
    with_spline = klass(config, 102, 3)
    without = klass({**config, "shape_marginal_bins": 0}, 102, 3)
    spline, *couplings = with_spline.shape_flow.transform.transforms
    # the spline's widths, heights and derivatives: 4 + 4 + 3 per voxel feature (16 voxels of 6
    # layers: one spline each, also when the layers share the shape flow)
    assert sum(p.numel() for p in spline.parameters()) == 96 * (4 + 4 + 3)
    without.energy_flow.load_state_dict(with_spline.energy_flow.state_dict())
    for mine, theirs in zip(without.shape_flow.transform.transforms, couplings, strict=True):
        mine.load_state_dict(theirs.state_dict())
    x, c = torch.randn(16, 102), torch.randn(16, 3)
    with torch.no_grad():  # identity at initialisation: the same density as without it
        torch.testing.assert_close(
            with_spline.loss(x, c)["nll_shape"], without.loss(x, c)["nll_shape"]
        )
    optimiser = torch.optim.Adam(with_spline.parameters(), lr=1e-2)
    with_spline.loss(x, c)["loss"].backward()
    optimiser.step()
    assert any(p.abs().sum() > 0 for p in spline.parameters())


def test_config_errors(tmp_path: Path, data: Path) -> None:
    klass = model_class("flow")
    with pytest.raises(ConfigError, match="n_layers is required"):
        klass({}, 102, 3)
    with pytest.raises(ConfigError, match="flow model config: unknown key 'layers'"):
        klass({"n_layers": 6, "layers": 3}, 102, 3)
    with pytest.raises(ConfigError, match="key 'shape_flow': Input should be 'nsf' or 'maf'"):
        klass({"n_layers": 6, "shape_flow": "glow"}, 102, 3)
    with pytest.raises(ConfigError, match="shape_marginal_bins must be 0 or >= 2"):
        klass({"n_layers": 6, "shape_marginal_bins": 1}, 102, 3)
    with pytest.raises(ConfigError, match="key 'marginal_bound': Input should be greater than 0"):
        klass({"n_layers": 6, "marginal_bound": 0}, 102, 3)
    with pytest.raises(ConfigError, match="key 'shape_layerwise': Input should be a valid bool"):
        klass({"n_layers": 6, "shape_layerwise": "no"}, 102, 3)
    with pytest.raises(ConfigError, match="equal voxel count: 97 shape features"):
        klass({"n_layers": 6, "shape_layerwise": True}, 103, 3)
    uneven = ShowerTransform(64, kind="layers", layer_offsets=[0, 16, 64])  # 16 + 48 voxels
    with ShowerFile(data) as f:
        binning = f.readout.to_xml()
    options = klass.validate_options({"shape_layerwise": True})
    with pytest.raises(ConfigError, match=r"equal voxel count; this readout has \[16, 48\]"):
        klass.complete_config(options, data_facts(uneven, binning))
    config = train_config(data, tmp_path / "m").model_dump()
    config["transform"] = {"kind": "log"}
    with pytest.raises(ConfigError, match="needs transform kind 'layers', not 'log'"):
        run_training(TrainConfig.model_validate(config), quiet=True)
    with pytest.raises(ConfigError, match="n_layers=5"):
        run_training(train_config(data, tmp_path / "m", n_layers=5), quiet=True)
