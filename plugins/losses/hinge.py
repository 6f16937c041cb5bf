"""The hinge GAN loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization")."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

import gantk
from gantk.protocols import DataSpec, DiscriminatorStep, GeneratorStep, LossTerm


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D's hinge loss: zero once D(x) ≥ 1 and D(x~) ≤ -1."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()  # E relu(1-D(x)) + E relu(1+D(x~))


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    """G's loss under the hinge loss: raise D's score of the fakes."""
    return -fake_logits.float().mean()  # L_G = -E D(x~)


class HingeLoss(LossTerm):
    """Hinge loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018)."""

    def discriminator_loss(self, step: DiscriminatorStep) -> Tensor:
        return hinge_discriminator_loss(step.real_out.logits, step.fake_out.logits)

    def generator_loss(self, step: GeneratorStep) -> Tensor:
        return hinge_generator_loss(step.fake_out.logits)


def build_hinge(spec: DataSpec) -> HingeLoss:
    """Hinge loss (Lim & Ye 2017; Miyato 2018): D E relu(1-D(x)) + E relu(1+D(x~)), G -E D(x~)."""
    return HingeLoss()


@gantk.hookimpl
def register_losses(register):
    register("hinge", build_hinge, summary="Hinge loss (Lim & Ye 2017; Miyato 2018), StudioGAN's default")
