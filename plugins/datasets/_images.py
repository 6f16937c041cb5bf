"""Helpers shared by the image data sets: finding and reading files, pixel storage, resizing.

Every image data set hands its raw pixels (any integer or float tensor of shape (N, C, H, W)
with a known maximum) to :func:`image_dataset`. 8-bit pixels (maximum 255) are kept as uint8
0..255, four times smaller than float32; the engine maps each batch to [-1, 1] on the training
device with :func:`gantk.protocols.signed_unit` (x/255·2 − 1). Other ranges (the digits' 0..16)
are scaled to float32 [-1, 1] here (0 → -1, max → 1, the range of a tanh output). ``image_size``
resizes to ``image_size`` × ``image_size`` (antialiased bilinear, :func:`resize_images`): uint8
pixels are resized in float and rounded back to uint8, as stylegan2-ada's ``dataset_tool.py``
stores its resized images. The embedded data sets ship inside gantk as NumPy archives in
``data/`` (beside their licence notices), read by :func:`read_embedded`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gantk.errors import GantkError
from gantk.memory_budget import check_fits
from gantk.options import positive_int
from gantk.protocols import DataSpec, Dataset

#: Class names of the digit data sets (digits, mnist5k, mnist).
DIGIT_CLASSES = tuple(str(d) for d in range(10))
#: The largest value of an 8-bit pixel: data sets with this maximum keep uint8 samples.
BYTE_MAX = 255.0
#: Images resized at once: bounds the float32 copies a uint8 resize makes.
RESIZE_CHUNK = 1024
#: The folder of the embedded data sets inside gantk: ``NAME.npz`` and its licence notice ``NAME-LICENSE.md``.
EMBEDDED_DATA = Path(__file__).resolve().with_name("data")


def read_embedded(name: str) -> tuple[Tensor, Tensor]:
    """Pixels (N, C, H, W) uint8 and labels (N,) int64 of the embedded data set ``name`` (``data/NAME.npz``).

    The archive holds two uint8 arrays, ``pixels`` and ``labels`` (tools/make_embedded_data.py writes
    them from the original files); it is read with ``allow_pickle=False``, so it can only hold arrays.
    """
    path = EMBEDDED_DATA / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as archive:
            pixels, labels = archive["pixels"], archive["labels"]
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise GantkError(f"The embedded data set '{name}' is read from '{path}', which this gantk install lacks or "
                         f"cannot read ({error}). Reinstall gantk: pip install --force-reinstall gantk") from error
    return torch.from_numpy(pixels), torch.from_numpy(labels.astype(np.int64))


def check_image_size(image_size: int | None) -> int | None:
    """``image_size`` as a positive int (or None); a usage error otherwise."""
    if image_size is None:
        return None
    return positive_int("", "--image-size", image_size, hint="the side of the square images, in pixels")


def require_folder(name: str, data_root: str | Path | None, needs: str, todo: str) -> Path:
    """``data_root`` as an existing folder, or a one-paragraph error saying what ``name`` needs.

    ``needs`` says what the data set reads; ``todo`` is the sentence on how to provide it.
    """
    if data_root is None:
        raise GantkError(f"The data set '{name}' reads {needs} from a folder, and no folder was given. {todo}")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise GantkError(f"The data set '{name}' reads {needs} from a folder, but '{root}' {why_not_a_folder(root)}. "
                         f"{todo}")
    return root


def why_not_a_folder(path: Path) -> str:
    """Why ``path``, which is not a folder, is not one: missing, a broken link or loop, unreachable, or a file."""
    try:
        path.stat()
    except FileNotFoundError:
        return "is a symbolic link to nothing" if path.is_symlink() else "does not exist"
    except OSError as error:  # a symbolic-link loop, a folder above it that may not be entered, ...
        return f"cannot be opened ({error.strerror})"
    return "is not a folder"


def to_signed_unit(pixels: Tensor, max_value: float) -> Tensor:
    """Pixels in [0, max_value] as float32 in [-1, 1]: 0 → -1 and max_value → 1 exactly."""
    return pixels.to(torch.float32).div_(float(max_value)).mul_(2.0).sub_(1.0)  # x/max·2 − 1


def to_bytes(pixels: Tensor) -> Tensor:
    """Pixels in units of 0..255 (any dtype) as uint8, rounded to the nearest integer and clamped."""
    if pixels.dtype == torch.uint8:
        return pixels
    return pixels.round().clamp_(0.0, BYTE_MAX).to(torch.uint8)


def resize_images(images: Tensor, height: int, width: int) -> Tensor:
    """(N, C, H, W) images resized to height × width (antialiased bilinear), in their own storage.

    Float images (in [-1, 1]) are clamped back into [-1, 1]; uint8 images are resized in float32,
    :data:`RESIZE_CHUNK` at a time, and rounded back to uint8 (stylegan2-ada's dataset tool does
    the same when it stores resized images).
    """
    if tuple(images.shape[-2:]) == (height, width):
        return images
    if images.dtype != torch.uint8:
        resized = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        return resized.clamp_(-1.0, 1.0)
    out = torch.empty((*images.shape[:2], height, width), dtype=torch.uint8)
    for start in range(0, images.shape[0], RESIZE_CHUNK):
        chunk = images[start:start + RESIZE_CHUNK].to(torch.float32)
        out[start:start + RESIZE_CHUNK] = to_bytes(F.interpolate(chunk, size=(height, width), mode="bilinear",
                                                                 align_corners=False, antialias=True))
    return out


def resize_square(images: Tensor, size: int | None) -> Tensor:
    """(N, C, H, W) images resized to size × size (see :func:`resize_images`); None keeps them."""
    return images if size is None else resize_images(images, size, size)


def check_images_fit(name: str, shape: Sequence[int], image_size: int | None, bytes_per_value: int = 4) -> None:
    """Refuse a data set whose images (and their resized copy) would not fit in memory.

    ``bytes_per_value`` is what one stored value takes: 1 for uint8 pixels, 4 for float32.
    """
    count, channels, height, width = shape
    sides = [height * width] + ([image_size * image_size] if image_size is not None else [])
    size = f"{image_size}x{image_size}" if image_size is not None else f"{height}x{width}"
    check_fits(bytes_per_value * count * channels * sum(sides), f"The data set '{name}' ({count:,} images at {size})",
               "Use a smaller --image-size (or none, to keep the data set's own size).")


def image_dataset(name: str, pixels: Tensor, max_value: float, labels: Tensor | None,
                  class_names: Sequence[str], image_size: int | None, description: str) -> Dataset:
    """A :class:`Dataset` of images from raw (N, C, H, W) pixels in [0, max_value] and int labels.

    8-bit pixels (``max_value`` 255) stay uint8 (see the module docstring); others become float32 in [-1, 1].
    """
    image_size = check_image_size(image_size)
    eight_bit = float(max_value) == BYTE_MAX
    check_images_fit(name, pixels.shape, image_size, 1 if eight_bit else 4)
    stored = to_bytes(pixels) if eight_bit else to_signed_unit(pixels, max_value)
    images = resize_square(stored, image_size)
    if labels is not None:
        labels = labels.to(torch.int64)
    spec = DataSpec(tuple(images.shape[1:]), len(class_names) if labels is not None else 0, name)
    return Dataset(spec=spec, samples=images.contiguous(), labels=labels,
                   class_names=tuple(class_names), description=description)
