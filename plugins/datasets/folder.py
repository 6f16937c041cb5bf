"""``folder``: the images in a folder, one subfolder per class (``--data-root DIR``).

Layout and decisions:

- Every direct subfolder of ``data_root`` that holds at least one image is a class; class names
  are the subfolder names, sorted, and labels index that sorted list. Images are found
  recursively inside a class folder. One class folder gives a labelled set with one class.
- With no class subfolders, the images directly in ``data_root`` form one *unlabelled* set
  (``num_classes`` 0, labels None). Loose images beside class subfolders are an error (they would
  have no class), not silently skipped.
- Files and folders whose names start with "." are skipped, and so are files whose suffix is not
  one of :data:`IMAGE_SUFFIXES` (a README, say). An image PIL cannot read, or one whose header claims
  more pixels than PIL decodes safely (a decompression bomb), is an error naming it.
- ``image_size`` N: each image's shorter side is resized to N (antialiased bilinear) and the centre
  N×N is cropped. Without it every image must share one size, which is kept (even if not square).
- ``channels`` 1 or 3; by default 1 when every image is grayscale (PIL modes 1, L, LA, I, I;16
  or a palette of grays), else 3. Colour to gray uses PIL's ITU-R 601-2 luma; alpha is dropped.
  16-bit grayscale maps 0..65535, everything else 0..255, to [-1, 1].
- When the float32 tensor would take at most :data:`MEMORY_LIMIT_BYTES` (2 GiB) and fits the
  memory budget (:mod:`gantk.memory_budget`: the memory available, or --max-memory) the images are
  loaded into ``samples``; otherwise ``samples`` is None and ``stream`` is a
  :class:`FolderImages` that decodes on demand, yielding ``(image, label)`` with label -1 for
  unlabelled images (the engine reads negative labels as "none").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset as TorchDataset

import gantk
from gantk.errors import GantkError, UsageError
from gantk.memory_budget import fits
from gantk.options import choice
from gantk.plugins.datasets._images import check_image_size, require_folder, to_signed_unit
from gantk.protocols import DataSpec, Dataset

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
#: Largest float32 tensor (bytes) loaded into memory; bigger folders stream from disk.
MEMORY_LIMIT_BYTES = 2 * 1024 ** 3
#: Folders with at least this many images show a progress bar while they are read.
PROGRESS_FROM = 2000
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N"})
WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
LAYOUT_HINT = ("Pass --data-root DIR (data_root= in Python) pointing at a folder of images with one subfolder "
               "per class (the subfolder names become the class names), or holding the images directly for "
               "an unlabelled set.")


def _open(path: Path):
    from PIL import Image

    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise GantkError(f"The image '{path}' is too large to decode safely ({exc}). A small file that claims huge "
                         "dimensions is a decompression bomb; remove or replace the file (or shrink the image), "
                         "then run again.") from exc
    except OSError as exc:
        if exc.errno is not None:  # the file system's (permission, link loop, ...): the CLI names the path and fix
            raise
        raise _unreadable(path, exc) from exc  # not an image PIL can read (PIL.UnidentifiedImageError), truncated
    except ValueError as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: BaseException) -> GantkError:
    return GantkError(f"Could not read the image '{path}' ({type(exc).__name__}: {exc}). Remove or replace "
                      "the file, then run again.")


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def _images_under(folder: Path) -> list[Path]:
    """The image files anywhere below ``folder``, sorted, skipping hidden files and folders."""
    os.scandir(folder).close()  # a folder that cannot be listed is an error naming it, not silently empty
    return sorted(p for p in folder.rglob("*")
                  if _is_image(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def find_images(root: Path) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """Files, labels (-1 when unlabelled) and sorted class names of the folder ``root``."""
    loose = sorted(p for p in root.iterdir() if _is_image(p))
    classes = {d.name: _images_under(d) for d in sorted(root.iterdir())
               if d.is_dir() and not d.name.startswith(".")}
    classes = {name: files for name, files in classes.items() if files}
    if loose and classes:
        raise GantkError(f"'{root}' holds both images (e.g. '{loose[0].name}') and class subfolders "
                         f"({', '.join(sorted(classes))}). Move every image into a class subfolder, or point "
                         "--data-root at a folder that holds only images (an unlabelled set).")
    if not loose and not classes:
        raise GantkError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) were found in '{root}' or its "
                         f"subfolders. {LAYOUT_HINT}")
    if loose:
        return loose, [-1] * len(loose), ()
    names = tuple(classes)
    files = [f for name in names for f in classes[name]]
    labels = [index for index, name in enumerate(names) for _ in classes[name]]
    return files, labels, names


def _is_gray(image) -> bool:
    if image.mode in GRAY_MODES:
        return True
    if image.mode in ("P", "PA"):
        palette = image.getpalette() or []
        return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))
    return False


@dataclass(frozen=True)
class Survey:
    """What the image headers say: the (H, W) sizes seen (one example file each) and grayscale."""

    sizes: dict[tuple[int, int], Path]
    gray: bool


def _progress(items: Iterable, total: int, what: str) -> Iterator:
    if total < PROGRESS_FROM:
        return iter(items)
    from rich.console import Console
    from rich.progress import track

    return iter(track(items, total=total, description=what, console=Console(stderr=True), transient=True))


def survey(files: list[Path]) -> Survey:
    """Read every image's header (not its pixels): sizes and whether all are grayscale."""
    sizes: dict[tuple[int, int], Path] = {}
    gray = True
    for path in _progress(files, len(files), "checking images"):
        with _open(path) as image:
            sizes.setdefault((image.height, image.width), path)
            gray = gray and _is_gray(image)
    return Survey(sizes, gray)


def _pixels(path: Path, channels: int) -> Tensor:
    """One image as float32 (channels, H, W) in [-1, 1]."""
    with _open(path) as image:
        try:
            if image.mode in WIDE_GRAY_MODES:
                array, top = np.clip(np.asarray(image, dtype=np.int64), 0, 65535), 65535.0
                array = np.repeat(array[..., None], channels, axis=2)
            else:
                array, top = np.asarray(image.convert("L" if channels == 1 else "RGB")), 255.0
        except (OSError, ValueError) as exc:  # truncated or corrupt pixel data
            raise _unreadable(path, exc) from exc
    array = array.reshape(array.shape[0], array.shape[1], -1)
    return to_signed_unit(torch.from_numpy(array.transpose(2, 0, 1).copy()), top)


def cover_crop(image: Tensor, size: int) -> Tensor:
    """(C, H, W) resized so the shorter side is ``size`` (antialiased bilinear), centre-cropped to size²."""
    height, width = image.shape[-2:]
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    if (new_h, new_w) != (height, width):
        image = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear", align_corners=False,
                              antialias=True)[0].clamp_(-1.0, 1.0)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[:, top:top + size, left:left + size]


class FolderImages(TorchDataset):
    """The images of a folder, decoded on demand: item i is ``(float32 (C, H, W) in [-1, 1], label)``."""

    def __init__(self, files: list[Path], labels: list[int], channels: int, image_size: int | None) -> None:
        self.files, self.labels, self.channels, self.image_size = list(files), list(labels), channels, image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = _pixels(self.files[index], self.channels)
        if self.image_size is not None:
            image = cover_crop(image, self.image_size)
        return image, self.labels[index]


def _shape(found: Survey, image_size: int | None, channels: int, root: Path) -> tuple[int, int, int]:
    if image_size is not None:
        return channels, image_size, image_size
    if len(found.sizes) > 1:
        examples = ", ".join(f"{w}x{h} ('{p.name}')" for (h, w), p in list(found.sizes.items())[:3])
        raise UsageError(f"The images in '{root}' do not share one size (e.g. {examples}). Pass --image-size N "
                         "to resize each one's shorter side to N and centre-crop it to NxN.")
    (height, width), = found.sizes
    return channels, height, width


def load_folder(*, data_root=None, image_size: int | None = None, download: bool = False,
                channels: int | None = None) -> Dataset:
    """Images from --data-root, one subfolder per class (or all in the folder, unlabelled)."""
    root = require_folder("folder", data_root, "images", LAYOUT_HINT)
    image_size = check_image_size(image_size)
    if channels is not None:
        channels = choice("data set 'folder'", "channels", channels, (1, 3), hint="1 for grayscale, 3 for RGB")
    files, labels, class_names = find_images(root)
    found = survey(files)
    channels = channels or (1 if found.gray else 3)
    shape = _shape(found, image_size, channels, root)
    spec = DataSpec(shape, len(class_names), "folder")
    images = FolderImages(files, labels, channels, image_size)
    kind = f"{len(class_names)} classes" if class_names else "unlabelled"
    description = f"{len(files):,} images from '{root}' ({kind}), {'x'.join(map(str, shape))}"
    in_memory = 4 * len(files) * math.prod(shape)  # bytes of the float32 tensor
    if in_memory > MEMORY_LIMIT_BYTES or not fits(in_memory):
        return Dataset(spec=spec, samples=None, class_names=class_names, stream=images,
                       description=description + ", streamed from disk")
    samples = torch.empty((len(files), *shape), dtype=torch.float32)
    for index in _progress(range(len(files)), len(files), "reading images"):
        samples[index] = images[index][0]
    tensor_labels = torch.tensor(labels, dtype=torch.int64) if class_names else None
    return Dataset(spec=spec, samples=samples, labels=tensor_labels, class_names=class_names,
                   description=description)


@gantk.hookimpl
def register_datasets(register):
    register("folder", load_folder, summary="An image folder, one subfolder per class (--data-root DIR)")
