"""The ``resnet-translator`` generator: CycleGAN's image-to-image ResNet (Zhu, Park, Isola & Efros 2017, "Unpaired
Image-to-Image Translation using Cycle-Consistent Adversarial Networks", arXiv:1703.10593, appendix 7.2), after
Johnson, Alahi & Fei-Fei 2016 ("Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
arXiv:1603.08155).

An image-to-image generator (``z_dim = 0``): ``generator(x)`` maps images (B, C, H, W) in [-1, 1] to images of the
same shape in [-1, 1]. With W = ``width`` and N = ``blocks``:

    c7s1-W, d2W, d4W, N × R4W, u2W, uW, c7s1-C (no norm), tanh

- c7s1-k: reflection padding 3, 7×7 conv with k filters, stride 1, norm, ReLU;
- dk: 3×3 conv, stride 2, padding 1, norm, ReLU (halves the side);
- Rk: reflection padding 1, 3×3 conv, norm, ReLU, reflection padding 1, 3×3 conv, norm; plus the input;
- uk: 3×3 fractional-strided conv (ConvTranspose2d stride 2, padding 1, output padding 1), norm, ReLU (doubles it).

The paper uses 6 blocks at 128 px and 9 at 256 px; instance norm without affine parameters; weights N(0, 0.02).

**Sizes.** Both sides a multiple of 4 (two halvings and two doublings give the input's shape back), at least 8
(the 2×2 map between them is the smallest that reflection padding 1 can pad).

**Biases.** A conv followed by a normalisation has no bias: the normalisation subtracts each channel's mean, and
with it the bias. The authors' code keeps those biases under instance norm, where they do nothing; at W = 64,
9 blocks and RGB it counts 11,378,179 parameters, this module 11,372,931 (5,248 fewer, one per such filter).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

import gantk
from gantk.options import choice, positive_int
from gantk.plugins.architectures._layers import (
    TRANSLATION_NORMS, dcgan_init_, multiples_near, normalised_conv, require_image, size_error,
)
from gantk.protocols import DataSpec

ARCH = "resnet-translator"
GENERATOR = f"generator '{ARCH}'"  # the owner named in option errors
SIDE_MULTIPLE, SMALLEST_SIDE = 4, 8


class ResidualBlock(nn.Module):
    """Rk (Johnson et al. 2016, as CycleGAN uses it): x + [pad, conv3×3, norm, ReLU, pad, conv3×3, norm](x)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()

        def conv3x3(activation: nn.Module | None) -> list[nn.Module]:
            return [nn.ReflectionPad2d(1), *normalised_conv(nn.Conv2d, channels, channels, norm, activation,
                                                            instance_affine=False, kernel_size=3)]

        self.body = nn.Sequential(*conv3x3(nn.ReLU()), *conv3x3(None))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)  # y = x + F(x)


class ResnetTranslator(nn.Module):
    """An image-to-image generator: ``net`` maps (B, C, H, W) images to images of the same shape in [-1, 1].

    It declares what gantk.Generator asks for: ``z_dim`` 0 (its input is an image), ``spec``, ``conditional``
    False, ``num_classes`` 0 and the ``options`` that rebuild it.
    """

    z_dim = 0
    conditional = False
    num_classes = 0

    def __init__(self, spec: DataSpec, net: nn.Sequential, options: dict[str, Any]) -> None:
        super().__init__()
        self.spec, self.net, self.options = spec, net, options

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(x)  # labels are accepted and ignored: a translator follows no classes


def check_sides(spec: DataSpec) -> None:
    """A UsageError unless both image sides are multiples of 4 and at least 8, naming the sides to resize to."""
    _, height, width = require_image(ARCH, "generator", spec)
    wrong = [side for side in (height, width) if side % SIDE_MULTIPLE or side < SMALLEST_SIDE]
    if wrong:
        raise size_error(ARCH, "generator", spec, f"images whose sides are multiples of {SIDE_MULTIPLE}, at least "
                         f"{SMALLEST_SIDE} (8, 12, 16, ..., 128, 256: it halves the side twice and doubles it back)",
                         multiples_near(wrong[0], SIDE_MULTIPLE, SMALLEST_SIDE), other_fix="")


def build_resnet_translator(spec: DataSpec, blocks: int = 9, width: int = 64,
                            norm: str = "instance") -> ResnetTranslator:
    """CycleGAN's ResNet generator (Zhu et al. 2017; Johnson et al. 2016): c7s1-W, d2W, d4W, ``blocks`` × R4W, u2W,
    uW, c7s1-C, tanh. ``norm``: instance (the paper's, without affine parameters), batch or none."""
    blocks, width = positive_int(GENERATOR, "blocks", blocks), positive_int(GENERATOR, "width", width)
    norm = choice(GENERATOR, "norm", norm, TRANSLATION_NORMS)
    check_sides(spec)
    channels = spec.channels

    def stage(conv: type[nn.Module], c_in: int, c_out: int, **conv_options: Any) -> list[nn.Module]:
        return normalised_conv(conv, c_in, c_out, norm, nn.ReLU(), instance_affine=False, **conv_options)

    net = nn.Sequential(
        nn.ReflectionPad2d(3), *stage(nn.Conv2d, channels, width, kernel_size=7),        # c7s1-W: side s
        # dk: ⌊(s + 2·1 − 3)/2⌋ + 1 = s/2 for an even s
        *stage(nn.Conv2d, width, 2 * width, kernel_size=3, stride=2, padding=1),        # d2W: s/2
        *stage(nn.Conv2d, 2 * width, 4 * width, kernel_size=3, stride=2, padding=1),    # d4W: s/4
        *(ResidualBlock(4 * width, norm) for _ in range(blocks)),                       # N × R4W: s/4
        # uk: (s' − 1)·2 − 2·1 + 3 + 1 = 2s'
        *stage(nn.ConvTranspose2d, 4 * width, 2 * width, kernel_size=3, stride=2, padding=1, output_padding=1),
        *stage(nn.ConvTranspose2d, 2 * width, width, kernel_size=3, stride=2, padding=1, output_padding=1),
        nn.ReflectionPad2d(3), nn.Conv2d(width, channels, kernel_size=7),              # c7s1-C, no norm
        nn.Tanh(),
    )
    dcgan_init_(net)  # conv weights N(0, 0.02), biases 0 (BatchNorm's γ N(1, 0.02))
    return ResnetTranslator(spec, net, {"blocks": blocks, "width": width, "norm": norm})


@gantk.hookimpl
def register_generators(register):
    register(ARCH, build_resnet_translator,
             summary="CycleGAN's image-to-image ResNet (Zhu 2017): c7s1, 2 down, N residual blocks, 2 up, tanh; "
                     "sides multiples of 4")
