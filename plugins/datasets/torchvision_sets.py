"""``mnist``, ``fashion-mnist`` and ``cifar10`` read from ``--data-root`` (downloaded only on request).

Nothing is unpickled: the files are parsed here, in the layouts torchvision uses, so that an
existing torchvision download works as it is.

- MNIST and Fashion-MNIST: the idx files ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``
  (``t10k-…`` for ``split="test"``), gzipped (``.gz``) or not, in ``<data_root>/MNIST/raw/`` or
  ``<data_root>/FashionMNIST/raw/``; ``<data_root>/MNIST/`` and ``<data_root>`` itself are searched
  too. 1×28×28, 10 classes.
- CIFAR-10: the *binary* version, ``<data_root>/cifar-10-batches-bin/data_batch_1.bin`` …
  ``data_batch_5.bin`` (``test_batch.bin`` for ``split="test"``; ``<data_root>`` itself is searched
  too), each record one label byte then 3,072 pixel bytes in C×H×W order. torchvision's own CIFAR10
  class reads the pickled Python version, which this project never loads. 3×32×32, 10 classes.

``download=True`` fetches what is missing into ``data_root`` with torchvision's download helpers:
MNIST/Fashion-MNIST from the mirrors and checksums listed on torchvision's ``MNIST`` and
``FashionMNIST`` classes, CIFAR-10 from the Toronto binary tarball. The pixels are kept as uint8
0..255 (the engine maps each batch to [-1, 1]).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

import gantk
from gantk.errors import GantkError
from gantk.options import choice
from gantk.plugins.datasets._images import DIGIT_CLASSES, image_dataset, require_folder
from gantk.protocols import Dataset

OFFLINE_HINT = ("Offline, the embedded data sets 'mnist5k' (5,000 MNIST digits) and 'digits' "
                "(scikit-learn's 8x8 digits) need no files.")

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
CIFAR10_RECORD = 1 + 3 * 32 * 32

#: idx element type code → numpy dtype (big-endian, as the format stores them).
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_PREFIX = {"train": "train", "test": "t10k"}


def _read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when it starts with gzip's magic number."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError) as exc:
        raise GantkError(f"Could not read '{path}': {exc}. Delete the file and fetch it again "
                         "(e.g. with --download).") from exc


def read_idx(path: str | Path) -> Tensor:
    """The array in an idx file (gzipped or not) as a tensor of its stored type."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_TYPES or data[3] == 0:
        raise GantkError(f"'{path}' is not an idx file (its header is {data[:4].hex() or 'empty'}). "
                         "Delete it and fetch it again (e.g. with --download).")
    ndim, dtype = data[3], np.dtype(IDX_TYPES[data[2]])
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(shape))
    if len(data) - 4 - 4 * ndim != count * dtype.itemsize:
        raise GantkError(f"'{path}' is truncated or padded: its header promises shape {shape}. "
                         "Delete it and fetch it again (e.g. with --download).")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=4 + 4 * ndim).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def read_cifar10_batch(path: str | Path) -> tuple[Tensor, Tensor]:
    """Pixels (N, 3, 32, 32) uint8 and labels (N,) int64 from one CIFAR-10 binary batch file."""
    path = Path(path)
    data = _read_bytes(path)
    if not data or len(data) % CIFAR10_RECORD:
        raise GantkError(f"'{path}' is not a CIFAR-10 binary batch: its {len(data):,} bytes are not whole "
                         f"records of {CIFAR10_RECORD:,} bytes. Delete it and fetch it again (e.g. with --download).")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR10_RECORD)
    pixels = torch.from_numpy(records[:, 1:].reshape(-1, 3, 32, 32).copy())  # C×H×W per record
    return pixels, torch.from_numpy(records[:, 0].astype(np.int64))


def _check_labels(path: Path, labels: Tensor, count: int) -> Tensor:
    if labels.numel() and (labels.min() < 0 or labels.max() >= count):
        raise GantkError(f"'{path}' holds labels outside 0..{count - 1}; it is not the file this data set "
                         "expects. Delete it and fetch it again (e.g. with --download).")
    return labels.to(torch.int64)


def _first_existing(folders: list[Path], names: tuple[str, ...]) -> Path | None:
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _todo(layout: str, fetch: str) -> str:
    return (f"Pass --data-root DIR (data_root= in Python) pointing at the folder that holds {layout}, or add "
            f"--download with --data-root DIR to fetch {fetch} into DIR when online. {OFFLINE_HINT}")


def _missing(name: str, wanted: list[str], folders: list[Path], layout: str, fetch: str) -> GantkError:
    looked = ", ".join(f"'{f}'" for f in folders)
    return GantkError(f"The data set '{name}' could not find {', '.join(wanted)} in {looked}. "
                      + _todo(layout, fetch))


def _folder_for(name: str, data_root, download: bool, needs: str, layout: str, fetch: str) -> Path:
    if download and data_root is not None:
        Path(data_root).expanduser().mkdir(parents=True, exist_ok=True)
    return require_folder(name, data_root, needs, _todo(layout, fetch))


def _download(name: str, attempts: list[tuple[str, dict]]) -> None:
    """Try each (url, keyword arguments) of torchvision's download_and_extract_archive until one works."""
    from torchvision.datasets.utils import download_and_extract_archive

    errors = []
    for url, kwargs in attempts:
        try:
            download_and_extract_archive(url, **kwargs)
            return
        except Exception as exc:  # noqa: BLE001 - URLError, checksum RuntimeError, OSError ...
            errors.append(f"{url}: {type(exc).__name__}: {exc}")
    raise GantkError(f"Downloading the data set '{name}' failed ({'; '.join(errors)}). Check the network "
                     f"connection, or fetch the files yourself and pass --data-root DIR. {OFFLINE_HINT}")


# ----------------------------------------------------------------------------------------- idx
@dataclass(frozen=True)
class IdxSet:
    """An MNIST-like data set: gantk ``name``, torchvision's class (= folder) name, class names."""

    name: str
    torchvision_class: str
    class_names: tuple[str, ...]
    title: str

    def folders(self, root: Path) -> list[Path]:
        return [root / self.torchvision_class / "raw", root / self.torchvision_class, root]

    def file_names(self, split: str) -> tuple[str, str]:
        prefix = IDX_PREFIX[split]
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"

    def download(self, root: Path, file_name: str) -> None:
        """Fetch ``file_name`` with the mirrors and checksums torchvision lists for this data set."""
        import torchvision.datasets

        source = getattr(torchvision.datasets, self.torchvision_class)
        checksums = dict(source.resources)
        archive = f"{file_name}.gz"
        raw = root / self.torchvision_class / "raw"
        _download(self.name, [(f"{mirror}{archive}", {"download_root": raw, "filename": archive,
                                                      "md5": checksums.get(archive)})
                              for mirror in source.mirrors])

    def load(self, data_root, image_size: int | None, download: bool, split: str) -> Dataset:
        split = choice(f"data set '{self.name}'", "split", split, tuple(IDX_PREFIX))
        layout = f"{self.torchvision_class}/raw/ (torchvision's layout)"
        fetch = f"{self.title}'s idx files"
        root = _folder_for(self.name, data_root, download, fetch, layout, fetch)
        arrays = []
        for file_name in self.file_names(split):
            path = _first_existing(self.folders(root), (file_name, f"{file_name}.gz"))
            if path is None and download:
                self.download(root, file_name)
                path = _first_existing(self.folders(root), (file_name, f"{file_name}.gz"))
            if path is None:
                raise _missing(self.name, [f"{file_name}[.gz]"], self.folders(root), layout, fetch)
            arrays.append((path, read_idx(path)))
        (image_path, images), (label_path, labels) = arrays
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise GantkError(f"'{image_path}' (shape {tuple(images.shape)}) and '{label_path}' (shape "
                             f"{tuple(labels.shape)}) do not fit together as N images and N labels; "
                             "delete them and fetch them again (e.g. with --download).")
        labels = _check_labels(label_path, labels, len(self.class_names))
        return image_dataset(self.name, images.unsqueeze(1), 255.0, labels, self.class_names, image_size,
                             f"{self.title} ({split}, {labels.numel():,} images) from {image_path.parent}")


MNIST = IdxSet("mnist", "MNIST", DIGIT_CLASSES, "MNIST")
FASHION_MNIST = IdxSet("fashion-mnist", "FashionMNIST", FASHION_CLASSES, "Fashion-MNIST")


def load_mnist(*, data_root=None, image_size: int | None = None, download: bool = False,
               split: str = "train") -> Dataset:
    """MNIST handwritten digits (28x28, 10 classes) from idx files under --data-root."""
    return MNIST.load(data_root, image_size, download, split)


def load_fashion_mnist(*, data_root=None, image_size: int | None = None, download: bool = False,
                       split: str = "train") -> Dataset:
    """Fashion-MNIST clothing images (28x28, 10 classes) from idx files under --data-root."""
    return FASHION_MNIST.load(data_root, image_size, download, split)


# ------------------------------------------------------------------------------------ CIFAR-10
def load_cifar10(*, data_root=None, image_size: int | None = None, download: bool = False,
                 split: str = "train") -> Dataset:
    """CIFAR-10 (32x32 colour, 10 classes) from the binary batches under --data-root."""
    names = CIFAR10_FILES[choice("data set 'cifar10'", "split", split, tuple(CIFAR10_FILES))]
    layout = f"{CIFAR10_FOLDER}/ (the binary version, not the Python one)"
    root = _folder_for("cifar10", data_root, download, "CIFAR-10's binary batches", layout,
                       "the binary tarball (163 MB)")
    folders = [root / CIFAR10_FOLDER, root]
    paths = [_first_existing(folders, (n,)) for n in names]
    if None in paths and download:
        _download("cifar10", [(CIFAR10_URL, {"download_root": root, "md5": CIFAR10_MD5})])
        paths = [_first_existing(folders, (n,)) for n in names]
    if None in paths:
        absent = [n for n, p in zip(names, paths) if p is None]
        raise _missing("cifar10", absent, folders, layout, "the binary tarball (163 MB)")
    batches = [read_cifar10_batch(p) for p in paths]
    pixels = torch.cat([b[0] for b in batches])
    labels = torch.cat([_check_labels(p, b[1], len(CIFAR10_CLASSES)) for p, b in zip(paths, batches)])
    return image_dataset("cifar10", pixels, 255.0, labels, CIFAR10_CLASSES, image_size,
                         f"CIFAR-10 ({split}, {labels.numel():,} images) from {paths[0].parent}")


@gantk.hookimpl
def register_datasets(register):
    register("mnist", load_mnist, summary="MNIST digits, 60,000 28x28 (from --data-root; --download to fetch)")
    register("fashion-mnist", load_fashion_mnist,
             summary="Fashion-MNIST clothing, 60,000 28x28, 10 classes (from --data-root; --download to fetch)")
    register("cifar10", load_cifar10,
             summary="CIFAR-10, 50,000 32x32 colour images, 10 classes (from --data-root; --download to fetch)")
