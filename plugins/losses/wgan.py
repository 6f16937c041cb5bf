"""The Wasserstein GAN loss (Arjovsky et al. 2017, "Wasserstein GAN").

The critic D estimates the Wasserstein-1 distance, which needs D to be 1-Lipschitz. The original
method keeps it so by clipping every critic weight to [-0.01, 0.01] after each critic update;
WGAN-GP (``wgan+gp``) replaces the clipping with a gradient penalty. With ``clip="auto"`` (the
default) this term clips unless the loss penalises D's input gradients, i.e. unless some term of
the loss declares the ``"input_grad"`` need (``gp`` does; ``r1``, a penalty on real data only,
does not).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import gantk
from gantk.logit_losses import LogitLoss
from gantk.protocols import DataSpec, DiscriminatorPhase

#: The clipping bound of the WGAN paper.
DEFAULT_CLIP = 0.01
OWNER = "loss 'wgan'"


def wgan_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """The critic's loss: minus its estimate of the Wasserstein distance."""
    return fake.mean() - real.mean()  # L_D = E D(x~) - E D(x)


def wgan_generator_loss(real: None, fake: Tensor) -> Tensor:
    """G's loss: raise the critic's score of the fakes."""
    return -fake.mean()  # L_G = -E D(x~)


@torch.no_grad()
def clip_parameters(module: nn.Module, bound: float) -> None:
    """Clamp every parameter of ``module`` into [-bound, bound] in place."""
    for parameter in module.parameters():
        parameter.clamp_(-bound, bound)  # w ← clip(w, -c, c)


class WGANLoss(LogitLoss):
    """Wasserstein GAN loss (Arjovsky et al. 2017) with optional weight clipping of the critic.

    ``clip`` is the bound ``c`` applied after each critic update, or None when off; with
    ``clip="auto"`` it is decided in each D phase from the needs of the whole loss.
    """

    def __init__(self, clip: float | str | None = "auto") -> None:
        super().__init__(wgan_discriminator_loss, wgan_generator_loss, {"clip": clip}, name="wgan")
        self.clip: float | None = DEFAULT_CLIP if clip == "auto" else clip

    def discriminator_loss(self, step: DiscriminatorPhase) -> Tensor:
        if self.options()["clip"] == "auto":  # a penalty on D's input gradients (gp) keeps D Lipschitz instead
            self.clip = None if "input_grad" in step.needs else DEFAULT_CLIP
        return super().discriminator_loss(step)

    def after_discriminator_update(self, discriminator: nn.Module) -> None:
        if self.clip is not None:
            clip_parameters(discriminator, self.clip)

    def extra_repr(self) -> str:
        return f"clip={self.options()['clip']!r} (applied: {self.clip})"


def _clip_bound(clip: Any) -> float | str | None:
    """'auto', a positive bound, or None for no clipping (from none, false or 0)."""
    if clip == "auto":
        return clip
    if clip is None or clip is False:  # -L wgan.clip=none / false
        return None
    bound = gantk.options.number_in(
        OWNER, "clip", clip, at_least=0.0, what="'auto', none or a clipping bound",
        hint=f"'auto' clips critic weights to [-{DEFAULT_CLIP}, {DEFAULT_CLIP}] unless a gradient penalty such as "
             "'gp' is part of the loss; 0 or none turns clipping off")
    return bound if bound > 0 else None


def build_wgan(spec: DataSpec, *, clip: float | str | None = "auto") -> WGANLoss:
    """Wasserstein GAN loss (Arjovsky 2017): D E D(x~) - E D(x), G -E D(x~); clip='auto' clips D to ±0.01."""
    return WGANLoss(_clip_bound(clip))


@gantk.hookimpl
def register_losses(register):
    register("wgan", build_wgan, summary="Wasserstein GAN loss (Arjovsky 2017); weight clipping 0.01 unless "
                                         "combined with gp (option clip)")
