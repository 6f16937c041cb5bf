"""The hinge GAN loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018): D's part is 0 once D(x) ≥ 1, D(x~) ≤ −1."""

import torch.nn.functional as F
from torch import Tensor

import gantk


def hinge_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()  # E relu(1-D(x)) + E relu(1+D(x~))


def hinge_generator_loss(real: None, fake: Tensor) -> Tensor:
    return -fake.mean()  # L_G = -E D(x~): G raises D's score of its fakes (real is not used)


@gantk.hookimpl
def register_losses(register):
    register("hinge", gantk.logit_loss(hinge_discriminator_loss, hinge_generator_loss),
             summary="Hinge loss (Lim & Ye 2017; Miyato 2018), StudioGAN's default")
