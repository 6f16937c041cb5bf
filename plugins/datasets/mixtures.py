"""Synthetic vector data sets: the 2-D Gaussian-mixture mode benchmarks and the 1-D toy target.

- ``ring8``: 8 Gaussians at angles 2πi/8 (i = 0..7) on the unit circle, std 0.01 (PacGAN's ring;
  not ``linspace(0, 2π, 8)``, whose first and last angles coincide).
- ``grid25``: 25 Gaussians at {−4, −2, 0, 2, 4}², std 0.05 (PacGAN's grid).
- ``normal1d``: N(0, 1) in one dimension, the target of the 1-D toy GAN.

Each is a fixed draw of ``num_samples`` (64,000) points from a ``torch.Generator`` seeded with
``seed`` (0), so every run trains on the same points; the mixtures give every mode the same number
of points (±1) in shuffled order. They are unlabelled (``num_classes`` 0); ``image_size``,
``data_root`` and ``download`` are accepted and ignored. :func:`ring8_modes`, :func:`grid25_modes`,
:data:`RING8_STD` and :data:`GRID25_STD` are public for the mode-coverage metric.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

import gantk
from gantk.memory_budget import check_fits
from gantk.options import positive_int
from gantk.protocols import DataSpec, Dataset

RING8_STD = 0.01
GRID25_STD = 0.05
NUM_SAMPLES = 64_000
SEED = 0


def ring8_modes() -> Tensor:
    """The 8 ring centres (8, 2): (cos 2πi/8, sin 2πi/8), i = 0..7."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([angles.cos(), angles.sin()], dim=1).to(torch.float32)


def grid25_modes() -> Tensor:
    """The 25 grid centres (25, 2): every (x, y) with x, y in {-4, -2, 0, 2, 4}, x varying slowest."""
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


#: Bytes per point while a mixture is drawn, besides its float32 values: the mode indices (int64, four arrays).
_INDEX_BYTES_PER_POINT = 32


def _point_count(name: str, num_samples: Any, dims: int) -> int:
    """``num_samples`` as a positive int whose points fit in memory."""
    count = positive_int(f"data set '{name}'", "num_samples", num_samples, hint="a number of points")
    check_fits(count * (_INDEX_BYTES_PER_POINT + 3 * 4 * dims), f"The data set '{name}' with num_samples={count:,}",
               f"Lower it (-O num_samples=N; the default is {NUM_SAMPLES:,}).")
    return count


def sample_mixture(modes: Tensor, std: float, num_samples: int, seed: int) -> Tensor:
    """``num_samples`` points of the equal-weight isotropic Gaussian mixture at ``modes``, shuffled."""
    generator = _generator(seed)
    which = (torch.arange(num_samples) % modes.shape[0])[torch.randperm(num_samples, generator=generator)]
    noise = torch.randn(num_samples, modes.shape[1], generator=generator)
    return modes[which] + std * noise  # x = μ_k + σ ε, ε ~ N(0, I)


def _vectors(name: str, samples: Tensor, description: str, modes: Tensor | None = None) -> Dataset:
    return Dataset(spec=DataSpec((samples.shape[1],), 0, name), samples=samples.contiguous(), labels=None,
                   description=description, modes=modes)


def load_ring8(*, data_root=None, image_size=None, download: bool = False,
               num_samples: int = NUM_SAMPLES, seed: int = SEED) -> Dataset:
    """8 Gaussians on the unit circle at angles 2πi/8, std 0.01 (PacGAN's ring benchmark)."""
    num_samples = _point_count("ring8", num_samples, 2)
    return _vectors("ring8", sample_mixture(ring8_modes(), RING8_STD, num_samples, seed),
                    f"{num_samples:,} points from 8 Gaussians on the unit circle (std {RING8_STD}), seed {seed}",
                    modes=ring8_modes())


def load_grid25(*, data_root=None, image_size=None, download: bool = False,
                num_samples: int = NUM_SAMPLES, seed: int = SEED) -> Dataset:
    """25 Gaussians on the grid {-4,-2,0,2,4}², std 0.05 (PacGAN's grid benchmark)."""
    num_samples = _point_count("grid25", num_samples, 2)
    return _vectors("grid25", sample_mixture(grid25_modes(), GRID25_STD, num_samples, seed),
                    f"{num_samples:,} points from 25 Gaussians on {{-4,-2,0,2,4}}² (std {GRID25_STD}), seed {seed}",
                    modes=grid25_modes())


def load_normal1d(*, data_root=None, image_size=None, download: bool = False,
                  num_samples: int = NUM_SAMPLES, seed: int = SEED) -> Dataset:
    """N(0, 1) in one dimension: the 1-D toy GAN's target."""
    num_samples = _point_count("normal1d", num_samples, 1)
    samples = torch.randn(num_samples, 1, generator=_generator(seed))
    return _vectors("normal1d", samples, f"{num_samples:,} draws of N(0, 1), seed {seed}")


@gantk.hookimpl
def register_datasets(register):
    register("ring8", load_ring8, summary="8 Gaussians on a circle, std 0.01 (2-D mode benchmark, PacGAN)")
    register("grid25", load_grid25, summary="25 Gaussians on a 5x5 grid, std 0.05 (2-D mode benchmark, PacGAN)")
    register("normal1d", load_normal1d, summary="N(0, 1) in one dimension (the 1-D toy GAN's target)")
