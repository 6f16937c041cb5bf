"""Two-domain data for unpaired translation: ``folder``'s trainA/trainB layout, ``emoji-styles``, ``--dataset-b``,
and a two-domain data set refused by the one-domain ``gan`` procedure."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

import gantk
from engine_helpers import tiny_cli_args, tiny_config
from gantk.engine.build import build_training_data
from gantk.engine.qualified_names import names_on_resume, qualified_config
from gantk.errors import GantkError, UsageError
from gantk.plugins.datasets import emoji
from gantk.protocols import signed_unit
from test_emoji import add, png, serve_packages


def create(name: str, **options):
    return gantk.get_registry().create("dataset", name, **options)


def save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def gray(value: int, size: int = 6) -> Image.Image:
    return Image.new("L", (size, size), value)


@pytest.fixture
def horses(tmp_path) -> Path:
    """trainA/ 3 red 6x6 images, trainB/ 2 blue ones under other names (CycleGAN's layout, unpaired)."""
    root = tmp_path / "horse2zebra"
    for i in range(3):
        save(root / "trainA" / f"horse{i}.png", Image.new("RGB", (6, 6), (255, 0, 0)))
    for i in range(2):
        save(root / "trainB" / f"zebra{i}.png", Image.new("RGB", (6, 6), (0, 0, 255)))
    return root


# ------------------------------------------------------------------------------ folder: trainA / trainB
def test_train_a_and_b_are_two_domains_of_one_shape(horses):
    data = create("folder", data_root=horses)
    assert data.domains == ("A", "B") and len(data.domain_data) == 2
    a, b = data.domain_data
    assert data.samples is None and data.stream is None and len(data) == 5
    assert data.spec.shape == a.spec.shape == b.spec.shape == (3, 6, 6) and data.spec.num_classes == 0
    assert len(a) == 3 and len(b) == 2 and a.labels is None and b.labels is None  # images directly inside
    assert torch.equal(signed_unit(a.samples[:, :, 0, 0]), torch.tensor([[1.0, -1.0, -1.0]] * 3))  # red
    assert torch.equal(signed_unit(b.samples[:, :, 0, 0]), torch.tensor([[-1.0, -1.0, 1.0]] * 2))  # blue
    assert not data.paired  # other names: no ground-truth pairing
    assert a.fingerprint and b.fingerprint and a.fingerprint != b.fingerprint


def test_the_same_file_names_are_paired_and_aligned_by_index(tmp_path):
    root = tmp_path / "paired"
    for name, value in (("b.png", 150), ("a.png", 50), ("c.png", 200)):  # written in no particular order
        save(root / "trainA" / name, gray(value))
        save(root / "trainB" / name, gray(value + 10))
    data = create("folder", data_root=root)
    assert data.paired
    a, b = data.domain_data
    assert a.samples[:, 0, 0, 0].tolist() == [50, 150, 200]  # sorted by name
    assert torch.equal(b.samples.int() - a.samples.int(), torch.full_like(a.samples.int(), 10))  # i shows i
    save(root / "trainB" / "d.png", gray(1))
    assert not create("folder", data_root=root).paired  # one extra name: not paired any more


def test_class_subfolders_inside_a_domain_keep_their_labels(tmp_path):
    root = tmp_path / "classes"
    for domain in ("trainA", "trainB"):
        save(root / domain / "cat" / "1.png", gray(10))
        save(root / domain / "dog" / "2.png", gray(20))
        save(root / domain / "dog" / "3.png", gray(30))
    data = create("folder", data_root=root)
    assert data.paired and data.spec.num_classes == 0  # the translator does not follow classes
    for domain in data.domain_data:
        assert domain.class_names == ("cat", "dog") and domain.labels.tolist() == [0, 1, 1]


def test_split_test_reads_test_a_and_test_b(horses):
    save(horses / "testA" / "h.png", Image.new("RGB", (6, 6), (0, 255, 0)))
    save(horses / "testB" / "z.png", Image.new("RGB", (6, 6), (0, 255, 0)))
    test = create("folder", data_root=horses, split="test")
    assert [len(domain) for domain in test.domain_data] == [1, 1]
    assert [len(domain) for domain in create("folder", data_root=horses, split="train").domain_data] == [3, 2]
    with pytest.raises(UsageError, match="split"):
        create("folder", data_root=horses, split="validation")


def test_a_missing_folder_of_the_split_says_what_to_add(horses, tmp_path):
    with pytest.raises(UsageError, match=r"no testA/ or testB/ for the test split\. Add testA/ and testB/"):
        create("folder", data_root=horses, split="test")
    save(horses / "testA" / "h.png", Image.new("RGB", (6, 6)))
    with pytest.raises(UsageError, match=r"no testB/ for the test split"):
        create("folder", data_root=horses, split="test")
    only_test = tmp_path / "only_test"
    for domain in ("testA", "testB"):
        save(only_test / domain / "x.png", gray(0))
    with pytest.raises(UsageError, match=r"no trainA/ or trainB/ for the train split.*choose -O split=test"):
        create("folder", data_root=only_test)
    assert len(create("folder", data_root=only_test, split="test").domain_data) == 2


def test_domains_of_different_sizes_need_an_image_size(tmp_path):
    root = tmp_path / "sizes"
    save(root / "trainA" / "small.png", Image.new("RGB", (6, 6), (255, 255, 255)))
    save(root / "trainB" / "big.png", Image.new("RGB", (10, 8), (255, 255, 255)))
    with pytest.raises(UsageError, match="--image-size") as caught:
        create("folder", data_root=root)
    assert "trainA/ 6x6 and trainB/ 10x8" in str(caught.value)
    data = create("folder", data_root=root, image_size=4)
    assert [domain.spec.shape for domain in data.domain_data] == [(3, 4, 4), (3, 4, 4)]
    assert all(signed_unit(domain.samples).eq(1.0).all() for domain in data.domain_data)  # white stays white


def test_one_colour_domain_makes_both_rgb(tmp_path):
    root = tmp_path / "mixed"
    save(root / "trainA" / "g.png", gray(128))
    save(root / "trainB" / "c.png", Image.new("RGB", (6, 6), (10, 20, 30)))
    a, b = create("folder", data_root=root).domain_data
    assert a.spec.shape == b.spec.shape == (3, 6, 6)
    assert a.samples[0, :, 0, 0].tolist() == [128, 128, 128]  # gray replicated into R, G and B
    assert [domain.spec.channels for domain in create("folder", data_root=root, channels=1).domain_data] == [1, 1]


def test_each_domain_streams_as_a_one_domain_folder_does(horses):
    loaded = create("folder", data_root=horses)
    streamed = create("folder", data_root=horses, memory="stream")
    for kept, domain in zip(loaded.domain_data, streamed.domain_data):
        assert domain.samples is None and len(domain) == len(kept) and domain.fingerprint == kept.fingerprint
        assert torch.equal(torch.stack([domain.stream[i][0] for i in range(len(domain))]), kept.samples)


def test_one_domain_folders_are_unchanged(tmp_path):
    root = tmp_path / "pets"
    save(root / "horse" / "1.png", gray(1))
    save(root / "zebra" / "2.png", gray(2))
    data = create("folder", data_root=root)
    assert data.domains == () and data.domain_data == () and not data.paired
    assert data.class_names == ("horse", "zebra") and data.samples.shape == (2, 1, 6, 6)
    with pytest.raises(UsageError, match="-O split .* has none of them"):
        create("folder", data_root=root, split="test")


# ------------------------------------------------------------------------------ emoji-styles
GOOGLE_ONLY, TWITTER_ONLY = "1f436.png", "1f99a.png"
#: (file name, category) of the fake packages: both styles share the others
EMOJI = [("1f600.png", "Smileys & Emotion"), ("1f601.png", "Smileys & Emotion"), ("1f44b.png", "People & Body"),
         ("1f34e.png", "Food & Drink"), (GOOGLE_ONLY, "Animals & Nature"), (TWITTER_ONLY, "Animals & Nature")]
EMOJI += [(f"2{index:03x}.png", "Symbols") for index in range(24)]
RED = {name: 5 * index for index, (name, _) in enumerate(EMOJI)}  # each emoji's red, the same in both styles


def fake_package(path: Path, style: str) -> str:
    """An emoji-datasource tarball whose pictures' red channel names the emoji and green the style; its SHA-256."""
    left_out = TWITTER_ONLY if style == "google" else GOOGLE_ONLY
    kept = [(name, category) for name, category in EMOJI if name != left_out]
    records = [{"image": name, "category": category, f"has_img_{style}": True} for name, category in kept]
    with tarfile.open(path, "w:gz") as archive:
        add(archive, "package/emoji.json", json.dumps(records).encode())
        for name, _ in kept:
            add(archive, f"package/img/{style}/64/{name}", png((RED[name], 100 if style == "google" else 50, 200)))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def npm(tmp_path, monkeypatch) -> Path:
    """Both fake packages, served by file:// URLs in place of the npm registry."""
    return serve_packages(tmp_path, monkeypatch, fake_package)


def reds(domain) -> list[int]:
    return domain.samples[:, 0, 32, 32].tolist()


def test_emoji_styles_are_noto_and_twemoji_aligned_by_file_name(tmp_path, npm):
    data = create("emoji-styles", data_root=tmp_path / "data", download=True, split="all")
    assert (tmp_path / "data" / "emoji-datasource-google-16.0.0").is_dir()  # --download fetched both
    assert (tmp_path / "data" / "emoji-datasource-twitter-16.0.0").is_dir()
    assert data.domains == ("noto", "twemoji") and data.paired and data.spec.shape == (3, 64, 64)
    noto, twemoji = data.domain_data
    shared = sorted(name for name, _ in EMOJI if name not in (GOOGLE_ONLY, TWITTER_ONLY))
    assert reds(noto) == reds(twemoji) == [RED[name] for name in shared]  # index i: the same emoji, by name
    assert noto.samples[:, 1, 32, 32].eq(100).all() and twemoji.samples[:, 1, 32, 32].eq(50).all()  # own style
    assert "2 emoji that only one style pictures left out" in data.description
    assert noto.fingerprint and twemoji.fingerprint and noto.fingerprint != twemoji.fingerprint


def test_emoji_styles_keep_the_category_labels_in_each_domain(tmp_path, npm):
    noto, twemoji = create("emoji-styles", data_root=tmp_path, download=True, split="all").domain_data
    assert noto.class_names == twemoji.class_names == ("Food & Drink", "People & Body", "Smileys & Emotion",
                                                       "Symbols")  # Animals & Nature: no emoji in both styles
    assert torch.equal(noto.labels, twemoji.labels) and noto.labels.bincount().tolist() == [1, 1, 2, 24]


def test_emoji_styles_split_and_share_keep_the_domains_aligned(tmp_path, npm):
    whole = create("emoji-styles", data_root=tmp_path, download=True, split="all")
    parts = {split: create("emoji-styles", data_root=tmp_path, split=split) for split in ("train", "test")}
    assert 0 < len(parts["test"].domain_data[0]) < len(whole.domain_data[0])
    assert sorted(reds(parts["train"].domain_data[0]) + reds(parts["test"].domain_data[0])) == sorted(
        reds(whole.domain_data[0]))
    half = create("emoji-styles", data_root=tmp_path, split="all", share=0.5)
    assert 0 < len(half.domain_data[0]) < len(whole.domain_data[0])
    assert set(reds(half.domain_data[0])) <= set(reds(whole.domain_data[0]))
    for data in (*parts.values(), half):
        assert data.paired and reds(data.domain_data[0]) == reds(data.domain_data[1])
    small = create("emoji-styles", data_root=tmp_path, split="all", image_size=16, background="black")
    assert small.spec.shape == (3, 16, 16) and small.domain_data[0].samples[:, :, 0, 0].eq(0).all()
    with pytest.raises(UsageError, match="keeps no image .* Give a larger -O share"):
        create("emoji-styles", data_root=tmp_path, split="test", share=1e-9)


def test_emoji_styles_without_packages_say_how_to_get_both(tmp_path):
    with pytest.raises(GantkError, match="emoji-styles") as caught:
        create("emoji-styles")
    assert "npm pack emoji-datasource-google@16.0.0; npm pack emoji-datasource-twitter@16.0.0" in str(caught.value)
    with pytest.raises(GantkError, match="The data set 'emoji-styles' found no emoji-datasource-google-16.0.0"):
        create("emoji-styles", data_root=tmp_path)
    with pytest.raises(UsageError, match="split"):
        create("emoji-styles", data_root=tmp_path, split="val")
    with pytest.raises(UsageError, match="style"):  # no style option: the domains are the styles
        create("emoji-styles", data_root=tmp_path, style="google")


def test_the_emoji_data_set_keeps_its_fingerprint(tmp_path, npm):
    """The refactoring for emoji-styles left ``emoji``'s fingerprint as it was (caches keyed by it stay valid)."""
    data = create("emoji", data_root=tmp_path, download=True, share=0.5)
    identity = f"gantk.emoji/1:{emoji.PACKAGES['google'][1]}:train:white:None:share=0.5"
    assert data.fingerprint == hashlib.sha256(identity.encode()).hexdigest()


# ------------------------------------------------------------------------------ --dataset-b
def test_dataset_b_pairs_two_one_domain_data_sets(tmp_path):
    registry = gantk.get_registry()
    same = build_training_data(tiny_config(dataset="digits", dataset_b="digits"), registry)
    assert same.domains == ("A", "B") and not same.paired and len(same.domain_data[1]) == 1797
    with pytest.raises(UsageError, match=r"--dataset mnist5k and --dataset-b digits .*--image-size"):
        build_training_data(tiny_config(dataset="mnist5k", dataset_b="digits"), registry)  # 28x28 and 8x8
    resized = build_training_data(tiny_config(dataset="gantk:mnist5k", dataset_b="digits", image_size=8), registry)
    assert resized.domains == ("mnist5k", "digits") and resized.spec.shape == (1, 8, 8)
    assert resized.spec.name == "mnist5k+digits"
    two = two_domain_folder(tmp_path / "two")
    with pytest.raises(UsageError, match="--dataset-b pairs two one-domain data sets, but 'folder'"):
        build_training_data(tiny_config(dataset="folder", data_root=str(two), dataset_b="digits"), registry)


def two_domain_folder(root: Path) -> Path:
    """trainA/ and trainB/ with one black 8x8 image each."""
    for domain in ("trainA", "trainB"):
        save(root / domain / "x.png", gray(0, size=8))
    return root


def test_dataset_b_reads_its_own_folder_with_its_data_root_option(tmp_path):
    for name, value in (("horses", 0), ("zebras", 255)):
        for i in range(2):
            save(tmp_path / name / f"{i}.png", gray(value))
    config = tiny_config(dataset="folder", data_root=str(tmp_path / "horses"), dataset_b="folder",
                         dataset_b_options={"data_root": str(tmp_path / "zebras")})
    a, b = build_training_data(config, gantk.get_registry()).domain_data
    assert a.samples.eq(0).all() and b.samples.eq(255).all()
    with pytest.raises(UsageError, match="data_root cannot be given as --data-option"):
        tiny_config(dataset_options={"data_root": str(tmp_path)})


def test_dataset_b_is_recorded_with_its_package():
    """config.json names every plugin as package:name, --dataset-b too (a resumed run means the same data)."""
    registry = gantk.get_registry()
    config = qualified_config(tiny_config(dataset_b="digits"), registry)
    assert config.dataset == config.dataset_b == "gantk:digits"
    assert qualified_config(tiny_config(), registry).dataset_b is None
    assert names_on_resume(config.to_dict(), {"dataset_b": "digits"}) == {"dataset_b": "gantk:digits"}  # no change


def test_the_gan_procedure_refuses_two_domains_in_one_paragraph(tmp_path, cli):
    root = two_domain_folder(tmp_path / "two")
    result = cli(*tiny_cli_args("--dataset", "folder", "--data-root", str(root), "--steps", "1", "--runs-dir",
                                str(tmp_path / "runs")))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: The data set 'gantk:folder' has two domains (A and B)")
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert "Choose a procedure that translates between two domains" in result.stderr
    paired = cli(*tiny_cli_args("--dataset-b", "digits", "--steps", "1", "--runs-dir", str(tmp_path / "runs")))
    assert paired.exit_code == 2 and "has two domains (A and B)" in paired.stderr


def test_a_data_flag_equal_to_the_presets_is_kept_when_the_data_set_changes():
    """'--preset cyclegan-emoji --dataset folder --image-size 64': the new data set drops the preset's data options,
    but not the size the user gave (it was lost when it equalled the preset's)."""
    from gantk.engine.config import apply_overrides

    preset = {"dataset": "emoji-styles", "image_size": 64, "dataset_options": {"share": 0.5}, "gen": "dcgan",
              "disc": "mlp", "disc_options": {"width": 8}}
    folder = apply_overrides(preset, {"dataset": "folder", "image_size": 64})
    assert folder["image_size"] == 64 and "dataset_options" not in folder
    assert "image_size" not in apply_overrides(preset, {"dataset": "folder"})  # the preset's size was for its data
    kept = apply_overrides(preset, {"gen": "resnet", "disc": "mlp"})  # --disc given, equal to the preset's
    assert kept["disc"] == "mlp" and kept["disc_options"] == {"width": 8}
