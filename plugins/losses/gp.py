"""The WGAN-GP gradient penalty (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs").

``λ E (‖∇D(x̂)‖₂ − 1)²`` on random interpolates ``x̂ = a·x + (1−a)·x~``, ``a ~ U[0,1]`` per sample.
The term returns ``E (‖∇D(x̂)‖₂ − 1)²``; λ is its weight in the loss expression (10 by default:
``wgan+gp`` means ``wgan+10*gp``). The penalty is per sample, so the critic must not use
BatchNorm. With ``-D pack=M`` (PacGAN, Lin et al. 2018) a "sample" is a packed D input: one ``a`` per
group of M samples, and the norm of the gradient with respect to the whole group.
"""

from __future__ import annotations

import torch
from torch import Tensor

import gantk
from gantk.distributed import uniform_rows
from gantk.protocols import DataSpec, DiscriminatorPhase, LossTerm


def input_gradients(outputs: Tensor, inputs: Tensor) -> Tensor:
    """∇ₓ D(x) per sample, keeping the graph so that a penalty on it trains D (double back-propagation).

    ``outputs`` are D's logits (B,), or a patch map (B, H', W') whose mean per sample is taken as D(xᵢ),
    computed from ``inputs`` (B, ...); since samples do not interact
    in D, the gradient of their sum with respect to ``inputs`` holds each sample's own gradient.
    """
    per_sample = outputs.flatten(1).mean(dim=1) if outputs.dim() > 1 else outputs  # a patch map's mean: D(xᵢ)
    (gradients,) = torch.autograd.grad(per_sample.sum(), inputs, create_graph=True)  # ∂ Σᵢ D(xᵢ) / ∂xᵢ
    return gradients


def interpolate(real: Tensor, fake: Tensor, a: Tensor) -> Tensor:
    """x̂ = a·x + (1−a)·x~ with one mixing weight per sample (``a`` of shape (B,))."""
    a = a.reshape(-1, *([1] * (real.dim() - 1))).to(real.dtype)
    return a * real + (1.0 - a) * fake  # x̂ = a·x + (1 − a)·x~


def packed_group_size(samples: Tensor, logits: Tensor) -> int:
    """How many samples one D input holds: M under ``-D pack=M`` (D returns one logit row per group), else 1."""
    return samples.shape[0] // logits.shape[0]


def gradient_penalty(gradients: Tensor, group: int = 1) -> Tensor:
    """E (‖g‖₂ − 1)² over the batch, ``gradients`` of shape (B, ...); the norm per ``group`` of consecutive samples."""
    norms = gradients.reshape(gradients.shape[0] // group, -1).norm(dim=1)  # ‖∇D(x̂ᵢ)‖₂, x̂ᵢ one (packed) D input
    return (norms - 1.0).pow(2).mean()  # E (‖∇D(x̂)‖₂ − 1)²


class GradientPenalty(LossTerm):
    """WGAN-GP gradient penalty (Gulrajani et al. 2017) on real/fake interpolates.

    Conditional critics see the interpolates with the real labels (as StudioGAN does).
    """

    needs = frozenset({"input_grad"})
    default_weight = 10.0
    auxiliary = True  # a regulariser: composes with an adversarial loss

    def discriminator_loss(self, step: DiscriminatorPhase) -> Tensor:
        real, fake = step.real.detach(), step.fake.detach()
        group = packed_group_size(real, step.real_out.logits)  # -D pack=M: M samples per D input
        a = uniform_rows(real.shape[0] // group, device=real.device)  # a ~ U[0, 1], one per D input (this rank's)
        x_hat = interpolate(real, fake.to(real.dtype), a.repeat_interleave(group)).requires_grad_(True)
        logits = step.discriminator(x_hat, step.real_labels).logits
        return gradient_penalty(input_gradients(logits, x_hat), group)


def build_gp(spec: DataSpec) -> GradientPenalty:
    """WGAN-GP gradient penalty (Gulrajani 2017): λ E(‖∇D(x̂)‖₂ − 1)² on interpolates; λ = 10 by default."""
    return GradientPenalty()


@gantk.hookimpl
def register_losses(register):
    register("gp", build_gp, summary="WGAN-GP gradient penalty (Gulrajani 2017), weight 10 by default: wgan+gp")
