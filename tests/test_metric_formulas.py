"""The maths of FID, KID, IS, precision/recall and density/coverage against direct references (ALGORITHMS.md §4)."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gantk.plugins.metrics.formulas import (FewSamplesWarning, density_coverage, frechet_distance, gaussian_statistics,
                                            inception_score, kernel_inception_distance, mmd2_unbiased,
                                            precision_recall, reverse_kl_to_uniform, trace_sqrt_product)


def random_covariance(generator: torch.Generator, d: int, rank: int | None = None) -> torch.Tensor:
    a = torch.randn(d, rank or d, generator=generator, dtype=torch.float64)
    return a @ a.T / (rank or d)


def scipy_fid(mu1, s1, mu2, s2) -> float:
    """The textbook FID with scipy.linalg.sqrtm (the reference implementation's formula)."""
    root = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy())
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1.numpy()) + np.trace(s2.numpy()) - 2 * np.trace(root.real))


# ------------------------------------------------------------------------------------- FID
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 48))
def test_fid_matches_scipy_sqrtm_on_random_statistics(seed, d):
    generator = torch.Generator().manual_seed(seed)
    mu1, mu2 = (torch.randn(d, generator=generator, dtype=torch.float64) for _ in range(2))
    s1, s2 = random_covariance(generator, d), random_covariance(generator, d)
    ours = frechet_distance(gaussian_statistics_of(mu1, s1), gaussian_statistics_of(mu2, s2))
    assert ours == pytest.approx(scipy_fid(mu1, s1, mu2, s2), rel=1e-6, abs=1e-9)


def gaussian_statistics_of(mean, covariance):
    from gantk.plugins.metrics.formulas import GaussianStatistics
    return GaussianStatistics(mean, covariance, 1000)


def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(500, 64, generator=generator)
    y = torch.randn(500, 64, generator=generator) * 1.3 + 0.2
    sx, sy = gaussian_statistics(x), gaussian_statistics(y)
    assert abs(frechet_distance(sx, sx)) < 1e-6
    assert frechet_distance(sx, sy) == pytest.approx(frechet_distance(sy, sx), rel=1e-9)
    assert frechet_distance(sx, sy) > 1.0


@given(shift=st.lists(st.floats(-5, 5), min_size=16, max_size=16))
@settings(max_examples=20, deadline=None)
def test_fid_of_a_shifted_copy_is_the_squared_norm_of_the_shift(shift):
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    offset = torch.tensor(shift, dtype=torch.float64)
    value = frechet_distance(gaussian_statistics(x), gaussian_statistics(x + offset))
    assert value == pytest.approx(float(offset.square().sum()), rel=1e-6, abs=1e-6)


def test_fewer_samples_than_dimensions_warns_and_stays_finite():
    generator = torch.Generator().manual_seed(3)
    x, y = torch.randn(20, 64, generator=generator), torch.randn(20, 64, generator=generator)
    with pytest.warns(FewSamplesWarning, match="singular"):
        sx, sy = gaussian_statistics(x), gaussian_statistics(y)
    value = frechet_distance(sx, sy)
    assert math.isfinite(value) and value > 0
    assert abs(frechet_distance(sx, sx)) < 1e-6


def test_trace_sqrt_is_exact_for_commuting_diagonal_covariances():
    a, b = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64), torch.tensor([4.0, 1.0, 0.0], dtype=torch.float64)
    # Tr((AB)^{1/2}) = Σ √(a_i b_i) = 2 + 2 + 0
    assert float(trace_sqrt_product(torch.diag(a), torch.diag(b))) == pytest.approx(4.0, abs=1e-12)


def test_fid_with_enough_samples_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gaussian_statistics(torch.randn(100, 8))


# ------------------------------------------------------------------------------------- KID
def direct_mmd2(x, y) -> float:
    """Unbiased MMD² with k(a, b) = (aᵀb/d + 1)³, by explicit double loops."""
    d, m, n = x.shape[1], len(x), len(y)
    k = lambda a, b: (float(a @ b) / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), m=st.integers(2, 12), n=st.integers(2, 12), d=st.integers(1, 6))
def test_mmd2_matches_the_direct_formula(seed, m, n, d):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(m, d, generator=generator, dtype=torch.float64)
    y = torch.randn(n, d, generator=generator, dtype=torch.float64) + 0.5
    assert float(mmd2_unbiased(x, y)) == pytest.approx(direct_mmd2(x, y), rel=1e-9, abs=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    generator = torch.Generator().manual_seed(4)
    a, b = torch.randn(400, 32, generator=generator), torch.randn(400, 32, generator=generator)
    same, same_std = kernel_inception_distance(a, b, subsets=20, subset_size=200)
    shifted, _ = kernel_inception_distance(a, b + 0.5, subsets=20, subset_size=200)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 10 * abs(same) and shifted > 0


def test_kid_of_a_single_subset_of_everything_is_the_mmd():
    generator = torch.Generator().manual_seed(5)
    x, y = torch.randn(30, 4, generator=generator), torch.randn(30, 4, generator=generator)
    mean, std = kernel_inception_distance(x, y, subsets=1, subset_size=30)
    assert mean == pytest.approx(float(mmd2_unbiased(x.double(), y.double())), rel=1e-9) and std == 0.0


# -------------------------------------------------------------------------------------- IS
def test_inception_score_is_the_class_count_for_confident_balanced_predictions_and_one_for_constant():
    confident = torch.eye(10).repeat(20, 1)  # each split holds every class equally, each prediction one-hot
    mean, std = inception_score(confident, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    uniform = torch.full((100, 10), 0.1)
    assert inception_score(uniform, splits=10)[0] == pytest.approx(1.0, rel=1e-9)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), classes=st.integers(2, 8))
def test_inception_score_lies_between_one_and_the_class_count(seed, classes):
    logits = torch.randn(50, classes, generator=torch.Generator().manual_seed(seed)) * 3
    mean, _ = inception_score(logits.softmax(dim=1), splits=5)
    assert 1.0 - 1e-9 <= mean <= classes + 1e-9


# ----------------------------------------------------------- precision/recall, density/coverage
def brute_force_radii(x, k):
    return [sorted(float(torch.dist(x[i], x[j])) for j in range(len(x)) if j != i)[k - 1] for i in range(len(x))]


def brute_force_pr(real, fake, k):
    real_r, fake_r = brute_force_radii(real, k), brute_force_radii(fake, k)
    precision = np.mean([any(float(torch.dist(f, r)) <= rr for r, rr in zip(real, real_r)) for f in fake])
    recall = np.mean([any(float(torch.dist(r, f)) <= fr for f, fr in zip(fake, fake_r)) for r in real])
    return precision, recall


def brute_force_dc(real, fake, k):
    radii = brute_force_radii(real, k)
    inside = [[float(torch.dist(f, r)) <= rr for r, rr in zip(real, radii)] for f in fake]
    density = sum(itertools.chain.from_iterable(inside)) / (k * len(fake))
    coverage = np.mean([any(inside[j][i] for j in range(len(fake))) for i in range(len(real))])
    return density, coverage


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_real=st.integers(8, 30), n_fake=st.integers(8, 30),
       d=st.integers(1, 5), shift=st.floats(0, 2))
def test_precision_recall_and_density_coverage_match_brute_force(seed, n_real, n_fake, d, shift):
    generator = torch.Generator().manual_seed(seed)
    real = torch.randn(n_real, d, generator=generator, dtype=torch.float64)
    fake = torch.randn(n_fake, d, generator=generator, dtype=torch.float64) * 1.5 + shift
    assert precision_recall(real, fake, k=3) == pytest.approx(brute_force_pr(real, fake, 3), abs=1e-12)
    assert density_coverage(real, fake, k=5) == pytest.approx(brute_force_dc(real, fake, 5), abs=1e-12)


@pytest.mark.slow
def test_pr_and_dc_of_two_standard_normal_sets_fall_in_the_published_band():
    """ALGORITHMS.md §4 sanity band: N(0, I), d = 1000, 10k each, k = 5 (Naeem et al. 2020)."""
    generator = torch.Generator().manual_seed(6)
    real, fake = torch.randn(10_000, 1000, generator=generator), torch.randn(10_000, 1000, generator=generator)
    precision, recall = precision_recall(real, fake, k=5)
    density, coverage = density_coverage(real, fake, k=5)
    assert 0.45 <= precision <= 0.50 and 0.45 <= recall <= 0.50
    assert 0.9 <= density <= 1.07 and 0.96 <= coverage <= 0.97


def test_precision_falls_when_generated_samples_leave_the_real_support():
    generator = torch.Generator().manual_seed(7)
    real = torch.randn(500, 8, generator=generator)
    on, off = torch.randn(500, 8, generator=generator), torch.randn(500, 8, generator=generator) + 6
    assert precision_recall(real, on)[0] > 0.5 > 0.05 > precision_recall(real, off)[0]
    assert density_coverage(real, off) == (0.0, 0.0)


# ------------------------------------------------------------------------------ reverse KL
def test_reverse_kl_to_uniform():
    assert reverse_kl_to_uniform(torch.tensor([5, 5, 5, 5])) == pytest.approx(0.0, abs=1e-12)
    assert reverse_kl_to_uniform(torch.tensor([8, 0, 0, 0])) == pytest.approx(math.log(4), rel=1e-12)
    assert reverse_kl_to_uniform(torch.tensor([0, 0])) == math.inf
