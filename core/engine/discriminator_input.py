"""Generic discriminator input options, ``-D pack=M`` and ``-D mbstd=G``, for every discriminator.

Packing (Lin et al. 2018, "PacGAN: The power of two samples in generative adversarial networks", §3): D
judges M samples of one kind (all real or all fake) at once, concatenated along the channels of an image
(B, C, H, W) → (B/M, M·C, H, W) or the features of a vector (B, F) → (B/M, M·F); its logits are one per
packed group. Minibatch standard deviation (Karras et al. 2018, "Progressive Growing of GANs", §3): one
extra channel (or feature) holding the standard deviation over groups of G inputs, averaged over channels
and pixels, which lets D see the batch's spread.

The build step wraps any discriminator plugin in :class:`InputOptionsDiscriminator` when either option is
on: the plugin is built for the input it will see (a :class:`~gantk.protocols.DataSpec` with M·C (+1)
channels or M·F (+1) features) and receives neither option. Without them the plugin's own module is used.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gantk.errors import UsageError
from gantk.options import positive_int
from gantk.protocols import DataSpec, DiscriminatorOutput, SelfSupervisedDiscriminator

#: The options this module takes out of ``-D`` before the plugin sees them.
INPUT_OPTIONS = ("pack", "mbstd")
EPSILON = 1e-8


def stddev_group_size(batch: int, largest: int = 4) -> int:
    """The group size of the minibatch standard deviation: ``largest`` or the largest divisor of ``batch`` below it."""
    return next(size for size in range(min(largest, batch), 0, -1) if batch % size == 0)


def minibatch_stddev(x: Tensor, group_size: int = 4, features: int = 1) -> Tensor:
    """Karras et al. 2018, §3: x with ``features`` channels appended, each the standard deviation of a channel
    group over a group of samples, averaged over the channels and pixels (one value per group, as a map).

    ``x`` is (B, C, H, W), or (B, F) for vectors (taken as F channels of one pixel; the result is (B, F + features)).
    Groups are samples i, i + B/G, i + 2B/G, ... (B/G groups of G); a group of 1 gives zeros.
    """
    if x.dim() == 2:
        return minibatch_stddev(x[:, :, None, None], group_size, features)[:, :, 0, 0]
    batch, channels, height, width = x.shape
    size = stddev_group_size(batch, group_size)
    y = x.float().reshape(size, batch // size, features, channels // features, height, width)
    y = y - y.mean(dim=0)  # deviation from the group mean
    y = (y.square().mean(dim=0) + EPSILON).sqrt()  # σ over the group, per channel and pixel
    y = y.mean(dim=(2, 3, 4))  # averaged over channels and pixels: (B/G, features)
    y = y.reshape(-1, features, 1, 1).repeat(size, 1, height, width)  # one map per sample
    return torch.cat([x, y.to(x.dtype)], dim=1)


def pack_samples(x: Tensor, pack: int) -> Tensor:
    """(B, C, ...) → (B/M, M·C, ...): samples M·i … M·i + M − 1 concatenated along channels (features)."""
    return x.reshape(x.shape[0] // pack, pack * x.shape[1], *x.shape[2:])


def split_input_options(options: dict[str, Any], name: str) -> tuple[int, int, dict[str, Any]]:
    """``pack`` (1: none) and ``mbstd`` (0: off) from ``-D`` options, validated, and the plugin's own options."""
    owner = f"discriminator '{name}'"
    pack = positive_int(owner, "pack", options.get("pack", 1),
                        hint="the number of samples D judges together (PacGAN), e.g. pack=2 or 4; 1 is no packing")
    mbstd = options.get("mbstd", 0)
    if mbstd not in (0, "0"):  # 0 (the default) turns it off
        mbstd = positive_int(owner, "mbstd", mbstd, hint="the group size of the minibatch standard deviation, "
                                                         "e.g. mbstd=4; 0 turns it off")
    if pack > 1 and options.get("conditioning", "none") not in ("none", None):
        raise UsageError(
            f"-D pack={pack} cannot be combined with -D conditioning={options['conditioning']}: a packed group holds "
            f"{pack} samples of {pack} different classes, and PacGAN defines packing for unconditional D only (one "
            "label per input). Drop -D conditioning (or set it to none), or drop -D pack.")
    rest = {key: value for key, value in options.items() if key not in INPUT_OPTIONS}
    return pack, int(mbstd), rest


def input_spec(spec: DataSpec, pack: int, mbstd: int) -> DataSpec:
    """The :class:`DataSpec` of what a D with these options receives: M·C (+1) channels, or M·F (+1) features."""
    extra = 1 if mbstd else 0
    return DataSpec((pack * spec.shape[0] + extra, *spec.shape[1:]), spec.num_classes, spec.name)


def check_pack_divides(rows: int, pack: int, what: str) -> None:
    """A UsageError unless ``pack`` divides ``rows`` (the rows one D pass receives)."""
    if rows % pack:
        raise UsageError(
            f"-D pack={pack} packs {pack} samples into each discriminator input, but {what} has {rows} rows, "
            f"which {pack} does not divide. Use a --batch-size that is a multiple of {pack} × the number of "
            f"processes × --accumulate (e.g. {pack * 16} or {pack * 32} on one process without --accumulate), "
            "or a pack that divides your batch.")


class InputOptionsDiscriminator(nn.Module):
    """A discriminator plugin behind ``pack`` (PacGAN, Lin et al. 2018) and ``mbstd`` (Karras et al. 2018).

    ``inner`` was built for :func:`input_spec`; its logits (and features) are per packed group. Labels are not
    passed with pack > 1 (a group has M of them); ``options`` are the plugin's with ``pack``/``mbstd`` added,
    so that a run's record rebuilds the same wrapper.
    """

    def __init__(self, inner: nn.Module, pack: int, mbstd: int) -> None:
        super().__init__()
        self.inner, self.pack, self.mbstd = inner, pack, mbstd
        self.feature_dim = inner.feature_dim
        self.options = {**inner.options, **({"pack": pack} if pack > 1 else {}), **({"mbstd": mbstd} if mbstd else {})}

    def forward(self, x: Tensor, labels: Tensor | None = None) -> DiscriminatorOutput:
        if self.pack > 1:
            check_pack_divides(x.shape[0], self.pack, "a batch given to the discriminator")
            x, labels = pack_samples(x, self.pack), None
        if self.mbstd:
            x = minibatch_stddev(x, self.mbstd)
        return self.inner(x, labels)


class SelfSupervisedInputOptionsDiscriminator(InputOptionsDiscriminator):
    """:class:`InputOptionsDiscriminator` around a :class:`~gantk.protocols.SelfSupervisedDiscriminator`: its
    decoders reconstruct the (packed) input the plugin saw, which its ``extras`` carry."""

    def reconstruct(self, extras: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        return self.inner.reconstruct(extras)


def wrap_discriminator(inner: nn.Module, pack: int, mbstd: int) -> InputOptionsDiscriminator:
    """``inner`` behind ``pack``/``mbstd``, keeping the protocols it implements."""
    if isinstance(inner, SelfSupervisedDiscriminator):
        return SelfSupervisedInputOptionsDiscriminator(inner, pack, mbstd)
    return InputOptionsDiscriminator(inner, pack, mbstd)
