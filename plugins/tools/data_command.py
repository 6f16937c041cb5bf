"""``gantk data prepare``: decode and resize an image folder once, into a uint8 archive that trains without decoding.

The folder is read by the ``folder`` data set's rules (class subfolders, hidden files skipped,
grayscale detection, shorter side resized to ``--image-size`` and centre-cropped, rounded back to
uint8), decoded in parallel by ``--workers`` processes, and written as a stream (the archive may
be larger than memory) in the format of :mod:`gantk.plugins.datasets.prepared`, atomically. Train
from it with ``--dataset prepared --data-root DATA.safetensors``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import typer

import gantk
from gantk.engine.cpu_share import usable_cores
from gantk.errors import GantkError, UsageError
from gantk.memory_budget import format_size
from gantk.options import choice, positive_int


def _workers(text: str, images: int) -> int:
    """``--workers``: a number, or auto: every core (nothing else runs) from a few thousand images on, else 0."""
    from gantk.plugins.datasets.folder import PROGRESS_FROM

    if text == "auto":
        cores = usable_cores()
        return cores if images >= PROGRESS_FROM else 0
    if not text.isdigit():
        raise UsageError(f"--workers must be auto or a number of processes (0: decode in this process), got '{text}'.")
    return int(text)


def _check_out(out: Path, force: bool) -> None:
    if out.suffix.lower() != ".safetensors":
        raise UsageError(f"The archive is a safetensors file: give --out a name ending in .safetensors (got '{out}').")
    if out.is_dir():
        raise UsageError(f"--out '{out}' is a folder; give the path of the archive file to write, e.g. "
                         f"{out / 'data.safetensors'}.")
    if out.exists() and not force:
        raise UsageError(f"'{out}' already exists. Add --force to replace it, or choose another --out.")


def _check_space(out: Path, needed: int) -> None:
    folder = out.parent if out.parent != Path("") else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise GantkError(f"The archive needs {format_size(needed)} and the disk holding '{folder}' has "
                         f"{format_size(free)} free. Free some space, or choose --out on another disk (or a smaller "
                         "--image-size).")


def prepare_command(
    folder: Path = typer.Argument(..., help="The image folder: one subfolder per class, or the images directly."),
    image_size: int = typer.Option(..., "--image-size", help="Side S of the stored square images: each image's "
                                                             "shorter side is resized to S, the centre SxS kept."),
    out: Path = typer.Option(..., "--out", help="The archive to write (.safetensors)."),
    channels: Optional[int] = typer.Option(None, help="1 (grayscale) or 3 (RGB); default 1 when every image is "
                                                      "grayscale, else 3."),
    workers: str = typer.Option("auto", help="Decoding processes: auto (every core, for 2,000 images or more) or a "
                                             "number (0: decode in this process)."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
) -> None:
    """Decode and resize an image folder once into a uint8 archive (train with --dataset prepared)."""
    import torch

    from gantk.plugins.datasets._images import why_not_a_folder
    from gantk.plugins.datasets.folder import decode_all, scan_folder
    from gantk.plugins.datasets.prepared import ArchiveWriter, archive_bytes

    positive_int("", "--image-size", image_size, hint="the side of the square images, in pixels")
    if channels is not None:
        choice("gantk data prepare", "--channels", channels, (1, 3), hint="1 for grayscale, 3 for RGB")
    _check_out(out, force)
    root = folder.expanduser()
    if not root.is_dir():
        raise GantkError(f"Cannot prepare '{root}': it {why_not_a_folder(root)}. Give the image folder (one subfolder "
                         "per class, or the images directly).")
    scan = scan_folder(root, image_size, channels)
    if scan.images.wide:
        raise UsageError(f"'{root}' holds 16-bit grayscale images, and an archive stores 8-bit pixels. Train on the "
                         "folder itself (--dataset folder), which keeps their 16 bits.")
    count, labelled = len(scan.images), bool(scan.class_names)
    labels = torch.tensor(scan.images.labels, dtype=torch.int64)
    source = {"gantk.source": str(root.resolve())}
    _check_space(out, archive_bytes(count, scan.shape[0], image_size, labelled, source))
    try:
        with ArchiveWriter(out, scan.shape[0], image_size, labels, scan.class_names, source) as archive:
            for images, _ in decode_all(scan.images, "preparing images", _workers(workers, count)):
                archive.write(images)
    except OSError as error:  # a full disk, a read-only folder, ...: nothing was replaced
        raise GantkError(f"Could not write the archive '{out}' ({error.strerror or error}); '{out}' was left as it "
                         "was. Free some space or fix the folder's permissions, or choose another --out.") from error
    kind = f"{len(scan.class_names)} classes" if labelled else "unlabelled"
    typer.echo(f"Wrote {out}: {count:,} images, {'x'.join(map(str, scan.shape))} ({kind}), "
               f"{format_size(out.stat().st_size)}.")
    typer.echo(f"Train with: gantk train --dataset prepared --data-root {out}")


@gantk.hookimpl
def register_commands(app: typer.Typer) -> None:
    data = typer.Typer(help="Prepare data sets for training.", no_args_is_help=True)
    data.command("prepare")(prepare_command)
    app.add_typer(data, name="data")
