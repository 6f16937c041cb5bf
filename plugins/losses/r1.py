"""The R1 regulariser (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?").

``(γ/2) E ‖∇ₓ D(x)‖²`` on real data only. The term returns ``½ E ‖∇ₓ D(x)‖²``; γ is its weight in
the loss expression (10 by default: ``ns+r1`` means ``ns+10*r1``). ``every=k`` runs it lazily,
every k-th discriminator step with its weight multiplied by k (Karras et al. 2020, StyleGAN2). With
``-D pack=M`` (PacGAN) the squared norm is taken per packed D input (its M samples together).
"""

from __future__ import annotations

from torch import Tensor

import gantk
from gantk.plugins.losses.gp import input_gradients, packed_group_size
from gantk.protocols import DataSpec, DiscriminatorPhase, LossTerm


def r1_penalty(gradients: Tensor, group: int = 1) -> Tensor:
    """½ E ‖g‖₂² over the batch, ``gradients`` of shape (B, ...); the norm per ``group`` of consecutive samples."""
    return 0.5 * gradients.reshape(gradients.shape[0] // group, -1).pow(2).sum(dim=1).mean()  # ½ E ‖∇ₓ D(x)‖²


class R1Penalty(LossTerm):
    """R1 gradient penalty on real data (Mescheder et al. 2018)."""

    needs = frozenset({"real_grad"})
    default_weight = 10.0
    auxiliary = True  # a regulariser: composes with an adversarial loss

    def __init__(self, every: int = 1) -> None:
        super().__init__()
        self.every = every

    def discriminator_loss(self, step: DiscriminatorPhase) -> Tensor:
        if not step.real.requires_grad:
            raise gantk.UsageError(
                "The loss term 'r1' needs gradients with respect to the real samples, but this training "
                "procedure passed real samples that do not require grad. Use the default noise-to-sample "
                "step, which enables them for terms that need 'real_grad', or drop 'r1' from the loss.")
        logits = step.real_out.logits
        return r1_penalty(input_gradients(logits, step.real), packed_group_size(step.real, logits))

    def options(self) -> dict:
        return {"every": self.every}


def build_r1(spec: DataSpec, *, every: int = 1) -> R1Penalty:
    """R1 penalty (Mescheder 2018): (γ/2) E‖∇D(x)‖² on real data, γ = 10 by default; every=k runs it lazily."""
    return R1Penalty(gantk.options.positive_int("loss 'r1'", "every", every,
                                                hint="run the penalty every that many discriminator steps, e.g. 16"))


@gantk.hookimpl
def register_losses(register):
    register("r1", build_r1, summary="R1 penalty on real data (Mescheder 2018), weight 10 by default; "
                                     "option every for lazy regularisation")
