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
    assert a.summary() == b.summary()
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
    default = ClassifierConfig()
    assert default.hidden == [2048, 2048]
    assert default.lr == 2e-4
    assert default.batch_size == 1000


def test_low_level_features_follow_calochallenge() -> None:
    showers = np.array([[1.0, 0.0, 4.0], [0.0, 2.0, 0.0]], dtype=np.float32)
    features = low_level_features(showers, np.array([100.0, 1000.0]))
    np.testing.assert_allclose(features, [[2.0, 1.0, 0.0, 4.0], [3.0, 0.0, 0.2, 0.0]], rtol=1e-6)
    assert features.dtype == np.float32
