"""Latent interpolation: spherical paths between two latents, and pictures of a generator along them.

``gantk interpolate MODEL`` and the report's interpolation strip walk the great circle between the
first two latents that ``gantk sample --seed S`` draws, :data:`INTERPOLATION_STEPS` frames in a row.
A conditional generator gets one row per class (the same latent path in every row, at most
:data:`MAX_CLASS_ROWS` classes) or, with ``label``, one row of that class. For vector data the
picture is a plot instead: :data:`SCATTER_SAMPLES` generated samples over the data set's modes
(ring8, grid25) with the interpolation path drawn through them.

An animated GIF (``.gif``, images only) walks the same path: frame t is column t of the strip (frame t of
every row), shown :data:`FRAME_MS` milliseconds by default, looping.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

import gantk
from gantk.engine.sampling import check_samples_fit, class_labels, sample_grid
from gantk.errors import UsageError
from gantk.options import positive_int
from gantk.plugins.tools.image_files import check_picture_channels, write_gif
from gantk.plugins.tools.pictures import OUTPUT_SUFFIXES, pyplot, save_figure

INTERPOLATION_STEPS = 10
MAX_CLASS_ROWS = 10
SCATTER_SAMPLES = 2000
#: how long each frame of an animated GIF shows, in milliseconds (10 frames a second)
FRAME_MS = 100
#: what to write instead of a GIF when the frames are not pictures
GIF_INSTEAD = ("Write a plot of the path with --out walk.png, or the raw frames with --out walk.npz (read them with "
               "numpy.load).")


# ------------------------------------------------------------------ interpolation maths
def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation from ``a`` (t = 0) to ``b`` (t = 1) along the last dimension.

    slerp(a, b, t) = sin((1−t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b, with cos Ω = a·b / (|a||b|).
    Where sin Ω ≈ 0 (parallel or opposite vectors, or a zero vector) the great circle is not
    defined and this falls back to lerp: (1−t) · a + t · b.
    """
    a64, b64 = a.double(), b.double()
    norms = a64.norm(dim=-1, keepdim=True) * b64.norm(dim=-1, keepdim=True)  # |a||b|
    cos_omega = ((a64 * b64).sum(dim=-1, keepdim=True) / norms.clamp_min(1e-300)).clamp(-1.0, 1.0)  # a·b/(|a||b|)
    omega = torch.acos(cos_omega)  # Ω
    sin_omega = torch.sin(omega)
    lerp = (1 - t) * a64 + t * b64  # (1−t)a + tb
    degenerate = (sin_omega < 1e-6) | (norms == 0)
    safe = torch.where(degenerate, torch.ones_like(sin_omega), sin_omega)
    spherical = torch.sin((1 - t) * omega) / safe * a64 + torch.sin(t * omega) / safe * b64
    return torch.where(degenerate, lerp, spherical).to(a.dtype)


def latent_path(z_dim: int, steps: int, seed: int) -> Tensor:
    """``steps`` latents (steps, z_dim) on the great circle between the first two latents of ``seed``."""
    a, b = torch.randn(2, z_dim, generator=torch.Generator().manual_seed(seed))  # as gantk.sampling.draw
    return torch.stack([slerp(a, b, i / (steps - 1)) for i in range(steps)])  # t = 0, 1/(steps−1), ..., 1


# ------------------------------------------------------------------ interpolation pictures
def interpolation_labels(generator: nn.Module, steps: int, label: int | None) -> tuple[Tensor | None, int]:
    """Labels for the frames (row-major) and the number of rows: one row per class, or of ``label``."""
    if label is not None or not generator.conditional:
        labels, _ = class_labels(generator, steps, label, False)  # checks the label fits this generator
        return labels, 1
    labels, _ = class_labels(generator, steps * generator.spec.num_classes, None, True)  # one row per class
    rows = min(generator.spec.num_classes, MAX_CLASS_ROWS)
    return labels[:rows * steps], rows


@torch.no_grad()
def interpolate(generator: nn.Module, *, steps: int = INTERPOLATION_STEPS, seed: int = 0,
                label: int | None = None, device: str | torch.device = "cpu") -> tuple[Tensor, Tensor | None, int]:
    """The frames (rows × steps, *shape), their labels and the row count, from one latent path."""
    if steps < 2:
        raise UsageError(f"--steps must be at least 2 (the two end points), got {steps}.")
    check_samples_fit(generator, steps * (MAX_CLASS_ROWS if generator.conditional and label is None else 1))
    labels, rows = interpolation_labels(generator, steps, label)
    z = latent_path(generator.z_dim, steps, seed).float().repeat(rows, 1)  # the same path in every row
    y = labels.to(device) if labels is not None else None
    return generator(z.to(device), y).float().cpu(), labels, rows


def save_interpolation(generator: nn.Module, out: Path, *, steps: int = INTERPOLATION_STEPS, seed: int = 0,
                       label: int | None = None, device: str | torch.device = "cpu", frame_ms: int = FRAME_MS) -> Path:
    """Write the interpolation: a strip of images (one row per class), an animated GIF of it (``.gif``, ``frame_ms``
    milliseconds a frame), or a plot for vector data.

    ``.npz``/``.safetensors`` get the raw frames and labels, as ``gantk sample`` writes them.
    """
    from gantk.plugins.tools.pictures import write_samples

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (*OUTPUT_SUFFIXES, ".gif"):
        raise UsageError(f"Cannot write an interpolation to '{out}': use a file name ending in .png (a strip, or a "
                         "plot for vector data), .gif (an animation), .npz or .safetensors (the raw frames).")
    if suffix == ".gif":
        check_picture_channels(generator.spec, f"An animated GIF ('{out}')", GIF_INSTEAD)
        positive_int("", "--frame-ms", frame_ms, hint="how many milliseconds each frame shows")
        frames, _, _ = interpolate(generator, steps=steps, seed=seed, label=label, device=device)
        return write_gif(strip_columns(frames, steps, generator.spec.channels), out, frame_ms)
    frames, labels, _ = interpolate(generator, steps=steps, seed=seed, label=label, device=device)
    if generator.spec.is_image or out.suffix.lower() != ".png":
        return write_samples(frames, labels, generator.spec, out, nrow=steps)
    return _save_vector_interpolation(generator, frames, steps, seed, out, device)


def strip_columns(frames: Tensor, steps: int, channels: int) -> list[Tensor]:
    """The columns of the strip of ``frames`` (rows × ``steps``, row-major) as pictures of uint8 pixels: column t
    holds frame t of every row, top to bottom (one image, unpadded, for a single row); grey frames keep one
    channel."""
    return [sample_grid(frames[t::steps], nrow=1)[:channels] for t in range(steps)]  # frames t, t + steps, ...


def known_modes(name: str) -> Tensor | None:
    """The mode centres the vector data set ``name`` declares (``Dataset.modes``: ring8, grid25), else None."""
    if not name:
        return None
    try:
        return gantk.get_registry().create("dataset", name).modes
    except gantk.GantkError:  # not installed here, or it needs files: plot without the modes
        return None


def _save_vector_interpolation(generator: nn.Module, frames: Tensor, steps: int, seed: int, out: Path,
                               device: str | torch.device) -> Path:
    from gantk.engine.sampling import draw

    plt = pyplot()
    spec = generator.spec
    labels = torch.arange(SCATTER_SAMPLES) % spec.num_classes if generator.conditional else None
    samples = draw(generator, SCATTER_SAMPLES, seed=seed, labels=labels, device=device)  # as gantk sample --seed
    samples = samples.reshape(SCATTER_SAMPLES, -1)
    flat = frames.reshape(frames.shape[0], -1)
    paths = flat.reshape(-1, steps, flat.shape[1])  # (rows, steps, D)
    figure, axes = plt.subplots(figsize=(5, 5), dpi=100)
    if spec.shape[0] == 1:  # 1-D: the samples' histogram, and the path's values as points on it
        axes.hist(samples[:, 0].numpy(), bins=50, density=True, color="tab:blue", alpha=0.5, label="generated")
        for path in paths:
            axes.plot(path[:, 0].numpy(), [0.0] * steps, "o-", color="black", markersize=4, label="interpolation")
            axes.plot(path[0, 0].item(), 0.0, "o", color="tab:green", markersize=7)
            axes.plot(path[-1, 0].item(), 0.0, "s", color="tab:orange", markersize=7)
        axes.set_xlabel("x")
        axes.set_ylabel("density")
    else:  # 2-D (first two coordinates): samples, modes, and the path through latent space
        axes.scatter(samples[:, 0].numpy(), samples[:, 1].numpy(), s=3, c="tab:blue", alpha=0.35, label="generated")
        modes = known_modes(spec.name)
        if modes is not None:
            axes.scatter(modes[:, 0].numpy(), modes[:, 1].numpy(), marker="x", s=60, c="tab:red", label="modes")
        for path in paths:
            axes.plot(path[:, 0].numpy(), path[:, 1].numpy(), "o-", color="black", markersize=3, linewidth=1,
                      label="interpolation")
            axes.plot(path[0, 0].item(), path[0, 1].item(), "o", color="tab:green", markersize=7)
            axes.plot(path[-1, 0].item(), path[-1, 1].item(), "s", color="tab:orange", markersize=7)
        axes.set_aspect("equal", adjustable="datalim")
    handles, names = axes.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    axes.legend(unique.values(), unique.keys(), loc="upper right", markerscale=2)
    axes.set_title(f"{spec.name or 'samples'}: interpolation, seed {seed}")
    return save_figure(figure, out)
