"""The ``contragan`` generator and discriminator: the ContraGAN tutorial's networks (CIFAR-10 32×32×3),
for Kang & Park 2020, "ContraGAN: Contrastive Learning for Conditional Image Generation", NeurIPS 2020,
arXiv:2006.12681 (ALGORITHMS.md §3).

G: the conditioning's input (default ``concat``: z ⊕ Embedding(K, K)(y), the tutorial's) → Linear →
128·b² features, BN1d, LeakyReLU 0.2 → 128×b×b → ConvT(128, 128, 4, 2, 1) BN LReLU →
ConvT(128, 64, 4, 2, 1) BN LReLU → Conv(64, C, 3, 1, 1) → tanh, with b = S/4.
D: Conv(C, 64, 4, 2, 1) LReLU → Conv(64, 128, 4, 2, 1) BN LReLU → Conv(128, 256, 4, 2, 1) BN LReLU →
flattened 256·(S/8)² features (4096 for 32×32) → Linear → 1 logit.

**Not in the networks.** D has no projection head: the ``contrastive`` loss term (the 2C loss,
ALGORITHMS.md §2) attaches its head and class proxies to D's features (``hinge+contrastive``). D
outputs a raw logit: the tutorial's Sigmoid + BCE (while its text says hinge) is a mistake; every
gantk loss takes logits.

**Sizes.** G's two stride-2 transposed convs double the side twice, (s − 1)·2 − 2·1 + 4 = 2s, so
S = 4b: any multiple of 4 from 8 (32 → 8×8, the tutorial's). D's three stride-2 convs halve it
three times, ⌊(s + 2·1 − 4)/2⌋ + 1 = ⌊s/2⌋, so D needs S a multiple of 8 (32 → 16 → 8 → 4).

**Widths and norms.** Fixed at the tutorial's (128, 128, 64 in G; 64, 128, 256 in D). Every G norm
comes from the conditioning (``cbn`` makes them class-conditional, including the 1-D one over the
128·b² features); BatchNorm keeps PyTorch's eps and momentum. A layer followed by a norm has no bias
(the norm's shift replaces it), as in ``dcgan``. Weights follow DCGAN's init (N(0, 0.02); norm
scales N(1, 0.02)).
"""

from __future__ import annotations

from torch import nn

import gantk
from gantk.conditioning import resolve_conditioning
from gantk.options import positive_int
from gantk.plugins.architectures._layers import (
    BackboneDiscriminator, LatentGenerator, dcgan_init_, pairs, sn_option, spectral_normalise_, square_side,
)
from gantk.protocols import DataSpec

ARCH = "contragan"
G_WIDTHS = (128, 128, 64)  # channels of G's b×b, 2b×2b and 4b×4b maps
D_WIDTHS = (64, 128, 256)  # channels after D's three stride-2 convs
G_SIZES = "8, 12, 16, 20, 24, 28, 32 (the tutorial's CIFAR-10), 36, ..."
D_SIZES = "8, 16, 24, 32 (the tutorial's CIFAR-10), 40, 48, 56, 64, ..."


class ContraGANGenerator(LatentGenerator):
    """ContraGAN tutorial generator: ``net`` maps (B, z_dim) latents (and labels) to (B, C, S, S) images in [-1, 1]."""


class ContraGANDiscriminator(BackboneDiscriminator):
    """ContraGAN tutorial discriminator: ``body`` ends at the flattened 256×(S/8)² map (the features), ``head``
    is Linear → 1. The contrastive projection head is the ``contrastive`` loss term's."""


def build_contragan_generator(spec: DataSpec, z_dim: int = 100, conditioning: str = "concat") -> ContraGANGenerator:
    """ContraGAN tutorial generator (Kang & Park 2020): Linear → 128×(S/4)², two ConvT(4, 2, 1) + BN + LReLU, tanh.

    ``conditioning``: concat (z ⊕ emb(y), the tutorial's; what ``auto`` picks), mul, cbn or none.
    """
    z_dim = positive_int(f"generator '{ARCH}'", "z_dim", z_dim)
    cond = resolve_conditioning(conditioning, spec, "generator", auto="concat")
    side = square_side(ARCH, "generator", spec, 4, 8, G_SIZES,
                       note=" (the contragan discriminator needs a multiple of 8)")
    base = side // 4  # b = S/4: 32 -> 8
    first = G_WIDTHS[0]
    label_input, in_dim = cond.generator_input(z_dim)  # z, or z ⊕ emb(y), or emb(y) ⊙ z
    layers: list[nn.Module] = [*([label_input] if label_input else []),
        nn.Linear(in_dim, first * base * base, bias=False),  # (B, in) -> (B, 128·b²)
        cond.generator_norm(first * base * base, 1),  # BN1d over the 128·b² features (8192 for 32×32)
        nn.LeakyReLU(0.2),
        nn.Unflatten(1, (first, base, base)),  # -> (B, 128, b, b)
    ]
    for c_in, c_out in pairs(G_WIDTHS):
        # side s -> (s-1)·2 - 2·1 + 4 = 2s: b -> 2b -> 4b = S
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), cond.generator_norm(c_out, 2),
                   nn.LeakyReLU(0.2)]
    layers += [nn.Conv2d(G_WIDTHS[-1], spec.channels, 3, 1, 1),  # same side: S + 2·1 - 3 + 1 = S; 64 -> C
               nn.Tanh()]
    net = dcgan_init_(nn.Sequential(*layers))
    options = {"z_dim": z_dim, "conditioning": cond.name}
    return ContraGANGenerator(spec, z_dim, net, options, conditional=cond.conditional)


def build_contragan_discriminator(spec: DataSpec, sn: bool = False,
                                  conditioning: str = "none") -> ContraGANDiscriminator:
    """ContraGAN tutorial discriminator (Kang & Park 2020): 3 × Conv(4, 2, 1), BN from the 2nd, LReLU, Linear → 1.

    No contrastive head (the ``contrastive`` loss term attaches one to the features) and no sigmoid. ``sn``:
    spectral normalisation on every conv and linear layer (Miyato 2018).
    ``conditioning``: none, projection (what ``auto`` picks), or concat (label maps as extra input channels).
    """
    sn = sn_option(f"discriminator '{ARCH}'", sn)
    cond = resolve_conditioning(conditioning, spec, "discriminator", auto="projection")
    side = square_side(ARCH, "discriminator", spec, 8, 8, D_SIZES)
    final = side // 2 ** len(D_WIDTHS)  # S/8: 32 -> 4
    label_input, in_channels = cond.discriminator_image_input(spec.channels)
    # each Conv(4, 2, 1) halves the side: ⌊(s + 2·1 - 4)/2⌋ + 1 = s/2; 32 -> 16 -> 8 -> 4
    layers: list[nn.Module] = [*([label_input] if label_input else []),
                               nn.Conv2d(in_channels, D_WIDTHS[0], 4, 2, 1), nn.LeakyReLU(0.2)]
    for c_in, c_out in pairs(D_WIDTHS):
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
    layers.append(nn.Flatten(1))  # (B, 256, S/8, S/8) -> (B, 256·(S/8)²): the features
    feature_dim = D_WIDTHS[-1] * final * final  # 32×32: 256·4·4 = 4096
    discriminator = ContraGANDiscriminator(
        nn.Sequential(*layers), nn.Linear(feature_dim, 1), feature_dim, {"sn": sn, "conditioning": cond.name},
        conditional=cond.conditional, label_output=cond.discriminator_output(feature_dim))
    dcgan_init_(discriminator)
    return spectral_normalise_(discriminator) if sn else discriminator


@gantk.hookimpl
def register_generators(register):
    register("contragan", build_contragan_generator,
             summary="ContraGAN tutorial generator (Kang 2020): z⊕emb(y) → 128×(S/4)², 2 ConvT+BN, tanh; 32×32")


@gantk.hookimpl
def register_discriminators(register):
    register("contragan", build_contragan_discriminator,
             summary="ContraGAN tutorial discriminator (Kang 2020): 3 strided 4×4 convs; head from 'contrastive'")
