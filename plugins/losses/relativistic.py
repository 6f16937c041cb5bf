"""Relativistic-average GAN losses ``ragan`` and ``rahinge`` (Jolicoeur-Martineau 2018, "The relativistic
discriminator: a key element missing from standard GAN", arXiv:1807.00734).

D judges whether a real sample is more realistic than the average fake, and a fake less realistic
than the average real. With C the raw critic (D's logits), ``Δr = C(x) − E C(x~)`` and
``Δf = C(x~) − E C(x)`` (means over the batch):

    ragan    D  E sp(−Δr) + E sp(Δf)            G  E sp(Δr) + E sp(−Δf)
    rahinge  D  E relu(1 − Δr) + E relu(1 + Δf)  G  E relu(1 + Δr) + E relu(1 − Δf)

G's loss is D's with real and fake swapped, so G's update needs D's output on real data: both
losses declare it, and the training step runs D afresh on the latest real batch in G's phase.
Both depend only on differences of logits (adding a constant to every logit changes nothing) and
on batch means (the order of a batch does not matter). ``rahinge`` is ESRGAN's choice.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

import gantk
from gantk.distributed import gather_rows


def relative_logits(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """(Δr, Δf): each real logit against the mean fake one, each fake logit against the mean real one."""
    # the means run over the whole batch, every rank's rows under torchrun
    real_mean, fake_mean = gather_rows(real).mean(), gather_rows(fake).mean()
    return real - fake_mean, fake - real_mean  # Δr = C(x) − E C(x~), Δf = C(x~) − E C(x)


def ragan_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """RaSGAN's D loss: real above the average fake, fake below the average real."""
    real_vs_fake, fake_vs_real = relative_logits(real, fake)
    return F.softplus(-real_vs_fake).mean() + F.softplus(fake_vs_real).mean()  # E sp(−Δr) + E sp(Δf)


def ragan_generator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """RaSGAN's G loss: D's loss with real and fake swapped, E sp(Δr) + E sp(−Δf)."""
    return ragan_discriminator_loss(fake, real)


def rahinge_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """RaHinge's D loss: zero once Δr ≥ 1 and Δf ≤ −1."""
    real_vs_fake, fake_vs_real = relative_logits(real, fake)
    return F.relu(1.0 - real_vs_fake).mean() + F.relu(1.0 + fake_vs_real).mean()  # E relu(1 − Δr) + E relu(1 + Δf)


def rahinge_generator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """RaHinge's G loss: D's loss with real and fake swapped, E relu(1 + Δr) + E relu(1 − Δf)."""
    return rahinge_discriminator_loss(fake, real)


@gantk.hookimpl
def register_losses(register):
    register("ragan", gantk.logit_loss(ragan_discriminator_loss, ragan_generator_loss, generator_needs_real=True),
             summary="Relativistic average standard GAN loss, RaSGAN (Jolicoeur-Martineau 2018)")
    register("rahinge", gantk.logit_loss(rahinge_discriminator_loss, rahinge_generator_loss,
                                         generator_needs_real=True),
             summary="Relativistic average hinge loss, RaHinge (Jolicoeur-Martineau 2018; ESRGAN)")
