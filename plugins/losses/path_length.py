"""Path-length regularisation (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN",
arXiv:1912.04958, §3.2), a generator-side term: ``pl``.

``E_{w,y} (‖J_wᵀ y‖₂ − a)²`` with ``J_w`` the Jacobian of the image with respect to the styles,
``y ~ N(0, I)/√(H·W)`` a random image and ``a`` a running mean of the lengths (decay 0.01). The
product ``J_wᵀ y`` is the gradient of ``Σ g(w)·y`` with respect to w, so one backward pass gives it;
the penalty then back-propagates through that gradient (double back-propagation through G).
The lengths are taken on the first 1/``batch_shrink`` of the generator phase's latents (2: half
the batch, as in the paper), with the styles the generator's mapping gives them (mixed in
training mode) and its labels. The term returns ``E (‖J_wᵀ y‖₂ − a)²``; its weight is 2 by default
and ``every=4`` runs it lazily, every 4th step with its weight multiplied by 4.

It needs a generator that implements :class:`gantk.StyleGenerator` (the ``"style_generator"``
need; any other is refused before training) and a procedure that passes the generator and its
latents in G's phase (gantk's ``gan`` procedure does). ``a`` is a buffer of the term, so
checkpoints keep it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

import gantk
from gantk.protocols import DataSpec, GeneratorPhase, LossTerm


def path_lengths(images: Tensor, ws: Tensor, noise: Tensor) -> Tensor:
    """‖J_wᵀ y‖₂ per sample: the norm of ∂(Σ g(w)·y)/∂w, with the squares summed over w_dim and averaged over the
    styles (as the paper's code does for its per-layer styles). ``create_graph`` keeps it trainable."""
    (gradients,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)  # J_wᵀ y, (B, num_ws, w_dim)
    return gradients.float().square().sum(dim=2).mean(dim=1).sqrt()  # ‖J_wᵀ y‖₂


def path_length_penalty(lengths: Tensor, mean_length: Tensor) -> Tensor:
    """E (‖J_wᵀ y‖₂ − a)² over the batch."""
    return (lengths - mean_length).square().mean()  # E (‖J_wᵀ y‖₂ − a)²


class PathLengthPenalty(LossTerm):
    """Path-length regulariser (Karras et al. 2020) on the generator."""

    needs = frozenset({"style_generator"})
    default_weight = 2.0
    auxiliary = True  # a regulariser: composes with an adversarial loss

    def __init__(self, every: int = 4, batch_shrink: int = 2, decay: float = 0.01) -> None:
        super().__init__()
        self.every, self.batch_shrink, self.decay = every, batch_shrink, decay
        self.register_buffer("mean_length", torch.zeros(()))  # a, the running mean of the lengths

    def generator_loss(self, step: GeneratorPhase) -> Tensor:
        generator, z = step.generator, step.z
        if generator is None or z is None:
            raise gantk.UsageError(
                "The loss term 'pl' runs the generator again on its latents, but this training procedure passed "
                "neither the generator nor the latents to the generator's phase. Use the default 'gan' procedure, or "
                "drop 'pl' from the loss.")
        rows = max(1, z.shape[0] // self.batch_shrink)
        labels = step.fake_labels[:rows] if step.fake_labels is not None else None
        ws = generator.mapping(z[:rows], labels)
        images = generator.synthesis(ws)
        height, width = images.shape[-2:]
        noise = torch.randn_like(images) / math.sqrt(height * width)  # y ~ N(0, I)/√(H·W)
        lengths = path_lengths(images, ws, noise)
        with torch.no_grad():
            self.mean_length.lerp_(lengths.mean(), self.decay)  # a ← a + decay·(E‖J_wᵀ y‖ − a)
        return path_length_penalty(lengths, self.mean_length)

    def options(self) -> dict:
        return {"every": self.every, "batch_shrink": self.batch_shrink, "decay": self.decay}


def build_path_length(spec: DataSpec, *, every: int = 4, batch_shrink: int = 2, decay: float = 0.01
                      ) -> PathLengthPenalty:
    """Path-length regularisation (Karras 2020): E(‖J_wᵀy‖₂ − a)² on G, weight 2, every 4 G steps by default."""
    owner = "loss 'pl'"
    return PathLengthPenalty(
        gantk.options.positive_int(owner, "every", every, hint="run the penalty every that many steps, e.g. 4"),
        gantk.options.positive_int(owner, "batch_shrink", batch_shrink,
                                   hint="take the lengths on 1/batch_shrink of the batch, e.g. 2"),
        gantk.options.number_in(owner, "decay", decay, above=0, at_most=1, what="a decay rate",
                                hint="of the running mean of the lengths, e.g. 0.01"))


@gantk.hookimpl
def register_losses(register):
    register("pl", build_path_length, summary="Path-length regularisation of a style-based G (Karras 2020), weight 2 "
                                              "by default; options every (4), batch_shrink (2)")
