"""``mul``: the ACGAN tutorial's generator input emb(y) ⊙ z, with ``emb = Embedding(K, z_dim)``
(Odena et al. 2017 condition G on the class; the tutorial multiplies). Generator side only."""

from __future__ import annotations

from torch import Tensor, nn

import gantk
from gantk.conditioning import Conditioning, LabelledLayer, require_labels


class MultiplyEmbedding(LabelledLayer):
    """emb(y) ⊙ z."""

    def __init__(self, z_dim: int, num_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_classes, z_dim)
        self.out_dim = z_dim

    def forward(self, z: Tensor, y: Tensor | None) -> Tensor:
        return self.embedding(require_labels(y, "mul")).to(z.dtype) * z  # emb(y) ⊙ z


class Multiply(Conditioning):
    name = "mul"
    sides = frozenset({"generator"})

    def generator_input(self, z_dim: int) -> tuple[LabelledLayer, int]:
        return MultiplyEmbedding(z_dim, self.num_classes), z_dim


def build_mul(spec) -> Multiply:
    """ACGAN tutorial's G input emb(y) ⊙ z (generator only)."""
    return Multiply(spec.num_classes)


@gantk.hookimpl
def register_conditionings(register):
    register("mul", build_mul)
