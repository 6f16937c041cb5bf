"""FastGAN's blocks (Liu, Zhu, Song & Elgammal 2021, "Towards Faster and Stabilized GAN Training for
High-fidelity Few-shot Image Synthesis", arXiv:2101.04775): G's GLU up-blocks (with noise in the "comp" blocks),
skip-layer excitation, D's down-blocks and the small decoders of its self-supervised task.

Private to ``gantk.plugins.architectures``; the networks are in :mod:`~gantk.plugins.architectures.fastgan`.
Every conv has no bias (a batch norm or a gate follows it), as in the authors' code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.2
SLE_POOL = 4  # skip-layer excitation pools the low-resolution map to 4×4, then a 4×4 conv makes it 1×1


class NoiseInjection(nn.Module):
    """x + s·n with one noise channel n per pixel and a learned strength s (initialised 0), as in StyleGAN.

    Training draws n ~ N(0, 1) afresh; eval mode (sampling, metrics, exports) adds a fixed map drawn at build
    and saved with the weights, so a latent always gives the same image."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)
        return x + self.strength.to(x.dtype) * noise  # x + s·n


def _conv3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)  # 3×3, stride 1, padding 1: the side is kept


def _glu_conv(c_in: int, c_out: int, noise_resolution: int | None = None) -> list[nn.Module]:
    """3×3 conv to 2·c_out channels, [noise], BN, GLU: a ⊙ σ(b) over the two halves (a, b) → c_out channels."""
    noise = [NoiseInjection(noise_resolution)] if noise_resolution else []
    return [_conv3(c_in, 2 * c_out), *noise, nn.BatchNorm2d(2 * c_out), nn.GLU(dim=1)]


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    """×2 nearest upsampling, then one GLU conv (the paper's "UpBlock")."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *_glu_conv(c_in, c_out))


def comp_up_block(c_in: int, c_out: int, resolution: int) -> nn.Sequential:
    """×2 nearest upsampling, then two GLU convs with noise injected before each BN (the "UpBlockComp" at
    ``resolution``, the side after upsampling)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *_glu_conv(c_in, c_out, resolution),
                         *_glu_conv(c_out, c_out, resolution))


class SkipLayerExcitation(nn.Module):
    """Skip-layer excitation (Liu et al. 2021, §3.1, Fig. 3): a low-resolution map gates a high-resolution one per
    channel, y = x_hi · σ(Conv1×1(LReLU(Conv4×4(AdaptiveAvgPool₄(x_lo))))).

    The paper's figure has LeakyReLU; the authors' code has Swish (x·σ(x)) there, with no parameters either way."""

    def __init__(self, low_channels: int, high_channels: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(SLE_POOL),  # any side → 4×4
            nn.Conv2d(low_channels, high_channels, SLE_POOL, 1, 0, bias=False),  # 4×4 → 1×1
            nn.LeakyReLU(LRELU_SLOPE),
            nn.Conv2d(high_channels, high_channels, 1, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        return high * self.gate(low)  # x_hi · σ(...): (B, C_hi, H, W) · (B, C_hi, 1, 1)


def down_block(c_in: int, c_out: int) -> nn.Sequential:
    """4×4 stride-2 conv (the side halves), BN, LeakyReLU 0.2: the down-block of D's 128-px branch."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(LRELU_SLOPE))


class ResidualDownBlock(nn.Module):
    """D's main down-block: (main + skip)/2, main = [down_block, 3×3 conv, BN, LReLU], skip = [2×2 average pool,
    1×1 conv, BN, LReLU] (the authors' "DownBlockComp")."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(*down_block(c_in, c_out), _conv3(c_out, c_out), nn.BatchNorm2d(c_out),
                                  nn.LeakyReLU(LRELU_SLOPE))
        self.skip = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False),
                                  nn.BatchNorm2d(c_out), nn.LeakyReLU(LRELU_SLOPE))

    def forward(self, x: Tensor) -> Tensor:
        return (self.main(x) + self.skip(x)) / 2  # (main + skip) / 2


class Decoder(nn.Module):
    """A small decoder of D's self-supervised task (§3.2): an 8×8 map → AdaptiveAvgPool₈ → four GLU up-blocks
    (channels 4b, 2b, 2b, b at 16, 32, 64, 128 px) → 3×3 conv to the image channels → tanh: a 128×128 image."""

    def __init__(self, c_in: int, image_channels: int, base: int) -> None:
        super().__init__()
        widths = [c_in, 4 * base, 2 * base, 2 * base, base]
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(8), *[up_block(a, b) for a, b in zip(widths, widths[1:])],
                                 _conv3(base, image_channels), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def resize(images: Tensor, side: int) -> Tensor:
    """Images resized to side×side by area averaging (each output pixel the mean of its box; the identity at
    the same size)."""
    if images.shape[-1] == side and images.shape[-2] == side:
        return images
    return F.interpolate(images, size=(side, side), mode="area")


def quarter(x: Tensor, index: int) -> Tensor:
    """Quarter ``index`` of a (B, C, H, W) map: 0 top left, 1 top right, 2 bottom left, 3 bottom right."""
    row, col = divmod(index, 2)
    half_h, half_w = x.shape[-2] // 2, x.shape[-1] // 2
    return x[..., row * half_h:(row + 1) * half_h, col * half_w:(col + 1) * half_w]
