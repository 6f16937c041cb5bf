"""The ``dcgan`` generator and discriminator (Radford, Metz & Chintala 2016, "Unsupervised
Representation Learning with Deep Convolutional Generative Adversarial Networks", arXiv:1511.06434).

G: the latent as a 1×1 map → ConvT to a b×b map → [BN, ReLU, ConvT(4, 2, 1)]… → tanh.
D mirrors it: [Conv(4, 2, 1), norm (not after the first), LeakyReLU 0.2]… → Conv(b, 1, 0) → one
logit (no sigmoid). Weights N(0, 0.02), norm scales N(1, 0.02).

**Sizes.** A 4×4 stride-2 (transposed) convolution with padding 1 doubles (halves) the side, so a
square side S is built as S = b·2ⁿ with a base b in 4…7 and n ≥ 1 doublings: G's first layer
ConvT(z, ·, b, 1, 0) turns the 1×1 latent into a b×b map and D's last layer Conv(·, 1, b, 1, 0)
turns the b×b map into 1×1. b = 4 gives the powers of two from 8 (8, 16, 32, 64 (the paper's),
128, …), b = 7 the MNIST variant (7 → 14 → 28) and 56, 112, …; b = 5 and 6 add 10, 12, 20, 24,
40, 48, …. Any other side, a non-square image or vector data is a usage error naming these.

**Widths** (option ``width`` = f, default 64). The hidden map at S/2 has f channels; each halving
of the side doubles the channels, capped at 8f (the width of the paper's 4×4 map):

- 64×64: 4×4×8f → 8×8×4f → 16×16×2f → 32×32×f → 64×64×C (f = 64: the paper's network);
- 32×32: 4×4×4f → 8×8×2f → 16×16×f → 32×32×C;
- 28×28: 7×7×2f → 14×14×f → 28×28×C (f = 64: the MNIST tutorial's 128 and 64 channels);
- 128×128: 4×4×8f → 8×8×8f → 16×16×4f → … (the cap).

D uses the same widths in reverse. A conv followed by a normalisation has no bias (the norm's
shift replaces it); the others (G's output, D's input and output layers; every D conv when
``norm="none"``) have one.
"""

from __future__ import annotations

from torch import nn

import gantk
from gantk.plugins.architectures._layers import (
    CONV_NORMS, BackboneDiscriminator, LatentGenerator, conv_norm, dcgan_init_, pairs, require_image, size_error,
    sn_option, spectral_normalise_,
)
from gantk.options import choice, positive_int
from gantk.conditioning import resolve_conditioning
from gantk.protocols import DataSpec

ARCH = "dcgan"
GENERATOR, DISCRIMINATOR = f"generator '{ARCH}'", f"discriminator '{ARCH}'"  # owners named in option errors
BASES = range(4, 8)  # sides of the smallest map: 4×4 (powers of two) … 7×7 (MNIST's 28 = 7·2²)
MAX_WIDTH_FACTOR = 8  # channels stop doubling at 8·width


def plan_side(side: int) -> tuple[int, int] | None:
    """``(b, n)`` with ``side = b·2ⁿ``, ``b`` in 4…7 and ``n ≥ 1``; None if the side cannot be built."""
    base, doublings = side, 0
    while base > max(BASES) and base % 2 == 0:
        base, doublings = base // 2, doublings + 1
    return (base, doublings) if base in BASES and doublings >= 1 else None


def nearest_sides(side: int) -> list[int]:
    """The buildable sides closest to ``side`` from below and above (one if ``side`` is buildable)."""
    below = next((s for s in range(side, 7, -1) if plan_side(s)), None)
    above = next(s for s in range(max(side, 8), 4 * side + 8) if plan_side(s))
    return sorted({s for s in (below, above) if s is not None})


def hidden_widths(width: int, doublings: int) -> list[int]:
    """Channels of G's hidden maps, smallest map (b×b) first, largest (S/2) last: f·2ʲ capped at 8f,
    j being how many halvings the map is below S/2."""
    return [width * min(2 ** j, MAX_WIDTH_FACTOR) for j in reversed(range(doublings))]


def image_plan(spec: DataSpec, role: str) -> tuple[int, int]:
    """``(b, n)`` for the spec's square side, or a UsageError naming the sizes dcgan builds."""
    _, height, width = require_image(ARCH, role, spec)
    plan = plan_side(height) if height == width else None
    if plan is None:
        side = max(height, width)
        raise size_error(ARCH, role, spec, "square images whose side is 4, 5, 6 or 7 times a power of two: 8, 16, "
                         "32, 64, 128, ... (powers of two from 8), 28×28 (the MNIST variant), and also 10, 12, 14, "
                         "20, 24, 40, 48, 56, ...", sorted(nearest_sides(side), key=lambda s: (abs(s - side), -s)))
    return plan


class DCGANGenerator(LatentGenerator):
    """DCGAN generator: ``net`` maps (B, z_dim) latents to (B, C, S, S) images in [-1, 1]."""


class DCGANDiscriminator(BackboneDiscriminator):
    """DCGAN discriminator: ``body`` ends at the b×b map (the features), ``head`` is Conv(b, 1, 0)."""


def build_dcgan_generator(spec: DataSpec, z_dim: int = 100, width: int = 64,
                          conditioning: str = "none") -> DCGANGenerator:
    """DCGAN generator (Radford et al. 2016): ConvT stack from a 1×1 latent map, BN + ReLU, tanh output.

    ``conditioning``: none, concat (z ⊕ emb(y); what ``auto`` picks), cbn (per-class BatchNorm) or mul.
    """
    z_dim, width = positive_int(GENERATOR, "z_dim", z_dim), positive_int(GENERATOR, "width", width)
    cond = resolve_conditioning(conditioning, spec, "generator", auto="concat")
    base, doublings = image_plan(spec, "generator")
    widths = hidden_widths(width, doublings)
    label_input, in_dim = cond.generator_input(z_dim)  # z, or z ⊕ emb(y), or emb(y) ⊙ z
    layers: list[nn.Module] = [*([label_input] if label_input else []),
        nn.Unflatten(1, (in_dim, 1, 1)),                               # (B, z) -> (B, z, 1, 1)
        nn.ConvTranspose2d(in_dim, widths[0], base, 1, 0, bias=False),  # 1×1 -> b×b: (1-1)·1 + b = b
    ]
    for c_in, c_out in pairs(widths):
        # side s -> (s-1)·2 - 2·1 + 4 = 2s
        layers += [cond.generator_norm(c_in, 2), nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
    layers += [cond.generator_norm(widths[-1], 2), nn.ReLU(),
               nn.ConvTranspose2d(widths[-1], spec.channels, 4, 2, 1),  # S/2 -> S, C channels
               nn.Tanh()]
    net = dcgan_init_(nn.Sequential(*layers))
    options = {"z_dim": z_dim, "width": width, "conditioning": cond.name}
    return DCGANGenerator(spec, z_dim, net, options, conditional=cond.conditional)


def build_dcgan_discriminator(spec: DataSpec, width: int = 64, norm: str = "batch", sn: bool = False,
                              conditioning: str = "none", spectral_norm: bool | None = None) -> DCGANDiscriminator:
    """DCGAN discriminator (Radford et al. 2016): strided convs, LeakyReLU 0.2, one logit (no sigmoid).

    ``norm``: ``batch`` (the paper's), ``none`` (WGAN-GP critics), ``layer`` or ``instance``; never
    after the first conv. ``sn`` wraps every conv in spectral normalisation (Miyato 2018); ``spectral_norm``
    is its older name, still read because the configs of earlier runs record it.
    ``conditioning``: none, projection (what ``auto`` picks), or concat (label maps as extra input channels).
    """
    width = positive_int(DISCRIMINATOR, "width", width)
    norm = choice(DISCRIMINATOR, "norm", norm, CONV_NORMS)
    sn = sn_option(DISCRIMINATOR, sn, spectral_norm)
    cond = resolve_conditioning(conditioning, spec, "discriminator", auto="projection")
    base, doublings = image_plan(spec, "discriminator")
    widths = hidden_widths(width, doublings)[::-1]  # S/2 map first, b×b map last
    label_input, in_channels = cond.discriminator_image_input(spec.channels)
    # each Conv(4, 2, 1) halves the side: floor((s + 2·1 - 4) / 2) + 1 = s/2
    layers: list[nn.Module] = [*([label_input] if label_input else []),
                               nn.Conv2d(in_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
    for c_in, c_out in pairs(widths):
        normalisation = conv_norm(norm, c_out)
        layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=normalisation is None))
        if normalisation is not None:
            layers.append(normalisation)
        layers.append(nn.LeakyReLU(0.2))
    body = nn.Sequential(*layers)
    head = nn.Conv2d(widths[-1], 1, base, 1, 0)  # b×b -> 1×1: one logit
    feature_dim = widths[-1] * base * base
    discriminator = DCGANDiscriminator(
        body, head, feature_dim,
        {"width": width, "norm": norm, "sn": sn, "conditioning": cond.name},
        conditional=cond.conditional, label_output=cond.discriminator_output(feature_dim))
    dcgan_init_(discriminator)
    return spectral_normalise_(discriminator) if sn else discriminator


@gantk.hookimpl
def register_generators(register):
    register("dcgan", build_dcgan_generator,
             summary="DCGAN generator (Radford 2016): ConvT + BN + ReLU, tanh; 8, 16, 32, 64, ... or 28×28")


@gantk.hookimpl
def register_discriminators(register):
    register("dcgan", build_dcgan_discriminator,
             summary="DCGAN discriminator (Radford 2016): strided conv + LeakyReLU 0.2; norm=batch|none|layer|instance")
