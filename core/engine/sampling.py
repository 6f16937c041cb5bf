"""Draw samples from a generator (seeded, in eval mode), pick class labels for them, find a generator file;
turn image samples into pixels and grids.

The latents of ``n`` samples are drawn at once from a ``torch.Generator`` seeded with the seed, on the
CPU, then run through the generator in batches, so sample i's latent depends on the seed and i, not on
the batch size or the device. (Its values can still change in the last bits with the number of samples
per call, which convolution kernels may sum in another order: :func:`draw_blocks` fixes that number for
files.) Pixels follow torchvision's ``save_image``: [-1, 1] clamped, mapped to [0, 1], then
⌊255·v + 0.5⌋, so one sample's pixels are the same alone (:func:`image_pixels`) or in a grid
(:func:`sample_grid`). Writing samples to pictures or raw arrays is the pictures tool's
(:mod:`gantk.plugins.tools.pictures`, :mod:`gantk.plugins.tools.image_files`)."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn

from gantk import memory_budget
from gantk.engine.model_dir import is_model_directory
from gantk.errors import GantkError, UsageError
from gantk.protocols import NEEDS, StyleGenerator, truncate_styles

#: What to lower when samples do not fit.
SAMPLES_FIX = ("Ask for fewer samples (gantk sample --n, a metric's sample count), write them to a folder of PNG files "
               "a batch at a time (gantk sample --out DIR/ --batch-size B), or draw them in several runs with "
               "different --seed values.")
#: Samples per call of the generator when samples are written to files (gantk sample --out DIR/): the default
#: grid's 64, so that a file holds the pixels the sample has in that grid (see :func:`draw_blocks`).
GENERATION_BLOCK = 64


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Run ``module`` in eval mode (BatchNorm running statistics, no dropout); its mode is restored after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def check_samples_fit(generator: nn.Module, n: int, held: int | None = None) -> None:
    """Refuse ``n`` samples whose latents and labels, with the values (float32, from the generator's ``spec``) of
    ``held`` of them at a time (default: all ``n``), do not fit."""
    spec = getattr(generator, "spec", None)
    values = math.prod(spec.shape) if spec is not None else 0
    held = n if held is None else held
    memory_budget.check_fits(n * (4 * int(generator.z_dim) + 8) + held * 4 * values, f"Drawing {n:,} samples",
                             SAMPLES_FIX)


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
    samples: Tensor | None = None
    with memory_budget.allocation_failures_reported(f"Drawing {n:,} samples", SAMPLES_FIX):
        for start, chunk in _batches(generator, n, n, seed, labels, batch_size, device, truncation,
                                     truncation_cutoff):
            if samples is None:
                samples = torch.empty((n, *chunk.shape[1:]), dtype=chunk.dtype)
            samples[start:start + chunk.shape[0]] = chunk
    return samples if samples is not None else torch.empty(0)


def draw_blocks(generator: nn.Module, n: int, *, seed: int, labels: Tensor | None = None,
                block: int = GENERATION_BLOCK, device: str | torch.device = "cpu", truncation: float | None = None,
                truncation_cutoff: int | None = None) -> Iterator[tuple[int, Tensor]]:
    """``n`` samples of ``seed`` one block at a time: ``(start, samples[start:start + block])`` (float32, on the CPU),
    for writing more samples than fit in memory (memory holds the latents and one block).

    Every call of the generator gets exactly ``block`` latents of the seed's stream, the last block filled up with
    the latents that follow (their samples are dropped, their labels are ``labels[0]``). A convolution's result can
    change in the last bits with the number of samples in the call, so this fixes it: sample i is the same bit for
    bit whatever ``n``, and with the default block of 64 the first 64 are those of :func:`draw` for 64 samples (the
    default grid of ``gantk sample``). The truncation and the memory budget are checked when this is called."""
    check_truncation(generator, truncation, truncation_cutoff)
    check_samples_fit(generator, n, held=min(n, block))
    drawn = math.ceil(n / block) * block  # whole blocks of latents: ⌈n / block⌉ · block
    if labels is not None and drawn > n:
        labels = torch.cat([labels, labels[:1].expand(drawn - n)])
    return _batches(generator, drawn, n, seed, labels, block, device, truncation, truncation_cutoff)


@torch.no_grad()
def _batches(generator: nn.Module, drawn: int, kept: int, seed: int, labels: Tensor | None, batch_size: int,
             device: str | torch.device, truncation: float | None,
             truncation_cutoff: int | None) -> Iterator[tuple[int, Tensor]]:
    """The samples of ``drawn`` latents of ``seed``, ``batch_size`` per call of the generator; the first ``kept``."""
    noise = torch.Generator().manual_seed(seed)
    with evaluating(generator), memory_budget.allocation_failures_reported(f"Drawing {kept:,} samples", SAMPLES_FIX):
        z = torch.randn(drawn, generator.z_dim, generator=noise)  # every latent at once, on the CPU: one stream a seed
        for start in range(0, kept, batch_size):
            y = labels[start:start + batch_size].to(device) if labels is not None else None
            latents = z[start:start + batch_size].to(device)
            if truncation is None:
                chunk = generator(latents, y).float().cpu()
            else:
                ws = truncate_styles(generator.mapping(latents, y), generator.w_avg, truncation, truncation_cutoff)
                chunk = generator.synthesis(ws).float().cpu()
            yield start, chunk[:kept - start]


def mean_pairwise_distance(samples: Tensor) -> float:
    """Mean ‖x_i − x_j‖ over pairs i ≠ j of the flattened samples (float32): how spread out they are."""
    flat = samples.detach().float().reshape(len(samples), -1).cpu()
    if len(flat) < 2:
        return 0.0
    distances = torch.cdist(flat, flat)
    return float(distances.sum() / (len(flat) * (len(flat) - 1)))  # the diagonal is 0


def image_pixels(images: Tensor) -> Tensor:
    """Image samples (B, C, H, W) in [-1, 1] as uint8 pixels, each exactly as in a :func:`sample_grid` of them."""
    unit = images.float().clamp(-1, 1).sub(-1).div(2)  # (x − low) / (high − low), make_grid's normalisation
    return to_pixels(unit)


def to_pixels(unit: Tensor) -> Tensor:
    """Values in [0, 1] as uint8 pixels: ⌊255·v + 0.5⌋ within 0..255, the rounding of torchvision's save_image."""
    return unit.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)  # ⌊255·v + 0.5⌋


def picture(pixels: Tensor):
    """uint8 pixels (C, H, W) as a PIL image: grey for one channel, RGB for three, RGBA for four."""
    from PIL import Image

    array = pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(array)


def png_bytes(pixels: Tensor) -> bytes:
    """uint8 pixels (C, H, W) encoded as PNG bytes (for :func:`~gantk.engine.atomic_files.write_atomic`)."""
    import io

    buffer = io.BytesIO()
    picture(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def sample_grid(samples: Tensor, nrow: int | None = None) -> Tensor:
    """Image samples (B, C, H, W) in [-1, 1] as one picture of uint8 pixels (C', H', W'): ``nrow`` to a row (default
    ≈ √B), 2 pixels between and around them, grey samples as three equal channels (torchvision's make_grid). This
    is the picture ``samples/step_XXXXXX.png`` and ``gantk sample --out x.png`` hold."""
    from torchvision.utils import make_grid  # torchvision takes a second to import: only when drawing

    nrow = nrow or max(1, int(round(samples.shape[0] ** 0.5)))  # ≈ √B samples to a row
    grid = make_grid(samples.detach().float().cpu(), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    return to_pixels(grid)


def class_labels(generator: nn.Module, n: int, label: int | None, all_labels: bool) -> tuple[Tensor | None, int | None]:
    """Labels for ``n`` samples: one class (``label``), or every class in rows (``all_labels``); and the row length."""
    if label is None and not all_labels:
        return None, None
    classes = generator.spec.num_classes
    if not generator.conditional:
        raise UsageError(f"--label/--labels need a class-conditional generator, but this "
                         f"'{generator.__class__.__name__}' ignores labels (it was trained unconditionally). Drop "
                         "them, or train a conditional model (e.g. gantk train --loss ns+ac).")
    check_samples_fit(generator, n, held=0)  # the labels and latents; drawing checks the samples themselves
    if all_labels:
        per_class = max(1, n // classes)
        return torch.arange(classes).repeat_interleave(per_class), per_class
    if not 0 <= label < classes:
        raise UsageError(f"--label {label} is out of range: this generator knows {classes} classes (0 to {classes - 1}).")
    return torch.full((n,), label, dtype=torch.long), None


def resolve_model(model: str, runs_root: Path, export_file: str = "generator.safetensors") -> Path:
    """An exported file from a path to one, a run directory, or a run name under ``runs_root`` (whose
    ``export_file``, ``generator.safetensors`` or ``translator.safetensors``, is taken); a model directory
    (``gantk export RUN --out DIR/``) is returned as it is."""
    what = export_file.partition(".")[0]
    for candidate in (Path(model), Path(runs_root) / model):
        if candidate.is_file():
            return candidate
        if (candidate / export_file).is_file():
            return candidate / export_file
        if is_model_directory(candidate):  # gantk export RUN --out DIR/: the loaders read the directory
            return candidate
        if (candidate / "config.json").is_file():
            raise GantkError(f"The run '{candidate}' has no {export_file} yet (it may still be training, or it "
                             f"trains no {what}). Write one from its newest checkpoint with 'gantk export {candidate}'.")
    raise GantkError(f"No {what} found at '{model}'. Give an exported .safetensors file, a run directory, "
                     f"or a run name under {runs_root} (e.g. latest).")
