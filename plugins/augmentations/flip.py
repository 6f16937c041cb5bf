"""``flip``: a horizontal flip of real images (the usual "mirror" augmentation of GAN training sets).

Each real image is mirrored left to right with probability p (0.5); fakes are left untouched, so
this enlarges the real distribution by its mirror images rather than hiding artefacts from D.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

import gantk
from gantk.plugins.augmentations._draws import chosen, per_sample, require_images
from gantk.protocols import Augmentation, DataSpec


class RealFlip(Augmentation):
    """x-flip of real images with probability p; fakes untouched."""

    def __init__(self, probability: float = 0.5) -> None:
        super().__init__()
        self.probability = probability

    def forward(self, x: Tensor, *, real: bool) -> Tensor:
        if not real or self.probability == 0:
            return x
        mirrored = chosen(x.shape[0], self.probability, x.device)
        return torch.where(per_sample(mirrored), x.flip(-1), x)

    def options(self) -> dict[str, Any]:
        return {"p": self.probability}


def build_flip(spec: DataSpec, *, p: float = 0.5) -> RealFlip:
    """x-flip of real images with probability p (0.5); fakes untouched."""
    require_images(spec, "flip")
    return RealFlip(gantk.options.number_in("augmentation 'flip'", "p", p, at_least=0, at_most=1,
                                            what="a probability", hint="the chance a real image is mirrored"))


@gantk.hookimpl
def register_augmentations(register):
    register("flip", build_flip, summary="x-flip of real images with probability p (0.5); fakes untouched")
