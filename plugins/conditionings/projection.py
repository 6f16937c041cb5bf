"""``projection``: the projection discriminator (Miyato & Koyama 2018, "cGANs with Projection
Discriminator"): D(x, y) = ψ(φ(x)) + emb(y)ᵀφ(x), with φ the D features and ``emb = Embedding(K, F)``.
Discriminator side only."""

from __future__ import annotations

from torch import Tensor, nn

import gantk
from gantk.conditioning import Conditioning, require_labels


class ProjectionOutput(nn.Module):
    """ψ(φ(x)) + emb(y)ᵀφ(x)."""

    def __init__(self, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_classes, feature_dim)
        nn.init.normal_(self.embedding.weight, 0.0, 0.02)

    def forward(self, logits: Tensor, features: Tensor, y: Tensor | None) -> Tensor:
        projection = (self.embedding(require_labels(y, "projection")).to(features.dtype) * features).sum(dim=1)
        return logits + projection  # ψ(φ(x)) + emb(y)ᵀφ(x)


class Projection(Conditioning):
    name = "projection"
    sides = frozenset({"discriminator"})

    def discriminator_output(self, feature_dim: int) -> nn.Module:
        return ProjectionOutput(feature_dim, self.num_classes)


def build_projection(spec) -> Projection:
    """Projection discriminator (Miyato & Koyama 2018): D(x,y) = ψ(φ(x)) + emb(y)ᵀφ(x) (discriminator only)."""
    return Projection(spec.num_classes)


@gantk.hookimpl
def register_conditionings(register):
    register("projection", build_projection)
