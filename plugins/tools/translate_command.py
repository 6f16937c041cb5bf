"""``gantk translate``: run an exported translator over image files, one PNG out per image in.

Inputs are read with Pillow. Images with transparency are composited on ``--background``
(white by default, as the ``emoji`` data sets are), colour or grey as the translator's domain
is, and resized (antialiased bilinear) to its image size when they differ. Each output is
``OUT/<input stem>.png`` at the translator's size, written atomically; an existing file is
kept unless ``--overwrite``.
"""

from __future__ import annotations

from pathlib import Path

import typer

import gantk
from gantk.errors import GantkError, UsageError

DIRECTIONS = ("a2b", "b2a")
BACKGROUNDS = {"white": 255, "black": 0}
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def input_files(source: Path) -> list[Path]:
    """The image files named by ``--input``: the file itself, or a folder's images (not its subfolders), by name."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise UsageError(f"--input '{source}' does not exist. Give an image file or a folder of images.")
    files = sorted(path for path in source.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"The folder '{source}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}). Give a "
                         "folder of images, or one image file.")
    return files


def output_files(files: list[Path], out: Path, overwrite: bool) -> list[Path]:
    """``out/<stem>.png`` for each input; refused when two inputs share a stem, or (without ``overwrite``) a
    file is already there."""
    targets = [out / f"{path.stem}.png" for path in files]
    seen: dict[Path, Path] = {}
    for source, target in zip(files, targets):
        if target in seen:
            raise UsageError(f"'{seen[target].name}' and '{source.name}' would both be written to '{target}'. "
                             "Translate them in separate runs, or rename one.")
        seen[target] = source
    existing = [target for target in targets if target.exists()]
    if existing and not overwrite:
        raise UsageError(f"'{existing[0]}' already exists ({len(existing)} of the {len(targets)} outputs do). "
                         "Choose another --out folder, or add --overwrite to replace them.")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out '{out}' is a file; give a folder (it is created if missing).")
    return targets


def read_image(path: Path, channels: int, background: int):
    """One image as a (channels, H, W) float tensor in [-1, 1], transparency composited on ``background``."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise GantkError(f"Cannot read the image '{path}' ({error}). Remove it from --input or replace it.") from error
    alpha = rgba[..., 3:] / 255.0
    rgb = alpha * rgba[..., :3] + (1.0 - alpha) * background  # α·rgb + (1 − α)·background
    if channels == 1:
        rgb = rgb @ np.array([[0.299], [0.587], [0.114]], dtype=np.float32)  # ITU-R 601 luma, as Pillow's "L"
    pixels = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    return pixels / 127.5 - 1.0  # 0..255 -> [-1, 1]


def translate_command(
    model: str = typer.Argument(..., help="An exported translator (.safetensors), a run directory, or a run name."),
    direction: str = typer.Option(..., help="a2b (domain A to B) or b2a."),
    input: Path = typer.Option(..., "--input", help="An image file, or a folder of images."),
    out: Path = typer.Option(..., help="Folder for the translations (one PNG per input, named after it)."),
    background: str = typer.Option("white", help="Colour under transparent pixels: white or black."),
    batch_size: int = typer.Option(16, min=1, help="Images translated at once."),
    overwrite: bool = typer.Option(False, help="Replace outputs that already exist."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run names are looked up."),
) -> None:
    """Translate images with a trained translator (a CycleGAN run's translator.safetensors)."""
    if direction not in DIRECTIONS:
        raise UsageError(f"--direction must be a2b or b2a, got '{direction}'.")
    if background not in BACKGROUNDS:
        raise UsageError(f"--background must be white or black, got '{background}'.")
    files = input_files(input)
    targets = output_files(files, out, overwrite)
    import torch

    from gantk.engine.build import resolve_device
    from gantk.engine.sampling import image_pixels, png_bytes, resolve_model
    from gantk.plugins.datasets._images import resize_images
    from gantk.engine.atomic_files import write_atomic

    translator = gantk.load_translator(resolve_model(model, runs_dir, "translator.safetensors"),
                                       device=resolve_device(device))
    spec = translator.spec
    height, width = spec.size
    source, target = translator.domains if direction == "a2b" else translator.domains[::-1]
    out.mkdir(parents=True, exist_ok=True)
    with typer.progressbar(length=len(files), label=f"{source} -> {target}") as progress:
        for start in range(0, len(files), batch_size):
            chunk = files[start:start + batch_size]
            batch = torch.stack([resize_images(read_image(path, spec.channels, BACKGROUNDS[background])[None],
                                               height, width)[0] for path in chunk])
            with torch.no_grad():
                translated = translator(batch.to(next(translator.parameters()).device), direction).float().cpu()
            for image, path in zip(translated, targets[start:start + batch_size]):
                write_atomic(path, png_bytes(image_pixels(image[None])[0]))
            progress.update(len(chunk))
    typer.echo(f"Translated {len(files)} image(s) from {source} to {target} into {out}")


@gantk.hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("translate")(translate_command)
