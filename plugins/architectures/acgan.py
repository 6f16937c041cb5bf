"""The ``acgan`` generator and discriminator: the ACGAN tutorial's networks (MNIST 28×28), for the
auxiliary classifier GAN of Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary
Classifier GANs", arXiv:1610.09585 (ALGORITHMS.md §3).

G: the conditioning's input (default ``mul``: emb(y) ⊙ z, the tutorial's) → Linear → 128×b×b → BN →
[Upsample ×2, Conv3×3, BN, LeakyReLU 0.2] 128→128, 128→64 → Conv3×3 64→C → tanh.
D: 4 blocks [Conv3×3 stride 2, LeakyReLU 0.2, Dropout2d 0.25, BN (from the 2nd block on)],
C→16→32→64→128, flattened (the features) → Linear → 1 logit.

**Not in the networks.** D has no class head: the ``ac`` loss term attaches its ``Linear(F → K)``
classifier to D's features (``ns+ac``). Nothing ends in a Sigmoid or Softmax: the tutorial's
Softmax followed by CrossEntropyLoss applies softmax twice; gantk's losses all take logits.

**Sizes.** G doubles its first map twice, so a square side S is built from b = S/4: S must be a
multiple of 4 and at least 8 (28 → 7×7, the tutorial's; 32 → 8×8; 8 → 2×2). D's stride-2 convs
(kernel 3, padding 1) take a side s to ⌈s/2⌉, so D reads any image: 28 → 14 → 7 → 4 → 2 and
32 → 16 → 8 → 4 → 2 both end at 128×2×2 = 512 features.

**Differences from the tutorial.** BatchNorm keeps PyTorch's eps (the tutorial's
``BatchNorm2d(n, 0.8)`` sets eps = 0.8 by mistake, as the CGAN tutorial's does); a linear/conv
layer followed by a norm has no bias (the norm's shift replaces it), as in ``dcgan``. Every G norm
comes from the conditioning (``cbn`` makes them class-conditional). D keeps the tutorial's block
order (the BN after the activation and dropout), so its convs keep their biases. Weights follow
DCGAN's init (N(0, 0.02); norm scales N(1, 0.02)), as the tutorial's ``weights_init_normal`` does.
"""

from __future__ import annotations

from torch import nn

import gantk
from gantk.conditioning import resolve_conditioning
from gantk.errors import UsageError
from gantk.options import number_in, positive_int
from gantk.plugins.architectures._layers import (
    BackboneDiscriminator, LatentGenerator, dcgan_init_, pairs, sn_option, spectral_normalise_, square_side,
)
from gantk.protocols import DataSpec

ARCH = "acgan"
G_WIDTHS = (128, 128, 64)  # channels of G's b×b, 2b×2b and 4b×4b maps (the tutorial's)
D_WIDTHS = (16, 32, 64, 128)  # channels of D's four stride-2 blocks
UPSAMPLINGS = 2  # G's side S = b·2²


# --------------------------------------------------------------------------- sizes (shared with contragan)
def halved(side: int, times: int) -> int:
    """The side after ``times`` convs of k 3, stride 2, padding 1: ⌊(s + 2·1 − 3)/2⌋ + 1 = ⌈s/2⌉ each."""
    for _ in range(times):
        side = (side + 1) // 2
    return side


# --------------------------------------------------------------------------- networks
class ACGANGenerator(LatentGenerator):
    """ACGAN tutorial generator: ``net`` maps (B, z_dim) latents (and labels) to (B, C, S, S) images in [-1, 1]."""


class ACGANDiscriminator(BackboneDiscriminator):
    """ACGAN tutorial discriminator: ``body`` ends at the flattened 128×s×s map (the features), ``head`` is
    Linear → 1. The class head is the ``ac`` loss term's."""


def build_acgan_generator(spec: DataSpec, z_dim: int = 100, conditioning: str = "mul") -> ACGANGenerator:
    """ACGAN tutorial generator (Odena et al. 2017): Linear → 128×(S/4)², [Upsample, Conv3×3, BN, LReLU]×2, tanh.

    ``conditioning``: mul (emb(y) ⊙ z, the tutorial's; what ``auto`` picks), concat, cbn or none.
    """
    z_dim = positive_int(f"generator '{ARCH}'", "z_dim", z_dim)
    cond = resolve_conditioning(conditioning, spec, "generator", auto="mul")
    side = square_side(ARCH, "generator", spec, 4, 8, "8, 12, 16, 20, 24, 28 (the tutorial's MNIST), 32, ...")
    base = side // 2 ** UPSAMPLINGS  # b = S/4: 28 -> 7, 32 -> 8
    first, *_ = G_WIDTHS
    label_input, in_dim = cond.generator_input(z_dim)  # z, or emb(y) ⊙ z, or z ⊕ emb(y)
    layers: list[nn.Module] = [*([label_input] if label_input else []),
        nn.Linear(in_dim, first * base * base, bias=False),  # (B, in) -> (B, 128·b²)
        nn.Unflatten(1, (first, base, base)),  # -> (B, 128, b, b)
        cond.generator_norm(first, 2),
    ]
    for c_in, c_out in pairs(G_WIDTHS):
        layers += [nn.Upsample(scale_factor=2),  # s -> 2s (nearest): b -> 2b -> 4b = S
                   nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),  # same side: s + 2·1 - 3 + 1 = s
                   cond.generator_norm(c_out, 2), nn.LeakyReLU(0.2)]
    layers += [nn.Conv2d(G_WIDTHS[-1], spec.channels, 3, 1, 1), nn.Tanh()]  # S×S, 64 -> C channels
    net = dcgan_init_(nn.Sequential(*layers))
    options = {"z_dim": z_dim, "conditioning": cond.name}
    return ACGANGenerator(spec, z_dim, net, options, conditional=cond.conditional)


def build_acgan_discriminator(spec: DataSpec, dropout: float = 0.25, sn: bool = False,
                              conditioning: str = "none") -> ACGANDiscriminator:
    """ACGAN tutorial discriminator (Odena 2017): 4 × [Conv3×3 s2, LReLU 0.2, Dropout2d, BN], Linear → 1 logit.

    No class head (the ``ac`` loss term attaches one to the features) and no sigmoid. ``sn``: spectral
    normalisation on every conv and linear layer (Miyato 2018).
    ``conditioning``: none, projection (what ``auto`` picks), or concat (label maps as extra input channels).
    """
    rate = number_in(f"discriminator '{ARCH}'", "dropout", dropout, at_least=0, below=1, what="a rate")
    sn = sn_option(f"discriminator '{ARCH}'", sn)
    cond = resolve_conditioning(conditioning, spec, "discriminator", auto="projection")
    if not spec.is_image:
        source = f" from the data set '{spec.name}'" if spec.name else ""
        raise UsageError(f"The {ARCH} discriminator reads images, but got vectors of shape {spec.shape}{source}. "
                         "Use --disc mlp for vector data.")
    _, height, width = spec.shape
    label_input, in_channels = cond.discriminator_image_input(spec.channels)
    layers: list[nn.Module] = [*([label_input] if label_input else [])]
    for index, (c_in, c_out) in enumerate(pairs([in_channels, *D_WIDTHS])):
        layers += [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.LeakyReLU(0.2)]  # s -> ⌈s/2⌉: 28 -> 14 -> 7 -> 4 -> 2
        if rate > 0:
            layers.append(nn.Dropout2d(rate))
        if index > 0:  # BN from the 2nd block on, after the dropout (the tutorial's order; default eps)
            layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.Flatten(1))  # (B, 128, s, s) -> (B, 128·s²): the features
    feature_dim = D_WIDTHS[-1] * halved(height, len(D_WIDTHS)) * halved(width, len(D_WIDTHS))  # 28: 128·2·2 = 512
    discriminator = ACGANDiscriminator(
        nn.Sequential(*layers), nn.Linear(feature_dim, 1), feature_dim,
        {"dropout": rate, "sn": sn, "conditioning": cond.name},
        conditional=cond.conditional, label_output=cond.discriminator_output(feature_dim))
    dcgan_init_(discriminator)
    return spectral_normalise_(discriminator) if sn else discriminator


@gantk.hookimpl
def register_generators(register):
    register("acgan", build_acgan_generator,
             summary="ACGAN tutorial generator (Odena 2017): emb(y)⊙z → 128×(S/4)², upsample+conv, tanh; 28×28")


@gantk.hookimpl
def register_discriminators(register):
    register("acgan", build_acgan_discriminator,
             summary="ACGAN tutorial discriminator (Odena 2017): 4 strided 3×3 convs, dropout; class head from 'ac'")
