"""Classifier two-sample test: chance for equal samples, ~1 for different ones, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from twinforge.config import validate_config
from twinforge.errors import ConfigError
from twinforge.validation.classifier import (
    ClassifierConfig,
    classifier_scores,
    low_level_features,
    min_showers_for_classifier,
    plan_budget,
    train_classifier,
)

SMALL = ClassifierConfig(hidden=[32, 32], epochs=3, batch_size=100, lr=1e-3, threads=1)


def _samples(shift: float, n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(n, 8)).astype(np.float32),
        (rng.normal(size=(n, 8)) + shift).astype(np.float32),
    )


def test_equal_samples_give_chance() -> None:
    ref, gen = _samples(0.0)
    result = train_classifier(ref, gen, SMALL)
    assert abs(result.auc - 0.5) < 0.08
    assert abs(result.accuracy - 0.5) < 0.08
    assert result.jsd < 0.1
    assert result.n_train == 1200
    assert result.n_test == 400
    assert 1 <= result.best_epoch <= result.epochs_run <= 3


def test_different_samples_are_told_apart() -> None:
    ref, gen = _samples(1.5)
    result = train_classifier(ref, gen, SMALL)
    assert result.auc > 0.95
    assert result.accuracy > 0.85
    assert result.jsd > 0.5
    # held-out predictions are exposed per sample, calibrated to probabilities
    assert len(result.test_prob_ref) == len(result.test_index_ref) == 200
    assert np.all((result.test_prob_ref >= 0) & (result.test_prob_ref <= 1))
    assert result.test_prob_ref.mean() > result.test_prob_gen.mean()
    auc, _, _ = classifier_scores(result.test_prob_ref, result.test_prob_gen)
    assert auc == pytest.approx(result.auc)


def test_deterministic_under_seed() -> None:
    ref, gen = _samples(0.5)
    a = train_classifier(ref, gen, SMALL)
    b = train_classifier(ref, gen, SMALL)
    timeless = lambda r: {k: v for k, v in r.summary().items() if k != "seconds"}  # noqa: E731
    assert timeless(a) == timeless(b)
    np.testing.assert_array_equal(a.test_prob_ref, b.test_prob_ref)
    np.testing.assert_array_equal(a.test_index_gen, b.test_index_gen)
    c = train_classifier(ref, gen, SMALL.model_copy(update={"seed": 1}))
    assert not np.array_equal(a.test_index_ref, c.test_index_ref)


def test_early_stopping_and_history() -> None:
    ref, gen = _samples(0.0)
    config = SMALL.model_copy(update={"epochs": 20, "patience": 1})
    result = train_classifier(ref, gen, config)
    assert result.epochs_run < 20
    assert result.epochs_run - result.best_epoch == 1
    assert [h["epoch"] for h in result.history] == list(range(1, result.epochs_run + 1))


def test_unequal_sample_sizes_are_balanced() -> None:
    ref, gen = _samples(0.0)
    result = train_classifier(ref, gen[:400], SMALL)
    assert result.n_train == 2 * 240
    assert len(result.test_prob_ref) == len(result.test_prob_gen)


def test_too_few_showers_says_how_many() -> None:
    assert min_showers_for_classifier(ClassifierConfig()) == 250
    ref, gen = _samples(0.0, n=100)
    with pytest.raises(ValueError, match="at least 250 showers"):
        train_classifier(ref, gen, SMALL)


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="leaves nothing to train"):
        validate_config(ClassifierConfig, {"val_fraction": 0.5, "test_fraction": 0.5})
    with pytest.raises(ConfigError, match="unknown key 'hiden'"):
        validate_config(ClassifierConfig, {"hiden": [3]})
    with pytest.raises(ConfigError, match="budget"):
        validate_config(ClassifierConfig, {"budget": "fast"})
    default = ClassifierConfig()
    # CaloChallenge DNN(num_layer=2): input -> 2048, then two 2048 x 2048 layers
    assert default.hidden == [2048, 2048, 2048]
    assert default.lr == 2e-4
    assert default.batch_size == 1000
    assert default.budget == "challenge"


def test_low_level_features_follow_calochallenge() -> None:
    # [log10 E_inc, voxels / E_inc]: no factor 100 (evaluate.py prepare_low_data_for_classifier)
    showers = np.array([[1.0, 0.0, 4.0], [0.0, 2.0, 0.0]], dtype=np.float32)
    features = low_level_features(showers, np.array([100.0, 1000.0]))
    np.testing.assert_allclose(
        features, [[2.0, 0.01, 0.0, 0.04], [3.0, 0.0, 0.002, 0.0]], rtol=1e-6
    )
    assert features.dtype == np.float32


def test_normed_low_level_features() -> None:
    # two layers: voxels 0, 1 in layer 0 and voxel 2 in layer 1
    showers = np.array([[1.0, 3.0, 4.0], [0.0, 2.0, 0.0]], dtype=np.float32)
    layer_energy = np.array([[4.0, 4.0], [2.0, 0.0]])
    features = low_level_features(showers, np.array([100.0, 1000.0]), layer_energy,
                                  np.array([0, 0, 1]))  # fmt: skip
    np.testing.assert_allclose(features[:, 1:4], [[0.25, 0.75, 1.0], [0.0, 1.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(features[:, 4:], np.log10(layer_energy + 1e-8), rtol=1e-6)


def test_budgets() -> None:
    challenge = plan_budget(ClassifierConfig(), n_train=12_000)
    assert (challenge.epochs, challenge.patience, challenge.comparable) == (50, 0, True)
    # converged: 50 epochs of 1200 showers are 100 steps; 2000 steps need 1000 epochs
    small = plan_budget(ClassifierConfig(budget="converged"), n_train=1_200)
    assert (small.epochs, small.patience, small.comparable) == (1000, 0, True)
    # 2000 steps in 50 epochs already: no more
    large = plan_budget(ClassifierConfig(budget="converged"), n_train=60_000)
    assert large.epochs == 50
    # never fewer than 50 epochs, even where they are more than 6000 steps
    huge = plan_budget(ClassifierConfig(budget="converged"), n_train=200_000)
    assert huge.epochs == 50
    quick = plan_budget(ClassifierConfig(budget="quick"), n_train=12_000)
    assert (quick.epochs, quick.patience, quick.comparable) == (5, 3, False)
    assert "NOT COMPARABLE" in quick.description
    custom = plan_budget(ClassifierConfig(epochs=7), n_train=12_000)
    assert (custom.budget, custom.epochs, custom.comparable) == ("challenge (custom)", 7, False)
    assert plan_budget(ClassifierConfig(epochs=50), n_train=1).comparable


def test_result_records_budget_and_convergence() -> None:
    ref, gen = _samples(1.0)
    result = train_classifier(ref, gen, SMALL.model_copy(update={"epochs": 4}))
    summary = result.summary()
    assert summary["budget"] == "challenge (custom)"
    assert summary["steps"] == result.epochs_run * 12  # 1200 training showers, batches of 100
    assert summary["device"] == "cpu"
    assert isinstance(summary["converged"], bool)
    # a best epoch in the last 10 % of the run is "not converged"
    result.best_epoch, result.epochs_run = 10, 10
    result.history[-1]["val_accuracy"] = 0.9
    assert not result.converged
    result.best_epoch = 9
    assert result.converged


def test_cuda_without_gpu_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    ref, gen = _samples(0.0)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        train_classifier(ref, gen, SMALL.model_copy(update={"device": "cuda"}))
