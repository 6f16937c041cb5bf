"""Data-parallel training over several processes (``torchrun``): this process's rank and its rows of a batch.

gantk's rule, which makes a run compute the same maths whatever the number of processes:

- a global batch (``--batch-size`` rows) is cut into equal, contiguous parts, one per rank in
  rank order (rank r holds rows ``[r·B/W, (r+1)·B/W)``);
- every rank draws random numbers from one shared stream (the same seed, the same draws, each of
  the global batch's shape) and keeps its own rows of each draw (:func:`local_rows`). So the
  latent vectors, fake labels and per-sample random numbers (the gradient penalty's mixing
  weights) are those a single process would draw, split between the ranks;
- a term that needs the whole batch at once (ContraGAN's contrastive loss compares every pair of
  samples) gathers it with :func:`gather_rows`, through which gradients flow back to each rank.

Outside ``torchrun`` (one process) these functions change nothing. ``torch.distributed`` is the
only machinery used; the engine starts the process group (:mod:`gantk.engine.distributed`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gantk.errors import UsageError


def world_size() -> int:
    """How many processes train together (1 outside ``torchrun``)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def rank() -> int:
    """This process's rank (0 outside ``torchrun``)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def local_size(global_rows: int) -> int:
    """The rows of a global batch of ``global_rows`` that this rank holds; a UsageError unless W divides it."""
    size = world_size()
    if global_rows % size:
        raise UsageError(f"The batch of {global_rows} rows cannot be split evenly over {size} processes. Use a "
                         f"--batch-size that is a multiple of {size} (with --accumulate K: of {size}·K).")
    return global_rows // size


def local_rows(batch: Tensor) -> Tensor:
    """This rank's contiguous rows of ``batch``, a tensor holding the whole global batch (dimension 0)."""
    count = local_size(batch.shape[0])
    return batch[rank() * count:(rank() + 1) * count]


def uniform_rows(rows: int, *shape: int, device: torch.device | str | None = None) -> Tensor:
    """U[0, 1) numbers for this rank's ``rows`` samples: its rows of one draw for the whole global batch."""
    return local_rows(torch.rand(rows * world_size(), *shape, device=device))


def gather_rows(part: Tensor) -> Tensor:
    """Every rank's ``part`` (same shape on all) concatenated in rank order: the global batch.

    Differentiable: the gradient of each rank's copy flows back to the rank that owns the rows
    (summed over ranks, which the engine's gradient averaging turns into the single-process gradient).
    """
    if world_size() == 1:
        return part
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(part.contiguous()), dim=0)
