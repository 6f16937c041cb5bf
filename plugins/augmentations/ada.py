"""ADA, adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data").

Every operation of the pipeline applies to each sample with probability p, on everything D sees.
p follows D's overfitting: ``r_t = E[sign(D(x_real))]`` over the real batches since the last
adjustment; every ``interval`` (4) D updates ``p ← clamp(p + sign(r_t − target)·(batch·interval)/(kimg·1000),
0, 1)`` with target 0.6, so that p can cross [0, 1] in ``kimg`` thousand images (500). Under torchrun
the sums behind r_t are averaged over the ranks.

The pipeline is the paper's 'bgc' (appendix B), each line one operation with its own draw:

- b (pixel blitting): x-flip, 90° rotations, integer translation up to 1/8 of the side;
- g (general geometric): isotropic scale (log₂ s ~ N(0, 0.2²)), rotation U(−π, π), anisotropic scale
  (log₂ s ~ N(0, 0.2²)), rotation again, fractional translation (N(0, 0.125²) of the side). The two
  rotations each apply with probability 1 − √(1 − p), so that some rotation happens with probability p.
  All geometric operations make one affine matrix per sample, applied by one bilinear ``grid_sample``
  with reflection padding (the paper also upsamples 2× with a wavelet filter first against aliasing;
  gantk does not);
- c (colour): brightness (+N(0, 0.2²)), contrast (×2^N(0, 0.5²)), luma flip, hue rotation U(−π, π)
  about the luma axis, saturation (×2^N(0, 1) off the luma axis); one 3×3 matrix and offset per sample.
  Luma flip, hue and saturation need RGB: on other channel counts only brightness and contrast apply.

gantk's own code rather than kornia's: kornia has no per-operation probability inside one affine
matrix, clamps colours to [0, 1], and rotates hue in HSV rather than about the luma axis.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gantk
from gantk.distributed import world_size
from gantk.engine.distributed import mean_over_ranks
from gantk.plugins.augmentations._draws import chosen, in_layout_of, normal, require_images, uniform
from gantk.protocols import Augmentation, DataSpec

#: p stays in [0, 1): the largest float32 below 1.
P_MAX = 1.0 - 2.0 ** -24
#: the paper's standard deviations and ranges (appendix B)
SCALE_STD, ROTATION_MAX, INTEGER_SHIFT_MAX, FRACTIONAL_SHIFT_STD = 0.2, math.pi, 0.125, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, math.pi, 1.0
#: cos and sin of k·90° for k = 0..3, exact
QUARTER_TURNS = ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))
PIPELINE_GROUPS = "bgc"


def matrices(*rows: tuple[Tensor | float, ...], like: Tensor) -> Tensor:
    """A batch of square matrices (B, n, n) from n rows of entries, each a (B,) tensor or a number."""
    entries = [[e if torch.is_tensor(e) else torch.full_like(like, e) for e in row] for row in rows]
    return torch.stack([torch.stack(row, dim=-1) for row in entries], dim=-2)


def translation_inverse(tx: Tensor, ty: Tensor) -> Tensor:
    """The inverse of a move by (tx, ty) in homogeneous 2-D coordinates (B, 3, 3)."""
    return matrices((1.0, 0.0, -tx), (0.0, 1.0, -ty), (0.0, 0.0, 1.0), like=tx)  # q ↦ q − t


def scaling_inverse(sx: Tensor, sy: Tensor) -> Tensor:
    """The inverse of a scaling by (sx, sy) (B, 3, 3)."""
    return matrices((1.0 / sx, 0.0, 0.0), (0.0, 1.0 / sy, 0.0), (0.0, 0.0, 1.0), like=sx)  # q ↦ q / s


def rotation_inverse(cos: Tensor, sin: Tensor) -> Tensor:
    """The inverse of a rotation by θ given cos θ and sin θ: a rotation by −θ (B, 3, 3)."""
    return matrices((cos, sin, 0.0), (-sin, cos, 0.0), (0.0, 0.0, 1.0), like=cos)  # R(−θ)


def warp(images: Tensor, inverse: Tensor) -> Tensor:
    """``images`` (B, C, H, W) moved by the affine maps whose inverses (output → input pixel, in pixel units about
    the centre) are ``inverse`` (B, 3, 3): bilinear sampling, reflection beyond the border."""
    batch, channels, height, width = images.shape
    # affine_grid's coordinates (align_corners=False): ±1 at the outer edges, so pixel units = normalised · (W/2, H/2)
    to_pixels = torch.diag(torch.tensor([width / 2, height / 2, 1.0], device=images.device))
    to_unit = torch.diag(torch.tensor([2 / width, 2 / height, 1.0], device=images.device))
    theta = to_unit @ inverse @ to_pixels  # unit → pixels → inverse map → unit
    grid = F.affine_grid(theta[:, :2, :], [batch, channels, height, width], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class AdaptiveAugmentation(Augmentation):
    """ADA (Karras et al. 2020): the 'bgc' pipeline, each operation with probability p, p adapted to D's overfitting."""

    def __init__(self, *, p: float = 0.0, target: float = 0.6, kimg: float = 500.0, interval: int = 4,
                 fixed: bool = False, pipeline: str = PIPELINE_GROUPS) -> None:
        super().__init__()
        self.target, self.kimg, self.interval, self.fixed, self.pipeline = target, kimg, interval, fixed, pipeline
        self.identity = fixed and p == 0.0  # known here, so that no step reads p back from the device
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("sign_sum", torch.tensor(0.0))  # Σ sign(D(x_real)) since the last adjustment
        self.register_buffer("seen", torch.tensor(0.0))  # real images (this rank's) since the last adjustment
        self.register_buffer("updates", torch.tensor(0, dtype=torch.int64))  # D updates observed
        self._updates_on_host: int | None = 0  # a copy of `updates`, so that no step reads the device
        self._latest_r: Tensor | None = None
        self.register_load_state_dict_post_hook(_forget_host_count)
        luma = torch.full((3,), 1.0 / math.sqrt(3.0))  # the luma axis v = (1, 1, 1)/√3
        self.register_buffer("luma_outer", torch.outer(luma, luma), persistent=False)  # v vᵀ
        self.register_buffer("luma_cross", torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
                             / math.sqrt(3.0), persistent=False)  # [v]×: [v]× u = v × u

    # ------------------------------------------------------------------ the augmentation
    def forward(self, x: Tensor, *, real: bool) -> Tensor:
        if self.identity:
            return x  # a constant p = 0: exactly the input
        out = x.float()
        if "b" in self.pipeline or "g" in self.pipeline:
            out = self._geometric(out)
        if "c" in self.pipeline:
            out = self._colour(out)
        return in_layout_of(out, x)

    def _sometimes(self, values: Tensor, identity: float, probability: Tensor, applied: list[Tensor]) -> Tensor:
        """``values`` (B, ...) for the samples an operation applies to (each with ``probability``), ``identity``
        for the others; the mask of the chosen samples is appended to ``applied``."""
        mask = chosen(values.shape[0], probability, values.device)
        applied.append(mask)
        return torch.where(mask.view(-1, *[1] * (values.dim() - 1)), values, torch.full_like(values, identity))

    def _geometric(self, x: Tensor) -> Tensor:
        rows, device, (height, width) = x.shape[0], x.device, x.shape[2:]
        p, applied = self.p, []
        inverse = torch.eye(3, device=device).expand(rows, 3, 3)  # output pixel → input pixel, composed op by op
        if "b" in self.pipeline:
            flip = self._sometimes((uniform(rows, device=device) * 2).floor(), 0.0, p, applied)  # i ~ U{0, 1}
            inverse = inverse @ scaling_inverse(1.0 - 2.0 * flip, torch.ones_like(flip))  # x ↦ (1 − 2i)·x
            quarter = self._sometimes((uniform(rows, device=device) * 4).floor(), 0.0, p, applied).long()
            turns = torch.tensor(QUARTER_TURNS, device=device)[quarter]  # k ~ U{0, 1, 2, 3}: a turn of k·90°
            inverse = inverse @ rotation_inverse(turns[:, 0], turns[:, 1])
            shift = self._sometimes((uniform(rows, 2, device=device) * 2 - 1) * INTEGER_SHIFT_MAX, 0.0, p, applied)
            inverse = inverse @ translation_inverse((shift[:, 0] * width).round(), (shift[:, 1] * height).round())
        if "g" in self.pipeline:
            scale = self._sometimes(torch.exp2(normal(rows, device=device) * SCALE_STD), 1.0, p, applied)
            inverse = inverse @ scaling_inverse(scale, scale)  # isotropic: log₂ s ~ N(0, 0.2²)
            p_rotation = 1.0 - torch.sqrt(1.0 - p)  # two rotations: 1 − (1 − p_rot)² = p
            inverse = inverse @ self._rotation(rows, device, p_rotation, applied)
            aspect = self._sometimes(torch.exp2(normal(rows, device=device) * SCALE_STD), 1.0, p, applied)
            inverse = inverse @ scaling_inverse(aspect, 1.0 / aspect)  # anisotropic: (s, 1/s)
            inverse = inverse @ self._rotation(rows, device, p_rotation, applied)
            shift = self._sometimes(normal(rows, 2, device=device) * FRACTIONAL_SHIFT_STD, 0.0, p, applied)
            # N(0, 0.125²) of a side
            inverse = inverse @ translation_inverse(shift[:, 0] * width, shift[:, 1] * height)
        touched = torch.stack(applied).any(dim=0)
        return torch.where(touched.view(-1, 1, 1, 1), warp(x, inverse), x)  # untouched samples: exactly the input

    def _rotation(self, rows: int, device: torch.device, probability: Tensor, applied: list[Tensor]) -> Tensor:
        angle = self._sometimes((uniform(rows, device=device) * 2 - 1) * ROTATION_MAX, 0.0, probability,
                                applied)  # θ ~ U(−π, π)
        return rotation_inverse(torch.cos(angle), torch.sin(angle))

    def _colour(self, x: Tensor) -> Tensor:
        rows, channels, device, p, applied = x.shape[0], x.shape[1], x.device, self.p, []
        brightness = self._sometimes(normal(rows, device=device) * BRIGHTNESS_STD, 0.0, p, applied)
        contrast = self._sometimes(torch.exp2(normal(rows, device=device) * CONTRAST_STD), 1.0, p, applied)
        # brightness then contrast: c·(x + b); as a linear map and offset per sample
        linear = contrast[:, None, None] * torch.eye(channels, device=device)
        offset = (contrast * brightness)[:, None].expand(rows, channels)
        if channels == 3:  # luma flip, hue and saturation act on RGB
            rgb = self._rgb_matrix(rows, device, applied)
            linear, offset = rgb @ linear, (rgb @ offset[:, :, None])[:, :, 0]
        coloured = torch.einsum("bij,bjhw->bihw", linear, x) + offset[:, :, None, None]  # A·x + o per pixel
        touched = torch.stack(applied).any(dim=0)
        return torch.where(touched.view(-1, 1, 1, 1), coloured, x)

    def _rgb_matrix(self, rows: int, device: torch.device, applied: list[Tensor]) -> Tensor:
        """Luma flip, then hue rotation, then saturation, as one 3×3 matrix per sample (B, 3, 3)."""
        p, outer, identity = self.p, self.luma_outer, torch.eye(3, device=device)
        flip = self._sometimes((uniform(rows, device=device) * 2).floor(), 0.0, p, applied)[:, None, None]
        luma_flip = identity - 2.0 * outer * flip  # I − 2 v vᵀ i, i ~ U{0, 1}
        angle = self._sometimes((uniform(rows, device=device) * 2 - 1) * HUE_MAX, 0.0, p, applied)[:, None, None]
        # Rodrigues: rotation by θ about v = cos θ I + sin θ [v]× + (1 − cos θ) v vᵀ
        hue = torch.cos(angle) * identity + torch.sin(angle) * self.luma_cross + (1 - torch.cos(angle)) * outer
        saturation = self._sometimes(torch.exp2(normal(rows, device=device) * SATURATION_STD), 1.0, p, applied)
        saturate = outer + (identity - outer) * saturation[:, None, None]  # v vᵀ + (I − v vᵀ) s
        return saturate @ hue @ luma_flip

    # ------------------------------------------------------------------ the adaptive probability
    def observe(self, real_logits: Tensor) -> None:
        signs = real_logits.detach().float().sign()
        self._latest_r = signs.mean()
        if self._updates_on_host is None:  # after a checkpoint was loaded: read its count once
            self._updates_on_host = int(self.updates)
        self.sign_sum += signs.sum()
        self.seen += signs.numel()
        self.updates += 1
        self._updates_on_host += 1
        if self._updates_on_host % self.interval == 0:
            self._adjust()

    def _adjust(self) -> None:
        """p ← clamp(p + sign(r_t − target)·images/(kimg·1000), 0, 1) with the images seen since the last
        adjustment (batch·interval), then a new window; tensor operations only (no host sync)."""
        sums = mean_over_ranks(torch.stack([self.sign_sum, self.seen]))  # under torchrun: every rank's batches
        r_t = sums[0] / sums[1].clamp(min=1.0)  # r_t = E[sign(D(x_real))]
        images = sums[1] * world_size()
        if not self.fixed:
            step = torch.sign(r_t - self.target) * images / (self.kimg * 1000.0)
            self.p.copy_((self.p + step).clamp(0.0, P_MAX))
        self.sign_sum.zero_()
        self.seen.zero_()

    def logged(self) -> dict[str, Tensor]:
        values = {"p": self.p.detach().clone()}
        if self._latest_r is not None:
            values["rt"] = self._latest_r  # E[sign(D(x_real))] of the latest D update
        return values

    def options(self) -> dict[str, Any]:
        return {"target": self.target, "kimg": self.kimg, "interval": self.interval, "fixed": self.fixed,
                "pipeline": self.pipeline}


def _forget_host_count(module: nn.Module, incompatible_keys: Any) -> None:
    """After ``load_state_dict``: the host's copy of the update count is read again from the loaded buffer."""
    module._updates_on_host = None


def build_ada(spec: DataSpec, *, p: float = 0.0, target: float = 0.6, kimg: float = 500, interval: int = 4,
              fixed: bool = False, pipeline: str = PIPELINE_GROUPS) -> AdaptiveAugmentation:
    """ADA (Karras 2020): the 'bgc' pipeline with probability p, adapted every 4 D steps toward r_t = 0.6."""
    require_images(spec, "ada")
    owner, options = "augmentation 'ada'", gantk.options
    pipeline_text = str(pipeline).strip().lower()
    if not pipeline_text or any(letter not in PIPELINE_GROUPS for letter in pipeline_text):
        raise options.option_error(owner, "pipeline", pipeline, "letters of 'bgc'",
                                   "b: flips, 90° turns, integer shifts; g: scales, rotations, fractional shifts; "
                                   "c: colour; e.g. bgc or bg")
    return AdaptiveAugmentation(
        p=options.number_in(owner, "p", p, at_least=0, below=1, what="a probability", hint="the starting p"),
        target=options.number_in(owner, "target", target, above=-1, below=1, what="a number",
                                 hint="the wanted E[sign(D(x_real))]; 0.6 in the paper"),
        kimg=options.number_in(owner, "kimg", kimg, above=0, what="a number of thousands of images",
                               hint="how many real images p needs to cross [0, 1]; 500 in the paper"),
        interval=options.positive_int(owner, "interval", interval, hint="D updates between adjustments; 4"),
        fixed=options.as_bool(owner, "fixed", fixed),
        pipeline="".join(letter for letter in PIPELINE_GROUPS if letter in pipeline_text))


@gantk.hookimpl
def register_augmentations(register):
    register("ada", build_ada, summary="ADA (Karras 2020): bgc pipeline with probability p adapted toward r_t = 0.6; "
                                       "options p=, target=, kimg=, interval=, fixed=, pipeline=")
