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

**The generator step.** gantk's :class:`gantk.protocols.GeneratorStep` carries no real batch, so
``D(x)`` is not available when G's loss is computed. This term keeps the mean real logit of the
most recent discriminator step, ``m = E D(x)`` (detached, in the persistent buffer
``real_logit_mean``, so it is saved with checkpoints and a resumed run continues exactly), and
the generator minimises::

    L_G ≈ E sp(−(D(x~) − m))

which is the relativistic *average* form for the generator's fake samples (the first term of
RaSGAN's G loss). Compared with the paired formula it differs in two ways, both documented here
rather than hidden: each fake is compared with the average real logit instead of one real
logit, and ``m`` was measured by D before its last optimizer update (one update stale). ``D(x)``
does not depend on G, so no gradient is lost. Before the first discriminator step ``m = 0`` and
``L_G`` is the non-saturating loss ``E sp(−D(x~))``.

The discriminator loss is the exact paired RSGAN loss. All maths is done in float32 with
softplus, so it stays finite for logits of ±1e4 under bf16 autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

import gantk
from gantk.protocols import DiscriminatorStep, GeneratorStep


def _paired(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Both logit vectors as float32 (B,), cut to the shorter batch so that index i pairs a_i with b_i."""
    a, b = a.float().reshape(-1), b.float().reshape(-1)
    n = min(a.shape[0], b.shape[0])
    return a[:n], b[:n]


def rsgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """RSGAN discriminator loss on paired logits (B,)."""
    real, fake = _paired(real_logits, fake_logits)
    return F.softplus(-(real - fake)).mean()  # L_D = E sp(−(D(x) − D(x~)))


def rsgan_generator_loss(fake_logits: Tensor, real_logits: Tensor) -> Tensor:
    """RSGAN generator loss; ``real_logits`` is paired (B,) logits or one scalar reference (0-d)."""
    if real_logits.dim() == 0:
        fake, real = fake_logits.float().reshape(-1), real_logits.float()  # every fake against one reference
    else:
        fake, real = _paired(fake_logits, real_logits)
    return F.softplus(-(fake - real)).mean()  # L_G = E sp(−(D(x~) − D(x)))


class RelativisticStandardLoss(gantk.LossTerm):
    """Relativistic standard GAN loss (RSGAN); G compares fakes with the last D step's mean real logit."""

    def __init__(self) -> None:
        super().__init__()
        # m = E D(x) of the latest discriminator step; persistent, so checkpoints keep it.
        self.register_buffer("real_logit_mean", torch.zeros(()))

    def discriminator_loss(self, step: DiscriminatorStep) -> Tensor:
        real, fake = step.real_out.logits, step.fake_out.logits
        with torch.no_grad():
            # Assigning to a registered buffer replaces it, so it follows the logits' device without a copy.
            self.real_logit_mean = real.detach().float().mean()  # m ← E D(x)
        return rsgan_discriminator_loss(real, fake)

    def generator_loss(self, step: GeneratorStep) -> Tensor:
        return rsgan_generator_loss(step.fake_out.logits, self.real_logit_mean)  # E sp(−(D(x~) − m))


def build_rsgan(spec: gantk.DataSpec) -> RelativisticStandardLoss:
    """Relativistic standard GAN loss, RSGAN (Jolicoeur-Martineau 2018; example plugin)."""
    return RelativisticStandardLoss()


@gantk.hookimpl
def register_losses(register):
    register("rsgan", build_rsgan, aliases=("relativistic",))
