"""The Wasserstein GAN loss (Arjovsky et al. 2017, "Wasserstein GAN").

The critic D estimates the Wasserstein-1 distance, which needs D to be 1-Lipschitz. The original
method keeps it so by clipping every critic weight to [-0.01, 0.01] after each critic update;
WGAN-GP (``wgan+gp``) replaces the clipping with a gradient penalty. With ``clip="auto"`` (the
default) this term clips unless another term of the composite loss is a Lipschitz regulariser.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import gantk
from gantk.protocols import DataSpec, DiscriminatorStep, GeneratorStep, LossTerm

#: The clipping bound of the WGAN paper.
DEFAULT_CLIP = 0.01


def wgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The critic's loss: minus its estimate of the Wasserstein distance."""
    return fake_logits.float().mean() - real_logits.float().mean()  # L_D = E D(x~) - E D(x)


def wgan_generator_loss(fake_logits: Tensor) -> Tensor:
    """G's loss: raise the critic's score of the fakes."""
    return -fake_logits.float().mean()  # L_G = -E D(x~)


@torch.no_grad()
def clip_parameters(module: nn.Module, bound: float) -> None:
    """Clamp every parameter of ``module`` into [-bound, bound] in place."""
    for parameter in module.parameters():
        parameter.clamp_(-bound, bound)  # w ← clip(w, -c, c)


class WGANLoss(LossTerm):
    """Wasserstein GAN loss (Arjovsky et al. 2017) with optional weight clipping of the critic.

    ``clip`` is the bound ``c`` actually applied after each critic update, or None when off.
    """

    def __init__(self, clip: float | str | None = "auto") -> None:
        super().__init__()
        self.clip_option = clip
        self.clip: float | None = DEFAULT_CLIP if clip == "auto" else clip

    def compose_with(self, others: list[LossTerm]) -> None:
        if self.clip_option == "auto":
            regularised = any(other.lipschitz_regulariser for other in others)
            self.clip = None if regularised else DEFAULT_CLIP

    def discriminator_loss(self, step: DiscriminatorStep) -> Tensor:
        return wgan_discriminator_loss(step.real_out.logits, step.fake_out.logits)

    def generator_loss(self, step: GeneratorStep) -> Tensor:
        return wgan_generator_loss(step.fake_out.logits)

    def after_discriminator_update(self, discriminator: nn.Module) -> None:
        if self.clip is not None:
            clip_parameters(discriminator, self.clip)

    def options(self) -> dict:
        return {"clip": self.clip_option}

    def extra_repr(self) -> str:
        return f"clip={self.clip_option!r} (applied: {self.clip})"


def _clip_bound(clip: object) -> float | str | None:
    if clip == "auto" or clip is None:
        return clip
    if clip is False or (not isinstance(clip, bool) and isinstance(clip, (int, float)) and clip == 0):
        return None
    if isinstance(clip, (int, float)) and not isinstance(clip, bool) and clip > 0:
        return float(clip)
    raise gantk.UsageError(
        f"The loss 'wgan' option clip must be 'auto' (clip critic weights to [-{DEFAULT_CLIP}, {DEFAULT_CLIP}] "
        "unless a gradient penalty such as 'gp' is part of the loss), a positive number (the bound), or "
        f"none / 0 (no clipping); got {clip!r}.")


def build_wgan(spec: DataSpec, *, clip: float | str | None = "auto") -> WGANLoss:
    """Wasserstein GAN loss (Arjovsky 2017): D E D(x~) - E D(x), G -E D(x~); clip='auto' clips D to ±0.01."""
    return WGANLoss(_clip_bound(clip))


@gantk.hookimpl
def register_losses(register):
    register("wgan", build_wgan, summary="Wasserstein GAN loss (Arjovsky 2017); weight clipping 0.01 unless "
                                         "combined with gp (option clip)")
