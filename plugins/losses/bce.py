"""Cross-entropy GAN losses: ``bce`` (the minimax game) and ``ns`` (the non-saturating generator loss).

Goodfellow et al. 2014, "Generative Adversarial Nets". Both train D as a binary classifier of
real against fake; they differ in the generator's loss. Everything works on logits through
softplus / ``binary_cross_entropy_with_logits`` (never sigmoid-then-log), so the values stay
finite for logits of any size.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

import gantk
from gantk.protocols import DataSpec, DiscriminatorStep, GeneratorStep, LossTerm


def bce_discriminator_loss(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0,
                           fake_target: float = 0.0) -> Tensor:
    """D's cross-entropy against targets ``real_target`` for D(x) and ``fake_target`` for D(x~)."""
    return binary_cross_entropy(real_logits, real_target) + binary_cross_entropy(fake_logits, fake_target)


def binary_cross_entropy(logits: Tensor, target: float) -> Tensor:
    """E BCE(l, t) for one target ``t`` shared by the batch, on logits, in float32."""
    logits = logits.float()
    if target == 1.0:
        return F.softplus(-logits).mean()  # BCE(l, 1) = sp(-l)
    if target == 0.0:
        return F.softplus(logits).mean()  # BCE(l, 0) = sp(l)
    return (target * F.softplus(-logits) + (1.0 - target) * F.softplus(logits)).mean()  # t·sp(-l) + (1-t)·sp(l)


def minimax_generator_loss(fake_logits: Tensor) -> Tensor:
    """G's saturating minimax loss: G minimises E log(1 - sigmoid(D(x~)))."""
    return -F.softplus(fake_logits.float()).mean()  # L_G = -E sp(D(x~)) = E log(1 - σ(D(x~)))


def non_saturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """G's non-saturating loss: G maximises E log sigmoid(D(x~))."""
    return F.softplus(-fake_logits.float()).mean()  # L_G = E sp(-D(x~)) = -E log σ(D(x~))


class MinimaxLoss(LossTerm):
    """The minimax GAN loss with the saturating generator loss (Goodfellow et al. 2014)."""

    def discriminator_loss(self, step: DiscriminatorStep) -> Tensor:
        return bce_discriminator_loss(step.real_out.logits, step.fake_out.logits)

    def generator_loss(self, step: GeneratorStep) -> Tensor:
        return minimax_generator_loss(step.fake_out.logits)


class NonSaturatingLoss(LossTerm):
    """The non-saturating GAN loss (Goodfellow et al. 2014, §3), with optional label smoothing.

    ``real_target`` / ``fake_target`` are D's binary cross-entropy targets (one-sided smoothing:
    ``real_target=0.9``; Salimans et al. 2016). The generator's loss always targets 1.
    """

    def __init__(self, real_target: float = 1.0, fake_target: float = 0.0) -> None:
        super().__init__()
        self.real_target, self.fake_target = real_target, fake_target

    def discriminator_loss(self, step: DiscriminatorStep) -> Tensor:
        return bce_discriminator_loss(step.real_out.logits, step.fake_out.logits, self.real_target, self.fake_target)

    def generator_loss(self, step: GeneratorStep) -> Tensor:
        return non_saturating_generator_loss(step.fake_out.logits)

    def options(self) -> dict:
        return {"real_target": self.real_target, "fake_target": self.fake_target}


def _target(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise gantk.UsageError(f"The loss 'ns' option {name} must be a number in [0, 1] (a binary cross-entropy "
                               f"target, e.g. real_target=0.9 for one-sided label smoothing), got {value!r}.")
    return float(value)


def build_bce(spec: DataSpec) -> MinimaxLoss:
    """Minimax GAN loss (Goodfellow 2014) with the saturating G loss -E sp(D(x~)); rarely trains well."""
    return MinimaxLoss()


def build_ns(spec: DataSpec, *, real_target: float = 1.0, fake_target: float = 0.0) -> NonSaturatingLoss:
    """Non-saturating GAN loss (Goodfellow 2014); options real_target / fake_target smooth D's labels."""
    return NonSaturatingLoss(_target("real_target", real_target), _target("fake_target", fake_target))


@gantk.hookimpl
def register_losses(register):
    register("bce", build_bce, summary="Minimax GAN loss (Goodfellow 2014), saturating G loss -E sp(D(x~))")
    register("ns", build_ns, summary="Non-saturating GAN loss (Goodfellow 2014); label smoothing via "
                                     "real_target/fake_target")
