"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same differentiable transforms on real and fake images, in D's and G's updates, with
independent draws per sample. Three policies, applied in this order:

- ``color``: brightness ``x + U(−0.5, 0.5)``; saturation ``m + (x − m)·U(0, 2)`` around each pixel's
  channel mean m; contrast ``m + (x − m)·U(0.5, 1.5)`` around the image's mean m;
- ``translation``: an integer shift of up to 1/8 of the side on each axis, zero fill;
- ``cutout``: a zero square of half the side, centred anywhere in the image (cut by the border).

gantk's own code rather than kornia's: kornia clamps to [0, 1] (images here are in [−1, 1]), its
saturation works in HSV and its contrast scales around 0, its translation is fractional and its
erasing draws a random size, so none of them is the paper's operation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import gantk
from gantk.plugins.augmentations._draws import chosen, in_layout_of, per_sample, require_images, uniform
from gantk.protocols import Augmentation, DataSpec

POLICIES = ("color", "translation", "cutout")
#: The largest shift, as a fraction of the side (Zhao et al.: 1/8).
TRANSLATION_RATIO = 0.125
#: The cutout square's side, as a fraction of the image's side (Zhao et al.: 1/2).
CUTOUT_RATIO = 0.5


def adjust_brightness(images: Tensor, u: Tensor) -> Tensor:
    """``x + (u − 0.5)``: u ~ U[0, 1) per sample, so brightness moves by U(−0.5, 0.5)."""
    return images + per_sample(u - 0.5)  # x + U(−0.5, 0.5)


def adjust_saturation(images: Tensor, u: Tensor) -> Tensor:
    """``m + (x − m)·2u`` with m each pixel's mean over the channels: saturation × U(0, 2)."""
    mean = images.mean(dim=1, keepdim=True)
    return (images - mean) * per_sample(2.0 * u) + mean  # m + (x − m)·U(0, 2)


def adjust_contrast(images: Tensor, u: Tensor) -> Tensor:
    """``m + (x − m)·(u + 0.5)`` with m each image's mean: contrast × U(0.5, 1.5)."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * per_sample(u + 0.5) + mean  # m + (x − m)·U(0.5, 1.5)


def translate(images: Tensor, shift_y: Tensor, shift_x: Tensor) -> Tensor:
    """Each image moved by whole pixels (``shift_y``, ``shift_x``: (B,) integers), zeros where nothing moved in.

    Output pixel (i, j) reads input pixel (i + shift_y, j + shift_x), or 0 outside the image.
    """
    batch, _, height, width = images.shape
    padded = F.pad(images, (1, 1, 1, 1))  # a border of zeros, where every out-of-image read lands
    device = images.device
    rows = (torch.arange(height, device=device) + shift_y[:, None] + 1).clamp_(0, height + 1)  # (B, H)
    cols = (torch.arange(width, device=device) + shift_x[:, None] + 1).clamp_(0, width + 1)  # (B, W)
    samples = torch.arange(batch, device=device)[:, None, None]
    moved = padded.permute(0, 2, 3, 1)[samples, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return moved.permute(0, 3, 1, 2)


def cut_out(images: Tensor, top: Tensor, left: Tensor, size: tuple[int, int]) -> Tensor:
    """Each image with the square of ``size`` at (``top``, ``left``) (per sample, may overhang the border) zeroed."""
    _, _, height, width = images.shape
    device = images.device
    rows = torch.arange(height, device=device) - top[:, None]  # (B, H): row index inside the square
    cols = torch.arange(width, device=device) - left[:, None]
    inside = ((rows >= 0) & (rows < size[0]))[:, :, None] & ((cols >= 0) & (cols < size[1]))[:, None, :]
    return images * (~inside).unsqueeze(1).to(images.dtype)


class DiffAugment(Augmentation):
    """DiffAugment (Zhao et al. 2020): color, translation and cutout, on real and fake alike."""

    def __init__(self, policy: tuple[str, ...] = POLICIES, probability: float = 1.0) -> None:
        super().__init__()
        self.policy, self.probability = policy, probability

    def forward(self, x: Tensor, *, real: bool) -> Tensor:
        if self.probability == 0:
            return x  # no operation applies: exactly the input
        out = x
        for name in self.policy:
            out = getattr(self, f"_{name}")(out)
        return in_layout_of(out, x)

    def _factors(self, rows: int, device: torch.device) -> Tensor:
        """U[0, 1) per sample, 0.5 (the identity of every colour operation) where the policy is not applied."""
        factors = uniform(rows, device=device)
        return torch.where(chosen(rows, self.probability, device), factors, torch.full_like(factors, 0.5))

    def _color(self, x: Tensor) -> Tensor:
        rows, device = x.shape[0], x.device
        x = adjust_brightness(x, self._factors(rows, device).to(x.dtype))
        x = adjust_saturation(x, self._factors(rows, device).to(x.dtype))
        return adjust_contrast(x, self._factors(rows, device).to(x.dtype))

    def _translation(self, x: Tensor) -> Tensor:
        rows, device = x.shape[0], x.device
        height, width = x.shape[2:]
        largest = torch.tensor([int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)],
                               device=device)
        # an integer in [−s, s] on each axis: ⌊u·(2s + 1)⌋ − s, u ~ U[0, 1)
        shifts = (uniform(rows, 2, device=device) * (2 * largest + 1)).floor().long() - largest
        shifts = shifts * chosen(rows, self.probability, device)[:, None]
        return translate(x, shifts[:, 0], shifts[:, 1])

    def _cutout(self, x: Tensor) -> Tensor:
        rows, device = x.shape[0], x.device
        height, width = x.shape[2:]
        size = (int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5))
        # the square's centre: an integer in [0, side] (Zhao et al.'s range), its top-left corner half a side before
        centre_span = torch.tensor([height + 1 - size[0] % 2, width + 1 - size[1] % 2], device=device)
        centres = (uniform(rows, 2, device=device) * centre_span).floor().long()
        corners = centres - torch.tensor([size[0] // 2, size[1] // 2], device=device)
        off_image = torch.tensor([height, width], device=device)  # a corner there cuts nothing
        corners = torch.where(chosen(rows, self.probability, device)[:, None], corners, off_image)
        return cut_out(x, corners[:, 0], corners[:, 1], size)

    def options(self) -> dict[str, Any]:
        return {"policy": "+".join(self.policy) or "none", "p": self.probability}


def build_diffaugment(spec: DataSpec, *, policy: Any = "color+translation+cutout", p: float = 1.0) -> DiffAugment:
    """DiffAugment (Zhao 2020): color, translation and cutout on real and fake; policy=color+translation+cutout."""
    require_images(spec, "diffaugment")
    owner = "augmentation 'diffaugment'"
    names = [] if policy is None or str(policy).strip().lower() == "none" else str(policy).split("+")
    chosen_policies = tuple(gantk.options.choice(owner, "policy", name.strip(), POLICIES,
                                                 hint="policies joined by '+', e.g. color+translation, or none")
                            for name in names)
    probability = gantk.options.number_in(owner, "p", p, at_least=0, at_most=1, what="a probability",
                                          hint="the chance that each operation applies to a sample; 1 in the paper")
    return DiffAugment(tuple(dict.fromkeys(chosen_policies)), probability)


@gantk.hookimpl
def register_augmentations(register):
    register("diffaugment", build_diffaugment,
             summary="DiffAugment (Zhao 2020): color, translation, cutout on real and fake; option policy=, p=")
