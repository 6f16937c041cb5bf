"""FID speed and agreement: gantk's symmetric-eigenvalue FID against scipy.linalg.sqrtm, in one run.

Two Gaussian statistics of 2048-d features (Inception pool3's size) are made from random
correlated features (``--samples`` per side). The reference is the textbook formula with
``scipy.linalg.sqrtm(Σ₁Σ₂)`` (what the original FID code computes); gantk's is
:func:`gantk.plugins.metrics.formulas.frechet_distance`. Printed: both values, their relative
difference, both times (best of ``--repeats``) and the speed ratio. Floors: ratio ≥ 5, relative
difference ≤ 1e-6; the exit status is 1 when either is missed.

    python benchmarks/metrics.py [--dim 2048] [--samples 4096] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import scipy.linalg
import torch

from gantk.plugins.metrics.formulas import frechet_distance, gaussian_statistics

SPEED_FLOOR, AGREEMENT_FLOOR = 5.0, 1e-6


def correlated_features(n: int, dim: int, seed: int) -> torch.Tensor:
    """n feature vectors with a non-trivial covariance: Gaussian noise through a random mixing matrix."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=generator, dtype=torch.float64) / dim ** 0.5
    return torch.randn(n, dim, generator=generator, dtype=torch.float64) @ mixing + 0.1 * seed


def scipy_fid(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ₁−μ₂‖² + Tr(Σ₁ + Σ₂ − 2 sqrtm(Σ₁Σ₂)), the reference implementation's formula."""
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root.real))


def best_time(function, repeats: int) -> tuple[float, float]:
    """(value, fastest wall time in seconds) over ``repeats`` calls."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return value, min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    first = gaussian_statistics(correlated_features(args.samples, args.dim, 1))
    second = gaussian_statistics(correlated_features(args.samples, args.dim, 2))
    arrays = [t.numpy() for t in (first.mean, first.covariance, second.mean, second.covariance)]

    ours, ours_s = best_time(lambda: frechet_distance(first, second), args.repeats)
    reference, reference_s = best_time(lambda: scipy_fid(*arrays), args.repeats)
    ratio = reference_s / ours_s
    difference = abs(ours - reference) / abs(reference)
    print(f"dimension {args.dim}, {args.samples} samples per side, {torch.get_num_threads()} threads")
    print(f"scipy.linalg.sqrtm FID  {reference:.10f}  {reference_s:7.3f} s")
    print(f"gantk eigvalsh FID         {ours:.10f}  {ours_s:7.3f} s")
    print(f"speed ratio {ratio:.1f}x (floor {SPEED_FLOOR}x), relative difference {difference:.2e} "
          f"(floor {AGREEMENT_FLOOR:.0e})")
    ok = ratio >= SPEED_FLOOR and difference <= AGREEMENT_FLOOR
    print("floors met" if ok else "FLOOR MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
