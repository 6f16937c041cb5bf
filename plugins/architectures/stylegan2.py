"""The ``stylegan2`` generator and discriminator (Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020,
"Analyzing and Improving the Image Quality of StyleGAN", arXiv:1912.04958; the mapping network and
style mixing from Karras, Laine & Aila 2019, arXiv:1812.04948).

**G** implements :class:`gantk.StyleGenerator`: ``generator(z, y)`` is ``synthesis(mapping(z, y))``.

- Mapping: z normalised by its second moment (with a conditional G, ⊕ the normalised embedding of the
  one-hot label, the paper's conditional variant), ``map_layers`` × (equalised Linear to ``w_dim``,
  LeakyReLU 0.2 · √2) with learning-rate multiplier 0.01, broadcast to ``num_ws`` = 2·log₂(S) − 2
  styles. In training mode it updates ``w_avg ← β·w_avg + (1 − β)·mean(w)``, β = 0.995, and with
  probability ``mixing`` (0.9) mixes styles: a second latent's styles replace the first's from a
  random crossover layer in [1, num_ws) on (style-mixing regularisation).
- Synthesis (skip architecture): a learned constant 4×4 map; per resolution two modulated and
  demodulated 3×3 convolutions (one at 4×4; the first of each other resolution upsamples ×2), each
  followed by per-pixel noise with a learned strength (initialised 0), a bias and LeakyReLU·√2; a
  modulated 1×1 toRGB (no demodulation) per resolution, the image being the sum of the upsampled
  toRGB outputs. Layers and resampling: :mod:`gantk.plugins.architectures._style_layers`.
- Output: no tanh (as in the paper). In eval mode (sampling, metrics, exports) the image is clamped
  to [-1, 1], the data's range, as the official code clamps when it writes pictures; training
  sees the raw values. Noise: random in training, the fixed maps saved with the weights in eval
  mode, so a seed gives the same samples (``generator.noise_mode = "random" | "const" | "none"``
  overrides it; None: that default).

**D** is the residual discriminator: fromRGB (1×1), per resolution S … 8 a block (3×3 conv, ×½
down, 3×3 conv; skip: ×½ down, 1×1 conv without bias; (main + skip)/√2), then at 4×4 the minibatch
standard deviation (group ``mbstd_group`` = 4, or the largest divisor of the batch below it, one
feature), a 3×3 conv, a Linear to the features (``feature_dim`` = the 4×4 map's channels) and a
Linear to one logit. Conditional D: gantk's conditionings (``projection`` for ``conditioning=auto``:
ψ(φ(x)) + emb(y)ᵀφ(x) on those features, Miyato & Koyama 2018; the official code's conditional D
keeps only a projection term, a per-class vector times a linear map of the features, scaled).
``sn=true`` puts spectral normalisation on every layer, replacing the equalised learning rate's
scaling.

Every conv and linear layer has an equalised learning rate. Channels at resolution r:
min(``channel_base``/r, ``channel_max``), as in the official code.

**Sizes.** Square images whose side is a power of two, at least 8.

**Parameter count** at 64×64×3 with the ``stylegan2`` preset's options (z = w = 256, 2 mapping
layers, channel_base 4096, channel_max 128): G 1,706,840, D 1,465,025. The official configuration
for 64 px (stylegan2-ada-pytorch's ``train.py --cfg auto``: z = w = 512, 2 mapping layers,
channel_base 16384 = 0.5·32768, channel_max 512) has no published parameter count; built with
these layers and its widths it has G 22,243,608 and D 23,407,361 (the same layer shapes as the
official networks: the official code adds no other parameters at this size). The difference is
the widths: 512 channels at 4…32 px and 256 at 64 px there, 128 and 64 here (convolution weights
grow with the square of the width), and 512-wide styles there against 256 here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gantk
from gantk.conditioning import resolve_conditioning
from gantk.errors import UsageError
from gantk.options import as_bool, choice, number_in, positive_int
from gantk.plugins.architectures._layers import BackboneDiscriminator, require_image, size_error, spectral_normalise_
from gantk.plugins.architectures._style_layers import (
    EqualConv2d, EqualLinear, MinibatchStdDev, ScaledLeakyReLU, SynthesisLayer, ToRGB, downsample,
    normalise_second_moment, upsample,
)
from gantk.protocols import DataSpec

ARCH = "stylegan2"
GENERATOR, DISCRIMINATOR = f"generator '{ARCH}'", f"discriminator '{ARCH}'"  # owners named in option errors
MAPPING_LR_MUL = 0.01  # the mapping network's learning-rate multiplier
W_AVG_BETA = 0.995  # decay of w_avg, the running mean of the mapping's outputs
NOISE_MODES = (None, "random", "const", "none")
SQRT_HALF = 1.0 / math.sqrt(2.0)


def image_side(spec: DataSpec, role: str) -> int:
    """The side S of the spec's square images when S is a power of two ≥ 8; else a UsageError naming the sizes."""
    _, height, width = require_image(ARCH, role, spec)
    if height == width and height >= 8 and height & (height - 1) == 0:
        return height
    side = max(height, width, 8)
    below, above = 2 ** int(math.log2(side)), 2 ** math.ceil(math.log2(side))
    targets = sorted({max(below, 8), above}, key=lambda s: (abs(s - side), -s))
    raise size_error(ARCH, role, spec, "square images whose side is a power of two, at least 8: 8, 16, 32, 64, 128, "
                     "...", targets)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Channels of the maps at ``resolution``: min(channel_base / resolution, channel_max)."""
    return min(channel_base // resolution, channel_max)


def channel_widths(side: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """Channels at each resolution from 4 to ``side``: {4: …, 8: …, …, side: …}."""
    return {resolution: channels_at(resolution, channel_base, channel_max)
            for resolution in (2 ** k for k in range(2, int(math.log2(side)) + 1))}


def check_widths(owner: str, side: int, channel_base: Any, channel_max: Any) -> tuple[int, int]:
    """``channel_base`` and ``channel_max`` as positive ints, the base large enough to give the S×S maps a channel."""
    channel_base = positive_int(owner, "channel_base", channel_base)
    channel_max = positive_int(owner, "channel_max", channel_max)
    if channel_base < side:
        raise UsageError(f"The {owner} option 'channel_base' must be at least the image side {side} (the maps at "
                         f"resolution r get min(channel_base / r, channel_max) channels), got {channel_base}. Use e.g. "
                         f"-G channel_base={side * 64}.")
    return channel_base, channel_max


def mix_styles(ws: Tensor, other: Tensor, crossover: int) -> Tensor:
    """Style mixing: the styles of ``ws`` (B, num_ws, w_dim) before layer ``crossover``, those of ``other`` from it on
    (``crossover`` 0: ``other`` alone)."""
    return torch.cat([ws[:, :crossover], other[:, crossover:]], dim=1)


class MappingNetwork(nn.Module):
    """z (⊕ the label embedding) → w: normalised inputs, ``layers`` × (equalised Linear, LeakyReLU·√2), lr_mul 0.01."""

    def __init__(self, z_dim: int, w_dim: int, layers: int, num_classes: int) -> None:
        super().__init__()
        self.embed = EqualLinear(num_classes, w_dim) if num_classes else None  # one-hot label → w_dim
        sizes = [z_dim + (w_dim if num_classes else 0)] + [w_dim] * layers
        net: list[nn.Module] = []
        for in_features, out_features in zip(sizes, sizes[1:]):
            net += [EqualLinear(in_features, out_features, lr_mul=MAPPING_LR_MUL), ScaledLeakyReLU()]
        self.net = nn.Sequential(*net)

    def forward(self, z: Tensor, y: Tensor | None) -> Tensor:
        x = normalise_second_moment(z)
        if self.embed is not None:
            if y is None:
                raise UsageError(f"This {GENERATOR} is class-conditional and needs labels y, but got none. Pass labels "
                                 "(gantk sample --label K) or train an unconditional model (-G conditioning=none).")
            label = F.one_hot(y, self.embed.in_features).to(z.dtype)
            x = torch.cat([x, normalise_second_moment(self.embed(label)).to(x.dtype)], dim=1)  # z ⊕ emb(y)
        return self.net(x)


class SynthesisNetwork(nn.Module):
    """Styles (B, num_ws, w_dim) → images: a learned 4×4 constant, two modulated convs per resolution, skip toRGBs."""

    def __init__(self, side: int, channels: int, w_dim: int, channel_base: int, channel_max: int) -> None:
        super().__init__()
        width = channel_widths(side, channel_base, channel_max)
        self.const = nn.Parameter(torch.randn(width[4], 4, 4))  # the learned constant input, N(0, 1)
        self.convs = nn.ModuleList([SynthesisLayer(width[4], width[4], w_dim, 4)])
        self.to_rgbs = nn.ModuleList([ToRGB(width[4], channels, w_dim)])
        for resolution in list(width)[1:]:
            self.convs.append(SynthesisLayer(width[resolution // 2], width[resolution], w_dim, resolution, up=True))
            self.convs.append(SynthesisLayer(width[resolution], width[resolution], w_dim, resolution))
            self.to_rgbs.append(ToRGB(width[resolution], channels, w_dim))
        # styles: the 4×4 conv w₀, its toRGB w₁; resolution k ≥ 1 convs w_{2k−1}, w_{2k} and toRGB w_{2k+1}
        self.num_ws = len(self.convs) + 1

    def forward(self, ws: Tensor, noise_mode: str) -> Tensor:
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.convs[0](x, ws[:, 0], noise_mode)
        image = self.to_rgbs[0](x, ws[:, 1])
        for block, to_rgb in enumerate(self.to_rgbs[1:], start=1):
            x = self.convs[2 * block - 1](x, ws[:, 2 * block - 1], noise_mode)
            x = self.convs[2 * block](x, ws[:, 2 * block], noise_mode)
            image = upsample(image) + to_rgb(x, ws[:, 2 * block + 1])  # skip: Σ upsampled toRGB outputs
        return image


class StyleGAN2Generator(nn.Module):
    """The StyleGAN2 generator (a :class:`gantk.StyleGenerator`)."""

    def __init__(self, spec: DataSpec, *, z_dim: int, w_dim: int, map_layers: int, channel_base: int,
                 channel_max: int, mixing: float, conditional: bool, options: dict) -> None:
        super().__init__()
        self.spec, self.z_dim, self.w_dim, self.mixing, self.options = spec, z_dim, w_dim, mixing, options
        self.conditional = conditional
        self.num_classes = spec.num_classes if conditional else 0
        self.mapping_network = MappingNetwork(z_dim, w_dim, map_layers, self.num_classes)
        self.synthesis_network = SynthesisNetwork(spec.shape[1], spec.channels, w_dim, channel_base, channel_max)
        self.num_ws = self.synthesis_network.num_ws
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.noise_mode: str | None = None  # None: random in training, const in eval mode

    def mapping(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Styles (B, num_ws, w_dim). In training mode: w_avg is updated, and styles are mixed with probability
        ``mixing`` (a second latent from a random crossover layer on)."""
        w = self.mapping_network(z, y)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, W_AVG_BETA))  # β·w_avg + (1−β)·E[w]
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        # the draws are on the CPU's generator: no device synchronisation, and possible on the meta device
        if self.training and self.mixing > 0 and float(torch.rand((), device="cpu")) < self.mixing:
            crossover = int(torch.randint(1, self.num_ws, (), device="cpu"))
            other = self.mapping_network(torch.randn_like(z), y).unsqueeze(1).repeat(1, self.num_ws, 1)
            ws = mix_styles(ws, other, crossover)
        return ws

    def synthesis(self, ws: Tensor) -> Tensor:
        """Images (B, C, S, S) from styles; clamped to [-1, 1] in eval mode."""
        if self.noise_mode not in NOISE_MODES:
            raise UsageError(f"The {GENERATOR}'s noise_mode must be random, const, none or None (random in training, "
                             f"const in eval mode), got {self.noise_mode!r}.")
        noise_mode = self.noise_mode or ("random" if self.training else "const")
        image = self.synthesis_network(ws, noise_mode)
        return image if self.training else image.clamp(-1.0, 1.0)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.synthesis(self.mapping(z, y))

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, mixing={self.mixing}"


class DiscriminatorBlock(nn.Module):
    """A residual block at one resolution: (conv3×3 → ×½ → conv3×3, LeakyReLU·√2 after each) + (×½ → conv1×1),
    summed and scaled by 1/√2."""

    def __init__(self, in_channels: int, out_channels: int, equalised: bool) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, equalised=equalised)
        self.act0 = ScaledLeakyReLU()
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, equalised=equalised)
        self.act1 = ScaledLeakyReLU()
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, equalised=equalised)

    def forward(self, x: Tensor) -> Tensor:
        # the second conv runs on the downsampled map; the official code filters, then convolves with stride 2:
        # the same cost, its taps one full-resolution pixel apart where these are two
        main = self.act1(self.conv1(downsample(self.act0(self.conv0(x)))))
        return (main + self.skip(downsample(x))) * SQRT_HALF  # (main + skip)/√2


def build_stylegan2_generator(spec: DataSpec, z_dim: int = 256, w_dim: int = 256, map_layers: int = 8,
                              channel_base: int = 4096, channel_max: int = 128, mixing: float = 0.9,
                              conditioning: str = "none") -> StyleGAN2Generator:
    """StyleGAN2 generator (Karras 2020): mapping network, modulated/demodulated convs, noise, skip toRGBs.

    ``conditioning``: none, concat (the label's embedding joined to z in the mapping network; what ``auto`` picks
    on labelled data) or auto.
    """
    z_dim, w_dim = positive_int(GENERATOR, "z_dim", z_dim), positive_int(GENERATOR, "w_dim", w_dim)
    map_layers = positive_int(GENERATOR, "map_layers", map_layers, hint="the paper's 8, or 2 for small data")
    side = image_side(spec, "generator")
    channel_base, channel_max = check_widths(GENERATOR, side, channel_base, channel_max)
    mixing = number_in(GENERATOR, "mixing", mixing, at_least=0, at_most=1, what="a probability",
                       hint="style mixing regularisation; 0 turns it off")
    conditioning = "none" if conditioning is None else conditioning  # -G conditioning=none reads as None
    conditioning = choice(GENERATOR, "conditioning", conditioning, ("none", "concat", "auto"),
                          hint="stylegan2 joins the label's embedding to z in its mapping network: concat")
    if conditioning == "auto":
        conditioning = "concat" if spec.labelled else "none"
    if conditioning == "concat" and not spec.labelled:
        raise UsageError(f"The {GENERATOR} option conditioning=concat needs a labelled data set (num_classes > 0); "
                         f"'{spec.name}' has no labels. Use conditioning=none.")
    options = {"z_dim": z_dim, "w_dim": w_dim, "map_layers": map_layers, "channel_base": channel_base,
               "channel_max": channel_max, "mixing": mixing, "conditioning": conditioning}
    return StyleGAN2Generator(spec, z_dim=z_dim, w_dim=w_dim, map_layers=map_layers, channel_base=channel_base,
                              channel_max=channel_max, mixing=mixing, conditional=conditioning == "concat",
                              options=options)


def build_stylegan2_discriminator(spec: DataSpec, channel_base: int = 4096, channel_max: int = 128,
                                  mbstd_group: int = 4, sn: bool = False,
                                  conditioning: str = "none") -> BackboneDiscriminator:
    """StyleGAN2 residual discriminator (Karras 2020) with minibatch standard deviation; one logit, no sigmoid.

    ``conditioning``: none, projection (what ``auto`` picks) or concat (label maps as input channels).
    ``sn``: spectral normalisation on every layer.
    """
    side = image_side(spec, "discriminator")
    channel_base, channel_max = check_widths(DISCRIMINATOR, side, channel_base, channel_max)
    mbstd_group = positive_int(DISCRIMINATOR, "mbstd_group", mbstd_group, hint="samples per group, e.g. 4")
    sn = as_bool(DISCRIMINATOR, "sn", sn)
    cond = resolve_conditioning(conditioning, spec, "discriminator", auto="projection")
    equalised = not sn  # spectral normalisation sets each layer's scale instead
    label_input, in_channels = cond.discriminator_image_input(spec.channels)
    width = channel_widths(side, channel_base, channel_max)
    layers: list[nn.Module] = [*([label_input] if label_input else []),
                               EqualConv2d(in_channels, width[side], 1, equalised=equalised), ScaledLeakyReLU()]
    resolution = side
    while resolution > 4:
        layers.append(DiscriminatorBlock(width[resolution], width[resolution // 2], equalised))
        resolution //= 2
    features = width[4]
    layers += [MinibatchStdDev(mbstd_group), EqualConv2d(features + 1, features, 3, equalised=equalised),
               ScaledLeakyReLU(), nn.Flatten(), EqualLinear(features * 16, features, equalised=equalised),
               ScaledLeakyReLU()]
    head = EqualLinear(features, 1, equalised=equalised)
    discriminator = BackboneDiscriminator(
        nn.Sequential(*layers), head, features,
        {"channel_base": channel_base, "channel_max": channel_max, "mbstd_group": mbstd_group, "sn": sn,
         "conditioning": cond.name},
        conditional=cond.conditional, label_output=cond.discriminator_output(features))
    return spectral_normalise_(discriminator) if sn else discriminator


@gantk.hookimpl
def register_generators(register):
    register(ARCH, build_stylegan2_generator,
             summary="StyleGAN2 generator (Karras 2020): mapping network, modulated convs, noise, skip toRGB; "
                     "8, 16, 32, 64, ... px")


@gantk.hookimpl
def register_discriminators(register):
    register(ARCH, build_stylegan2_discriminator,
             summary="StyleGAN2 residual discriminator (Karras 2020) with minibatch stddev; conditioning, sn")
