"""Cross-entropy GAN losses: ``bce`` (the minimax game) and ``ns`` (the non-saturating generator loss).

Goodfellow et al. 2014, "Generative Adversarial Nets". Both train D as a binary classifier of
real against fake; they differ in the generator's loss. Everything works on logits through
softplus (never sigmoid-then-log), so the values stay finite for logits of any size. ``ns``
takes D's targets as options: one-sided label smoothing is ``real_target=0.9`` (Salimans et al.
2016); the generator's loss always targets 1.
"""

from __future__ import annotations

import functools

import torch.nn.functional as F
from torch import Tensor

import gantk


def binary_cross_entropy(logits: Tensor, target: float) -> Tensor:
    """E BCE(l, t) for one target ``t`` shared by the batch, on logits."""
    if target == 1.0:
        return F.softplus(-logits).mean()  # BCE(l, 1) = sp(-l)
    if target == 0.0:
        return F.softplus(logits).mean()  # BCE(l, 0) = sp(l)
    return (target * F.softplus(-logits) + (1.0 - target) * F.softplus(logits)).mean()  # t·sp(-l) + (1-t)·sp(l)


def bce_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """D's cross-entropy against target 1 for D(x) and 0 for D(x~)."""
    return binary_cross_entropy(real, 1.0) + binary_cross_entropy(fake, 0.0)  # E sp(-D(x)) + E sp(D(x~))


def smoothed_discriminator_loss(real: Tensor, fake: Tensor, *, real_target: float = 1.0,
                                fake_target: float = 0.0) -> Tensor:
    """D's cross-entropy against targets ``real_target`` for D(x) and ``fake_target`` for D(x~)."""
    return binary_cross_entropy(real, real_target) + binary_cross_entropy(fake, fake_target)


def minimax_generator_loss(real: None, fake: Tensor) -> Tensor:
    """G's saturating minimax loss: G minimises E log(1 - sigmoid(D(x~)))."""
    return -F.softplus(fake).mean()  # L_G = -E sp(D(x~)) = E log(1 - σ(D(x~)))


def non_saturating_generator_loss(real: None, fake: Tensor) -> Tensor:
    """G's non-saturating loss: G maximises E log sigmoid(D(x~))."""
    return F.softplus(-fake).mean()  # L_G = E sp(-D(x~)) = -E log σ(D(x~))


_target = functools.partial(gantk.options.number_in, at_least=0.0, at_most=1.0, what="a binary cross-entropy target",
                            hint="e.g. real_target=0.9 for one-sided label smoothing")

build_bce = gantk.logit_loss(bce_discriminator_loss, minimax_generator_loss, name="bce")
build_ns = gantk.logit_loss(smoothed_discriminator_loss, non_saturating_generator_loss, name="ns",
                            checks={"real_target": _target, "fake_target": _target})


@gantk.hookimpl
def register_losses(register):
    register("bce", build_bce, summary="Minimax GAN loss (Goodfellow 2014), saturating G loss -E sp(D(x~))")
    register("ns", build_ns, summary="Non-saturating GAN loss (Goodfellow 2014); label smoothing via "
                                     "real_target/fake_target")
