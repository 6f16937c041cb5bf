"""Shared pieces of the built-in augmentations: random draws by gantk's data-parallel rule, checks, layouts.

Every draw is made for the whole global batch and each rank keeps its rows (:mod:`gantk.distributed`),
so that N processes augment their rows of a batch exactly as one process augments the whole batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gantk.distributed import local_rows, uniform_rows, world_size
from gantk.errors import UsageError
from gantk.protocols import DataSpec


def uniform(rows: int, *shape: int, device: torch.device) -> Tensor:
    """U[0, 1) numbers of shape (rows, *shape): this rank's rows of one draw for the global batch."""
    return uniform_rows(rows, *shape, device=device)


def normal(rows: int, *shape: int, device: torch.device) -> Tensor:
    """N(0, 1) numbers of shape (rows, *shape), drawn like :func:`uniform`."""
    return local_rows(torch.randn(rows * world_size(), *shape, device=device))


def chosen(rows: int, probability: float | Tensor, device: torch.device) -> Tensor:
    """Which of ``rows`` samples an operation applies to, each with ``probability`` (a bool mask (rows,))."""
    return uniform(rows, device=device) < probability  # P(u < p) = p for u ~ U[0, 1)


def per_sample(values: Tensor) -> Tensor:
    """One value per sample (B,) shaped to broadcast over images (B, 1, 1, 1)."""
    return values.reshape(-1, 1, 1, 1)


def in_layout_of(images: Tensor, like: Tensor) -> Tensor:
    """``images`` in ``like``'s dtype and memory layout (channels-last runs stay channels-last for D's convs)."""
    images = images.to(like.dtype)
    if like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        return images.contiguous(memory_format=torch.channels_last)
    return images


def require_images(spec: DataSpec, name: str) -> None:
    """A usage error unless the run's data are images (the augmentations move pixels)."""
    if not spec.is_image:
        raise UsageError(f"The augmentation '{name}' transforms images, but the data set '{spec.name}' holds vectors "
                         f"of shape {spec.shape}. Drop --augment for this data set.")
