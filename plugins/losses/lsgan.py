"""The least-squares GAN loss (Mao et al. 2017, "Least Squares Generative Adversarial Networks").

The a-b-c = 0-1-1 coding: D regresses real samples to 1 and fakes to 0; G pushes its fakes to 1.
The CGAN and CycleGAN tutorials use it as MSE against 1/0 targets.
"""

from __future__ import annotations

from torch import Tensor

import gantk


def lsgan_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """D's least-squares loss, minimised at D(x) = 1 and D(x~) = 0."""
    return 0.5 * (real - 1.0).pow(2).mean() + 0.5 * fake.pow(2).mean()  # ½E(D(x)-1)² + ½E D(x~)²


def lsgan_generator_loss(real: None, fake: Tensor) -> Tensor:
    """G's least-squares loss, minimised at D(x~) = 1."""
    return 0.5 * (fake - 1.0).pow(2).mean()  # L_G = ½E(D(x~)-1)²


@gantk.hookimpl
def register_losses(register):
    register("lsgan", gantk.logit_loss(lsgan_discriminator_loss, lsgan_generator_loss),
             summary="Least-squares GAN loss (Mao 2017), as in the CGAN and CycleGAN tutorials")
