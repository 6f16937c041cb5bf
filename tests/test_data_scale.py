"""Data at scale: uint8 samples, streamed folders (seeded, sharded, exactly resumable), prepared archives."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gantk
import gantk.distributed
from gantk import memory_budget
from gantk.engine.batches import DeviceBatches, SeededBatchOrder, StreamBatches, epoch_seed, make_batches
from gantk.engine.config import TrainConfig
from gantk.engine.safetensors_io import payload_sha256, read_safetensors
from gantk.engine.trainer import Trainer
from gantk.errors import GantkError, UsageError
from gantk.plugins.datasets import folder
from gantk.plugins.datasets._images import image_dataset, to_signed_unit
from gantk.protocols import signed_unit

CPU = torch.device("cpu")


def create(name: str, **options):
    return gantk.get_registry().create("dataset", name, **options)


def make_folder(root: Path, per_class: int = 12, side: int = 10, classes=("cat", "dog"), seed: int = 0) -> Path:
    """Class subfolders of RGB PNGs: a colour gradient, a bright square and noise (no two alike)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, side)[None, :, None]
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = ramp * rng.uniform(0, 255, size=3) + rng.normal(0, 20, size=(side, side, 3))
            top, left = rng.integers(0, side // 2, size=2)
            image[top:top + side // 3, left:left + side // 3] = 255
            Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture
def pictures(tmp_path) -> Path:
    return make_folder(tmp_path / "pictures")


class PixelStream(torch.utils.data.Dataset):
    """Item i: a 1x2x2 uint8 image whose pixels all equal i (so a batch says which rows it holds), label i % 3."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        return torch.full((1, 2, 2), index, dtype=torch.uint8), index % 3


def truncate(path: Path) -> None:
    """Cut an image's pixel data short: its header still reads (so the folder is found), decoding fails."""
    noise = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)  # incompressible
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[:300])


def rows_of(batch: torch.Tensor) -> list[int]:
    """The item indices of a PixelStream batch (mapped to [-1, 1] by the engine: undo it)."""
    return [round(float(v)) for v in (batch[:, 0, 0, 0] + 1) / 2 * 255]


def as_rank(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(gantk.distributed, "world_size", lambda: world)
    monkeypatch.setattr(gantk.distributed, "rank", lambda: rank)


# ----------------------------------------------------------------------------- uint8 storage
def test_eight_bit_images_stay_uint8_and_map_to_the_old_floats_bit_for_bit():
    data = create("mnist5k")
    assert data.samples.dtype == torch.uint8 and data.samples.element_size() == 1
    from gantk.plugins.datasets import _images

    pixels, _ = _images.read_embedded("mnist5k")
    assert torch.equal(signed_unit(data.samples), to_signed_unit(pixels.float(), 255.0))  # what was stored before
    assert create("digits").samples.dtype == torch.float32  # 0..16 pixels are not 8-bit: float32 as before


def test_resizing_rounds_back_to_uint8_and_the_memory_check_counts_bytes():
    pixels = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).remainder(256).view(2, 3, 8, 8)
    data = image_dataset("toy", pixels, 255.0, None, (), 4, "")
    assert data.samples.dtype == torch.uint8 and data.samples.shape == (2, 3, 4, 4)
    resized = torch.nn.functional.interpolate(pixels, size=(4, 4), mode="bilinear", antialias=True)
    assert torch.equal(data.samples, resized.round().clamp(0, 255).to(torch.uint8))
    needed = 2 * 3 * (8 * 8 + 4 * 4)  # one byte per value: the set and its resized copy
    with memory_budget.limited(needed):
        image_dataset("toy", pixels, 255.0, None, (), 4, "")
    with memory_budget.limited(needed - 1), pytest.raises(UsageError, match="'toy'"):
        image_dataset("toy", pixels, 255.0, None, (), 4, "")


def test_folder_keeps_uint8_fingerprints_its_files_and_takes_a_memory_option(pictures, monkeypatch):
    data = create("folder", data_root=pictures, image_size=8)
    assert data.samples.dtype == torch.uint8 and data.samples.shape == (24, 3, 8, 8)
    assert len(data.fingerprint) == 64 and data.fingerprint == create("folder", data_root=pictures,
                                                                      image_size=8).fingerprint
    assert create("folder", data_root=pictures, image_size=6).fingerprint != data.fingerprint
    streamed = create("folder", data_root=pictures, image_size=8, memory="stream")
    assert streamed.samples is None and streamed.fingerprint == data.fingerprint
    assert torch.equal(torch.stack([streamed.stream[i][0] for i in range(24)]), data.samples)
    touched = pictures / "dog" / "003.png"
    touched.write_bytes(touched.read_bytes())  # same bytes, new mtime: the fingerprint follows the files
    import os

    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10 ** 9))
    assert create("folder", data_root=pictures, image_size=8).fingerprint != data.fingerprint
    # the 2 GiB cap (here: one byte less than the images) counts uint8 bytes; -O memory=load overrides it
    monkeypatch.setattr(folder, "MEMORY_LIMIT_BYTES", 24 * 3 * 8 * 8 - 1)
    assert create("folder", data_root=pictures, image_size=8).samples is None
    assert create("folder", data_root=pictures, image_size=8, memory="load").samples is not None
    with memory_budget.limited(100), pytest.raises(UsageError, match="memory=stream"):
        create("folder", data_root=pictures, image_size=8, memory="load")
    with pytest.raises(UsageError, match="memory"):
        create("folder", data_root=pictures, memory="disk")


# ----------------------------------------------------------------------------- batch order
def old_device_batches(samples: torch.Tensor, batch_size: int, steps: int, memory_format) -> list[torch.Tensor]:
    """What the engine did before uint8 samples: the whole set as float32 once, then the same permutations."""
    floats = samples.to(torch.float32).div(255.0).mul(2.0).sub(1.0).to(memory_format=memory_format)
    batches, permutation, position = [], torch.randperm(len(floats)), 0
    for _ in range(steps):
        if position + batch_size > len(floats):
            permutation, position = torch.randperm(len(floats)), 0
        batches.append(floats[permutation[position:position + batch_size]])
        position += batch_size
    return batches


@pytest.mark.parametrize("memory_format", [torch.preserve_format, torch.channels_last])
def test_in_memory_batches_are_the_old_float_batches_bit_for_bit(memory_format):
    samples = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    torch.manual_seed(5)
    expected = old_device_batches(samples, 4, 7, memory_format)
    torch.manual_seed(5)
    batches = DeviceBatches(samples, None, 4, memory_format)
    for old in expected:
        new, _ = batches.next()
        assert new.dtype == torch.float32 and torch.equal(new, old) and new.stride() == old.stride()


def test_in_memory_batches_are_split_between_ranks(monkeypatch):
    samples, labels = torch.randint(0, 256, (12, 1, 2, 2), dtype=torch.uint8), torch.arange(12)
    torch.manual_seed(1)
    whole = [DeviceBatches(samples, labels, 6).next()[1] for _ in range(1)]
    parts = []
    for rank in range(3):
        as_rank(monkeypatch, rank, 3)
        torch.manual_seed(1)
        batches = DeviceBatches(samples, labels, 6)
        assert batches.batch_size == 6  # the global batch
        parts.append(batches.next()[1])
    assert [len(p) for p in parts] == [2, 2, 2] and torch.equal(torch.cat(parts), whole[0])


def expected_order(count: int, batch_size: int, seed: int, batches: int) -> list[list[int]]:
    """The documented order: epoch e is randperm(count) seeded with epoch_seed(seed, e), cut into whole batches."""
    out, epoch = [], 0
    while len(out) < batches:
        order = torch.randperm(count, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch))).tolist()
        out += [order[b * batch_size:(b + 1) * batch_size] for b in range(count // batch_size)]
        epoch += 1
    return out[:batches]


def test_streamed_batches_follow_the_seeded_global_order_and_drop_the_last_partial_batch():
    batches = StreamBatches(PixelStream(10), 4, CPU, labelled=True, seed=7, workers=0)
    seen = [batches.next() for _ in range(5)]  # 2 batches per epoch (10 // 4): crosses two epoch boundaries
    assert [rows_of(samples) for samples, _ in seen] == expected_order(10, 4, 7, 5)
    assert all(torch.equal(labels, torch.tensor(rows_of(samples)) % 3) for samples, labels in seen)
    assert batches.state() == {"epoch": 2, "batch": 1}
    assert epoch_seed(7, 0) != epoch_seed(8, 0) and epoch_seed(7, 1) != epoch_seed(8, 0)
    other_seed = StreamBatches(PixelStream(10), 4, CPU, labelled=False, seed=8, workers=0)
    samples, labels = other_seed.next()
    assert labels is None and rows_of(samples) == expected_order(10, 4, 8, 1)[0]


def test_sharded_order_gives_each_rank_its_rows_of_every_global_batch(monkeypatch):
    whole = expected_order(12, 6, 3, 5)
    per_rank = []
    for rank in range(2):
        as_rank(monkeypatch, rank, 2)
        order = iter(SeededBatchOrder(12, 6, 3))
        per_rank.append([next(order) for _ in range(5)])
    for index, batch in enumerate(whole):
        assert per_rank[0][index] + per_rank[1][index] == batch  # each row exactly once, in rank order
    as_rank(monkeypatch, 1, 2)
    streamed = StreamBatches(PixelStream(12), 6, CPU, labelled=True, seed=3, workers=0)
    assert streamed.batch_size == 6 and rows_of(streamed.next()[0]) == whole[0][3:]


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_state_is_what_the_loop_took_not_what_the_workers_read_ahead(workers):
    batches = StreamBatches(PixelStream(20), 3, CPU, labelled=True, seed=1, workers=workers)
    for _ in range(8):
        batches.next()
    state = batches.state()
    assert state == {"epoch": 1, "batch": 2}  # 6 batches per epoch
    rest = [rows_of(batches.next()[0]) for _ in range(4)]
    resumed = StreamBatches(PixelStream(20), 3, CPU, labelled=True, seed=1, workers=workers)
    resumed.load_state(state)
    assert [rows_of(resumed.next()[0]) for _ in range(4)] == rest == expected_order(20, 3, 1, 12)[8:]
    assert resumed.state() == {"epoch": 2, "batch": 0}
    old_checkpoint = StreamBatches(PixelStream(20), 3, CPU, labelled=True, seed=1, workers=0)
    old_checkpoint.load_state({})  # written before streams were resumable: from the start
    assert rows_of(old_checkpoint.next()[0]) == expected_order(20, 3, 1, 1)[0]


def test_a_worker_error_is_the_readers_paragraph(pictures):
    truncate(pictures / "dog" / "000.png")
    dataset = create("folder", data_root=pictures, image_size=8, memory="stream")
    batches = make_batches(dataset, 24, CPU, seed=0, workers=2)
    with pytest.raises(GantkError) as caught:
        batches.next()
    message = str(caught.value)
    assert "Could not read the image" in message and "000.png" in message and "Traceback" not in message


# ----------------------------------------------------------------------------- exact resume through the trainer
def folder_run(data_root: Path, steps: int, workers: int, **extra) -> TrainConfig:
    return TrainConfig.from_options({
        "gen": "dcgan", "dataset": "folder", "data_root": str(data_root), "image_size": 8,
        "dataset_options": {"memory": "stream"}, "gen_options": {"width": 8, "z_dim": 16},
        "disc_options": {"width": 8}, "batch_size": 8, "precision": "fp32", "threads": "1", "workers": str(workers),
        "steps": steps, "checkpoint_every": 3, "log_every": 1, "sample_every": 1000, "num_samples": 4, **extra})


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_a_resumed_streamed_run_ends_with_the_same_generator(tmp_path, pictures, workers):
    Trainer(folder_run(pictures, 6, workers), tmp_path / "straight", show_progress=False).train()
    Trainer(folder_run(pictures, 3, workers), tmp_path / "split", show_progress=False).train()
    resumed = Trainer(folder_run(pictures, 6, workers), tmp_path / "split", resume=True, show_progress=False)
    assert resumed.step == 3
    resumed.train()  # 24 images, batch 8: the 6 steps cross an epoch boundary after step 3
    expected, _ = read_safetensors(tmp_path / "straight" / "generator.safetensors")
    actual, _ = read_safetensors(tmp_path / "split" / "generator.safetensors")
    assert expected.keys() == actual.keys()
    assert [name for name in expected if not torch.equal(expected[name], actual[name])] == []


def test_dcgan64_trains_a_step_on_a_tiny_folder(tmp_path):
    make_folder(tmp_path / "faces", per_class=2, side=70, classes=("x",))
    preset = gantk.get_registry().create("preset", "dcgan64")
    config = TrainConfig.from_options({**preset, "data_root": str(tmp_path / "faces"), "steps": 1, "batch_size": 2,
                                       "precision": "fp32", "threads": "1", "ema": None, "num_samples": 1})
    assert (config.gen, config.image_size, config.loss, config.dataset) == ("dcgan", 64, "ns", "folder")
    assert config.g_optimizer.lr == 2e-4 and tuple(config.d_optimizer.betas) == (0.5, 0.999)
    result = Trainer(config, tmp_path / "run", show_progress=False).train()
    assert result.step == 1 and (tmp_path / "run" / "generator.safetensors").is_file()


# ----------------------------------------------------------------------------- prepared archives
@pytest.fixture
def archive(tmp_path, pictures, cli) -> Path:
    out = tmp_path / "pictures.safetensors"
    result = cli("data", "prepare", str(pictures), "--image-size", "8", "--out", str(out), "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "24 images" in result.output and "--dataset prepared" in result.output
    return out


def test_an_archive_holds_the_folders_pixels_labels_and_a_verifiable_hash(archive, pictures):
    tensors, metadata = read_safetensors(archive)  # also checks gantk.sha256 against the tensors
    data = create("folder", data_root=pictures, image_size=8)
    assert torch.equal(tensors["images"], data.samples) and torch.equal(tensors["labels"], data.labels)
    assert metadata["gantk.sha256"] == payload_sha256(tensors)
    assert json.loads(metadata["gantk.class_names"]) == ["cat", "dog"] and metadata["gantk.image_size"] == "8"
    assert (metadata["gantk.kind"], metadata["gantk.format_version"], metadata["gantk.channels"]) == \
        ("prepared-images", "1", "3")
    assert metadata["gantk.source"] == str(pictures.resolve())
    loaded = create("prepared", data_root=archive)
    assert loaded.fingerprint == metadata["gantk.sha256"] and loaded.class_names == ("cat", "dog")
    assert [p.name for p in archive.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_training_from_an_archive_sees_the_folders_batches(archive, pictures):
    def first_batches(dataset, workers=0, count=4):
        torch.manual_seed(0)
        batches = make_batches(dataset, 8, CPU, seed=4, workers=workers)
        return [batches.next() for _ in range(count)]

    def same(a, b):
        return all(torch.equal(x, y) and torch.equal(lx, ly) for (x, lx), (y, ly) in zip(a, b))

    in_memory = create("prepared", data_root=archive)
    mapped = create("prepared", data_root=archive, memory="stream")
    assert in_memory.samples is not None and mapped.samples is None and "memory-mapped" in mapped.description
    assert same(first_batches(in_memory), first_batches(create("folder", data_root=pictures, image_size=8)))
    streamed_folder = first_batches(create("folder", data_root=pictures, image_size=8, memory="stream"))
    assert same(first_batches(mapped, workers=2), streamed_folder)
    assert same(first_batches(mapped, workers=0), streamed_folder)
    with pytest.raises(UsageError, match="holds 8x8 images.*--image-size 8.*gantk data prepare"):
        create("prepared", data_root=archive, image_size=16)
    with memory_budget.limited(24 * 3 * 8 * 8 - 1):  # auto: what does not fit is memory-mapped
        assert create("prepared", data_root=archive).samples is None


def header_of(path: Path) -> tuple[int, dict]:
    data = path.read_bytes()
    length = struct.unpack("<Q", data[:8])[0]
    return length, json.loads(data[8:8 + length])


def rewrite_header(path: Path, header: dict, out: Path) -> Path:
    length, _ = header_of(path)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    out.write_bytes(struct.pack("<Q", len(text)) + text + path.read_bytes()[8 + length:])
    return out


def test_damaged_or_foreign_files_are_refused_in_one_paragraph(archive, tmp_path):
    _, header = header_of(archive)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(archive.read_bytes()[:-10])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    foreign = tmp_path / "foreign.safetensors"
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2)}, str(foreign), metadata={"gantk.kind": "generator"})
    wrong_dtype = rewrite_header(archive, {**header, "images": {**header["images"], "dtype": "F32"}},
                                 tmp_path / "dtype.safetensors")
    bad_labels = rewrite_header(archive, {**header, "__metadata__": {**header["__metadata__"],
                                                                     "gantk.class_names": '["cat"]'}},
                                tmp_path / "labels.safetensors")
    cases = {truncated: "truncated", garbage: "not JSON", foreign: "another kind", wrong_dtype: "F32",
             bad_labels: "outside 0..0", tmp_path: "is a folder", tmp_path / "none.safetensors": "does not exist"}
    for path, words in cases.items():
        with pytest.raises(GantkError) as caught:
            create("prepared", data_root=path)
        message = str(caught.value)
        assert words in message and "\n" not in message, message
    newer = rewrite_header(archive, {**header, "__metadata__": {**header["__metadata__"], "gantk.format_version": "9"}},
                           tmp_path / "newer.safetensors")
    with pytest.raises(GantkError, match="format version 9.*Upgrade gantk"):
        create("prepared", data_root=newer)


def test_the_prepare_command_says_what_to_do(tmp_path, pictures, archive, cli):
    def run(*args):
        result = cli("data", "prepare", *map(str, args))
        assert "Traceback" not in result.output
        return result.exit_code, " ".join(result.output.split())

    code, output = run(pictures, "--image-size", 8, "--out", archive)
    assert code == 2 and "already exists. Add --force" in output
    code, _ = run(pictures, "--image-size", 8, "--out", archive, "--force")
    assert code == 0
    code, output = run(tmp_path / "missing", "--image-size", 8, "--out", tmp_path / "x.safetensors")
    assert code == 1 and "does not exist" in output and not (tmp_path / "x.safetensors").exists()
    code, output = run(pictures, "--image-size", 8, "--out", tmp_path / "x.npz")
    assert code == 2 and ".safetensors" in output
    code, output = run(pictures, "--image-size", 0, "--out", tmp_path / "x.safetensors")
    assert code == 2 and "--image-size" in output
    wide = tmp_path / "wide"
    wide.mkdir()
    Image.fromarray(np.array([[0, 65535], [300, 7]], dtype=np.uint16)).save(wide / "a.png")
    code, output = run(wide, "--image-size", 2, "--out", tmp_path / "w.safetensors")
    assert code == 2 and "16-bit" in output
    truncate(pictures / "cat" / "005.png")  # found by the header survey, fails in a decoding worker
    code, output = run(pictures, "--image-size", 8, "--out", tmp_path / "y.safetensors", "--workers", "2")
    assert code == 1 and "005.png" in output and not (tmp_path / "y.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
