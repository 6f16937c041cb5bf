"""``concat``: the conditional GAN's label embedding joined to the input (Mirza & Osindero 2014,
"Conditional Generative Adversarial Nets").

G starts from z ⊕ emb(y) with ``emb = Embedding(K, K)`` (the CGAN tutorial's). D gets the same:
a flattened input is joined with emb(y); an image gets K one-hot label maps as extra channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gantk
from gantk.conditioning import Conditioning, LabelledLayer, require_labels


class ConcatEmbedding(LabelledLayer):
    """x ⊕ emb(y), with a learned ``Embedding(K, K)``."""

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_classes, num_classes)
        self.out_dim = in_dim + num_classes

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:
        return torch.cat([x, self.embedding(require_labels(y, "concat")).to(x.dtype)], dim=1)  # x ⊕ emb(y)


class ConcatLabelMaps(LabelledLayer):
    """An image with K one-hot label maps appended as channels: (B, C, H, W) → (B, C + K, H, W)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:
        one_hot = F.one_hot(require_labels(y, "concat"), self.num_classes).to(x.dtype)  # (B, K)
        maps = one_hot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])  # (B, K, H, W)
        return torch.cat([x, maps.contiguous(memory_format=torch.channels_last) if x.is_contiguous(
            memory_format=torch.channels_last) else maps], dim=1)


class Concat(Conditioning):
    name = "concat"

    def generator_input(self, z_dim: int) -> tuple[LabelledLayer, int]:
        layer = ConcatEmbedding(z_dim, self.num_classes)
        return layer, layer.out_dim

    def discriminator_vector_input(self, in_dim: int) -> tuple[LabelledLayer, int]:
        layer = ConcatEmbedding(in_dim, self.num_classes)
        return layer, layer.out_dim

    def discriminator_image_input(self, channels: int) -> tuple[LabelledLayer, int]:
        return ConcatLabelMaps(self.num_classes), channels + self.num_classes


def build_concat(spec) -> Concat:
    """CGAN (Mirza 2014): G from z ⊕ emb(y); D sees x ⊕ emb(y) (label maps as channels for images)."""
    return Concat(spec.num_classes)


@gantk.hookimpl
def register_conditionings(register):
    register("concat", build_concat)
