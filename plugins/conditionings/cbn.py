"""``cbn``: conditional batch normalisation in the generator (de Vries et al. 2017; Miyato &
Koyama 2018; BigGAN): BatchNorm without its own affine, then a per-class scale γ(y) and shift β(y)
from embeddings, ``γ(y)·BN(x) + β(y)``. γ starts at 1 and β at 0. Generator side only."""

from __future__ import annotations

from torch import Tensor, nn

import gantk
from gantk.conditioning import Conditioning, LabelledLayer, require_labels


class ConditionalBatchNorm(LabelledLayer):
    """γ(y)·BN(x) + β(y) over channels; ``dims`` 1 for (B, C) inputs, 2 for (B, C, H, W)."""

    def __init__(self, channels: int, dims: int, num_classes: int) -> None:
        super().__init__()
        self.norm = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)
        self.dims = dims

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:
        y = require_labels(y, "cbn")
        shape = (-1, x.shape[1]) + (1,) * (x.dim() - 2)
        gamma, beta = self.gamma(y).view(shape).to(x.dtype), self.beta(y).view(shape).to(x.dtype)
        return gamma * self.norm(x) + beta  # γ(y)·BN(x) + β(y)


class ConditionalBN(Conditioning):
    name = "cbn"
    sides = frozenset({"generator"})

    def generator_norm(self, channels: int, dims: int) -> LabelledLayer:
        return ConditionalBatchNorm(channels, dims, self.num_classes)


def build_cbn(spec) -> ConditionalBN:
    """Conditional BatchNorm in G (de Vries 2017; Miyato 2018): per-class γ, β (generator only)."""
    return ConditionalBN(spec.num_classes)


@gantk.hookimpl
def register_conditionings(register):
    register("cbn", build_cbn)
