"""``prepared``: an image archive written by ``gantk data prepare`` (``--data-root DATA.safetensors``).

The archive is a safetensors file (8-byte little-endian header length, a JSON header giving each
tensor's dtype, shape and byte range, then the raw bytes) holding

- ``images``: uint8 (N, C, S, S), pixels 0..255, decoded and cover-cropped once by the prepare
  command (the ``folder`` data set's reading: shorter side resized to S, antialiased bilinear,
  rounded back to uint8, centre crop);
- ``labels``: int64 (N,), when the folder had class subfolders;
- metadata: ``gantk.kind`` = ``prepared-images``, ``gantk.format_version``, ``gantk.class_names``
  (JSON), ``gantk.channels``, ``gantk.image_size``, ``gantk.source`` (the folder) and
  ``gantk.sha256``: the SHA-256 of the tensors exactly as :func:`gantk.engine.safetensors_io.payload_sha256`
  computes it (each tensor's name, dtype, shape and bytes, in name order), computed while writing.
  It is the data set's ``fingerprint`` (read from the header, not recomputed: an archive can be
  larger than memory); ``gantk.engine.safetensors_io.read_safetensors`` verifies it on a small one.

Loading checks the header, the shapes, the dtypes and the metadata (a damaged or foreign file is a
one-paragraph error). ``memory`` (``-O memory=auto|load|stream``): ``auto`` reads the images into
memory when they fit the memory budget (no decoding: one read of the bytes) and memory-maps them
otherwise; ``load`` always reads them (a usage error when they do not fit); ``stream`` always maps
them. A memory-mapped archive is a ``stream`` whose batches are read with one fancy index each
(the operating system's page cache keeps what fits). ``--image-size`` other than the archive's is
refused: prepare the folder again at that size.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset as TorchDataset

import gantk
from gantk.engine.atomic_files import create_temporary
from gantk.engine.safetensors_io import HASH_KEY
from gantk.errors import GantkError, UsageError
from gantk.memory_budget import check_fits, fits
from gantk.options import choice
from gantk.plugins.datasets._images import check_image_size
from gantk.protocols import DataSpec, Dataset

KIND = "prepared-images"
FORMAT_VERSION = 1
#: Bytes of the length that starts a safetensors file (little-endian unsigned 64-bit).
LENGTH_BYTES = 8
#: A header larger than this is not one gantk wrote (safetensors itself refuses above 100 MB).
MOST_HEADER_BYTES = 100 * 1024 * 1024
MEMORY_CHOICES = ("auto", "load", "stream")
#: Placeholder for ``gantk.sha256`` while the images are written (the digest is known at the end; same length).
PENDING_HASH = "0" * 64
PREPARE_HINT = "gantk data prepare FOLDER --image-size S --out DATA.safetensors"


def content_digest_line(name: str, dtype: torch.dtype, shape: Sequence[int]) -> bytes:
    """What :func:`gantk.engine.safetensors_io.payload_sha256` hashes before a tensor's bytes."""
    return json.dumps([name, str(dtype), list(shape)]).encode() + b"\n"


def _header(count: int, channels: int, size: int, labelled: bool, metadata: dict[str, str]) -> bytes:
    """The safetensors header: the length, then the JSON (labels first in the data, then images),
    padded with spaces to a multiple of 8 bytes as safetensors pads it."""
    image_bytes = count * channels * size * size
    entries: dict[str, Any] = {"__metadata__": metadata}
    start = 0
    if labelled:
        entries["labels"] = {"dtype": "I64", "shape": [count], "data_offsets": [0, 8 * count]}
        start = 8 * count
    entries["images"] = {"dtype": "U8", "shape": [count, channels, size, size],
                         "data_offsets": [start, start + image_bytes]}
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def archive_bytes(count: int, channels: int, size: int, labelled: bool, metadata: dict[str, str]) -> int:
    """The size of the archive file: header, labels and images."""
    return len(_header(count, channels, size, labelled, metadata)) + (8 * count if labelled else 0) + \
        count * channels * size * size


class ArchiveWriter:
    """Writes an archive as a stream, atomically: ``with ArchiveWriter(...) as archive: archive.write(images)``.

    The header is written first with a placeholder hash (the rows' order and count are known), the
    images are appended batch by batch while their SHA-256 grows, then the header is written again
    with the digest (same length), the file fsync'ed, opened with safetensors to check it, and
    renamed over ``path`` (see :mod:`gantk.engine.atomic_files`). On any error the temporary file
    is removed and ``path`` is untouched.
    """

    def __init__(self, path: Path, channels: int, size: int, labels: Tensor, class_names: Sequence[str],
                 metadata: dict[str, str]) -> None:
        self.path, self.channels, self.size = Path(path), channels, size
        self.count, self.labelled = int(labels.shape[0]), bool(class_names)
        self.labels = labels.to(torch.int64).contiguous()
        self.metadata = {"format": "pt", "gantk.kind": KIND, "gantk.format_version": str(FORMAT_VERSION),
                         "gantk.version": gantk.__version__, "gantk.class_names": json.dumps(list(class_names)),
                         "gantk.channels": str(channels), "gantk.image_size": str(size), **metadata,
                         HASH_KEY: PENDING_HASH}
        self.written = 0
        self.digest = hashlib.sha256(content_digest_line("images", torch.uint8, self._image_shape()))
        self._ends: list[Tensor] = []  # the first and the latest row written, checked after reopening

    def _image_shape(self) -> tuple[int, int, int, int]:
        return self.count, self.channels, self.size, self.size

    def __enter__(self) -> "ArchiveWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, self.temporary = create_temporary(self.path)
        self.handle = os.fdopen(descriptor, "wb")
        try:
            self.handle.write(_header(self.count, self.channels, self.size, self.labelled, self.metadata))
            if self.labelled:
                self.handle.write(self.labels.numpy().astype("<i8").tobytes())
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, images: Tensor) -> None:
        """Append uint8 images (B, C, S, S), the next B rows."""
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != self._image_shape()[1:]:
            raise ValueError(f"expected uint8 images of shape (B, {self.channels}, {self.size}, {self.size}), got "
                             f"{images.dtype} {tuple(images.shape)}")
        if self.written + images.shape[0] > self.count:
            raise ValueError(f"more than the {self.count} images announced")
        data = images.contiguous().numpy().tobytes()
        self.handle.write(data)
        self.digest.update(data)
        self.written += images.shape[0]
        self._ends = [self._ends[0] if self._ends else images[0].clone(), images[-1].clone()]

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None:
            self._discard()
            return
        try:
            self._finish()
        except BaseException:
            self._discard()
            raise

    def _finish(self) -> None:
        if self.written != self.count:
            raise ValueError(f"{self.written} images written, {self.count} announced")
        if self.labelled:  # payload_sha256 hashes in name order: images, then labels
            self.digest.update(content_digest_line("labels", torch.int64, (self.count,)))
            self.digest.update(self.labels.numpy().astype("<i8").tobytes())
        self.metadata[HASH_KEY] = self.digest.hexdigest()
        self.handle.seek(0)
        self.handle.write(_header(self.count, self.channels, self.size, self.labelled, self.metadata))
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        self._verify()
        os.replace(self.temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # make the rename itself durable
        finally:
            os.close(directory)

    def _verify(self) -> None:
        """Open the written file with safetensors: the tensors, shapes, metadata and the first and last rows."""
        from safetensors import safe_open

        with safe_open(str(self.temporary), framework="pt") as archive:
            images = archive.get_slice("images")
            if archive.metadata() != self.metadata or images.get_shape() != list(self._image_shape()):
                raise GantkError(f"The archive written to '{self.temporary}' did not read back as written (its "
                                 "header differs). The disk may be failing; nothing was replaced. Run again, or "
                                 "choose another --out.")
            read_back = [images[:1][0], images[self.count - 1:][0]]
            labels_ok = not self.labelled or torch.equal(archive.get_tensor("labels"), self.labels)
        if not labels_ok or any(not torch.equal(a, b) for a, b in zip(read_back, self._ends)):
            raise GantkError(f"The archive written to '{self.temporary}' did not read back as written (its pixels "
                             "or labels differ). The disk may be failing; nothing was replaced. Run again, or choose "
                             "another --out.")

    def _discard(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        self.temporary.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class ArchiveLayout:
    """What an archive's header says, checked: where the images and labels are, and what they are."""

    path: Path
    count: int
    channels: int
    size: int
    images_offset: int  # from the start of the file
    labels_offset: int | None
    class_names: tuple[str, ...]
    metadata: dict[str, str]

    @property
    def image_bytes(self) -> int:
        return self.count * self.channels * self.size * self.size

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self.count, self.channels, self.size, self.size


def _damaged(path: Path, reason: str) -> GantkError:
    return GantkError(f"'{path}' is not an image archive written by 'gantk data prepare', or it is damaged: {reason}. "
                      f"Prepare it again ({PREPARE_HINT} --force), or pass the archive's right path.")


def _entry(path: Path, header: dict, name: str, dtype: str, ndim: int) -> tuple[list[int], int, int]:
    """The shape and byte range of tensor ``name``, checked to be ``dtype`` with ``ndim`` dimensions."""
    entry = header.get(name)
    if not isinstance(entry, dict):
        raise _damaged(path, f"it has no '{name}' tensor")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if entry.get("dtype") != dtype or not isinstance(shape, list) or len(shape) != ndim or \
            not all(isinstance(s, int) and s > 0 for s in shape):
        raise _damaged(path, f"its '{name}' tensor is {entry.get('dtype')} of shape {shape}, not {dtype} with "
                             f"{ndim} positive dimension(s)")
    itemsize = 1 if dtype == "U8" else 8
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
            and offsets[1] - offsets[0] == itemsize * math.prod(shape) and offsets[0] >= 0):
        raise _damaged(path, f"the byte range of its '{name}' tensor ({offsets}) does not match its shape {shape}")
    return shape, offsets[0], offsets[1]


def _class_names(text: str) -> tuple[str, ...] | None:
    """The class names of the metadata's JSON list of strings; None when it is not one."""
    try:
        names = json.loads(text)
    except json.JSONDecodeError:
        return None
    return tuple(names) if isinstance(names, list) and all(isinstance(n, str) for n in names) else None


def read_layout(path: Path) -> ArchiveLayout:
    """The checked header of the archive ``path`` (no pixel is read); a one-paragraph error when it is not one."""
    try:
        file_size = path.stat().st_size
        with path.open("rb") as handle:
            start = handle.read(LENGTH_BYTES)
            length = struct.unpack("<Q", start)[0] if len(start) == LENGTH_BYTES else -1
            if not 0 < length <= min(MOST_HEADER_BYTES, file_size - LENGTH_BYTES):
                raise _damaged(path, f"its {file_size:,} bytes do not start with a safetensors header")
            header = json.loads(handle.read(length))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _damaged(path, f"its header is not JSON ({error})") from error
    except OSError as error:
        raise GantkError(f"Cannot read the archive '{path}' ({error.strerror or error}). Check the path and its "
                         "permissions.") from error
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("gantk.kind") != KIND:
        kind = metadata.get("gantk.kind") if isinstance(metadata, dict) else None
        raise _damaged(path, f"it is a safetensors file of another kind ({kind or 'no gantk.kind'}), not "
                             f"'{KIND}'")
    version = metadata.get("gantk.format_version", "")
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        raise GantkError(f"The archive '{path}' has format version {version or '(none)'}, which this gantk "
                         f"{gantk.__version__} does not know (it reads version {FORMAT_VERSION}). Upgrade gantk, or "
                         f"prepare the folder again with this one ({PREPARE_HINT} --force).")
    shape, images_start, images_end = _entry(path, header, "images", "U8", 4)
    count, channels, height, width = shape
    ranges, labels_offset = [(images_start, images_end)], None
    if "labels" in header:
        label_shape, labels_start, labels_end = _entry(path, header, "labels", "I64", 1)
        if label_shape != [count]:
            raise _damaged(path, f"it holds {label_shape[0]:,} labels for {count:,} images")
        ranges.append((labels_start, labels_end))
        labels_offset = LENGTH_BYTES + length + labels_start
    ranges.sort()
    if ranges[0][0] != 0 or any(a[1] != b[0] for a, b in zip(ranges, ranges[1:])):
        raise _damaged(path, f"its tensors' byte ranges {ranges} leave gaps or overlap")
    class_names = _class_names(metadata.get("gantk.class_names", ""))
    if channels not in (1, 3) or height != width or metadata.get("gantk.image_size") != str(height) or \
            metadata.get("gantk.channels") != str(channels) or class_names is None \
            or bool(class_names) != (labels_offset is not None):
        raise _damaged(path, f"its images ({'x'.join(map(str, shape[1:]))}) and metadata (channels "
                             f"{metadata.get('gantk.channels')}, image size {metadata.get('gantk.image_size')}, class "
                             f"names {metadata.get('gantk.class_names')}) do not agree")
    digest = metadata.get(HASH_KEY, "")
    if len(digest) != 64 or digest == PENDING_HASH or not all(c in "0123456789abcdef" for c in digest):
        raise _damaged(path, f"its {HASH_KEY} is '{digest}', not the SHA-256 written when it was completed")
    expected = LENGTH_BYTES + length + ranges[-1][1]
    if file_size != expected:
        missing = "truncated: " if file_size < expected else "longer than its header says: "
        raise _damaged(path, f"it is {missing}{file_size:,} bytes where its header promises {expected:,}")
    return ArchiveLayout(path, count, channels, height, LENGTH_BYTES + length + images_start, labels_offset,
                         class_names, metadata)


class ArchiveImages(TorchDataset):
    """The images of an archive, memory-mapped: item i is ``(uint8 (C, S, S), label)`` (label -1 when unlabelled).

    The map is opened lazily in each process that reads (a DataLoader worker maps the file itself,
    nothing is pickled but the path); :meth:`__getitems__` reads a batch with one fancy index.
    """

    def __init__(self, layout: ArchiveLayout, labels: Tensor | None) -> None:
        self.path, self.offset, self.shape = layout.path, layout.images_offset, layout.shape
        self.labels = labels
        self._rows: np.memmap | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_rows": None}

    def rows(self) -> np.memmap:
        if self._rows is None:
            self._rows = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self.offset, shape=self.shape)
        return self._rows

    def _label(self, index: int) -> int:
        return -1 if self.labels is None else int(self.labels[index])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return torch.from_numpy(np.array(self.rows()[index])), self._label(index)

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Tensor, int]]:
        batch = torch.from_numpy(np.asarray(self.rows()[np.asarray(indices, dtype=np.int64)]))  # one read, a copy
        return [(image, self._label(index)) for image, index in zip(batch, indices)]


def _read_array(layout: ArchiveLayout, dtype: str, count: int, offset: int) -> np.ndarray:
    try:
        return np.fromfile(layout.path, dtype=dtype, count=count, offset=offset)
    except OSError as error:
        raise GantkError(f"Cannot read the archive '{layout.path}' ({error.strerror or error}). Check the file and "
                         "its permissions.") from error


def _labels(layout: ArchiveLayout) -> Tensor | None:
    if layout.labels_offset is None:
        return None
    labels = torch.from_numpy(_read_array(layout, "<i8", layout.count, layout.labels_offset).astype(np.int64))
    if int(labels.min()) < 0 or int(labels.max()) >= len(layout.class_names):
        raise _damaged(layout.path, f"its labels run from {int(labels.min())} to {int(labels.max())}, outside 0.."
                                    f"{len(layout.class_names) - 1} (its {len(layout.class_names)} classes)")
    return labels


def _archive_path(data_root) -> Path:
    todo = f"Pass --data-root DATA.safetensors, an archive written by: {PREPARE_HINT}"
    if data_root is None:
        raise GantkError(f"The data set 'prepared' reads an image archive, and none was given. {todo}")
    path = Path(data_root).expanduser()
    if path.is_dir():
        raise GantkError(f"The data set 'prepared' reads an image archive (a .safetensors file), but '{path}' is a "
                         f"folder. Train on the folder with --dataset folder, or prepare it first. {todo}")
    if not path.is_file():
        raise GantkError(f"The data set 'prepared' reads an image archive, but '{path}' does not exist. {todo}")
    return path


def load_prepared(*, data_root=None, image_size: int | None = None, download: bool = False,
                  memory: str = "auto") -> Dataset:
    """An archive written by 'gantk data prepare' (--data-root DATA.safetensors); download unused."""
    image_size = check_image_size(image_size)
    memory = choice("data set 'prepared'", "memory", memory, MEMORY_CHOICES,
                    hint="auto (read what fits, memory-map the rest), load or stream")
    layout = read_layout(_archive_path(data_root))
    if image_size is not None and image_size != layout.size:
        raise UsageError(f"The archive '{layout.path}' holds {layout.size}x{layout.size} images, so it cannot give "
                         f"--image-size {image_size}. Train with --image-size {layout.size} (or without --image-size), "
                         "or prepare the folder again at that size: gantk data prepare "
                         f"{layout.metadata.get('gantk.source', 'FOLDER')} --image-size {image_size} "
                         "--out NEW.safetensors")
    labels = _labels(layout)
    spec = DataSpec(layout.shape[1:], len(layout.class_names), "prepared")
    kind = f"{len(layout.class_names)} classes" if layout.class_names else "unlabelled"
    description = (f"{layout.count:,} images from the archive '{layout.path}' ({kind}; prepared from "
                   f"'{layout.metadata.get('gantk.source', '?')}'), {'x'.join(map(str, layout.shape[1:]))}")
    common = {"spec": spec, "class_names": layout.class_names, "fingerprint": layout.metadata[HASH_KEY]}
    if memory == "load":
        check_fits(layout.image_bytes, f"The archive '{layout.path}' ({layout.count:,} images)",
                   "Memory-map it instead (-O memory=stream, or the default -O memory=auto).")
    elif memory == "stream" or not fits(layout.image_bytes):
        return Dataset(samples=None, stream=ArchiveImages(layout, labels), description=description + ", memory-mapped",
                       **common)
    images = torch.from_numpy(_read_array(layout, "u1", layout.image_bytes, layout.images_offset)).view(layout.shape)
    return Dataset(samples=images, labels=labels, description=description, **common)


@gantk.hookimpl
def register_datasets(register):
    register("prepared", load_prepared, summary="An image archive from 'gantk data prepare' "
                                                "(--data-root DATA.safetensors; -O memory=auto|load|stream)")
