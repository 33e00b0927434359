"""The contract every model family keeps, run over every installed family (entry points
``twinforge.families``): typed options, shapes, determinism under a seed, the model directory's
round trip and ONNX parity. A plug-in family that passes these works everywhere in twinforge.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.inference.test_onnx import THRESHOLD, assert_parity, random_conditions
from twinforge.errors import ConfigError
from twinforge.inference import INPUTS, export_onnx, onnx_session, run_onnx
from twinforge.models import Surrogate, model_class
from twinforge.models.base import (
    Call,
    DecodeProgram,
    FamilyConfig,
    GenerativeModel,
    Repeat,
    available_families,
)
from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file
from twinforge.training.train import TrainConfig, run_training

# small options keep each family's training and ONNX export within seconds; a family not
# listed here (a plug-in) is tested with its defaults
SMALL: dict[str, dict] = {
    "vae": {"latent_dim": 4, "hidden": [32, 16]},
    "gan": {"latent_dim": 8, "hidden": 32, "channels": 8, "stages": 1, "critic_channels": 4,
            "critic_hidden": 16},
    "flow": {"energy_transforms": 1, "energy_hidden": [16], "shape_transforms": 2,
             "shape_hidden": [32]},
    "flow-matching": {"hidden": 32, "blocks": 2, "time_dim": 8, "embed_dim": 16, "steps": 4},
}  # fmt: skip
FAMILIES = sorted(available_families())
ENERGIES = np.geomspace(1e3, 6.4e4, 7)  # MeV


def test_the_shipped_families_are_entry_points() -> None:
    assert {"vae", "gan", "flow", "flow-matching"} <= set(FAMILIES)
    assert all(available_families()[f].startswith("twinforge.models.") for f in SMALL)


@pytest.fixture(scope="module")
def showers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    return write_synthetic_file(SyntheticConfig(detector="tiny", n_events=200, seed=7), path)


def train_config(family: str, showers_file: Path, out: Path, seed: int = 0) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": f"{family}-contract",
            "data": {"files": [str(showers_file)], "chunk_events": 200},
            "model": {"family": family, "config": SMALL.get(family, {})},
            "optim": {"max_steps": 3, "batch_size": 32},
            "seed": seed,
            "output": str(out),
        }
    )


@pytest.fixture(scope="module", params=FAMILIES)
def trained(request, showers_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each family trained for three steps through the public training path (its own
    transform kind and config completion), as a model directory."""
    out = tmp_path_factory.mktemp(request.param) / "model"
    return run_training(train_config(request.param, showers_file, out), quiet=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_options_are_a_typed_model_that_names_unknown_keys(family: str) -> None:
    klass = model_class(family)
    assert issubclass(klass, GenerativeModel)
    assert klass.family == family
    assert issubclass(klass.Config, FamilyConfig)
    defaults = klass.Config()  # every option has a default (training fills data-given ones)
    assert klass.validate_options(defaults.model_dump()) == defaults
    with pytest.raises(ConfigError, match=rf"{family} model config: unknown key 'no_such_opt'"):
        klass.validate_options({"no_such_opt": 1})


def test_shapes(trained: Path) -> None:
    surrogate = Surrogate.load(trained)
    model, transform = surrogate.model, surrogate.transform
    n = len(ENERGIES)
    z = model.noise(n, torch.Generator().manual_seed(0))
    assert z.shape[0] == n
    c = torch.from_numpy(transform.encode_conditions(random_conditions(n, 1, [11])))
    assert c.shape == (n, model.n_conditions)
    with torch.no_grad():
        features = model.decode(z, c)
        losses = model.loss(features, c)
    assert features.shape == (n, transform.n_features) == (n, model.n_voxels)
    assert losses["loss"].shape == ()
    assert math.isfinite(float(losses["loss"]))
    showers = surrogate.sample(ENERGIES, seed=2)
    assert showers.shape == (n, transform.n_voxels)
    assert showers.dtype == np.float32
    assert np.all((showers == 0) | (showers >= THRESHOLD))


def test_a_decode_program_is_the_decode(trained: Path) -> None:
    """Where a family describes its decode as a DecodeProgram (what export traces), running
    the program gives exactly what decode gives."""
    model = Surrogate.load(trained).model
    program = model.decode_program()
    if program is None:
        pytest.skip(f"{model.family} has no decode program")
    z = model.noise(5, torch.Generator().manual_seed(3))
    c = torch.randn(5, model.n_conditions, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(program.run(z, c), model.decode(z, c), rtol=0, atol=0)


def test_decode_program_names_each_value_once() -> None:
    ident = Call(lambda x: x + 0.0, ("noise",), ("features",))
    assert DecodeProgram((ident,)).run(torch.ones(2, 3), torch.ones(2, 1)).shape == (2, 3)
    with pytest.raises(ValueError, match="'energy' is reserved"):
        DecodeProgram((Call(lambda x: x, ("noise",), ("energy",)), ident))
    with pytest.raises(ValueError, match="'features' is given twice"):
        DecodeProgram((ident, ident))
    with pytest.raises(ValueError, match="nothing is named 'features'"):
        DecodeProgram((Call(lambda x: x, ("noise",), ("out",)),))
    twice = Repeat(lambda s, c: s + c, 3, "noise", ("c",), "features")
    assert DecodeProgram((twice,)).run(torch.zeros(2, 1), torch.ones(2, 1)).tolist() == [[3.0]] * 2


def test_deterministic_under_a_seed(trained: Path, showers_file: Path, tmp_path: Path) -> None:
    surrogate = Surrogate.load(trained)
    a = surrogate.sample(ENERGIES, seed=5)
    np.testing.assert_array_equal(a, surrogate.sample(ENERGIES, seed=5))
    assert not np.array_equal(a, surrogate.sample(ENERGIES, seed=6))
    # the same training config trains the same weights
    family = surrogate.family
    again = Surrogate.load(run_training(train_config(family, showers_file, tmp_path / "b"),
                                        quiet=True))  # fmt: skip
    for (name, mine), theirs in zip(
        surrogate.model.state_dict().items(), again.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0, msg=name)


def test_model_directory_round_trip(trained: Path, tmp_path: Path) -> None:
    surrogate = Surrogate.load(trained)
    klass = type(surrogate.model)
    assert surrogate.model.config == klass.validate_options(surrogate.model.config).model_dump(
        mode="json"
    )  # model.json holds every option, validated
    copy = Surrogate.load(surrogate.save(tmp_path / "copy"))
    assert copy.family == surrogate.family
    assert copy.model.config == surrogate.model.config
    assert copy.binning_xml == surrogate.binning_xml
    np.testing.assert_array_equal(copy.sample(ENERGIES, seed=4), surrogate.sample(ENERGIES, seed=4))


def test_onnx_parity(trained: Path, tmp_path: Path) -> None:
    surrogate = Surrogate.load(trained)
    path = export_onnx(surrogate, tmp_path / "model.onnx")
    session = onnx_session(path)
    assert [i.name for i in session.get_inputs()] == list(INPUTS)
    assert [o.name for o in session.get_outputs()] == ["showers"]
    # exported with a batch of 2; run other batch sizes (dynamic axis)
    for n, seed in ((37, 11), (1, 12)):
        cond = random_conditions(n, seed, [11])
        reference = surrogate.sample(cond.energy, cond.pdg, cond.theta, cond.phi, seed=seed)
        noise = surrogate.model.noise(n, torch.Generator().manual_seed(seed))  # sample's noise
        out = run_onnx(session, noise.numpy(), cond.energy, cond.pdg, cond.theta, cond.phi)
        assert out.shape == (n, surrogate.transform.n_voxels)
        assert np.all(out >= 0)
        assert np.all((out == 0) | (out >= THRESHOLD))
        assert_parity(out, reference)


def test_registry_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from twinforge.models import base

    monkeypatch.setitem(base.FAMILIES, "not-a-model", lambda: int)
    with pytest.raises(ConfigError, match="'not-a-model' is not a twinforge GenerativeModel"):
        model_class("not-a-model")
    monkeypatch.setitem(base.FAMILIES, "alias", lambda: model_class("vae"))
    with pytest.raises(ConfigError, match="registered for class ConditionalVAE whose family"):
        model_class("alias")
    with pytest.raises(ConfigError, match=r"unknown model family 'nope'; known: .*flow-matching"):
        model_class("nope")
