"""``emoji``: 64×64 colour emoji, Google's Noto or Twitter's Twemoji (``--data-root DIR``, ``--download``).

Source (ALGORITHMS.md §5): the npm packages ``emoji-datasource-google`` and
``emoji-datasource-twitter``, version 16.0.0 (MIT; the images Apache-2.0 for Noto, CC-BY-4.0 for
Twemoji). ``--download`` fetches a package's tarball from the npm registry with the standard
library, checks its SHA-256, and extracts only ``package/emoji.json`` and the 64-px PNGs
(``package/img/<style>/64/*.png``) into ``DIR/emoji-datasource-<style>-16.0.0/``. A tarball
already in ``DIR`` under its registry name (``npm pack emoji-datasource-google@16.0.0`` writes
it) is used instead of the network.

Decisions:

- **Labels** are the emoji's category in ``emoji.json``; a skin-tone variant takes its base
  emoji's. The 9 categories with pictures are the classes, in alphabetical order. The category
  "Component" is left out: its 5 images are the skin-tone swatches, squares of one colour rather
  than emoji. That leaves 3,781 images per style.
- **Alpha**: the RGBA images are composited on white (``-O background=white``, the default, or
  ``black``): ``out = α·rgb + (1 − α)·background``.
- **Held-out split** (``-O split=train|test|all``, default ``train``): an image is in ``test`` when
  the first byte of SHA-256("gantk-emoji-split:" + its file name) is below 26 (about 10%). The
  split depends only on the file name, and the same file name in both styles is the same emoji,
  so the two styles split alike and stay paired (the ground truth for unpaired translation).
- **A share of the split** (``-O share=0.1``, default 1): the limited-data experiments' subset. An
  image is kept when SHA-256("gantk-emoji-share:" + its file name), read as a fraction of 2²⁵⁶, is
  below the share: fixed by the file name, the same in both styles, and a smaller share is a subset of
  a larger one.
- ``--image-size N`` resizes the 64×64 images (antialiased bilinear) as the other image sets do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

import gantk
from gantk.errors import GantkError, UsageError
from gantk.options import choice, number_in
from gantk.plugins.datasets._images import image_dataset, require_folder
from gantk.protocols import Dataset

VERSION = "16.0.0"
#: The registry's tarball URL and its SHA-256 (the registry's own SHA-1 of each file matched when these were taken).
PACKAGES = {
    "google": ("https://registry.npmjs.org/emoji-datasource-google/-/emoji-datasource-google-16.0.0.tgz",
               "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438"),
    "twitter": ("https://registry.npmjs.org/emoji-datasource-twitter/-/emoji-datasource-twitter-16.0.0.tgz",
                "f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877"),
}
LEFT_OUT_CATEGORY = "Component"
BACKGROUNDS = {"white": 255, "black": 0}
SPLITS = ("train", "test", "all")
TEST_BELOW = 26  # first byte of the split hash below this: held out (26/256 ≈ 10%)
SIDE = 64
CHUNK = 1 << 20


def package_name(style: str) -> str:
    return f"emoji-datasource-{style}-{VERSION}"


def tarball_name(style: str) -> str:
    return f"{package_name(style)}.tgz"


def held_out(file_name: str) -> bool:
    """Whether an image is in the test split: by its file name only, so both styles split alike."""
    return hashlib.sha256(f"gantk-emoji-split:{file_name}".encode()).digest()[0] < TEST_BELOW


def in_share(file_name: str, share: float) -> bool:
    """Whether an image is in the first ``share`` of the split: by a hash of its file name (nested for smaller shares)."""
    digest = hashlib.sha256(f"gantk-emoji-share:{file_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * 2.0 ** 64  # the hash as a fraction of 1 < share


def _todo(*styles: str) -> str:
    """How to provide the packages of ``styles``: --download, or their tarballs put in DIR by hand."""
    urls = ", ".join(PACKAGES[style][0] for style in styles)
    files = " and ".join(tarball_name(style) for style in styles)
    packs = "; ".join(f"npm pack emoji-datasource-{style}@{VERSION}" for style in styles)
    them, those = ("it", "that file") if len(styles) == 1 else ("them", "those files")
    return (f"Add --download (with --data-root DIR) to fetch {them} from the npm registry ({urls}), or put "
            f"{those}, {files}, in DIR yourself (e.g. '{packs}').")


def _fetch(style: str, root: Path) -> Path:
    """The package tarball in ``root``: downloaded to a temporary name, checked, then renamed into place."""
    url, _ = PACKAGES[style]
    target = root / tarball_name(style)
    partial = root / f".{target.name}.part"
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, CHUNK)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise GantkError(f"Could not download the emoji images from {url} ({reason}). Check the connection to "
                         f"the npm registry, or fetch that file yourself into '{root}' and run again.") from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target


def _verified(style: str, tarball: Path) -> None:
    _, expected = PACKAGES[style]
    digest = hashlib.sha256()
    with open(tarball, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise GantkError(f"'{tarball}' is not the {package_name(style)} package: its SHA-256 is "
                         f"{digest.hexdigest()}, not {expected}. Delete it and run again with --download.")


def _extract(style: str, tarball: Path, folder: Path) -> None:
    """emoji.json and the 64-px PNGs of ``tarball`` into ``folder`` (made whole, then renamed into place)."""
    images = f"package/img/{style}/{SIDE}/"
    building = folder.parent / f".{folder.name}.part"
    shutil.rmtree(building, ignore_errors=True)
    (building / "img").mkdir(parents=True)
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                name = member.name
                image = name.startswith(images) and name.endswith(".png") and "/" not in name[len(images):]
                if not member.isfile() or not (image or name == "package/emoji.json"):
                    continue  # the other sizes, the sheets, links and folders: never written
                destination = building / "img" / name[len(images):] if image else building / "emoji.json"
                with archive.extractfile(member) as source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
        if not (building / "emoji.json").is_file():
            raise GantkError(f"'{tarball}' holds no package/emoji.json: it is not an emoji-datasource package. "
                             "Delete it and run again with --download.")
        os.replace(building, folder)
    except (tarfile.TarError, EOFError, OSError) as error:
        if isinstance(error, OSError) and error.errno is not None:
            raise  # the file system's (a full disk, permissions): the CLI names the path and what to do
        raise GantkError(f"'{tarball}' could not be read as a gzipped tar file ({error}). Delete it and run "
                         "again with --download.") from error
    finally:
        shutil.rmtree(building, ignore_errors=True)


def emoji_folder(root: Path, style: str, download: bool, dataset: str = "emoji") -> Path:
    """``root``'s extracted package of ``style``, fetched and extracted first when asked or when its tarball is there;
    ``dataset`` is the data set named in the error when it is missing."""
    folder = root / package_name(style)
    if (folder / "emoji.json").is_file():
        return folder
    tarball = root / tarball_name(style)
    if not tarball.is_file():
        if not download:
            raise GantkError(f"The data set '{dataset}' found no {package_name(style)} in '{root}'. {_todo(style)}")
        tarball = _fetch(style, root)
    _verified(style, tarball)
    _extract(style, tarball, folder)
    tarball.unlink()  # the images are extracted; the 60-75 MB tarball is not needed again
    return folder


def emoji_images(folder: Path, style: str) -> list[tuple[str, str]]:
    """(file name, category) of every image of ``style`` in emoji.json, variants included, Component left out."""
    try:
        records = json.loads((folder / "emoji.json").read_bytes())
    except ValueError as error:
        raise GantkError(f"'{folder / 'emoji.json'}' is not valid JSON ({error}). Delete '{folder}' and run again "
                         "with --download.") from error
    has_image = f"has_img_{style}"
    found = {}
    for record in records:
        if record.get("category") == LEFT_OUT_CATEGORY:
            continue
        for entry in [record, *(record.get("skin_variations") or {}).values()]:
            if entry.get(has_image) and entry.get("image"):
                found[entry["image"]] = record["category"]
    return sorted(found.items())


def read_rgb(path: Path, background: int) -> np.ndarray:
    """One RGBA PNG as (3, H, W) uint8 composited on ``background``: α·rgb + (1 − α)·background, rounded."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
    except (OSError, ValueError) as error:
        raise GantkError(f"Could not read the emoji image '{path}' ({error}). Delete '{path.parent.parent}' and "
                         "run again with --download.") from error
    alpha = rgba[..., 3:] / 255.0
    rgb = alpha * rgba[..., :3] + (1.0 - alpha) * background  # out = α·rgb + (1 − α)·background
    return np.rint(rgb).astype(np.uint8).transpose(2, 0, 1)


def emoji_options(dataset: str, split: str, background: str, share: float) -> tuple[str, str, float]:
    """The options ``emoji`` and ``emoji-styles`` share, checked: split, background, share."""
    owner = f"data set '{dataset}'"
    split = choice(owner, "split", split, SPLITS)
    background = choice(owner, "background", background, tuple(BACKGROUNDS))
    share = number_in(owner, "share", share, above=0, at_most=1, what="a share of the split",
                      hint="e.g. 0.1 keeps about a tenth of the images")
    return split, background, share


def emoji_root(dataset: str, data_root, download: bool, styles: tuple[str, ...]) -> Path:
    """--data-root as a folder (made first with --download), or an error saying how to provide ``styles``."""
    if download and data_root is not None:
        Path(data_root).expanduser().mkdir(parents=True, exist_ok=True)
    noun = "package" if len(styles) == 1 else "packages"
    return require_folder(dataset, data_root, f"the emoji-datasource {noun}", _todo(*styles))


def selected(file_name: str, split: str, share: float) -> bool:
    """Whether an image is in ``split`` and in its first ``share`` (both by its file name: alike in both styles)."""
    in_split = split == "all" or held_out(file_name) == (split == "test")
    return in_split and (share == 1 or in_share(file_name, share))


def portion(split: str, share: float) -> str:
    """The part of the images chosen, in words: "train split", "0.1 of the train split"."""
    return f"{split} split" if share == 1 else f"{share:g} of the {split} split"


def emoji_identity(split: str, background: str, image_size: int | None, share: float) -> str:
    """The options' part of an emoji data set's fingerprint (the whole split leaves out the share, so that caches
    made before shares existed stay valid)."""
    return f"{split}:{background}:{image_size}" + (f":share={share!r}" if share != 1 else "")


def emoji_dataset(dataset: str, folder: Path, chosen: list[tuple[str, str]], class_names: tuple[str, ...],
                  background: str, image_size: int | None, description: str, identity: str) -> Dataset:
    """The images ``chosen`` ((file name, category), in this order) of an extracted package, on ``background``,
    labelled by their category's index in ``class_names``; the fingerprint is SHA-256(``identity``)."""
    if not chosen:
        raise UsageError(f"The data set '{dataset}' keeps no image of '{folder}' with these -O split and -O share. "
                         "Give a larger -O share (at most 1) or another -O split.")
    missing = [name for name, _ in chosen if not (folder / "img" / name).is_file()]
    if missing:
        raise GantkError(f"'{folder}' lacks {len(missing)} of the images emoji.json lists (e.g. {missing[0]}). "
                         f"Delete '{folder}' and run again with --download.")
    pixels = torch.from_numpy(np.stack([read_rgb(folder / "img" / name, BACKGROUNDS[background])
                                        for name, _ in chosen]))
    labels = torch.tensor([class_names.index(category) for _, category in chosen])
    images = image_dataset(dataset, pixels, 255, labels, class_names, image_size, description)
    return dataclasses.replace(images, fingerprint=hashlib.sha256(identity.encode()).hexdigest())


def load_emoji(*, data_root=None, image_size: int | None = None, download: bool = False, style: str = "google",
               split: str = "train", background: str = "white", share: float = 1.0) -> Dataset:
    """64×64 colour emoji (Noto or Twemoji, npm emoji-datasource 16.0.0), 9 categories as labels."""
    style = choice("data set 'emoji'", "style", style, tuple(PACKAGES))
    split, background, share = emoji_options("emoji", split, background, share)
    folder = emoji_folder(emoji_root("emoji", data_root, download, (style,)), style, download)
    listed = emoji_images(folder, style)
    class_names = tuple(sorted({category for _, category in listed}))
    chosen = [(name, category) for name, category in listed if selected(name, split, share)]
    description = (f"{len(chosen):,} {style} emoji ({portion(split, share)}, on {background}) in "
                   f"{len(class_names)} categories, from {folder}")
    identity = f"gantk.emoji/1:{PACKAGES[style][1]}:" + emoji_identity(split, background, image_size, share)
    return emoji_dataset("emoji", folder, chosen, class_names, background, image_size, description, identity)


@gantk.hookimpl
def register_datasets(register):
    register("emoji", load_emoji,
             summary="64x64 colour emoji, Noto or Twemoji (-O style=google|twitter), 9 categories; --download")
