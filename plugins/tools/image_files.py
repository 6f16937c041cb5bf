"""Samples as image files: a folder of numbered PNGs (``gantk sample --out DIR/``) and animated GIFs
(``gantk interpolate --out x.gif``).

A sample folder is what FID tools read (clean-fid, torch-fidelity, pytorch-fid): sample i is
``000000.png``-style (six digits, more past a million), ``{i}_class{k}.png`` for a class-conditional
generator. The generator makes the samples 64 at a time, always 64
(:func:`gantk.engine.sampling.draw_blocks`): memory holds the latents of all of them and one block of
images, and file i holds exactly the pixels sample i has in the default grid of the same seed (``gantk
sample --out x.png``, 64 samples), whatever ``--n`` and ``--batch-size`` (from 64 up). A smaller batch
size makes that many at a time, for generators whose 64 samples do not fit in memory; its files can
differ from those by float rounding (a pixel one level off, now and then). Files are written
atomically; a folder that already holds files is refused unless ``overwrite``, which first removes the
numbered PNGs an earlier ``gantk sample`` wrote there (nothing else).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from gantk.engine.atomic_files import write_atomic
from gantk.engine.sampling import GENERATION_BLOCK, class_labels, draw_blocks, image_pixels, picture, png_bytes
from gantk.errors import UsageError

#: the files a sample folder holds: 000000.png, 000000_class3.png (and .000000.png.1a2b3c4d.tmp, one cut short)
SAMPLE_FILE = re.compile(r"^(\d{6,}(_class\d+)?\.png|\.\d{6,}(_class\d+)?\.png\.[0-9a-f]+\.tmp)$")
#: PNG and GIF pictures by channel count: grey, colour, colour with alpha
PICTURE_CHANNELS = (1, 3, 4)
#: the digits of a sample number, at least
NUMBER_DIGITS = 6
#: what to write when a folder of pictures cannot hold the samples
RAW_INSTEAD = ("Write the raw values with --out samples.npz (or .safetensors) and read them with numpy.load; for 1-D "
               "and 2-D samples, --out samples.png draws a plot of them.")


def sample_file_name(index: int, count: int, label: int | None = None) -> str:
    """``000042.png`` (``000042_class3.png`` with a label), zero-padded to the digits of ``count − 1`` (at least 6)."""
    digits = max(NUMBER_DIGITS, len(str(count - 1)))
    return f"{index:0{digits}d}" + (f"_class{label}" if label is not None else "") + ".png"


def check_picture_channels(spec, what: str, instead: str) -> None:
    """Refuse vector samples, or images with a channel count no picture holds; ``instead`` says what to write."""
    if not spec.is_image:
        raise UsageError(f"{what} needs image samples, but this generator makes vectors of shape {tuple(spec.shape)}, "
                         f"which are not pictures. {instead}")
    if spec.shape[0] not in PICTURE_CHANNELS:
        raise UsageError(f"{what} holds grey, RGB or RGBA pictures (1, 3 or 4 channels), but this generator's images "
                         f"have {spec.shape[0]} channels. {instead}")


# ------------------------------------------------------------------ gantk sample --out DIR/
def folder_labels(generator: nn.Module, n: int, label: int | None, all_labels: bool) -> Tensor | None:
    """The labels of a sample folder: ``label`` for all; with ``all_labels`` one block of equal size per class, in
    order (the rows of the ``gantk sample --labels all`` grid); for a conditional generator given neither, the
    classes in turn (sample i of class i mod K, as ``gantk eval`` draws them), as many of each."""
    labels, _ = class_labels(generator, n, label, all_labels)
    if labels is None and generator.conditional:
        labels = torch.arange(n) % generator.spec.num_classes  # i mod K
    return labels


def prepare_folder(folder: Path, overwrite: bool) -> None:
    """Make ``folder``; refuse one that holds files unless ``overwrite``, which removes the numbered PNGs there."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out '{folder}' names a folder of PNG files, but '{folder}' is a file. Give a folder path "
                         "(ending with '/'), or a file name ending in .png, .npz or .safetensors.")
    present = sorted(folder.iterdir()) if folder.is_dir() else []
    if present and not overwrite:
        raise UsageError(f"The folder '{folder}' already holds {len(present):,} file(s). gantk sample fills an empty "
                         "folder, so that a folder of samples holds one model's samples and nothing else for a FID "
                         "tool to pick up. Give a new folder, or add --overwrite to replace the numbered PNGs a "
                         "previous 'gantk sample' wrote there (other files are left alone).")
    for path in present:
        if SAMPLE_FILE.match(path.name) and path.is_file():
            path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def write_sample_folder(generator: nn.Module, folder: Path, n: int, *, seed: int, labels: Tensor | None = None,
                        batch_size: int = GENERATION_BLOCK, device: str | torch.device = "cpu",
                        truncation: float | None = None, truncation_cutoff: int | None = None,
                        overwrite: bool = False, on_batch: Callable[[int], None] | None = None) -> Path:
    """Write ``n`` samples as numbered PNG files in ``folder``, made min(``batch_size``, 64) at a time (module
    docstring); ``on_batch`` gets the count done after each block. Everything is checked before the folder is
    touched."""
    folder = Path(folder)
    check_picture_channels(generator.spec, f"A folder of PNG files ('{folder}/')", RAW_INSTEAD)
    blocks = draw_blocks(generator, n, seed=seed, labels=labels, block=min(batch_size, GENERATION_BLOCK),
                         device=device, truncation=truncation, truncation_cutoff=truncation_cutoff)  # checks first
    prepare_folder(folder, overwrite)
    for start, images in blocks:
        for index, pixels in enumerate(image_pixels(images), start=start):
            label = int(labels[index]) if labels is not None else None
            write_atomic(folder / sample_file_name(index, n, label), png_bytes(pixels))
        if on_batch is not None:
            on_batch(start + images.shape[0])
    return folder


# ------------------------------------------------------------------ gantk interpolate --out x.gif
def write_gif(frames: list[Tensor], out: Path, frame_ms: int) -> Path:
    """An animated GIF of ``frames`` (uint8 pixels (C, H, W) each), ``frame_ms`` milliseconds each, looping forever,
    written atomically. GIF holds 256 colours per frame: grey frames are exact, colour ones are quantised (Pillow's
    adaptive palette)."""
    first, *rest = [picture(pixels) for pixels in frames]
    buffer = io.BytesIO()
    first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=frame_ms, loop=0)
    write_atomic(Path(out), buffer.getvalue())
    return Path(out)
