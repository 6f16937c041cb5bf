"""The maths of the sample-quality metrics, on feature matrices (ALGORITHMS.md §4).

Pure functions of ``(n, d)`` feature tensors; the metric plugins feed them features from an
extractor. Every formula is written beside the line that computes it.

- FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium"), in float64 through the symmetric eigen-decomposition.
- KID (Bińkowski et al. 2018, "Demystifying MMD GANs"): unbiased MMD² with a cubic polynomial kernel.
- IS (Salimans et al. 2016, "Improved Techniques for Training GANs").
- Improved precision and recall (Kynkäänniemi et al. 2019), k-NN balls around each set.
- Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics"), k-NN balls
  around the real samples only.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor


# ------------------------------------------------------------------------------------- FID
@dataclass(frozen=True)
class GaussianStatistics:
    """Mean (d,) and covariance (d, d) of a feature set, in float64, and how many samples gave them."""

    mean: Tensor
    covariance: Tensor
    count: int


class FewSamplesWarning(UserWarning):
    """Fewer samples than feature dimensions: the covariance is singular and FID is biased upwards."""


def gaussian_statistics(features: Tensor) -> GaussianStatistics:
    """μ = mean of the rows, Σ = unbiased covariance (rows are samples), both float64."""
    x = features.detach().to(torch.float64).reshape(len(features), -1)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"FID statistics need at least 2 samples, got {n}.")
    if n <= d:
        warnings.warn(f"{n} samples of {d}-dimensional features: the covariance is singular (rank ≤ {n - 1}), so "
                      "FID is finite but biased; use more samples than feature dimensions to compare runs.",
                      FewSamplesWarning, stacklevel=2)
    mean = x.mean(dim=0)
    centred = x - mean
    covariance = centred.T @ centred / (n - 1)  # Σ = Σ_i (x_i − μ)(x_i − μ)ᵀ / (n − 1)
    return GaussianStatistics(mean, covariance, n)


def _numerical_zeros_removed(eigenvalues: Tensor) -> Tensor:
    """Eigenvalues of a PSD matrix with rounding noise set to 0: below max|λ|·d·ε count as 0 (as a matrix rank)."""
    tolerance = eigenvalues.abs().max() * len(eigenvalues) * torch.finfo(eigenvalues.dtype).eps
    return torch.where(eigenvalues > tolerance, eigenvalues, torch.zeros_like(eigenvalues))


def _symmetric_sqrt(matrix: Tensor) -> Tensor:
    """A^{1/2} of a symmetric PSD matrix: V diag(√λ) Vᵀ from A = V diag(λ) Vᵀ (noise-level λ set to 0)."""
    eigenvalues, eigenvectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * _numerical_zeros_removed(eigenvalues).sqrt()) @ eigenvectors.T


def trace_sqrt_product(sigma1: Tensor, sigma2: Tensor) -> Tensor:
    """Tr((Σ₁Σ₂)^{1/2}) = Σ_i √λ_i, λ_i the eigenvalues of Σ₁Σ₂, found through a symmetric matrix.

    With a factor Σ₁ = F Fᵀ, Σ₁Σ₂ is similar to the symmetric PSD Fᵀ Σ₂ F (conjugate by F), so they
    share eigenvalues and ``eigvalsh`` applies (``eigvalsh(Σ₁Σ₂)`` would not: Σ₁Σ₂ is not
    symmetric). F is the Cholesky factor L when Σ₁ is positive definite (fast), else Σ₁^{1/2} from
    an eigen-decomposition (singular Σ₁: fewer samples than dimensions). Eigenvalues at
    rounding-noise level (negative ones included) count as 0, so a singular Σ adds no √noise terms.
    """
    sigma1, sigma2 = sigma1.to(torch.float64), sigma2.to(torch.float64)
    factor, info = torch.linalg.cholesky_ex(sigma1)  # Σ₁ = L Lᵀ
    if int(info) != 0:  # not positive definite
        factor = _symmetric_sqrt(sigma1)  # Σ₁ = Σ₁^{1/2} Σ₁^{1/2}
    middle = factor.T @ sigma2 @ factor  # Fᵀ Σ₂ F
    eigenvalues = torch.linalg.eigvalsh((middle + middle.T) / 2)
    return _numerical_zeros_removed(eigenvalues).sqrt().sum()


def frechet_distance(first: GaussianStatistics, second: GaussianStatistics) -> float:
    """FID = ‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2 Tr((Σ₁Σ₂)^{1/2}), float64 (Heusel et al. 2017)."""
    mean_term = (first.mean - second.mean).square().sum()  # ‖μ₁ − μ₂‖²
    trace_term = first.covariance.trace() + second.covariance.trace() \
        - 2 * trace_sqrt_product(first.covariance, second.covariance)
    return float(mean_term + trace_term)


# ------------------------------------------------------------------------------------- KID
def polynomial_kernel(a: Tensor, b: Tensor) -> Tensor:
    """k(a, b) = (aᵀb / d + 1)³ for all row pairs (Bińkowski et al. 2018)."""
    return (a @ b.T / a.shape[1] + 1) ** 3


def mmd2_unbiased(x: Tensor, y: Tensor) -> Tensor:
    """Unbiased MMD²: Σ_{i≠j} k(x_i, x_j)/(m(m−1)) + Σ_{i≠j} k(y_i, y_j)/(n(n−1)) − 2 Σ_{i,j} k(x_i, y_j)/(mn)."""
    m, n = len(x), len(y)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return within_x + within_y - 2 * k_xy.mean()


def kernel_inception_distance(real: Tensor, fake: Tensor, *, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation of the unbiased MMD² over ``subsets`` random subsets (float64).

    Each subset draws ``min(subset_size, len(real), len(fake))`` samples from each set without
    replacement, with a generator seeded by ``seed``.
    """
    real, fake = real.detach().to(torch.float64), fake.detach().to(torch.float64)
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, got {len(real)} real and {len(fake)} generated.")
    generator = torch.Generator().manual_seed(seed)
    values = torch.stack([
        mmd2_unbiased(real[torch.randperm(len(real), generator=generator)[:size]],
                      fake[torch.randperm(len(fake), generator=generator)[:size]]) for _ in range(subsets)])
    return float(values.mean()), float(values.std()) if subsets > 1 else 0.0


# -------------------------------------------------------------------------------------- IS
def inception_score(probabilities: Tensor, *, splits: int = 10) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) ‖ p(y))) per split, mean and std over ``splits`` (Salimans et al. 2016).

    ``probabilities`` (n, K) are class probabilities p(y|x) of generated samples; p(y) is their mean
    within a split. Splits are consecutive blocks, as in the original code.
    """
    p = probabilities.detach().to(torch.float64)
    if len(p) < splits:
        raise ValueError(f"The inception score over {splits} splits needs at least {splits} samples, got {len(p)}.")
    scores = []
    for part in torch.tensor_split(p, splits):
        marginal = part.mean(dim=0, keepdim=True)  # p(y) over the split
        # KL(p(y|x) ‖ p(y)) = Σ_y p(y|x) (log p(y|x) − log p(y)), with 0 · log 0 = 0
        kl = torch.xlogy(part, part) - torch.xlogy(part, marginal)
        scores.append(torch.exp(kl.sum(dim=1).mean()))
    scores_t = torch.stack(scores)
    return float(scores_t.mean()), float(scores_t.std()) if splits > 1 else 0.0


# ----------------------------------------------------------------- k-NN precision/recall etc.
def pairwise_distances(a: Tensor, b: Tensor, *, chunk: int = 4096) -> Tensor:
    """‖a_i − b_j‖ for all pairs, in row chunks (float32 or float64, as the inputs)."""
    rows = [torch.cdist(part, b, compute_mode="donot_use_mm_for_euclid_dist") if a.dtype == torch.float64
            else torch.cdist(part, b) for part in torch.split(a, chunk)]
    return torch.cat(rows)


def knn_radii(features: Tensor, k: int) -> Tensor:
    """Distance from each row to its k-th nearest other row (the row itself excluded)."""
    if len(features) <= k:
        raise ValueError(f"k-NN radii with k = {k} need more than {k} samples, got {len(features)}.")
    distances = pairwise_distances(features, features)
    # the smallest distance of each row is to itself (0), so the k-th neighbour is the (k+1)-th smallest
    return distances.kthvalue(k + 1, dim=1).values


def _inside_counts(points: Tensor, centres: Tensor, radii: Tensor, *, chunk: int = 4096) -> Tensor:
    """For each point, the number of balls B(centre_i, radius_i) holding it (‖p − c_i‖ ≤ r_i)."""
    counts = [(pairwise_distances(part, centres) <= radii[None, :]).sum(dim=1) for part in torch.split(points, chunk)]
    return torch.cat(counts)


def precision_recall(real: Tensor, fake: Tensor, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    precision = share of generated samples inside at least one real k-NN ball,
    recall = share of real samples inside at least one generated k-NN ball.
    """
    precision = (_inside_counts(fake, real, knn_radii(real, k)) > 0).double().mean()
    recall = (_inside_counts(real, fake, knn_radii(fake, k)) > 0).double().mean()
    return float(precision), float(recall)


def density_coverage(real: Tensor, fake: Tensor, *, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), with k-NN balls around the real samples.

    density = (1 / kM) Σ_j Σ_i 1[Y_j ∈ B(X_i, NND_k(X_i))],
    coverage = (1 / N) Σ_i 1[∃ j: Y_j ∈ B(X_i, NND_k(X_i))].
    """
    radii = knn_radii(real, k)
    density = _inside_counts(fake, real, radii).double().sum() / (k * len(fake))
    nearest_fake = torch.cat([pairwise_distances(part, fake).min(dim=1).values for part in torch.split(real, 4096)])
    coverage = (nearest_fake <= radii).double().mean()  # the nearest generated sample lies in X_i's ball
    return float(density), float(coverage)


def reverse_kl_to_uniform(counts: Tensor) -> float:
    """KL(q ‖ uniform) = Σ_k q_k log(q_k K) for the histogram q = counts / Σ counts over K bins (0 log 0 = 0)."""
    total = counts.sum()
    if total == 0:
        return math.inf
    q = counts.double() / total
    return float(torch.xlogy(q, q * len(counts)).sum())
