"""The ``patchgan`` discriminator: the 70×70 PatchGAN of pix2pix (Isola, Zhu, Zhou & Efros 2017, "Image-to-Image
Translation with Conditional Adversarial Networks", arXiv:1611.07004, §3.2.2 and appendix 6.1.2), CycleGAN's
discriminator (Zhu et al. 2017, arXiv:1703.10593, appendix 7.2).

It scores every overlapping patch of the image instead of the whole image: the logits are a map (B, H', W'), one
per patch, and the loss terms average over all of them. With W = ``width`` and the default ``layers`` = 3:

    C64 (no norm, stride 2), C128 (stride 2), C256 (stride 2), C512 (stride 1), conv → 1 channel (stride 1)

every conv 4×4 with padding 1, each but the last followed by the norm (not after the first) and LeakyReLU 0.2.
``layers`` counts the stride-2 convs (channels W·2ⁱ, capped at 8W); the stride-1 conv after them has
W·min(2^layers, 8) channels. The papers write C512 with stride 2; the authors' code, whose receptive field the
papers report, gives it stride 1, as here.

**Receptive field.** Back from one logit, a 4×4 stride-1 conv adds 3 pixels and a stride-2 one doubles and adds 2:
4 → 7 → 16 → 34 → 70 for layers = 3 (layers = 1: 16, 2: 34, 4: 142).

**Sizes.** A stride-2 conv takes the side s to ⌊s/2⌋ and each stride-1 conv takes 1 off, so the logit map has
sides ⌊s/2^layers⌋ − 2 (6×6 at 64 px, 30×30 at 256 px); a side below 3·2^layers (24 for layers = 3) would leave
no patch and is a usage error. Non-square images work.

**Features** (what class-aware loss terms read): the mean over positions of the last hidden map, the stride-1
conv's output, F = W·min(2^layers, 8) (512 by default).

**Parameters** at W = 64, RGB: 2,763,841. The authors' code keeps a bias before each instance norm, where the
norm's mean subtraction cancels it: 896 more (2,764,737).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

import gantk
from gantk.options import choice, positive_int
from gantk.plugins.architectures._layers import (
    TRANSLATION_NORMS, dcgan_init_, normalised_conv, require_image, size_error, sn_option, spectral_normalise_,
)
from gantk.protocols import DataSpec, DiscriminatorOutput

ARCH = "patchgan"
DISCRIMINATOR = f"discriminator '{ARCH}'"  # the owner named in option errors
MAX_WIDTH_FACTOR = 8  # channels stop doubling at 8·width (C512 at width 64)


class PatchDiscriminator(nn.Module):
    """A patch discriminator: ``body`` maps images to the last hidden map, ``head`` (a conv to one channel) to one
    logit per patch, (B, H', W'); the features are the hidden map's mean over positions, (B, ``feature_dim``)."""

    def __init__(self, body: nn.Sequential, head: nn.Module, feature_dim: int, options: dict[str, Any]) -> None:
        super().__init__()
        self.body, self.head = body, head
        self.feature_dim, self.options = feature_dim, options

    def forward(self, x: Tensor, y: Tensor | None = None) -> DiscriminatorOutput:
        hidden = self.body(x)  # labels are accepted and ignored: the PatchGAN is unconditional
        return DiscriminatorOutput(self.head(hidden)[:, 0], hidden.mean(dim=(2, 3)))  # (B, H', W'), (B, F)


def smallest_side(layers: int) -> int:
    """The smallest image side that leaves a 1×1 logit map: ⌊s/2^layers⌋ − 2 ≥ 1, i.e. s ≥ 3·2^layers."""
    return 3 * 2 ** layers


def check_sides(spec: DataSpec, side: int, layers: int) -> None:
    """A UsageError when the image's shorter ``side`` leaves no patch with ``layers`` stride-2 convs, naming the
    side to resize to and the most layers that fit this one (a smaller receptive field)."""
    minimum = smallest_side(layers)
    if side >= minimum:
        return
    fitting = max((n for n in range(1, layers) if smallest_side(n) <= side), default=None)
    raise size_error(ARCH, "discriminator", spec,
                     f"images whose sides are at least {minimum} with layers={layers} (3·2^layers: each stride-2 "
                     "conv halves the side and the last two convs take 2 off, leaving one patch)", [minimum],
                     other_fix=f"use fewer stride-2 convs (-D layers={fitting})" if fitting else None)


def build_patchgan_discriminator(spec: DataSpec, width: int = 64, layers: int = 3, norm: str = "instance",
                                 sn: bool = False) -> PatchDiscriminator:
    """The 70×70 PatchGAN (Isola et al. 2017; CycleGAN's D): 4×4 convs, ``layers`` of them with stride 2, LeakyReLU
    0.2, one logit per patch. ``norm``: instance (the papers', without affine parameters), batch or none; never after
    the first conv. ``sn`` wraps every conv in spectral normalisation (Miyato et al. 2018)."""
    width, layers = positive_int(DISCRIMINATOR, "width", width), positive_int(DISCRIMINATOR, "layers", layers)
    norm = choice(DISCRIMINATOR, "norm", norm, TRANSLATION_NORMS)
    sn = sn_option(DISCRIMINATOR, sn)
    channels, height, image_width = require_image(ARCH, "discriminator", spec)
    check_sides(spec, min(height, image_width), layers)
    widths = [width * min(2 ** i, MAX_WIDTH_FACTOR) for i in range(layers + 1)]  # W, 2W, 4W, ..., capped at 8W

    def ck(c_in: int, c_out: int, stride: int, norm_kind: str = norm) -> list[nn.Module]:
        return normalised_conv(nn.Conv2d, c_in, c_out, norm_kind, nn.LeakyReLU(0.2), instance_affine=False,
                               kernel_size=4, stride=stride, padding=1)

    # Ck with stride 2: ⌊(s + 2·1 − 4)/2⌋ + 1 = ⌊s/2⌋; the first without norm
    body = ck(channels, widths[0], 2, norm_kind="none")
    for c_in, c_out in zip(widths[:-2], widths[1:-1]):
        body += ck(c_in, c_out, 2)
    body += ck(widths[-2], widths[-1], 1)  # stride 1: s + 2·1 − 4 + 1 = s − 1
    head = nn.Conv2d(widths[-1], 1, kernel_size=4, padding=1)  # one logit per patch: s − 1 again
    discriminator = PatchDiscriminator(nn.Sequential(*body), head, widths[-1],
                                       {"width": width, "layers": layers, "norm": norm, "sn": sn})
    dcgan_init_(discriminator)  # conv weights N(0, 0.02), biases 0 (BatchNorm's γ N(1, 0.02))
    return spectral_normalise_(discriminator) if sn else discriminator


@gantk.hookimpl
def register_discriminators(register):
    register(ARCH, build_patchgan_discriminator,
             summary="PatchGAN (Isola 2017; CycleGAN's D): one logit per 70×70 patch; 4×4 convs, LeakyReLU 0.2, "
                     "instance norm")
