"""Separation power, Frechet and kernel physics distances, JSD: closed forms and known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import linalg
from threadpoolctl import threadpool_limits

from twinforge.validation.metrics import (
    discrete_edges,
    fpd,
    frechet_distance,
    histogram_separation,
    jsd_from_probabilities,
    kpd,
    mmd_poly_unbiased,
    reference_edges,
    separation_power,
    weighted_separation,
)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """As the suite does (ValidationConfig.blas_threads): threaded BLAS crawls on a busy machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --------------------------------------------------------------------------- separation power
def test_separation_power_known_values() -> None:
    assert separation_power([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)  # normalisation
    assert separation_power([1, 0], [0, 5]) == pytest.approx(1.0)  # disjoint
    # p = (0.5, 0.5), q = (1, 0): 1/2 (0.25 / 1.5 + 0.25 / 0.5) = 1/3
    assert separation_power([1, 1], [1, 0]) == pytest.approx(1 / 3)
    assert math.isnan(separation_power([0, 0], [1, 0]))


def test_histogram_separation_shares_reference_bins() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    same = rng.normal(size=20_000)
    shifted = rng.normal(2.0, 1.0, size=20_000)
    edges = reference_edges(ref, 50)
    assert histogram_separation(ref, same, edges) < 0.005
    assert histogram_separation(ref, shifted, edges) > 0.4
    # values far outside the reference range land in the end bins instead of vanishing
    assert histogram_separation(ref, ref + 100.0, edges) == pytest.approx(1.0, abs=0.01)
    # NaN (empty layers) are left out
    with_nan = np.concatenate([same, np.full(500, np.nan)])
    assert histogram_separation(ref, with_nan, edges) == histogram_separation(ref, same, edges)
    assert math.isnan(histogram_separation(ref, same, None))


def test_reference_edges() -> None:
    edges = reference_edges(np.linspace(0, 1, 1001), 10, quantiles=(0.0, 1.0))
    np.testing.assert_allclose(edges, np.linspace(0, 1, 11))
    log_edges = reference_edges([0.0, 1.0, 10.0, 100.0], 2, "log", quantiles=(0.0, 1.0))
    np.testing.assert_allclose(log_edges, [1.0, 10.0, 100.0])
    constant = reference_edges(np.full(10, 3.0), 4)
    assert constant[0] < 3.0 < constant[-1]
    assert reference_edges([np.nan, np.nan], 4) is None
    np.testing.assert_allclose(discrete_edges(4), [-0.125, 0.125, 0.375, 0.625, 0.875, 1.125])


def test_weighted_separation_of_profiles() -> None:
    a = np.array([[1.0, 3.0], [1.0, 3.0]])
    assert weighted_separation(a, 2 * a) == pytest.approx(0.0)
    assert weighted_separation(a, a[:, ::-1]) == pytest.approx(0.25)


# --------------------------------------------------------------------------- Frechet distance
def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_frechet_distance_closed_form() -> None:
    rng = np.random.default_rng(1)
    for d in (1, 3, 20):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        root = linalg.sqrtm(s1 @ s2)
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(root))
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    # one dimension: (mu1 - mu2)^2 + (sigma1 - sigma2)^2
    assert frechet_distance([0.0], [[4.0]], [1.0], [[1.0]]) == pytest.approx(1.0 + 1.0)
    assert frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3)) == pytest.approx(0)


def test_frechet_distance_of_singular_covariances() -> None:
    s = np.diag([1.0, 0.0])  # rank deficient, as for a constant feature
    assert frechet_distance([0, 0], s, [0, 0], s) == pytest.approx(0.0, abs=1e-12)
    assert frechet_distance([0, 0], s, [0, 0], 4 * s) == pytest.approx(1.0)


def test_fpd_extrapolates_to_the_gaussian_value() -> None:
    rng = np.random.default_rng(2)
    n = 20_000
    real = rng.normal(size=(n, 2)) * [1.0, 2.0]  # covariance diag(1, 4)
    gen = rng.normal(size=(n, 2)) + np.array([0.5, 0.0])  # mean (0.5, 0), covariance I
    # closed form: 0.25 + Tr(diag(1, 4) + I - 2 diag(1, 2)) = 0.25 + 1
    value, error = fpd(real, gen, min_samples=2000, max_samples=10_000, normalise=False, seed=0)
    assert value == pytest.approx(1.25, abs=max(4 * error, 0.03))
    same, same_error = fpd(real, rng.normal(size=(n, 2)) * [1.0, 2.0], min_samples=2000,
                           max_samples=10_000, normalise=False)  # fmt: skip
    assert 0.0 <= same < 0.005
    assert same_error < 0.01


def test_fpd_is_deterministic_under_its_seed() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(500, 3)), rng.normal(size=(500, 3))
    a = fpd(x, y, min_samples=200, max_samples=500, seed=5)
    assert a == fpd(x, y, min_samples=200, max_samples=500, seed=5)
    assert a != fpd(x, y, min_samples=200, max_samples=500, seed=6)


# --------------------------------------------------------------------------- KPD
def test_mmd_matches_naive_sum() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(9, 3))

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float((a @ b / 3 + 1) ** 3)

    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(9)) / (7 * 9)
    assert mmd_poly_unbiased(x, y, degree=3) == pytest.approx(xx + yy - 2 * xy)


def test_kpd_known_values() -> None:
    # point masses at 1 and 0 in one dimension: k(1,1) + k(0,0) - 2 k(1,0) = 2^d + 1 - 2
    ones, zeros = np.ones((100, 1)), np.zeros((100, 1))
    for degree, expected in ((3, 7.0), (4, 15.0)):
        value, error = kpd(ones, zeros, batch_size=50, degree=degree, normalise=False)
        assert value == pytest.approx(expected)
        assert error == pytest.approx(0.0, abs=1e-12)
    # linear kernel: MMD^2 = |mean difference|^2 / d, exactly in expectation
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4000, 2))
    y = rng.normal(size=(4000, 2)) + np.ones(2)
    value, _ = kpd(x, y, batch_size=2000, degree=1, normalise=False)
    assert value == pytest.approx(1.0, abs=0.05)


def test_kpd_is_zero_for_the_same_distribution() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(3000, 4)), rng.normal(size=(3000, 4))
    value, error = kpd(x, y, batch_size=1000)
    assert abs(value) < max(3 * error, 1e-3)
    shifted, shifted_error = kpd(x, y + 1.0, batch_size=1000)
    assert shifted > 10 * shifted_error > 0


# --------------------------------------------------------------------------- JSD
def test_jsd_from_probabilities() -> None:
    label = np.array([1, 1, 0, 0])
    assert jsd_from_probabilities([1.0, 1.0, 0.0, 0.0], label) == pytest.approx(1.0, abs=1e-5)
    assert jsd_from_probabilities([0.5, 0.5, 0.5, 0.5], label) == pytest.approx(0.0)
    # unequal class counts act as equal priors
    assert jsd_from_probabilities([0.5, 0.5, 0.5], [1, 0, 0]) == pytest.approx(0.0)
    assert math.isnan(jsd_from_probabilities([0.3, 0.4], [1, 1]))


def test_blocked_mmd_matches_dense_kernels() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(600, 5)), rng.normal(size=(550, 5)) + 0.1  # several 256-row blocks
    kxx, kyy, kxy = ((a @ b.T / 5 + 1) ** 4 for a, b in ((x, x), (y, y), (x, y)))
    expected = (
        (kxx.sum() - np.trace(kxx)) / (600 * 599)
        + (kyy.sum() - np.trace(kyy)) / (550 * 549)
        - 2 * kxy.mean()
    )
    assert mmd_poly_unbiased(x, y, degree=4) == pytest.approx(expected, rel=1e-9)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # scipy's sqrtm, singular
def test_frechet_distance_cholesky_and_fallback_agree() -> None:
    rng = np.random.default_rng(8)
    s2 = _random_spd(rng, 4)
    base = _random_spd(rng, 3)
    singular = np.zeros((4, 4))
    singular[:3, :3] = base  # rank 3: Cholesky fails, the symmetric root is used
    root = linalg.sqrtm(singular @ s2)
    expected = np.trace(singular + s2 - 2 * np.real(root))
    assert frechet_distance(np.zeros(4), singular, np.zeros(4), s2) == pytest.approx(expected)


def test_kpd_stays_bounded_when_the_reference_is_flat_in_a_feature() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(300, 4))
    gen = rng.normal(size=(300, 4))
    ref[:, 2] = 1e-9 * rng.normal(size=300)  # an (almost) empty layer in the reference only
    gen[:, 2] = 50.0 * rng.normal(size=300)
    value, error = kpd(ref, gen, num_batches=3, batch_size=300)
    assert np.isfinite(value)
    assert np.isfinite(error)
    assert 0 < value < 10  # every feature scaled into [-1, 1]: the kernel is bounded
