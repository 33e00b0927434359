from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from twinforge.errors import TwinforgeError
from twinforge.models import ShowerTransform, Surrogate, model_class
from twinforge.simulation.synthetic import SyntheticConfig, synthetic_showers


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    cond = SyntheticConfig(detector="tiny", n_events=400, seed=3).conditions()
    return synthetic_showers("tiny", cond, 1), cond.energy


def fitted(data, kind: str = "log") -> ShowerTransform:
    showers, energy = data
    return ShowerTransform(96, kind=kind, scale=0.015, threshold=0.01515).fit(showers, energy)


@pytest.mark.parametrize("kind", ["log", "logit"])
def test_transform_round_trip(data, kind: str) -> None:
    showers, energy = data
    t = fitted(data, kind)
    features = t.forward(showers, energy)
    assert features.shape == showers.shape
    assert features.dtype == np.float32
    assert abs(float(features.mean())) < 0.1  # standardised
    back = t.inverse(features, energy)
    np.testing.assert_allclose(back, showers, rtol=1e-3, atol=2e-5)


def test_inverse_is_non_negative_and_thresholded(data) -> None:
    t = fitted(data)
    noise = np.random.default_rng(0).normal(0, 3, (50, 96)).astype(np.float32)
    out = t.inverse(noise, np.full(50, 1e4))
    assert np.all(out >= 0)
    assert np.all((out == 0) | (out >= 0.01515))


def test_transform_save_load_and_errors(tmp_path: Path, data) -> None:
    t = fitted(data)
    t.save(tmp_path)
    again = ShowerTransform.load(tmp_path)
    np.testing.assert_array_equal(again.mean, t.mean)
    assert again.config() == t.config()
    (tmp_path / "transform.json").write_text("{not json")
    with pytest.raises(TwinforgeError, match="corrupt transform"):
        ShowerTransform.load(tmp_path)
    with pytest.raises(TwinforgeError, match="not fitted"):
        ShowerTransform(96).forward(data[0], data[1])


def test_condition_encoding() -> None:
    from twinforge.showers import Conditions

    t = ShowerTransform(4, pdgs=[11, 22])
    c = t.encode_conditions(Conditions.make([1e4, 1e3], [22, 11], 0.1, 0.2))
    assert c.shape == (2, t.n_conditions) == (2, 5)
    np.testing.assert_allclose(c[:, 0], [0.0, np.log(0.1)], rtol=1e-6)
    np.testing.assert_array_equal(c[:, 1:3], [[0, 1], [1, 0]])
    with pytest.raises(TwinforgeError, match="not in the training data"):
        t.encode_conditions(Conditions.make([1e3], 2212))


def test_vae_loss_sample_save_load(tmp_path: Path, data) -> None:
    t = fitted(data)
    torch.manual_seed(0)
    model = model_class("vae")({"latent_dim": 4, "hidden": [32, 16]}, 96, t.n_conditions)
    x = torch.from_numpy(t.forward(*data)[:32])
    from twinforge.showers import Conditions

    c = torch.from_numpy(t.encode_conditions(Conditions.make(data[1][:32])))
    losses = model.loss(x, c)
    assert set(losses) == {"loss", "reconstruction", "kl"}
    losses["loss"].backward()
    surrogate = Surrogate(model, t, binning_xml="<Bins/>", provenance={"note": "test"})
    a = surrogate.sample([1e3, 1e4, 6.4e4], seed=7)
    b = surrogate.sample([1e3, 1e4, 6.4e4], seed=7)
    assert a.shape == (3, 96)
    assert a.dtype == np.float32
    assert np.all(a >= 0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, surrogate.sample([1e3, 1e4, 6.4e4], seed=8))
    path = surrogate.save(tmp_path / "m")
    loaded = Surrogate.load(path)
    np.testing.assert_array_equal(loaded.sample([1e3, 1e4, 6.4e4], seed=7), a)
    assert loaded.provenance == {"note": "test"}
    assert sorted(p.name for p in path.iterdir()) == [
        "model.json", "transform.json", "transform.safetensors", "weights.safetensors",
    ]  # fmt: skip
    with pytest.raises(TwinforgeError, match="already exists"):
        surrogate.save(path)


def test_broken_model_directories(tmp_path: Path, data) -> None:
    t = fitted(data)
    model = model_class("vae")({"latent_dim": 4, "hidden": [16]}, 96, t.n_conditions)
    path = Surrogate(model, t).save(tmp_path / "m")
    with pytest.raises(TwinforgeError, match="model directory not found"):
        Surrogate.load(tmp_path / "nope")
    header = json.loads((path / "model.json").read_text())
    header["config"]["latent_dim"] = 5
    (path / "model.json").write_text(json.dumps(header))
    with pytest.raises(TwinforgeError, match="weights do not match"):
        Surrogate.load(path)
    header["family"] = "diffusion-9000"
    (path / "model.json").write_text(json.dumps(header))
    with pytest.raises(TwinforgeError, match="unknown model family"):
        Surrogate.load(path)
    (path / "weights.safetensors").write_bytes(b"\0" * 10)
    header["family"] = "vae"
    header["config"]["latent_dim"] = 4
    (path / "model.json").write_text(json.dumps(header))
    with pytest.raises(TwinforgeError, match="corrupt"):
        Surrogate.load(path)
    (path / "model.json").unlink()
    with pytest.raises(TwinforgeError, match=r"no model\.json"):
        Surrogate.load(path)


def test_unknown_vae_option() -> None:
    with pytest.raises(ValueError, match="latent_dimension"):
        model_class("vae")({"latent_dimension": 3}, 96, 3)
