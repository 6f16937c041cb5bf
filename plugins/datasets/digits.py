"""``digits``: the 1,797 handwritten digits of scikit-learn's ``load_digits``, 8×8 grayscale, 10 classes (embedded).

The test set of the UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak 1998) as
scikit-learn ships it (``digits.csv.gz``), stored inside gantk as ``data/digits.npz`` (licence
notice beside it, ``data/digits-LICENSE.md``: CC BY 4.0, and scikit-learn's BSD-3).
``tools/make_embedded_data.py`` rewrites the archive from scikit-learn's file. Each pixel counts the
ink in a 4×4 block of a 32×32 bitmap, 0..16; these map to float32 [-1, 1] (not 8-bit pixels, so not
kept as uint8; the whole set is 460 KB); ``image_size`` resizes.
"""

from __future__ import annotations

import gantk
from gantk.plugins.datasets._images import DIGIT_CLASSES, image_dataset, read_embedded
from gantk.protocols import Dataset

#: The pixel value that maps to 1 (the digits count ink in 4×4 blocks: 0..16).
DIGITS_MAX = 16.0


def load_digits(*, data_root=None, image_size: int | None = None, download: bool = False) -> Dataset:
    """scikit-learn's 1,797 8x8 handwritten digits (embedded, 10 classes); data_root/download unused."""
    pixels, labels = read_embedded("digits")
    return image_dataset("digits", pixels, DIGITS_MAX, labels, DIGIT_CLASSES, image_size,
                         "scikit-learn's handwritten digits: 1,797 grayscale 8x8 images, 10 classes")


@gantk.hookimpl
def register_datasets(register):
    register("digits", load_digits, summary="scikit-learn's 1,797 8x8 handwritten digits (embedded, 10 classes)")
