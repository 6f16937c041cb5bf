"""Draw samples from a generator (seeded, in eval mode), pick class labels for them, find a generator file.

Writing samples to pictures or raw arrays is the pictures tool's (:mod:`gantk.plugins.tools.pictures`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn

from gantk.errors import GantkError, UsageError


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Run ``module`` in eval mode (BatchNorm running statistics, no dropout); its mode is restored after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


@torch.no_grad()
def draw(generator: nn.Module, n: int, *, seed: int, labels: Tensor | None = None, batch_size: int = 256,
         device: str | torch.device = "cpu") -> Tensor:
    """``n`` samples from ``generator`` in eval mode, with latents from a generator seeded by ``seed``
    (same seed, same samples)."""
    noise = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator.z_dim, generator=noise)
    chunks = []
    with evaluating(generator):
        for start in range(0, n, batch_size):
            y = labels[start:start + batch_size].to(device) if labels is not None else None
            chunks.append(generator(z[start:start + batch_size].to(device), y).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0)


def class_labels(generator: nn.Module, n: int, label: int | None, all_labels: bool) -> tuple[Tensor | None, int | None]:
    """Labels for ``n`` samples: one class (``label``), or every class in rows (``all_labels``); and the row length."""
    if label is None and not all_labels:
        return None, None
    classes = generator.spec.num_classes
    if not generator.conditional:
        raise UsageError(f"--label/--labels need a class-conditional generator, but this "
                         f"'{generator.__class__.__name__}' ignores labels (it was trained unconditionally). Drop "
                         "them, or train a conditional model (e.g. gantk train --loss ns+ac).")
    if all_labels:
        per_class = max(1, n // classes)
        return torch.arange(classes).repeat_interleave(per_class), per_class
    if not 0 <= label < classes:
        raise UsageError(f"--label {label} is out of range: this generator knows {classes} classes (0 to {classes - 1}).")
    return torch.full((n,), label, dtype=torch.long), None


def resolve_model(model: str, runs_root: Path) -> Path:
    """A generator file from a path to one, a run directory, or a run name under ``runs_root``."""
    for candidate in (Path(model), Path(runs_root) / model):
        if candidate.is_file():
            return candidate
        if (candidate / "generator.safetensors").is_file():
            return candidate / "generator.safetensors"
        if (candidate / "config.json").is_file():
            raise GantkError(f"The run '{candidate}' has no generator.safetensors yet (it may still be training). "
                             f"Write one from its newest checkpoint with 'gantk export {candidate}'.")
    raise GantkError(f"No generator found at '{model}'. Give an exported .safetensors file, a run directory, "
                     f"or a run name under {runs_root} (e.g. latest).")
