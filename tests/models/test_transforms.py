"""The ``layers`` feature transform (per-layer energy split, CaloFlow style)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from twinforge.detector.config import load_detector
from twinforge.detector.readout import Readout
from twinforge.errors import TwinforgeError
from twinforge.models import ShowerTransform
from twinforge.simulation.synthetic import SyntheticConfig, synthetic_showers

THRESHOLD = 0.01515


@pytest.fixture(scope="module")
def tiny() -> tuple[np.ndarray, np.ndarray, list[int]]:
    cond = SyntheticConfig(detector="tiny", n_events=300, seed=5).conditions()
    showers = synthetic_showers("tiny", cond, 1)
    offsets = [int(o) for o in load_detector("tiny").binning().offsets]
    return showers, cond.energy, offsets


def layers_transform(offsets: list[int], eps: float = 1e-6, **kw) -> ShowerTransform:
    return ShowerTransform(offsets[-1], kind="layers", eps=eps, layer_offsets=offsets, **kw)


def layer_sums(showers: np.ndarray, offsets: list[int]) -> np.ndarray:
    return np.stack([showers[:, a:b].sum(axis=1) for a, b in itertools.pairwise(offsets)], axis=1)


@pytest.mark.parametrize("fractions", ["logit", "softmax"])
def test_layers_round_trip_on_tiny_showers(tiny, fractions: str) -> None:
    showers, energy, offsets = tiny
    t = layers_transform(offsets, scale=0.015, threshold=THRESHOLD, fractions=fractions)
    t.fit(showers, energy)
    assert (t.n_layer_features, t.n_voxels, t.n_features) == (6, 96, 102)
    features = t.forward(showers, energy)
    assert features.shape == (300, 102)
    assert features.dtype == np.float32
    assert abs(float(features.mean())) < 0.1  # standardised
    back = t.inverse(features, energy)
    assert back.shape == showers.shape
    np.testing.assert_allclose(back, showers, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer_sums(back, offsets), layer_sums(showers, offsets), rtol=1e-4)


def test_layers_round_trip_with_empty_layers(calochallenge_dir: Path) -> None:
    """Dataset-1 photons: 24 layers, 19 without voxels; showers with layers that got nothing."""
    readout = Readout.from_xml(calochallenge_dir / "binning_dataset_1_photons.xml")
    offsets = [int(o) for o in readout.offsets]
    assert readout.n_voxels == 368
    rng = np.random.default_rng(0)
    n = 200
    energy = np.exp(rng.uniform(np.log(256.0), np.log(4.2e6), n))
    showers = rng.exponential(1.0, (n, 368)) * (rng.random((n, 368)) < 0.4)
    showers *= (energy / showers.sum(axis=1).clip(1e-9))[:, None] * 0.9
    showers[:20, offsets[3] : offsets[4]] = 0.0  # layer 3 empty in some events
    showers[10:30, offsets[12] : offsets[13]] = 0.0  # and the last layer with voxels
    showers = showers.astype(np.float32)

    t = layers_transform(offsets).fit(showers, energy)
    assert t.n_layer_features == 5  # layers 0, 1, 2, 3 and 12
    assert t.n_features == 373
    features = t.forward(showers, energy)
    assert np.isfinite(features).all()
    back = t.inverse(features, energy)
    np.testing.assert_allclose(back, showers, rtol=1e-4, atol=1e-6 * energy.max())
    assert np.all(back[:20, offsets[3] : offsets[4]] == 0)


@pytest.mark.parametrize("fractions", ["logit", "softmax"])
def test_layers_inverse_keeps_layer_energies(tiny, fractions: str) -> None:
    """Any features decode to non-negative showers whose layers hold the decoded energies."""
    showers, energy, offsets = tiny
    t = layers_transform(offsets, 1e-12, scale=0.015, threshold=1e-9, fractions=fractions)
    t.fit(showers, energy)
    features = np.random.default_rng(1).normal(0, 2, (40, t.n_features)).astype(np.float32)
    e = np.full(40, 1e4, dtype=np.float32)
    out = t.inverse(features, e)
    assert out.shape == (40, 96)
    assert np.all(out >= 0)
    clipped = np.clip(features, t.lo, t.hi)  # generated features stay in the training range
    y = clipped[:, :6] * t.std[:6] + t.mean[:6]
    expected = np.clip(np.exp(y.astype(np.float64)) - t.eps, 0, None) * 0.015 * 1e4
    np.testing.assert_allclose(layer_sums(out, offsets), expected, rtol=1e-4, atol=1e-6)
    t.threshold = THRESHOLD
    out = t.inverse(features, e)
    assert np.all((out == 0) | (out >= THRESHOLD))


def test_layers_inverse_torch_matches_numpy_and_has_gradients(tiny) -> None:
    showers, energy, offsets = tiny
    t = layers_transform(offsets, scale=0.015).fit(showers, energy)
    f = torch.from_numpy(t.forward(showers[:8], energy[:8])).requires_grad_(True)
    out = t.inverse_torch(f, torch.tensor(energy[:8], dtype=torch.float32))
    out.sum().backward()
    assert f.grad is not None
    assert torch.isfinite(f.grad).all()
    np.testing.assert_allclose(out.detach().numpy(), showers[:8], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fractions", ["logit", "softmax"])
def test_layers_save_load(tmp_path: Path, tiny, fractions: str) -> None:
    showers, energy, offsets = tiny
    t = layers_transform(offsets, scale=0.015, threshold=THRESHOLD, fractions=fractions)
    t.fit(showers, energy)
    t.save(tmp_path)
    again = ShowerTransform.load(tmp_path)
    assert again.config() == t.config()
    assert again.fractions == fractions
    assert again.layer_offsets == offsets
    assert again.n_features == 102
    np.testing.assert_array_equal(again.forward(showers, energy), t.forward(showers, energy))
    # arrays of V entries (a log/logit transform's) do not fit a layers transform
    save_file({"mean": t.mean[:96], "std": t.std[:96]}, str(tmp_path / "transform.safetensors"))
    with pytest.raises(TwinforgeError, match=r"lacks 'mean' of shape \(102,\)"):
        ShowerTransform.load(tmp_path)


def test_other_kinds_are_unchanged(tiny) -> None:
    showers, energy, offsets = tiny
    t = ShowerTransform(96, scale=0.015, layer_offsets=offsets).fit(showers, energy)
    assert t.n_features == 96
    assert t.n_layer_features == 0
    assert t.forward(showers, energy).shape == (300, 96)


def test_layers_needs_valid_offsets() -> None:
    with pytest.raises(ValueError, match="needs layer_offsets"):
        ShowerTransform(96, kind="layers")
    with pytest.raises(ValueError, match="layer_offsets must rise"):
        ShowerTransform(96, kind="layers", layer_offsets=[0, 50, 40, 96])
    with pytest.raises(ValueError, match="layer_offsets must rise"):
        ShowerTransform(96, kind="layers", layer_offsets=[0, 50, 95])
    with pytest.raises(ValueError, match="unknown transform kind"):
        ShowerTransform(96, kind="sqrt")  # type: ignore[arg-type]


def test_generated_features_are_clipped_to_the_training_range(tmp_path: Path, tiny) -> None:
    showers, energy, offsets = tiny
    t = layers_transform(offsets, scale=0.015, threshold=THRESHOLD).fit(showers, energy)
    features = t.forward(showers, energy)
    np.testing.assert_allclose(features.min(axis=0), t.lo, atol=1e-4)
    np.testing.assert_allclose(features.max(axis=0), t.hi, atol=1e-4)
    wild = features[:5].copy()
    wild[:, : t.n_layer_features] += 50.0  # layer energies e^(50 sigma) too high
    out = t.inverse(wild, energy[:5])
    assert np.all(out.sum(axis=1) <= showers.sum(axis=1).max() / energy.min() * energy[:5] * 1.01)
    t.save(tmp_path)
    again = ShowerTransform.load(tmp_path)
    np.testing.assert_array_equal(again.hi, t.hi)
    np.testing.assert_array_equal(again.inverse(wild, energy[:5]), out)
    # model directories written before ranges existed still load (no clipping then)
    save_file({"mean": t.mean, "std": t.std}, str(tmp_path / "transform.safetensors"))
    assert ShowerTransform.load(tmp_path).lo is None
    save_file({"mean": t.mean, "std": t.std, "lo": t.lo}, str(tmp_path / "transform.safetensors"))
    with pytest.raises(TwinforgeError, match="broken 'hi'"):
        ShowerTransform.load(tmp_path)


def test_features_constant_in_training_are_not_blown_up(tiny) -> None:
    showers, energy, offsets = tiny
    train = showers.copy()
    train[:, 95] = 0.0  # a voxel never hit in training
    t = layers_transform(offsets, scale=0.015).fit(train, energy)
    assert t.std[-1] == 1.0
    hit = showers[:5].copy()
    hit[:, 95] = 0.5 * hit.sum(axis=1)  # ... but hit later
    assert np.abs(t.forward(hit, energy[:5])).max() < 100


@pytest.mark.parametrize("noise_edge", [1.0, 0.1])
@pytest.mark.parametrize("kind", ["layers", "log", "logit", "layers softmax"])
def test_dequantised_round_trip_is_exact(tiny, kind: str, noise_edge: float) -> None:
    """The noise stays below the threshold, which the inverse applies: showers come back."""
    showers, energy, offsets = tiny
    showers = showers.copy()
    showers[:10, offsets[2] : offsets[3]] = 0.0  # empty layers
    kind, _, fractions = kind.partition(" ")
    t = ShowerTransform(
        96, kind=kind, eps=1e-6, scale=0.015, threshold=THRESHOLD, dequantize=True,
        noise_edge=noise_edge, layer_offsets=offsets, fractions=fractions or "logit",
    ).fit(showers, energy, np.random.default_rng(1))  # fmt: skip
    features = t.forward(showers, energy, np.random.default_rng(2))
    assert np.isfinite(features).all()
    np.testing.assert_allclose(t.inverse(features, energy), showers, rtol=1e-4, atol=1e-5)


def test_softmax_fractions_with_layers_of_different_sizes(calochallenge_dir: Path) -> None:
    """Dataset-1 photons (layers of 8 to 160 voxels, 19 without any): the softmax over each
    layer, here without a reshape, sums to one in every layer and brings the showers back."""
    readout = Readout.from_xml(calochallenge_dir / "binning_dataset_1_photons.xml")
    offsets = [int(o) for o in readout.offsets]
    rng = np.random.default_rng(0)
    energy = np.exp(rng.uniform(np.log(256.0), np.log(4.2e6), 200))
    showers = rng.exponential(1.0, (200, 368)) * (rng.random((200, 368)) < 0.4)
    showers *= (energy / showers.sum(axis=1).clip(1e-9))[:, None] * 0.9
    showers[:20, offsets[3] : offsets[4]] = 0.0  # a layer empty in some events
    t = ShowerTransform(368, kind="layers", eps=1e-12, threshold=1e-3, layer_offsets=offsets,
                        fractions="softmax").fit(showers, energy)  # fmt: skip
    assert t._layer_size() is None  # the general path
    features = t.forward(showers, energy)
    readable = np.where(showers >= 1e-3, showers, 0.0)
    np.testing.assert_allclose(t.inverse(features, energy), readable, rtol=1e-4, atol=1e-3)
    wild = torch.from_numpy(features * 30)  # far outside the training range: still one
    _, sums = t.layer_sums_torch(wild, torch.tensor(energy, dtype=torch.float32))
    np.testing.assert_allclose(sums.numpy(), 1.0, rtol=1e-5)


def test_softmax_fractions_refuse_what_they_cannot_invert(tiny) -> None:
    """A transform whose empty voxels would come back above the threshold is refused."""
    showers, energy, offsets = tiny
    with pytest.raises(ValueError, match="needs kind='layers'"):
        ShowerTransform(96, kind="log", threshold=THRESHOLD, fractions="softmax")
    with pytest.raises(ValueError, match="needs a readout threshold"):
        layers_transform(offsets, fractions="softmax")
    with pytest.raises(ValueError, match="unknown voxel fractions 'tanh'"):
        layers_transform(offsets, fractions="tanh")  # type: ignore[arg-type]
    coarse = layers_transform(offsets, 1e-3, scale=0.015, threshold=THRESHOLD, fractions="softmax")
    with pytest.raises(TwinforgeError, match=r"eps=0.001 of the largest layer energy .* lower eps"):
        coarse.fit(showers, energy)


def test_layer_sums_are_one_for_real_showers_and_expose_a_bad_split(tiny) -> None:
    """``layer_sums_torch``: the layer energies of the inverse, and fraction sums that are one
    for showers (noise below the threshold excluded) and off by the factor a model missed."""
    showers, energy, offsets = tiny
    t = layers_transform(offsets, scale=0.015, threshold=THRESHOLD, dequantize=True)
    t.fit(showers, energy)
    features = torch.from_numpy(t.forward(showers, energy))
    e = torch.tensor(energy, dtype=torch.float32)
    layer, sums = t.layer_sums_torch(features, e)
    assert layer.shape == sums.shape == (300, 6)
    np.testing.assert_allclose(layer.numpy(), layer_sums(showers, offsets), rtol=1e-4)
    hit = layer.numpy() > 0
    np.testing.assert_allclose(sums.numpy()[hit], 1.0, rtol=1e-4)
    # fractions twice too large (logit + log 2 for small ones) sum to about two
    y = features.double() * torch.from_numpy(t.std).double() + torch.from_numpy(t.mean).double()
    y[:, 6:] += np.log(2.0)
    doubled = ((y - torch.from_numpy(t.mean)) / torch.from_numpy(t.std)).float()
    t.lo = t.hi = None  # no clipping to the training range for this check
    _, sums2 = t.layer_sums_torch(doubled, e)
    assert 1.5 < float(np.median(sums2.numpy()[hit])) <= 2.0
    with pytest.raises(TwinforgeError, match="no layer split"):
        ShowerTransform(96, kind="log").fit(showers, energy).layer_sums_torch(features, e)


def test_dequantisation_removes_the_empty_voxel_spike(tiny) -> None:
    """An often-empty voxel is a spike plus a tail without noise, a spread of values with it."""
    showers, energy, offsets = tiny
    outer = 50
    showers = showers.copy()
    showers[np.random.default_rng(0).random(len(showers)) < 0.5, outer] = 0.0
    plain = layers_transform(offsets, scale=0.015, threshold=THRESHOLD).fit(showers, energy)
    noisy = layers_transform(offsets, scale=0.015, threshold=THRESHOLD, dequantize=True)
    noisy.fit(showers, energy)
    column = 6 + outer
    empty = showers[:, outer] == 0
    assert np.unique(plain.forward(showers, energy)[empty, column]).size == 1
    values = noisy.forward(showers, energy)[:, column]
    assert np.unique(values[empty]).size == empty.sum()
    # the noise sits below every readable value of the voxel: the two do not overlap
    assert values[empty].max() < values[~empty].min()


def test_noise_edge_leaves_a_gap_below_the_threshold(tiny) -> None:
    """With ``noise_edge`` 0.1 the noise of empty voxels fills [0, 0.1 * threshold) only."""
    showers, energy, _ = tiny
    showers = showers.copy()
    showers[::2, 80:] = 0.0  # outer voxels empty in half of the showers
    t = ShowerTransform(96, kind="log", eps=1e-9, scale=0.015, threshold=THRESHOLD,
                        dequantize=True, noise_edge=0.1).fit(showers, energy)  # fmt: skip
    y = t.forward(showers, energy).astype(np.float64) * t.std + t.mean
    mev = (np.exp(y) - t.eps) * t.scale * energy[:, None]  # before the threshold
    noise = mev[showers == 0]
    assert noise.max() < 0.1 * THRESHOLD
    assert noise.max() > 0.09 * THRESHOLD
    assert np.median(noise) > 0.04 * THRESHOLD
    np.testing.assert_allclose(mev[showers > 0], showers[showers > 0], rtol=1e-4)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="noise_edge must be in"):
            ShowerTransform(96, threshold=THRESHOLD, dequantize=True, noise_edge=bad)


def test_dequantisation_is_seeded_and_saved(tmp_path: Path, tiny) -> None:
    showers, energy, offsets = tiny
    t = layers_transform(offsets, scale=0.015, threshold=THRESHOLD, dequantize=True,
                         noise_edge=0.5)  # fmt: skip
    t.fit(showers, energy)
    a = t.forward(showers, energy, np.random.default_rng(3))
    np.testing.assert_array_equal(a, t.forward(showers, energy, np.random.default_rng(3)))
    assert not np.array_equal(a, t.forward(showers, energy, np.random.default_rng(4)))
    t.save(tmp_path)
    again = ShowerTransform.load(tmp_path)
    assert again.dequantize
    assert again.noise_edge == 0.5
    with pytest.raises(ValueError, match="dequantize needs a readout threshold"):
        layers_transform(offsets, dequantize=True)


def reference_inverse(t: ShowerTransform, features: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """The ``layers`` inverse as the module docstring states it, in float64, one layer at a
    time: what the few-pass torch inverse must reproduce."""
    y = np.clip(features.astype(np.float64), t.lo, t.hi) * t.std + t.mean
    n_layers = t.n_layer_features
    layer = np.maximum(np.exp(y[:, :n_layers]) - t.eps, 0.0) * t.scale * energy[:, None]
    frac = np.maximum((1 / (1 + np.exp(-y[:, n_layers:])) - t.eps) / (1 - 2 * t.eps), 0.0)
    if t.dequantize:
        layer[layer < t.threshold] = 0.0
    out = np.zeros_like(frac)
    for i, (a, b) in enumerate(t._active_layers()):
        part = frac[:, a:b].copy()
        if t.dequantize:
            part[part * layer[:, i : i + 1] < t.threshold] = 0.0
        total = np.maximum(part.sum(axis=1, keepdims=True), 1e-30)
        out[:, a:b] = part * layer[:, i : i + 1] / total
    out[out < t.threshold] = 0.0
    return out


@pytest.mark.parametrize("dequantize", [False, True])
@pytest.mark.parametrize("equal_layers", [True, False])
def test_layers_inverse_matches_its_definition(tiny, dequantize: bool, equal_layers: bool) -> None:
    """Equal layers take the reshape path, unequal ones (an empty layer too) the matmul path;
    both give the definition's showers, with generated features beyond the training range."""
    showers, energy, offsets = tiny
    if not equal_layers:
        offsets = [0, 10, 10, 40, 70, 96]
    t = layers_transform(offsets, scale=0.015, threshold=THRESHOLD, dequantize=dequantize)
    t.fit(showers, energy)
    assert (t._layer_size() is not None) == equal_layers
    rng = np.random.default_rng(3)
    features = (t.forward(showers, energy) + rng.normal(0, 0.3, (300, t.n_features))).astype(
        np.float32
    )
    features[:20] *= 3.0  # some beyond the training range on either side
    want = reference_inverse(t, features, energy)
    got = t.inverse(features, energy)
    near = np.abs(want - THRESHOLD) < 1e-4 * THRESHOLD  # may fall either side in float32
    np.testing.assert_allclose(got[~near], want[~near], rtol=2e-5, atol=1e-7)
    assert (got >= 0).all()
    assert not ((got > 0) & (got < THRESHOLD)).any()
