"""The ``rsgan`` loss: the relativistic standard GAN (Jolicoeur-Martineau 2018).

Paper: Alexia Jolicoeur-Martineau, "The relativistic discriminator: a key element missing from
standard GAN", ICLR 2019 (arXiv:1807.00734). D estimates how much more realistic a real sample is
than a fake one, ``σ(D(x) − D(x~))``, instead of how real each sample is on its own. With
``sp = softplus`` and logits ``D(·)``::

    L_D = E sp(−(D(x)  − D(x~)))      = −E log σ(D(x) − D(x~))
    L_G = E sp(−(D(x~) − D(x)))       = −E log σ(D(x~) − D(x))

Both losses depend only on differences of logits, so adding a constant to every logit changes
nothing, and G's loss is D's loss with the roles of real and fake swapped. Pairs ``(x_i, x~_i)``
are matched by batch index; real and fake batches are drawn independently, so this is the
random pairing of the paper.

G's loss needs ``D(x)`` on real data. The loss declares so (``generator_needs_real=True``), and
gantk's training step then runs D on the latest real batch again in G's update, with D's current
weights and no gradient to D: G's loss is the exact paired formula. gantk hands the functions
float32 logits whatever the run's precision; softplus keeps them finite at logits of ±1e4.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

import gantk


def _paired(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Both logit vectors as (B,), cut to the shorter batch so that index i pairs a_i with b_i."""
    a, b = a.reshape(-1), b.reshape(-1)
    n = min(a.shape[0], b.shape[0])
    return a[:n], b[:n]


def rsgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """RSGAN discriminator loss on paired logits (B,)."""
    real, fake = _paired(real_logits, fake_logits)
    return F.softplus(-(real - fake)).mean()  # L_D = E sp(−(D(x) − D(x~)))


def rsgan_generator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """RSGAN generator loss on paired logits (B,): D's loss with real and fake swapped."""
    return rsgan_discriminator_loss(fake_logits, real_logits)  # L_G = E sp(−(D(x~) − D(x)))


#: The loss factory: gantk calls ``build_rsgan(spec)`` and gets a gantk.LossTerm.
build_rsgan = gantk.logit_loss(rsgan_discriminator_loss, rsgan_generator_loss, generator_needs_real=True,
                               name="rsgan")


@gantk.hookimpl
def register_losses(register):
    register("rsgan", build_rsgan, aliases=("relativistic",),
             summary="Relativistic standard GAN loss, RSGAN (Jolicoeur-Martineau 2018; example plugin)")
