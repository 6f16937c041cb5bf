"""SAGAN's self-attention block (Zhang, Goodfellow, Metaxas & Odena 2019, "Self-Attention Generative
Adversarial Networks", arXiv:1805.08318, §4), private to ``gantk.plugins.architectures``.

    o = γ · v(softmax(f(x)ᵀ g(x)) h(x)) + x,    γ initialised to 0

f (queries) and g (keys) are 1×1 convs to C/8 channels, h (values) a 1×1 conv to C/2 channels
and v a 1×1 conv from C/2 back to C; the keys and values are max-pooled by 2, so each of the N
positions attends over N/4 pooled positions. The paper writes h and v with C channels and no
pooling (§4); the C/2 values and the pooling are those of the authors' released code and of
BigGAN (Brock et al. 2019), which cut the N×N attention matrix to N×N/4. The convs have no bias
(the paper's W matrices). With γ = 0 the block starts as the identity and learns how much
non-local evidence to mix in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SelfAttention(nn.Module):
    """SAGAN self-attention over a (B, C, H, W) map with even H and W; the output has the input's shape."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner, values = max(1, channels // 8), max(1, channels // 2)
        self.query = nn.Conv2d(channels, inner, 1, bias=False)  # f
        self.key = nn.Conv2d(channels, inner, 1, bias=False)  # g
        self.value = nn.Conv2d(channels, values, 1, bias=False)  # h
        self.out = nn.Conv2d(values, channels, 1, bias=False)  # v
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        queries = self.query(x).flatten(2)  # (B, C/8, N)
        keys = F.max_pool2d(self.key(x), 2).flatten(2)  # (B, C/8, N/4)
        values = F.max_pool2d(self.value(x), 2).flatten(2)  # (B, C/2, N/4)
        # β_ij = softmax_j(f(x_i)ᵀ g(x_j)): (B, N, N/4)
        attention = torch.softmax(queries.transpose(1, 2) @ keys, dim=-1)
        # Σ_j β_ij h(x_j) at every position i: (B, C/2, N) -> (B, C/2, H, W)
        attended = (values @ attention.transpose(1, 2)).view(batch, -1, height, width)
        return x + self.gamma * self.out(attended)  # o = γ·v(·) + x
