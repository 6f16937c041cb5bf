"""The least-squares GAN loss (Mao et al. 2017, "Least Squares Generative Adversarial Networks").

The a-b-c = 0-1-1 coding: D regresses real samples to 1 and fakes to 0; G pushes its fakes to 1.
The CGAN and CycleGAN tutorials use it as MSE against 1/0 targets.
"""

from __future__ import annotations

from torch import Tensor

import gantk
from gantk.protocols import DataSpec, DiscriminatorStep, GeneratorStep, LossTerm


def lsgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D's least-squares loss, minimised at D(x) = 1 and D(x~) = 0."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    return 0.5 * (real_logits - 1.0).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()  # ½E(D(x)-1)² + ½E D(x~)²


def lsgan_generator_loss(fake_logits: Tensor) -> Tensor:
    """G's least-squares loss, minimised at D(x~) = 1."""
    return 0.5 * (fake_logits.float() - 1.0).pow(2).mean()  # L_G = ½E(D(x~)-1)²


class LSGANLoss(LossTerm):
    """Least-squares GAN loss (Mao et al. 2017), 0-1-1 coding."""

    def discriminator_loss(self, step: DiscriminatorStep) -> Tensor:
        return lsgan_discriminator_loss(step.real_out.logits, step.fake_out.logits)

    def generator_loss(self, step: GeneratorStep) -> Tensor:
        return lsgan_generator_loss(step.fake_out.logits)


def build_lsgan(spec: DataSpec) -> LSGANLoss:
    """Least-squares GAN loss (Mao 2017): D ½E(D(x)-1)² + ½E D(x~)², G ½E(D(x~)-1)²."""
    return LSGANLoss()


@gantk.hookimpl
def register_losses(register):
    register("lsgan", build_lsgan, summary="Least-squares GAN loss (Mao 2017), as in the CGAN and CycleGAN tutorials")
