"""``emoji-styles``: the emoji in two styles as the two domains of unpaired translation (``--data-root DIR``).

Domain A, "noto", is Google's Noto Emoji and domain B, "twemoji", Twitter's Twemoji: the npm
packages the ``emoji`` data set reads (ALGORITHMS.md §5; :mod:`gantk.plugins.datasets.emoji`, whose
functions this module calls), and ``--download`` fetches both. The same file name in both styles is
the same emoji, so the two domains are a ground truth for evaluating translation (Zhu et al. 2017
train on unpaired data; here the pairing is only known, never used in training).

Decisions:

- **Alignment.** Only the emoji both packages picture are kept: the intersection of the two
  styles' file names, sorted by name, read in that one order for both domains. Index i is the same
  file name, so the same emoji, in both, and the data set is ``paired``. Emoji only one style has
  are left out (the description counts them).
- **Options** are ``emoji``'s and mean the same: ``-O split=train|test|all`` (by a hash of the file
  name, so both styles split alike and stay aligned), ``-O share`` (a nested subset fixed by the
  file name, likewise), ``-O background=white|black``; ``--image-size`` resizes both domains. There
  is no ``style``: the domains are the two styles.
- **Labels.** Each domain keeps its emoji's categories as labels (its own package's ``emoji.json``);
  the class names are the categories of the kept emoji in either package, sorted, the same list in
  both domains. The translation itself does not follow them.
- **Fingerprints.** Each domain has its own (the style, both packages' SHA-256, since the
  intersection depends on both, and the options), so caches of one never serve the other.
"""

from __future__ import annotations

import gantk
from gantk.plugins.datasets.emoji import (
    PACKAGES, emoji_dataset, emoji_folder, emoji_identity, emoji_images, emoji_options, emoji_root, portion, selected,
)
from gantk.protocols import Dataset, two_domain_dataset

NAME = "emoji-styles"
#: (domain name, package style) of domain A, then domain B.
DOMAIN_STYLES = (("noto", "google"), ("twemoji", "twitter"))


def load_emoji_styles(*, data_root=None, image_size: int | None = None, download: bool = False,
                      split: str = "train", background: str = "white", share: float = 1.0) -> Dataset:
    """Noto (A) and Twemoji (B) emoji at 64×64 as two index-aligned domains (npm emoji-datasource 16.0.0)."""
    split, background, share = emoji_options(NAME, split, background, share)
    styles = tuple(style for _, style in DOMAIN_STYLES)
    root = emoji_root(NAME, data_root, download, styles)
    folders = [emoji_folder(root, style, download, dataset=NAME) for style in styles]
    categories = [dict(emoji_images(folder, style)) for folder, style in zip(folders, styles)]
    shared = sorted(set(categories[0]) & set(categories[1]))  # one order for both: index i is one emoji
    left_out = len(set(categories[0]) ^ set(categories[1]))
    class_names = tuple(sorted({listed[name] for listed in categories for name in shared}))
    names = [name for name in shared if selected(name, split, share)]
    both_packages = ":".join(PACKAGES[style][1] for style in styles)
    domains = []
    for (domain, style), folder, listed in zip(DOMAIN_STYLES, folders, categories):
        description = (f"{len(names):,} {style} emoji ({portion(split, share)}, on {background}) in "
                       f"{len(class_names)} categories, from {folder}")
        identity = f"gantk.emoji-styles/1:{domain}:{both_packages}:" + emoji_identity(split, background, image_size,
                                                                                       share)
        domains.append(emoji_dataset(NAME, folder, [(name, listed[name]) for name in names], class_names,
                                     background, image_size, description, identity))
    skipped = f"; {left_out} emoji that only one style pictures left out" if left_out else ""
    description = (f"{len(names):,} emoji in two styles, paired by file name ({portion(split, share)}, on "
                   f"{background}{skipped}): noto from {folders[0]}, twemoji from {folders[1]}")
    return two_domain_dataset(domains[0], domains[1], tuple(domain for domain, _ in DOMAIN_STYLES), name=NAME,
                              paired=True, description=description)


@gantk.hookimpl
def register_datasets(register):
    register(NAME, load_emoji_styles,
             summary="64x64 emoji as two paired domains, Noto (noto) and Twemoji (twemoji), for translation; "
                     "--download")
