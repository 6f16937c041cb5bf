"""The ``fastgan`` generator and discriminator (Liu, Zhu, Song & Elgammal 2021, "Towards Faster and Stabilized GAN
Training for High-fidelity Few-shot Image Synthesis", ICLR 2021, arXiv:2101.04775), for 128, 256, 512 and
1024 px. Blocks: :mod:`gantk.plugins.architectures._fastgan_layers`.

**G** (``width`` = ngf, default 64; ``z_dim`` default 256). Channels at r px: ngf × {4: 16, 8: 8, 16: 4, 32: 2,
64: 2, 128: 1, 256: ½, 512: ¼, 1024: ⅛}.

- z as a 1×1 map → ConvT 4×4 to 2·c₄ channels, BN, GLU: the 4×4 map;
- per resolution 8 … S an up-block (×2 nearest, 3×3 conv, BN, GLU); at 8, 32, 128 and 512 px a "comp" block
  (two such convs, each with noise injection before its BN);
- skip-layer excitation (SLE): the 8, 16 and 32 px maps gate the 128, 256 and 512 px maps, those the image has
  (128 px: 8→128; 256: also 16→256; 512 and 1024: also 32→512), as in the paper's Fig. 3;
- toRGB: 3×3 conv to the image channels, tanh.

Noise is random in training and a fixed map saved with the weights in eval mode (sampling, metrics, exports).

**D** (``width`` = ndf, default 64; channels at r px: ndf·64/r, 8·ndf at 8 px). Two branches, as the authors' code:

- the image at S px: a stem to a 256 px map (1024: two 4×4 stride-2 convs; 512: one; 256: a 3×3 conv; 128 px:
  a 3×3 conv to a 128 px map), then residual down-blocks ((main + skip)/2) to 8×8, with SLE inside D (the 256,
  128 and 64 px maps gate the 32, 16 and 8 px maps); a head (1×1 conv, BN, LReLU, 4×4 conv) gives 5×5 logits;
- the image resized to 128 px (area averaging): a 4×4 stride-2 conv and three down-blocks to 8×8, a 4×4 conv:
  5×5 more logits.

``logits`` are the 50 patch logits (B, 50); ``features`` the mean over positions of the 8×8 map (B, 8·ndf).
``sn`` (default true) puts spectral normalisation on every conv of D, as the paper; G's ``sn`` (default true) does
the same in G, as the authors' code does.

**Self-supervision** (§3.2; :class:`gantk.SelfSupervisedDiscriminator`). ``extras`` carry the input D saw and
its maps ``map_8`` (8×8), ``map_16`` (16×16) and ``small_map_8`` (the 128 px branch's 8×8). ``reconstruct``
decodes, each to 128×128 by a small decoder (four GLU up-blocks), ``"whole"``: map_8 vs the input resized to
128; ``"part"``: one quarter of map_16 (8×8; the quarter drawn with torch's global RNG, one per batch) vs the
same quarter of the input, resized to 128; ``"small"``: small_map_8 vs the input resized to 128 (the authors'
third decoder).

**Differences from the authors' code** (github.com/odegeasslbc/FastGAN-pytorch, models.py). Their G also returns
a 128 px image (``to_128``) for D's second branch; here G returns one image and D resizes its input to 128 px
instead. Their G has a fourth SLE, 4→64, which the paper's figure does not show. Their SLE has Swish where the
paper has LeakyReLU (here). Their D has no 128 px stem (it is built for 256, 512 and 1024) and resizes with
nearest neighbours. Parameter counts: docs/training.md.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import gantk
from gantk.options import as_bool, positive_int
from gantk.plugins.architectures._fastgan_layers import (
    LRELU_SLOPE, Decoder, ResidualDownBlock, SkipLayerExcitation, comp_up_block, down_block, quarter,
    resize, up_block,
)
from gantk.plugins.architectures._layers import dcgan_init_, require_image, size_error, sn_option, spectral_normalise_
from gantk.protocols import DataSpec, DiscriminatorOutput

ARCH = "fastgan"
GENERATOR, DISCRIMINATOR = f"generator '{ARCH}'", f"discriminator '{ARCH}'"  # owners named in option errors
SIDES = (128, 256, 512, 1024)
G_WIDTH_FACTORS = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
COMP_RESOLUTIONS = (8, 32, 128, 512)  # up-blocks with two convs and noise ("comp"); the others have one conv
SLE_SOURCES = {128: 8, 256: 16, 512: 32}  # G: the map at 8 px gates the one at 128 px, ...
D_SLE_RATIO = 8  # D: the map at r px gates the one at r/8 px (256→32, 128→16, 64→8)
DECODED_SIDE = 128  # the decoders' output side, and D's second branch's input side
SMALL_BRANCH_BLOCKS = 3  # down-blocks of D's 128 px branch after its first conv: 64 → 32 → 16 → 8


def image_side(spec: DataSpec, role: str) -> int:
    """The side S of the spec's square images when S is 128, 256, 512 or 1024; else a UsageError naming them."""
    _, height, width = require_image(ARCH, role, spec)
    if height == width and height in SIDES:
        return height
    side = max(height, width)
    below = [s for s in SIDES if s <= side][-1:]
    above = [s for s in SIDES if s >= side][:1]
    targets = sorted(set(below + above), key=lambda s: (abs(s - side), -s))
    flag = "--gen" if role == "generator" else "--disc"
    raise size_error(ARCH, role, spec, "square images of 128, 256, 512 or 1024 px", targets,
                     other_fix=f"use {flag} stylegan2, which builds any power-of-two side from 8")


def generator_channels(width: int) -> dict[int, int]:
    """G's channels at each resolution 4 … 1024 px: width × {4: 16, 8: 8, …, 1024: ⅛}, at least 1."""
    return {r: max(1, int(factor * width)) for r, factor in G_WIDTH_FACTORS.items()}


def discriminator_channels(width: int, resolution: int) -> int:
    """D's channels at ``resolution`` px: width·64/r (8·width at 8 px, width/4 at 256 px), at least 1."""
    return max(1, int(width * 64 / resolution))


def init_and_normalise(module: nn.Module, sn: bool) -> nn.Module:
    """The authors' initialisation (conv weights N(0, 0.02), BN γ N(1, 0.02), β 0), then spectral norm if ``sn``."""
    dcgan_init_(module)
    return spectral_normalise_(module) if sn else module


class FastGANGenerator(nn.Module):
    """FastGAN's generator: z → 4×4 (ConvT, BN, GLU) → up-blocks to S px with SLE → 3×3 conv → tanh."""

    def __init__(self, spec: DataSpec, z_dim: int, width: int, options: dict[str, Any]) -> None:
        super().__init__()
        self.spec, self.z_dim, self.options = spec, z_dim, options
        self.conditional, self.num_classes = False, 0
        side = spec.shape[1]
        channels = generator_channels(width)
        self.resolutions = [r for r in G_WIDTH_FACTORS if r <= side]
        self.initial = nn.Sequential(nn.ConvTranspose2d(z_dim, 2 * channels[4], 4, 1, 0, bias=False),  # 1×1 → 4×4
                                     nn.BatchNorm2d(2 * channels[4]), nn.GLU(dim=1))
        self.blocks = nn.ModuleDict({
            str(r): comp_up_block(channels[r // 2], channels[r], r) if r in COMP_RESOLUTIONS
            else up_block(channels[r // 2], channels[r]) for r in self.resolutions[1:]})
        self.excitations = nn.ModuleDict({
            str(high): SkipLayerExcitation(channels[low], channels[high])
            for high, low in SLE_SOURCES.items() if high <= side})
        self.to_rgb = nn.Conv2d(channels[side], spec.channels, 3, 1, 1, bias=False)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        maps = {4: self.initial(z.reshape(z.shape[0], self.z_dim, 1, 1))}  # labels are ignored: unconditional
        for r in self.resolutions[1:]:
            x = self.blocks[str(r)](maps[r // 2])
            if str(r) in self.excitations:
                x = self.excitations[str(r)](maps[SLE_SOURCES[r]], x)  # x_128 · gate(x_8), …
            maps[r] = x
        return torch.tanh(self.to_rgb(maps[self.resolutions[-1]]))


def _stem(side: int, channels: int, width: int) -> tuple[nn.Sequential, int]:
    """D's first layers, the S px image to the first map of the down-path, and that map's side (256, or 128 for
    128 px images): 1024 px two 4×4 stride-2 convs, 512 px one, 256 and 128 px a 3×3 conv."""
    lrelu = nn.LeakyReLU(LRELU_SLOPE)
    if side == 1024:
        c512, c256 = discriminator_channels(width, 512), discriminator_channels(width, 256)
        return nn.Sequential(nn.Conv2d(channels, c512, 4, 2, 1, bias=False), lrelu,
                             nn.Conv2d(c512, c256, 4, 2, 1, bias=False), nn.BatchNorm2d(c256),
                             nn.LeakyReLU(LRELU_SLOPE)), 256
    if side == 512:
        return nn.Sequential(nn.Conv2d(channels, discriminator_channels(width, 256), 4, 2, 1, bias=False), lrelu), 256
    return nn.Sequential(nn.Conv2d(channels, discriminator_channels(width, side), 3, 1, 1, bias=False), lrelu), side


class FastGANDiscriminator(nn.Module):
    """FastGAN's self-supervised discriminator: patch logits from the S px image and from it resized to 128 px,
    and decoders that reconstruct real inputs from its 8×8 and 16×16 maps (see the module docstring)."""

    def __init__(self, spec: DataSpec, width: int, options: dict[str, Any]) -> None:
        super().__init__()
        self.options = options
        channels, side = spec.shape[0], spec.shape[1]
        c = lambda r: discriminator_channels(width, r)  # noqa: E731 - channels at r px
        self.stem, first = _stem(side, channels, width)
        self.resolutions = [first >> i for i in range(first.bit_length()) if first >> i >= 8]  # 256 (or 128) … 8
        self.down = nn.ModuleDict({str(r): ResidualDownBlock(c(2 * r), c(r)) for r in self.resolutions[1:]})
        self.excitations = nn.ModuleDict({
            str(r): SkipLayerExcitation(c(D_SLE_RATIO * r), c(r)) for r in self.resolutions[1:]
            if D_SLE_RATIO * r in self.resolutions})
        self.head = nn.Sequential(nn.Conv2d(c(8), 2 * c(8), 1, 1, 0, bias=False), nn.BatchNorm2d(2 * c(8)),
                                  nn.LeakyReLU(LRELU_SLOPE),
                                  nn.Conv2d(2 * c(8), 1, 4, 1, 0, bias=False))  # 8×8 → 5×5 logits
        small = [DECODED_SIDE // 2 >> i for i in range(SMALL_BRANCH_BLOCKS + 1)]  # 64, 32, 16, 8
        self.small_branch = nn.Sequential(
            nn.Conv2d(channels, c(2 * small[0]), 4, 2, 1, bias=False), nn.LeakyReLU(LRELU_SLOPE),  # 128 → 64 px
            *[down_block(c(2 * a), c(2 * b)) for a, b in zip(small, small[1:])])
        self.small_head = nn.Conv2d(c(16), 1, 4, 1, 0, bias=False)  # 8×8 → 5×5
        base = max(1, width // 2)  # the decoders' width: 32 at ndf 64, as the authors'
        self.decoders = nn.ModuleDict({"whole": Decoder(c(8), channels, base), "part": Decoder(c(16), channels, base),
                                       "small": Decoder(c(16), channels, base)})
        self.feature_dim = c(8)

    def forward(self, x: Tensor, y: Tensor | None = None) -> DiscriminatorOutput:
        maps = {self.resolutions[0]: self.stem(x)}  # labels are ignored: unconditional
        for r in self.resolutions[1:]:
            h = self.down[str(r)](maps[2 * r])
            if str(r) in self.excitations:
                h = self.excitations[str(r)](maps[D_SLE_RATIO * r], h)  # x_32 · gate(x_256), …
            maps[r] = h
        small_map = self.small_branch(resize(x, DECODED_SIDE))
        logits = torch.cat([self.head(maps[8]).flatten(1), self.small_head(small_map).flatten(1)], dim=1)  # (B, 50)
        extras = {"input": x, "map_8": maps[8], "map_16": maps[16], "small_map_8": small_map}
        return DiscriminatorOutput(logits, maps[8].mean(dim=(2, 3)), extras)

    def reconstruct(self, extras: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """{name: (reconstruction, target)}, each (B, C, 128, 128): the whole input from the 8×8 map, a random
        quarter from the matching quarter of the 16×16 map, and the whole input from the 128 px branch."""
        image = extras["input"]
        whole = resize(image, DECODED_SIDE)
        part = int(torch.randint(4, ()).item())  # one quarter per batch, from torch's global RNG
        return {
            "whole": (self.decoders["whole"](extras["map_8"]), whole),
            "part": (self.decoders["part"](quarter(extras["map_16"], part)),
                     resize(quarter(image, part), DECODED_SIDE)),
            "small": (self.decoders["small"](extras["small_map_8"]), whole),
        }


def build_fastgan_generator(spec: DataSpec, z_dim: int = 256, width: int = 64, sn: bool = True) -> FastGANGenerator:
    """FastGAN's generator (Liu et al. 2021) for 128, 256, 512 or 1024 px: GLU up-blocks, noise in the comp blocks,
    skip-layer excitation, tanh. ``width`` is ngf; ``sn`` spectral norm on every conv (the authors' code)."""
    z_dim, width = positive_int(GENERATOR, "z_dim", z_dim), positive_int(GENERATOR, "width", width)
    sn = as_bool(GENERATOR, "sn", sn)
    image_side(spec, "generator")
    generator = FastGANGenerator(spec, z_dim, width, {"z_dim": z_dim, "width": width, "sn": sn})
    return init_and_normalise(generator, sn)


def build_fastgan_discriminator(spec: DataSpec, width: int = 64, sn: Any = True) -> FastGANDiscriminator:
    """FastGAN's self-supervised discriminator (Liu et al. 2021) for 128, 256, 512 or 1024 px. ``width`` is ndf;
    ``sn`` spectral norm on every conv (the paper's)."""
    width = positive_int(DISCRIMINATOR, "width", width)
    sn = sn_option(DISCRIMINATOR, sn)
    image_side(spec, "discriminator")
    return init_and_normalise(FastGANDiscriminator(spec, width, {"width": width, "sn": sn}), sn)


@gantk.hookimpl
def register_generators(register):
    register(ARCH, build_fastgan_generator,
             summary="FastGAN generator (Liu 2021): GLU up-blocks, noise, skip-layer excitation; 128-1024 px")


@gantk.hookimpl
def register_discriminators(register):
    register(ARCH, build_fastgan_discriminator,
             summary="FastGAN self-supervised discriminator (Liu 2021): SLE, two scales, decoders for reconstruction")

