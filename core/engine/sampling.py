"""Draw samples from a generator (seeded, in eval mode), pick class labels for them, find a generator file.

Writing samples to pictures or raw arrays is the pictures tool's (:mod:`gantk.plugins.tools.pictures`)."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn

from gantk import memory_budget
from gantk.errors import GantkError, UsageError
from gantk.protocols import NEEDS, StyleGenerator, truncate_styles

#: What to lower when samples do not fit.
SAMPLES_FIX = ("Ask for fewer samples (gantk sample --n, a metric's sample count), or draw them in several runs "
               "with different --seed values.")


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Run ``module`` in eval mode (BatchNorm running statistics, no dropout); its mode is restored after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def check_samples_fit(generator: nn.Module, n: int) -> None:
    """Refuse ``n`` samples whose latents, labels and values (float32, from the generator's ``spec``) do not fit."""
    spec = getattr(generator, "spec", None)
    values = math.prod(spec.shape) if spec is not None else 0
    memory_budget.check_fits(n * (4 * (int(generator.z_dim) + values) + 8), f"Drawing {n:,} samples", SAMPLES_FIX)


def check_truncation(generator: nn.Module, truncation: float | None, cutoff: int | None) -> None:
    """Refuse a truncation the generator cannot take: ψ needs a :class:`gantk.StyleGenerator`, a finite ψ and a
    cutoff between 1 and its number of styles; a cutoff needs ψ."""
    if truncation is None:
        if cutoff is not None:
            raise UsageError("--truncation-cutoff N says on how many styles to apply the truncation trick; give "
                             "--truncation PSI with it (e.g. --truncation 0.7 --truncation-cutoff 8).")
        return
    if not isinstance(generator, StyleGenerator):
        raise UsageError(f"--truncation needs {NEEDS['style_generator']}, but this generator is a "
                         f"{generator.__class__.__name__}, which has no mapping network. Drop --truncation.")
    if not math.isfinite(truncation):
        raise UsageError(f"--truncation must be a finite number ψ (1: no truncation, 0: every sample is the average "
                         f"style w_avg; 0.5 to 0.7 is usual), got {truncation}.")
    if cutoff is not None and not 1 <= cutoff <= generator.num_ws:
        raise UsageError(f"--truncation-cutoff must be between 1 and {generator.num_ws} (this generator's number of "
                         f"styles, one per layer), got {cutoff}.")


@torch.no_grad()
def draw(generator: nn.Module, n: int, *, seed: int, labels: Tensor | None = None, batch_size: int = 256,
         device: str | torch.device = "cpu", truncation: float | None = None,
         truncation_cutoff: int | None = None) -> Tensor:
    """``n`` samples from ``generator`` in eval mode, with latents from a generator seeded by ``seed``
    (same seed, same samples).

    ``truncation`` ψ (a :class:`gantk.StyleGenerator` only) applies the truncation trick, w' = w_avg + ψ(w − w_avg),
    to the first ``truncation_cutoff`` styles (all when None). ``n`` is checked against the memory budget first; the
    samples are drawn ``batch_size`` at a time into one preallocated tensor."""
    check_truncation(generator, truncation, truncation_cutoff)
    check_samples_fit(generator, n)
    noise = torch.Generator().manual_seed(seed)
    samples: Tensor | None = None
    with evaluating(generator), memory_budget.allocation_failures_reported(f"Drawing {n:,} samples", SAMPLES_FIX):
        z = torch.randn(n, generator.z_dim, generator=noise)
        for start in range(0, n, batch_size):
            y = labels[start:start + batch_size].to(device) if labels is not None else None
            latents = z[start:start + batch_size].to(device)
            if truncation is None:
                chunk = generator(latents, y).float().cpu()
            else:
                ws = truncate_styles(generator.mapping(latents, y), generator.w_avg, truncation, truncation_cutoff)
                chunk = generator.synthesis(ws).float().cpu()
            if samples is None:
                samples = torch.empty((n, *chunk.shape[1:]), dtype=chunk.dtype)
            samples[start:start + chunk.shape[0]] = chunk
    return samples if samples is not None else torch.empty(0)


def class_labels(generator: nn.Module, n: int, label: int | None, all_labels: bool) -> tuple[Tensor | None, int | None]:
    """Labels for ``n`` samples: one class (``label``), or every class in rows (``all_labels``); and the row length."""
    if label is None and not all_labels:
        return None, None
    classes = generator.spec.num_classes
    if not generator.conditional:
        raise UsageError(f"--label/--labels need a class-conditional generator, but this "
                         f"'{generator.__class__.__name__}' ignores labels (it was trained unconditionally). Drop "
                         "them, or train a conditional model (e.g. gantk train --loss ns+ac).")
    check_samples_fit(generator, n)
    if all_labels:
        per_class = max(1, n // classes)
        return torch.arange(classes).repeat_interleave(per_class), per_class
    if not 0 <= label < classes:
        raise UsageError(f"--label {label} is out of range: this generator knows {classes} classes (0 to {classes - 1}).")
    return torch.full((n,), label, dtype=torch.long), None


def resolve_model(model: str, runs_root: Path, export_file: str = "generator.safetensors") -> Path:
    """An exported file from a path to one, a run directory, or a run name under ``runs_root`` (whose
    ``export_file``, ``generator.safetensors`` or ``translator.safetensors``, is taken)."""
    what = export_file.partition(".")[0]
    for candidate in (Path(model), Path(runs_root) / model):
        if candidate.is_file():
            return candidate
        if (candidate / export_file).is_file():
            return candidate / export_file
        if (candidate / "config.json").is_file():
            raise GantkError(f"The run '{candidate}' has no {export_file} yet (it may still be training, or it "
                             f"trains no {what}). Write one from its newest checkpoint with 'gantk export {candidate}'.")
    raise GantkError(f"No {what} found at '{model}'. Give an exported .safetensors file, a run directory, "
                     f"or a run name under {runs_root} (e.g. latest).")
