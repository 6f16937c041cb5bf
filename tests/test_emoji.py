"""The ``emoji`` data set: download (from a generated package in the registry's layout), checks, labels,
alpha, the held-out split; one test fetches the real packages from the npm registry."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantk.errors import GantkError, UsageError
from gantk.plugins.datasets import emoji
from gantk.plugins.datasets.emoji import held_out, load_emoji

# (file name, category, variants): a skin-tone variant is listed under its base record
RECORDS = [("1f600.png", "Smileys & Emotion", ()), ("1f601.png", "Smileys & Emotion", ()),
           ("1f44b.png", "People & Body", ("1f44b-1f3fb.png", "1f44b-1f3fc.png")),
           ("1f436.png", "Animals & Nature", ()), ("1f34e.png", "Food & Drink", ()),
           ("1f3fb.png", "Component", ())]
for index in range(20):  # enough names that both splits get some
    RECORDS.append((f"2{index:03x}.png", "Symbols", ()))


def png(colour: tuple[int, int, int], transparent_corner: bool = True) -> bytes:
    """A 64×64 RGBA picture of one colour; its top-left 8×8 corner fully transparent."""
    pixels = np.zeros((64, 64, 4), dtype=np.uint8)
    pixels[..., :3], pixels[..., 3] = colour, 255
    if transparent_corner:
        pixels[:8, :8, 3] = 0
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def make_package(path: Path, style: str = "google") -> str:
    """A tarball in the npm package's layout; returns its SHA-256."""
    records = [{"image": name, "category": category, f"has_img_{style}": True,
                "skin_variations": {v: {"image": v, f"has_img_{style}": True} for v in variants} or None}
               for name, category, variants in RECORDS]
    with tarfile.open(path, "w:gz") as archive:
        add(archive, "package/emoji.json", json.dumps(records).encode())
        add(archive, "package/package.json", b"{}")
        for index, (name, _, variants) in enumerate(RECORDS):
            for file_name in (name, *variants):
                add(archive, f"package/img/{style}/64/{file_name}", png((index * 10 % 256, 100, 200)))
                add(archive, f"package/img/{style}/32/{file_name}", b"not wanted")
        add(archive, f"package/img/{style}/64/../../../../escaped.png", png((1, 2, 3)))  # must never be written
    return hashlib.sha256(path.read_bytes()).hexdigest()


def serve_packages(tmp_path: Path, monkeypatch, make) -> Path:
    """The google and twitter packages ``make(tarball, style)`` writes (returning their SHA-256), served by file://
    URLs in place of the npm registry."""
    served = tmp_path / "served"
    served.mkdir()
    for style in ("google", "twitter"):
        tarball = served / f"{style}.tgz"
        monkeypatch.setitem(emoji.PACKAGES, style, (tarball.as_uri(), make(tarball, style)))
    return served


@pytest.fixture
def registry(tmp_path, monkeypatch) -> Path:
    """The generated google and twitter packages, served in place of the npm registry."""
    return serve_packages(tmp_path, monkeypatch, make_package)


def test_download_extracts_the_64px_images_and_labels_them_by_category(tmp_path, registry):
    root = tmp_path / "data"
    dataset = load_emoji(data_root=root, download=True, split="all")
    folder = root / "emoji-datasource-google-16.0.0"
    assert sorted(p.name for p in folder.iterdir()) == ["emoji.json", "img"]
    assert not (root / "emoji-datasource-google-16.0.0.tgz").exists()  # the tarball goes once extracted
    assert not list(tmp_path.rglob("escaped.png"))
    # Component left out; the two skin-tone variants count, with their base record's category
    assert len(dataset) == len(RECORDS) - 1 + 2
    assert dataset.class_names == ("Animals & Nature", "Food & Drink", "People & Body", "Smileys & Emotion",
                                   "Symbols")
    assert dataset.samples.dtype == torch.uint8 and dataset.samples.shape[1:] == (3, 64, 64)
    assert dataset.labels.bincount().tolist() == [1, 1, 3, 2, 20]
    again = load_emoji(data_root=root)  # extracted once: read without the network
    assert again.fingerprint and again.fingerprint != dataset.fingerprint  # train, not all


@pytest.mark.parametrize("background, corner", [("white", 255), ("black", 0)])
def test_transparent_pixels_take_the_background(tmp_path, registry, background, corner):
    dataset = load_emoji(data_root=tmp_path, download=True, split="all", background=background)
    assert (dataset.samples[:, :, :8, :8] == corner).all()  # α = 0: the background
    assert (dataset.samples[:, 1, 8:, 8:] == 100).all()  # α = 1: the picture's own green


def test_the_split_is_by_file_name_and_the_same_in_both_styles(tmp_path, registry):
    names = {style: {name for name, _ in emoji.emoji_images(
        emoji.emoji_folder(tmp_path, style, download=True), style)} for style in ("google", "twitter")}
    assert names["google"] == names["twitter"]
    test = {name for name in names["google"] if held_out(name)}
    assert 0 < len(test) < len(names["google"])
    sizes = {split: len(load_emoji(data_root=tmp_path, split=split)) for split in ("train", "test", "all")}
    assert sizes["train"] + sizes["test"] == sizes["all"] and sizes["test"] == len(test)
    assert load_emoji(data_root=tmp_path, split="test").samples.equal(
        load_emoji(data_root=tmp_path, split="test").samples)  # deterministic


def test_a_share_keeps_a_fixed_nested_subset_of_the_split(tmp_path, registry):
    whole = load_emoji(data_root=tmp_path, download=True, split="all")
    half = load_emoji(data_root=tmp_path, split="all", share=0.5)
    quarter = load_emoji(data_root=tmp_path, split="all", share=0.25)
    assert 0 < len(quarter) <= len(half) < len(whole)
    as_rows = lambda dataset: {tuple(image.flatten().tolist()) for image in dataset.samples}  # noqa: E731
    assert as_rows(quarter) <= as_rows(half) <= as_rows(whole)  # a smaller share is a subset of a larger one
    assert load_emoji(data_root=tmp_path, split="all", share=0.5).samples.equal(half.samples)
    assert len({whole.fingerprint, half.fingerprint, quarter.fingerprint}) == 3  # caches keyed apart
    with pytest.raises(UsageError, match="share"):
        load_emoji(data_root=tmp_path, share=0)


def test_a_tarball_with_the_wrong_sha256_is_refused_and_nothing_is_extracted(tmp_path, registry, monkeypatch):
    url, _ = emoji.PACKAGES["google"]
    monkeypatch.setitem(emoji.PACKAGES, "google", (url, "0" * 64))
    with pytest.raises(GantkError, match="is not the emoji-datasource-google-16.0.0 package: its SHA-256"):
        load_emoji(data_root=tmp_path, download=True)
    assert not (tmp_path / "emoji-datasource-google-16.0.0").exists()


def test_without_the_files_or_download_it_says_how_to_get_them(tmp_path):
    with pytest.raises(GantkError, match="Add --download") as caught:
        load_emoji(data_root=tmp_path)
    assert "npm pack emoji-datasource-google@16.0.0" in str(caught.value)
    with pytest.raises(UsageError, match="style"):
        load_emoji(data_root=tmp_path, style="apple")


def test_a_tarball_placed_by_hand_is_used_without_the_network(tmp_path, registry, monkeypatch):
    url, sha = emoji.PACKAGES["google"]
    (tmp_path / "emoji-datasource-google-16.0.0.tgz").write_bytes(Path(url.removeprefix("file://")).read_bytes())
    monkeypatch.setitem(emoji.PACKAGES, "google", ("http://127.0.0.1:9/unreachable.tgz", sha))
    assert len(load_emoji(data_root=tmp_path, split="all")) == len(RECORDS) + 1


def test_an_unreachable_registry_is_one_paragraph(tmp_path, monkeypatch):
    monkeypatch.setitem(emoji.PACKAGES, "google", ("http://127.0.0.1:9/unreachable.tgz", "0" * 64))
    with pytest.raises(GantkError, match="Could not download the emoji images") as caught:
        load_emoji(data_root=tmp_path, download=True)
    assert "Traceback" not in str(caught.value)
    assert not list(tmp_path.iterdir())  # no partial file left


@pytest.mark.network_download
@pytest.mark.slow
def test_the_real_packages_download_and_pair_by_name(tmp_path):
    """The npm registry's tarballs (74 MB and 62 MB): 3,781 images per style in 9 categories, paired by name."""
    google = load_emoji(data_root=tmp_path, download=True, split="all")
    assert len(google) == 3781 and len(google.class_names) == 9 and google.samples.shape[1:] == (3, 64, 64)
    names = {style: [name for name, _ in emoji.emoji_images(emoji.emoji_folder(tmp_path, style, download=True),
                                                          style)] for style in ("google", "twitter")}
    shared = set(names["google"]) & set(names["twitter"])
    assert len(shared) > 3500  # the same file name is the same emoji in both styles
    tenth = load_emoji(data_root=tmp_path, share=0.1)  # the limited-data runs' subset of the train split
    assert 300 < len(tenth) < 380
