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
- Storage: 8-bit images are kept as uint8 pixels 0..255 (the engine maps each batch to [-1, 1]
  on the device, x/255·2 − 1); with ``image_size`` each one is resized in float and rounded back
  to uint8. A folder holding any 16-bit grayscale image (0..65535) is kept as float32 in [-1, 1].
- ``memory`` (``-O memory=auto|load|stream``): ``auto`` loads the images into ``samples`` when
  their stored bytes (1 per uint8 value, 4 per float32) are at most :data:`MEMORY_LIMIT_BYTES`
  (2 GiB, e.g. 174,762 RGB images at 64×64) and fit the memory budget
  (:mod:`gantk.memory_budget`: the memory available, or --max-memory), else streams them. The cap
  bounds the decoding before the first step (a ``gantk data prepare`` archive loads without
  decoding and has no cap). ``load`` always loads (a usage error when the images do
  not fit); ``stream`` always streams. A streamed folder has ``samples`` None and ``stream`` a
  :class:`FolderImages` that decodes on demand (in the DataLoader's workers, ``--workers``),
  yielding ``(image, label)`` with label -1 for unlabelled images (the engine reads negative
  labels as "none").
- ``fingerprint``: SHA-256 of the sorted relative paths with each file's size and mtime_ns, the
  ``image_size`` and ``channels`` (:func:`folder_fingerprint`); caches of values computed from the
  data are keyed by it.

Two domains (unpaired translation, the layout of CycleGAN's data sets, Zhu et al. 2017):

- A folder with any of the subfolders ``trainA/``, ``trainB/``, ``testA/``, ``testB/`` is a
  two-domain data set (so those four names are not read as class names); nothing else in it is
  read. ``-O split=train`` (default) reads ``trainA/`` as domain "A" and ``trainB/`` as "B";
  ``-O split=test`` reads ``testA/`` and ``testB/``. A missing folder of the split is a usage
  error; ``-O split`` on a one-domain folder too (it would choose nothing).
- Each domain is read exactly as a one-domain folder (images directly inside, or class
  subfolders whose labels stay with that domain; memory, streaming and its own fingerprint alike).
- The domains come out in one shape: ``--image-size`` resizes both; without it, sizes that
  differ between the domains are a usage error asking for it. Unless ``channels`` is given, both
  are grayscale only when every image of both is, so one colour domain makes both RGB.
- ``paired`` (index i of A shows what index i of B shows) is True when both domains hold exactly
  the same relative file paths, which are then in the same sorted order; False otherwise.
  Training draws the domains independently either way.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset as TorchDataset

import gantk
from gantk.engine.batches import auto_workers, read_in_order
from gantk.errors import GantkError, UsageError
from gantk.memory_budget import check_fits, fits
from gantk.options import choice
from gantk.plugins.datasets._images import BYTE_MAX, check_image_size, require_folder, resize_images, to_signed_unit
from gantk.protocols import DataSpec, Dataset, two_domain_dataset

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
#: Largest image tensor (stored bytes: uint8, or float32 for 16-bit folders) ``memory=auto`` loads into memory.
MEMORY_LIMIT_BYTES = 2 * 1024 ** 3
#: Folders with at least this many images show a progress bar while they are read (and decode in workers).
PROGRESS_FROM = 2000
#: ``-O memory=``: load when it fits (auto), always load, always stream.
MEMORY_CHOICES = ("auto", "load", "stream")
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N"})
WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
WIDE_MAX = 65535.0
#: The subfolders of a two-domain folder (the layout of CycleGAN's data sets), per ``-O split``: domain A's, B's.
DOMAIN_FOLDERS = {"train": ("trainA", "trainB"), "test": ("testA", "testB")}
DOMAINS = ("A", "B")
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
    """What the image headers say: the (H, W) sizes seen (one example file each), whether all are
    grayscale, and whether any is 16-bit (``wide``)."""

    sizes: dict[tuple[int, int], Path]
    gray: bool
    wide: bool = False


def _progress(items: Iterable, total: int, what: str, count: Callable[[Any], int] = lambda item: 1) -> Iterator:
    """``items``, with a progress bar on stderr counting to ``total`` when it is at least :data:`PROGRESS_FROM`;
    ``count(item)`` is how far each item moves it."""
    if total < PROGRESS_FROM:
        yield from items
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total)
        for item in items:
            yield item
            bar.advance(task, count(item))


def survey(files: list[Path]) -> Survey:
    """Read every image's header (not its pixels): sizes, whether all are grayscale, whether any is 16-bit."""
    sizes: dict[tuple[int, int], Path] = {}
    gray, wide = True, False
    for path in _progress(files, len(files), "checking images"):
        with _open(path) as image:
            sizes.setdefault((image.height, image.width), path)
            gray = gray and _is_gray(image)
            wide = wide or image.mode in WIDE_GRAY_MODES
    return Survey(sizes, gray, wide)


def _pixels(path: Path, channels: int, wide: bool) -> Tensor:
    """One image as (channels, H, W): uint8 0..255, or float32 in [-1, 1] when ``wide`` (16-bit folders)."""
    with _open(path) as image:
        try:
            if image.mode in WIDE_GRAY_MODES:
                array, top = np.clip(np.asarray(image, dtype=np.int64), 0, 65535), WIDE_MAX
                array = np.repeat(array[..., None], channels, axis=2)
            else:
                array, top = np.asarray(image.convert("L" if channels == 1 else "RGB")), BYTE_MAX
        except (OSError, ValueError) as exc:  # truncated or corrupt pixel data
            raise _unreadable(path, exc) from exc
    array = array.reshape(array.shape[0], array.shape[1], -1)
    pixels = torch.from_numpy(array.transpose(2, 0, 1).copy())
    return to_signed_unit(pixels, top) if wide else pixels


def cover_crop(image: Tensor, size: int) -> Tensor:
    """(C, H, W) resized so the shorter side is ``size`` (antialiased bilinear; uint8 rounded back to uint8),
    centre-cropped to size²."""
    height, width = image.shape[-2:]
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    image = resize_images(image[None], new_h, new_w)[0]
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[:, top:top + size, left:left + size]


class FolderImages(TorchDataset):
    """The images of a folder, decoded on demand: item i is ``(image (C, H, W), label)``.

    Images are uint8 0..255, or float32 in [-1, 1] when ``wide`` (a folder with 16-bit images).
    """

    def __init__(self, files: list[Path], labels: list[int], channels: int, image_size: int | None,
                 wide: bool = False) -> None:
        self.files, self.labels, self.channels, self.image_size = list(files), list(labels), channels, image_size
        self.wide = wide

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = _pixels(self.files[index], self.channels, self.wide)
        if self.image_size is not None:
            image = cover_crop(image, self.image_size).contiguous()
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


def folder_fingerprint(root: Path, files: list[Path], image_size: int | None, channels: int) -> str:
    """SHA-256 of what identifies a folder's data: each file's relative path, size and mtime_ns (sorted by path),
    then ``image_size`` and ``channels``."""
    digest = hashlib.sha256(b"gantk.folder/1\n")
    for relative, path in sorted((p.relative_to(root).as_posix(), p) for p in files):
        stat = path.stat()
        digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    digest.update(json.dumps({"image_size": image_size, "channels": channels}).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class FolderScan:
    """A folder found and its headers read: the decoder of its images, their class names and shape."""

    root: Path
    images: FolderImages
    class_names: tuple[str, ...]
    shape: tuple[int, int, int]

    @property
    def stored_bytes(self) -> int:
        """Bytes of every image held in memory: 1 per uint8 value, 4 per float32 (16-bit folders)."""
        return (4 if self.images.wide else 1) * len(self.images) * math.prod(self.shape)

    def describe(self) -> str:
        kind = f"{len(self.class_names)} classes" if self.class_names else "unlabelled"
        return f"{len(self.images):,} images from '{self.root}' ({kind}), {'x'.join(map(str, self.shape))}"


@dataclass(frozen=True)
class FoundImages:
    """The images of a folder (see the module docstring) and what their headers say; nothing decoded yet."""

    root: Path
    files: list[Path]
    labels: list[int]
    class_names: tuple[str, ...]
    survey: Survey

    def relative_names(self) -> list[str]:
        """Each file's path relative to ``root``, in the files' order."""
        return [path.relative_to(self.root).as_posix() for path in self.files]


def find_folder(root: Path) -> FoundImages:
    """Find the images of ``root`` and read their headers."""
    files, labels, class_names = find_images(root)
    return FoundImages(root, files, labels, class_names, survey(files))


def scan_found(found: FoundImages, image_size: int | None, channels: int | None) -> FolderScan:
    """The decoder and shape of ``found``'s images: ``channels`` (None: 1 when every image is grayscale, else 3)."""
    channels = channels or (1 if found.survey.gray else 3)
    shape = _shape(found.survey, image_size, channels, found.root)
    images = FolderImages(found.files, found.labels, channels, image_size, found.survey.wide)
    return FolderScan(found.root, images, found.class_names, shape)


def scan_folder(root: Path, image_size: int | None, channels: int | None) -> FolderScan:
    """Find the images of ``root`` (see the module docstring) and read their headers; nothing is decoded yet."""
    return scan_found(find_folder(root), image_size, channels)


def decode_all(images: TorchDataset, what: str, workers: int | None = None) -> Iterator[tuple[Tensor, Tensor]]:
    """``images`` decoded in index order, in batches: by ``workers`` processes (None: the training process for a
    small folder, :func:`gantk.engine.batches.auto_workers` from :data:`PROGRESS_FROM` images on)."""
    if workers is None:
        workers = auto_workers() if len(images) >= PROGRESS_FROM else 0
    return _progress(read_in_order(images, workers), len(images), what, count=lambda batch: len(batch[0]))


def folder_dataset(scan: FolderScan, image_size: int | None, memory: str) -> Dataset:
    """The images of ``scan`` as a :class:`Dataset`: loaded into memory, or streamed (``memory``, see the module
    docstring)."""
    spec = DataSpec(scan.shape, len(scan.class_names), "folder")
    fingerprint = folder_fingerprint(scan.root, scan.images.files, image_size, scan.images.channels)
    if memory == "load":
        check_fits(scan.stored_bytes, f"The data set 'folder' ({scan.describe()})",
                   "Stream it from disk instead (-O memory=stream or the default -O memory=auto), or use a smaller "
                   "--image-size.")
    elif memory == "stream" or scan.stored_bytes > MEMORY_LIMIT_BYTES or not fits(scan.stored_bytes):
        return Dataset(spec=spec, samples=None, class_names=scan.class_names, stream=scan.images,
                       description=scan.describe() + ", streamed from disk", fingerprint=fingerprint)
    samples = torch.empty((len(scan.images), *scan.shape), dtype=torch.float32 if scan.images.wide else torch.uint8)
    start = 0
    for images, _ in decode_all(scan.images, "reading images"):
        samples[start:start + len(images)] = images
        start += len(images)
    labels = torch.tensor(scan.images.labels, dtype=torch.int64) if scan.class_names else None
    return Dataset(spec=spec, samples=samples, labels=labels, class_names=scan.class_names,
                   description=scan.describe(), fingerprint=fingerprint)


def two_domain_split(root: Path, split: str | None) -> str | None:
    """The split (``split``, None meaning train) to read when ``root`` has the two-domain layout (any of trainA/,
    trainB/, testA/, testB/), else None; a usage error when that split's pair of folders is not both there."""
    present = {name for names in DOMAIN_FOLDERS.values() for name in names if (root / name).is_dir()}
    if not present:
        if split is not None:
            raise UsageError(f"-O split chooses between the trainA/trainB and testA/testB subfolders of a two-domain "
                             f"folder, but '{root}' has none of them. Drop -O split for a one-domain folder, or give "
                             "a folder with trainA/ and trainB/ (and testA/, testB/ for -O split=test).")
        return None
    split = choice("data set 'folder'", "split", "train" if split is None else split, tuple(DOMAIN_FOLDERS),
                   hint="train (trainA/, trainB/) or test (testA/, testB/)")
    names = DOMAIN_FOLDERS[split]
    missing = [name for name in names if name not in present]
    if missing:
        other = "test" if split == "train" else "train"
        has_other = all(name in present for name in DOMAIN_FOLDERS[other])
        folders = [name + "/" for name in missing]
        raise UsageError(
            f"'{root}' has the two-domain layout ({', '.join(sorted(present))}), but no {' or '.join(folders)} for "
            f"the {split} split. Add {' and '.join(folders)} (the images of each domain, directly or in class "
            "subfolders)" + (f", or choose -O split={other}." if has_other else "."))
    return split


def two_domain_folder(root: Path, split: str, image_size: int | None, channels: int | None,
                      memory: str) -> Dataset:
    """The domains A and B of a two-domain folder's ``split``, each read as a one-domain folder, in one shape."""
    found = [find_folder(root / name) for name in DOMAIN_FOLDERS[split]]
    channels = channels or (1 if all(f.survey.gray for f in found) else 3)  # one colour domain: both RGB
    scans = [scan_found(f, image_size, channels) for f in found]
    if scans[0].shape != scans[1].shape:  # only without --image-size: it gives both channels x N x N
        sizes = " and ".join(f"{s.root.name}/ {s.shape[2]}x{s.shape[1]}" for s in scans)
        raise UsageError(f"The two domains of '{root}' hold images of different sizes ({sizes}), and a translation "
                         "needs one size. Pass --image-size N to resize each image's shorter side to N and "
                         "centre-crop it to NxN.")
    paired = found[0].relative_names() == found[1].relative_names()  # the same names, sorted alike: index-aligned
    domains = [folder_dataset(scan, image_size, memory) for scan in scans]
    description = (f"two domains from '{root}' ({split} split{', paired by file name' if paired else ''}): "
                   f"A {domains[0].description}; B {domains[1].description}")
    return two_domain_dataset(domains[0], domains[1], DOMAINS, name="folder", paired=paired, description=description)


def load_folder(*, data_root=None, image_size: int | None = None, download: bool = False,
                channels: int | None = None, memory: str = "auto", split: str | None = None) -> Dataset:
    """Images from --data-root, one subfolder per class (or all in the folder, unlabelled); or the two domains of
    trainA/ and trainB/ (testA/ and testB/ with ``split="test"``)."""
    root = require_folder("folder", data_root, "images", LAYOUT_HINT)
    image_size = check_image_size(image_size)
    if channels is not None:
        channels = choice("data set 'folder'", "channels", channels, (1, 3), hint="1 for grayscale, 3 for RGB")
    memory = choice("data set 'folder'", "memory", memory, MEMORY_CHOICES,
                    hint="auto (load what fits), load or stream")
    split = two_domain_split(root, split)
    if split is not None:
        return two_domain_folder(root, split, image_size, channels, memory)
    return folder_dataset(scan_folder(root, image_size, channels), image_size, memory)


@gantk.hookimpl
def register_datasets(register):
    register("folder", load_folder,
             summary="An image folder, one subfolder per class, or trainA/ trainB/ as two domains (--data-root DIR; "
                     "-O memory=auto|load|stream)")
