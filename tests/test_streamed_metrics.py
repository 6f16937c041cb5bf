"""Real features of streamed and uint8 data sets: the same as in memory, read in batches, cached by fingerprint."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset as TorchDataset

import gantk
from gantk.plugins.metrics import features as features_module
from gantk.plugins.metrics.features import make_extractor, real_features_dir, real_set
from gantk.protocols import DataSpec, Dataset, signed_unit

SPEC = DataSpec((3, 4, 4), 3, "tiny")


class PixelStream(TorchDataset):
    """A streamed image set over generated uint8 pixels; counts the samples it is asked for."""

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor | None) -> None:
        self.pixels, self.labels, self.reads = pixels, labels, 0

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: int):
        self.reads += 1
        return self.pixels[index], int(self.labels[index]) if self.labels is not None else -1


@pytest.fixture(scope="module")
def pixels():
    generator = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (300, *SPEC.shape), dtype=torch.uint8, generator=generator),
            torch.randint(0, 3, (300,), generator=generator))


def in_memory(pixels, as_float=False, fingerprint="f1"):
    images, labels = pixels
    return Dataset(SPEC, signed_unit(images) if as_float else images, labels, fingerprint=fingerprint)


def streamed(pixels, fingerprint="f1", spec=SPEC):
    images, labels = pixels
    return Dataset(spec, None, stream=PixelStream(images, labels if spec.labelled else None), fingerprint=fingerprint)


@pytest.fixture
def counted(monkeypatch):
    """The raw extractor's batch sizes, one per call."""
    calls: list[int] = []
    original = features_module.RawFeatures.features
    monkeypatch.setattr(features_module.RawFeatures, "features",
                        lambda self, samples: calls.append(len(samples)) or original(self, samples))
    return calls


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    monkeypatch.setattr(features_module, "REAL_BATCH", 64)  # several batches from 200 samples


def test_streamed_uint8_and_float_sets_give_the_same_real_features(pixels, tmp_path, counted):
    extractor = make_extractor("raw", in_memory(pixels))
    sets = [real_set(extractor, dataset, 200, seed=3, cache_dir=tmp_path / name) for name, dataset in
            (("float", in_memory(pixels, as_float=True)), ("uint8", in_memory(pixels)), ("stream", streamed(pixels)))]
    chosen = torch.randperm(300, generator=torch.Generator().manual_seed(3))[:200]
    expected = signed_unit(pixels[0][chosen]).reshape(200, -1)
    for real in sets:
        assert torch.equal(real.features, expected) and torch.equal(real.labels, pixels[1][chosen])
    assert max(counted) == 64 and len(counted) == 3 * 4  # 64 + 64 + 64 + 8, per set


def test_the_streaming_pass_reads_only_the_chosen_samples_with_workers(pixels, tmp_path):
    dataset = streamed(pixels)
    real = real_set(make_extractor("raw", dataset), dataset, 100, seed=0, cache_dir=tmp_path, workers=2)
    assert real.features.shape == (100, SPEC.flat_dim) and real.features.min() >= -1 and real.features.max() <= 1
    assert dataset.stream.reads == 0  # read in the workers' copies of the stream
    real_set(make_extractor("raw", dataset), dataset, 100, seed=1, cache_dir=tmp_path, workers=0)
    assert dataset.stream.reads == 100


def test_an_unlabelled_stream_gives_no_labels(pixels, tmp_path):
    dataset = streamed(pixels, spec=DataSpec(SPEC.shape, 0, "plain"))
    assert real_set(make_extractor("raw", dataset), dataset, 50, seed=0, cache_dir=tmp_path).labels is None


def test_the_cache_is_read_again_and_invalidated_by_another_fingerprint(pixels, tmp_path, counted):
    first = streamed(pixels, fingerprint="f1")
    extractor = make_extractor("raw", first)
    real = real_set(extractor, first, 100, seed=0, cache_dir=tmp_path)
    calls = len(counted)
    again = real_set(extractor, streamed(pixels, fingerprint="f1"), 100, seed=0, cache_dir=tmp_path)
    assert len(counted) == calls and torch.equal(again.features, real.features)
    assert torch.equal(again.labels, real.labels)
    real_set(extractor, streamed(pixels, fingerprint="f2"), 100, seed=0, cache_dir=tmp_path)
    assert len(counted) > calls and len(list(real_features_dir(tmp_path).iterdir())) == 2


def test_a_damaged_cache_file_is_recomputed_and_replaced(pixels, tmp_path, counted):
    dataset = streamed(pixels)
    extractor = make_extractor("raw", dataset)
    real = real_set(extractor, dataset, 100, seed=0, cache_dir=tmp_path)
    (path,) = real_features_dir(tmp_path).iterdir()
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # one byte of the tensors: the recorded SHA-256 no longer matches
    path.write_bytes(bytes(data))
    calls = len(counted)
    again = real_set(extractor, dataset, 100, seed=0, cache_dir=tmp_path)
    assert len(counted) > calls and torch.equal(again.features, real.features)
    path.write_bytes(b"not a safetensors file")
    assert torch.equal(real_set(extractor, dataset, 100, seed=0, cache_dir=tmp_path).features, real.features)
    calls = len(counted)
    real_set(extractor, dataset, 100, seed=0, cache_dir=tmp_path)
    assert len(counted) == calls  # the rewritten file is whole again


def test_a_stream_without_fingerprint_is_remembered_in_process_only(pixels, tmp_path, counted):
    dataset = streamed(pixels, fingerprint="")
    extractor = make_extractor("raw", dataset)
    real = real_set(extractor, dataset, 100, seed=0, cache_dir=tmp_path)
    calls = len(counted)
    assert real_set(extractor, dataset, 100, seed=0, cache_dir=tmp_path) is real and len(counted) == calls
    real_set(extractor, streamed(pixels, fingerprint=""), 100, seed=0, cache_dir=tmp_path)
    assert len(counted) > calls and not real_features_dir(tmp_path).exists()


class TinyGenerator(nn.Module):
    """An unconditional generator of 3x4x4 images in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.z_dim, self.spec, self.conditional, self.num_classes, self.options = 4, SPEC, False, 0, {}
        torch.manual_seed(0)
        self.layer = nn.Linear(4, SPEC.flat_dim)

    def forward(self, z, y=None):
        return torch.tanh(self.layer(z)).reshape(len(z), *SPEC.shape)


def test_fid_of_a_streamed_set_matches_in_memory_and_uses_the_cache_folder(pixels, tmp_path, monkeypatch, counted):
    monkeypatch.delenv("GANTK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fid = gantk.get_registry().create("metric", "fid", n=150, features="raw")
    generator = TinyGenerator()
    from_memory = fid(generator, in_memory(pixels))["fid"]
    from_stream = fid(generator, streamed(pixels))["fid"]
    assert from_stream == pytest.approx(from_memory, rel=1e-6)
    assert fid.protocol["data_fingerprint"] == "f1" and fid.protocol["data_sha256"] == ""
    assert len(list((tmp_path / "gantk" / "features").iterdir())) == 2
    calls = len(counted)
    assert fid(generator, streamed(pixels))["fid"] == from_stream
    assert len(counted) == calls + 1  # only the generated samples: the real features come from the cache
