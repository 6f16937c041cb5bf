"""Residual blocks of SNGAN's ResNets (Miyato et al. 2018, "Spectral Normalization for Generative
Adversarial Networks", arXiv:1802.05957, appendix B), private to ``gantk.plugins.architectures``.

- :class:`UpBlock` (generator): BN, ReLU, ×2 nearest, conv3×3, BN, ReLU, conv3×3; shortcut ×2
  nearest + conv1×1. Its norms come from the conditioning (``cbn`` makes them per-class).
- :class:`DownBlock` (discriminator): ReLU, conv3×3, ReLU, conv3×3, [avg-pool 2]; shortcut
  [conv1×1], [avg-pool 2]. The *optimised* first block reads the image without the leading ReLU
  (conv3×3, ReLU, conv3×3, avg-pool; shortcut avg-pool + conv1×1).

A shortcut is a learned conv1×1 when the block changes the channels or the side, the identity
otherwise (SNGAN's rule). A 1×1 conv commutes with nearest upsampling and with 2×2 average
pooling (both act on each channel's pixels alone, the conv on each pixel's channels alone), so the
shortcut convolves the smaller map of the two: ``up(conv(x))`` = ``conv(up(x))`` and
``conv(pool(x))`` = ``pool(conv(x))``, with a quarter of the work.
"""

from __future__ import annotations

from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from gantk.conditioning import LabelledLayer


def normalise(norm: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
    """``norm(x, y)`` for a label-dependent norm (cBN), ``norm(x)`` for any other."""
    return norm(x, y) if isinstance(norm, LabelledLayer) else norm(x)


def double(x: Tensor) -> Tensor:
    """×2 nearest-neighbour upsampling: every pixel becomes a 2×2 square."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


class UpBlock(LabelledLayer):
    """SNGAN's generator block: (C_in, s, s) → (C_out, 2s, 2s); ``norm(channels)`` builds its two norms."""

    def __init__(self, c_in: int, c_out: int, norm: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.norm1 = norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)  # a norm follows: its shift replaces a bias
        self.norm2 = norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.conv1(double(F.relu(normalise(self.norm1, x, y))))
        h = self.conv2(F.relu(normalise(self.norm2, h, y)))
        return h + double(self.shortcut(x))  # F(x) + conv1×1(up(x)), the conv on the small map


class DownBlock(nn.Module):
    """SNGAN's discriminator block: (C_in, s, s) → (C_out, s/2, s/2) when ``downsample``, else (C_out, s, s).

    ``first``: the optimised first block, which reads the image itself (no ReLU before its first conv).
    """

    def __init__(self, c_in: int, c_out: int, downsample: bool, first: bool = False) -> None:
        super().__init__()
        self.downsample, self.first = downsample, first
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or downsample) else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self.conv2(F.relu(h))
        skip = x
        if self.downsample:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)  # s -> s/2
        if self.shortcut is not None:
            skip = self.shortcut(skip)  # conv1×1 after the pool: the same as before it, on a quarter of the pixels
        return h + skip  # F(x) + shortcut(x)


class GlobalSumPool(nn.Module):
    """ReLU, then the sum over each channel's map: (B, C, H, W) → (B, C), SNGAN's D features."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x).sum(dim=(2, 3))  # φ(x)_c = Σ_{h,w} relu(x)_{c,h,w}
