"""The ``resnet`` generator and discriminator: SNGAN's ResNets (Miyato, Kataoka, Koyama & Yoshida 2018,
"Spectral Normalization for Generative Adversarial Networks", arXiv:1802.05957, appendix B; ALGORITHMS.md
§3), with SAGAN's self-attention as an option (Zhang et al. 2019, arXiv:1805.08318).

G: z (128) → Linear → b×b×C₀ → up-blocks (BN, ReLU, ×2 nearest, conv3×3, BN, ReLU, conv3×3;
shortcut ×2 nearest + conv1×1) → BN, ReLU, conv3×3 → tanh.
D: optimised first block (conv3×3, ReLU, conv3×3, avg-pool; shortcut avg-pool + conv1×1) →
down-blocks (ReLU, conv3×3, ReLU, conv3×3, [avg-pool]; shortcut conv1×1, [avg-pool]) → ReLU →
global *sum* pooling (the features, F = the last block's channels) → Linear → 1 logit.

**Layouts** (channels as multiples of ``width`` = w, default 64; the sides after each block):

    size  G: first map → up-block outputs   D: blocks (↓ avg-pool)       D sides          source
    32    4×4×4w → 4w, 4w, 4w               2w↓ 2w↓ 2w 2w                16, 8, 8, 8      SNGAN CIFAR-10
    48    6×6×8w → 4w, 2w, w                w↓ 2w↓ 4w↓ 8w↓ 16w           24, 12, 6, 3, 3  SNGAN STL-10
    64    4×4×16w → 8w, 4w, 2w, w           w↓ 2w↓ 4w↓ 8w↓ 16w           32, …, 4, 4      StudioGAN 64
    128   4×4×16w → 16w, 8w, 4w, 2w, w      w↓ 2w↓ 4w↓ 8w↓ 16w↓ 16w      64, …, 4, 4      SNGAN ImageNet

With w = 64 these are the published widths (32 px: G 256 channels, D 128, as SNGAN's CIFAR-10
ResNet). For 64 px, Mimicry's SNGAN (which follows SNGAN's Chainer code) pools five times, to 2×2;
this module follows StudioGAN's 64-px layout, which ends with a block without pooling at 4×4 as
the 48- and 128-px layouts do. Other sizes are a usage error naming these four.

**Blocks** (:mod:`._resnet_blocks`): G's first conv of a block has no bias (a norm follows it); D
has no norms, so every D conv has a bias. A shortcut is a conv1×1 when the block changes the
channels or the side, the identity otherwise (SNGAN's rule). A D block's convs take C_in → C_out
and C_out → C_out (StudioGAN's); Mimicry's blocks, which follow SNGAN's code, widen in the second
conv (C_in → C_in → C_out): the same network at 32 px, where no block after the first changes the
channels, and a smaller D at the other sizes.

**Conditioning.** G's block norms come from the conditioning: ``cbn`` makes them class-conditional
(what ``auto`` picks, SNGAN-projection's generator), ``concat``/``mul`` condition G's input. G's last
BN stays unconditional, as in SNGAN and StudioGAN. D takes ``projection`` (what ``auto`` picks:
D(x, y) = ψ(φ(x)) + emb(y)ᵀφ(x) on the summed features) or ``concat`` (label maps as input channels).

**Spectral norm.** ``sn`` (default true, as SNGAN) spectrally normalises every D conv and linear
layer, the attention's included; G has none (SNGAN; SAGAN and BigGAN add it to G).

**Attention.** ``attention=S`` adds one SAGAN block (:mod:`._attention`: f, g with C/8 channels,
h with C/2 and a conv1×1 back to C, keys and values max-pooled by 2, γ = 0 at the start) after the
first block whose output side is S: in G any up-block's output side, in D any even output side.

**Initialisation.** Orthogonal (Saxe et al. 2014) for every conv and linear weight, biases 0, BN
γ 1 and β 0: StudioGAN's default for these networks (Mimicry, after SNGAN's code, uses Xavier
uniform with gain √2 on the residual convs).

**Parameters** at w = 64, z = 128, RGB, unconditional, no attention (``tests/test_resnet.py`` checks
them): 32 px G 4,275,971 and D 1,053,825; 48 px G 4,877,635 and D 19,542,721; 64 px G 12,219,715 and
D 19,542,721; 128 px G 32,148,803 and D 38,419,137. With a bias in every G conv, as Mimicry and
StudioGAN have, G would have one more per output channel of each block's first conv (768 more at
32 px). No
published count of SNGAN's networks was found to compare these with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

import gantk
from gantk.conditioning import resolve_conditioning
from gantk.options import choice, positive_int
from gantk.plugins.architectures._attention import SelfAttention
from gantk.plugins.architectures._layers import (
    BackboneDiscriminator, LatentGenerator, orthogonal_init_, pairs, require_image, size_error, sn_option,
    spectral_normalise_,
)
from gantk.plugins.architectures._resnet_blocks import DownBlock, GlobalSumPool, UpBlock
from gantk.protocols import DataSpec

ARCH = "resnet"
GENERATOR, DISCRIMINATOR = f"generator '{ARCH}'", f"discriminator '{ARCH}'"  # owners named in option errors


@dataclass(frozen=True)
class Layout:
    """One image size's networks, channels as multiples of ``width``."""

    base: int  # side of G's first map
    generator: tuple[int, ...]  # G's first map, then each up-block's output
    discriminator: tuple[tuple[int, bool], ...]  # D's blocks: (channels, whether it halves the side)


LAYOUTS = {
    32: Layout(4, (4, 4, 4, 4), ((2, True), (2, True), (2, False), (2, False))),
    48: Layout(6, (8, 4, 2, 1), ((1, True), (2, True), (4, True), (8, True), (16, False))),
    64: Layout(4, (16, 8, 4, 2, 1), ((1, True), (2, True), (4, True), (8, True), (16, False))),
    128: Layout(4, (16, 16, 8, 4, 2, 1), ((1, True), (2, True), (4, True), (8, True), (16, True), (16, False))),
}
SIZES = "square images of side 32, 48, 64 or 128 (SNGAN's layouts)"


def layout_for(spec: DataSpec, role: str) -> Layout:
    """The layout for the spec's square side, or a UsageError naming the four sizes and the nearest ones."""
    _, height, width = require_image(ARCH, role, spec)
    if height == width and height in LAYOUTS:
        return LAYOUTS[height]
    side = max(height, width)
    nearest = sorted(LAYOUTS, key=lambda s: (abs(s - side), -s))[:2]
    raise size_error(ARCH, role, spec, SIZES, nearest)


def attention_side(owner: str, value: Any, sides: list[int], what: str) -> int | None:
    """The ``attention`` option: None (``none``) or one of ``sides``, the feature-map sides ``what`` has."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    picked = choice(owner, "attention", value, ["none", *sides], hint=f"the sides of the feature maps {what}")
    return None if picked == "none" else picked


class ResNetGenerator(LatentGenerator):
    """SNGAN ResNet generator: ``net`` maps (B, z_dim) latents (and labels) to (B, C, S, S) images in [-1, 1]."""


class ResNetDiscriminator(BackboneDiscriminator):
    """SNGAN ResNet discriminator: ``body`` ends at the summed features (B, F), ``head`` is Linear(F → 1)."""


def build_resnet_generator(spec: DataSpec, z_dim: int = 128, width: int = 64, attention: int | None = None,
                           conditioning: str = "none") -> ResNetGenerator:
    """SNGAN ResNet generator (Miyato 2018) for 32, 48, 64 and 128 px: Linear → up-blocks → BN, ReLU, conv → tanh.

    ``width`` scales the channels (64: the papers'). ``attention=S``: a SAGAN block after the up-block whose
    output side is S. ``conditioning``: none, cbn (per-class BN in the blocks; what ``auto`` picks), concat or mul.
    """
    z_dim, width = positive_int(GENERATOR, "z_dim", z_dim), positive_int(GENERATOR, "width", width)
    cond = resolve_conditioning(conditioning, spec, "generator", auto="cbn")
    layout = layout_for(spec, "generator")
    channels = [width * multiple for multiple in layout.generator]
    sides = [layout.base * 2 ** (index + 1) for index in range(len(channels) - 1)]  # each up-block doubles the side
    attention = attention_side(GENERATOR, attention, sides, f"of the {spec.shape[1]}-px generator")
    label_input, in_dim = cond.generator_input(z_dim)  # z, or z ⊕ emb(y), or emb(y) ⊙ z
    layers: list[nn.Module] = [*([label_input] if label_input else []),
        nn.Linear(in_dim, channels[0] * layout.base ** 2),  # (B, in) -> (B, C₀·b²)
        nn.Unflatten(1, (channels[0], layout.base, layout.base)),  # -> (B, C₀, b, b)
    ]
    for (c_in, c_out), side in zip(pairs(channels), sides):
        layers.append(UpBlock(c_in, c_out, lambda c: cond.generator_norm(c, 2)))
        if side == attention:
            layers.append(SelfAttention(c_out))
    layers += [nn.BatchNorm2d(channels[-1]), nn.ReLU(),
               nn.Conv2d(channels[-1], spec.channels, 3, 1, 1),  # same side: S + 2·1 - 3 + 1 = S
               nn.Tanh()]
    net = orthogonal_init_(nn.Sequential(*layers))
    options = {"z_dim": z_dim, "width": width, "attention": attention, "conditioning": cond.name}
    return ResNetGenerator(spec, z_dim, net, options, conditional=cond.conditional)


def build_resnet_discriminator(spec: DataSpec, width: int = 64, attention: int | None = None, sn: bool = True,
                               conditioning: str = "none") -> ResNetDiscriminator:
    """SNGAN ResNet discriminator (Miyato 2018) for 32, 48, 64 and 128 px: residual down-blocks, ReLU, global sum
    pooling, Linear → one logit.

    ``sn``: spectral normalisation on every conv and linear layer (default true, as SNGAN). ``attention=S``: a
    SAGAN block after the first block whose output side is S. ``conditioning``: none, projection (what ``auto``
    picks) or concat (label maps as extra input channels).
    """
    width = positive_int(DISCRIMINATOR, "width", width)
    sn = sn_option(DISCRIMINATOR, sn)
    cond = resolve_conditioning(conditioning, spec, "discriminator", auto="projection")
    layout = layout_for(spec, "discriminator")
    label_input, c_in = cond.discriminator_image_input(spec.channels)
    side, blocks = spec.shape[1], []
    for index, (multiple, downsample) in enumerate(layout.discriminator):
        side = side // 2 if downsample else side
        blocks.append((DownBlock(c_in, width * multiple, downsample, first=index == 0), side))
        c_in = width * multiple
    even_sides = sorted({s for _, s in blocks if s % 2 == 0})  # the attention max-pools its keys by 2
    attention = attention_side(DISCRIMINATOR, attention, even_sides, f"of the {spec.shape[1]}-px discriminator")
    layers: list[nn.Module] = [*([label_input] if label_input else [])]
    for block, block_side in blocks:
        layers.append(block)
        if block_side == attention and not any(isinstance(m, SelfAttention) for m in layers):
            layers.append(SelfAttention(block.conv2.out_channels))
    layers.append(GlobalSumPool())  # (B, F, s, s) -> (B, F): Σ over the map of relu(h)
    body, head = orthogonal_init_(nn.Sequential(*layers)), orthogonal_init_(nn.Linear(c_in, 1))
    discriminator = ResNetDiscriminator(
        body, head, c_in, {"width": width, "attention": attention, "sn": sn, "conditioning": cond.name},
        conditional=cond.conditional, label_output=cond.discriminator_output(c_in))
    return spectral_normalise_(discriminator) if sn else discriminator


@gantk.hookimpl
def register_generators(register):
    register("resnet", build_resnet_generator,
             summary="SNGAN ResNet generator (Miyato 2018): up-blocks, BN/cBN, tanh; 32, 48, 64, 128; attention=S")


@gantk.hookimpl
def register_discriminators(register):
    register("resnet", build_resnet_discriminator,
             summary="SNGAN ResNet discriminator (Miyato 2018): down-blocks, sum pooling, sn=true; projection")
