"""Exponential moving average of the generator's weights (Karras et al. 2018; Yazıcı et al. 2019).

``θ_ema ← β θ_ema + (1−β) θ`` after every generator update; buffers (BatchNorm statistics) are
copied. Samples, evaluation and export use the EMA copy when there is one.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, beta: float) -> None:
        self.beta = beta
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._pairs = list(zip(self.model.parameters(), model.parameters()))
        self._buffers = list(zip(self.model.buffers(), model.buffers()))

    @torch.no_grad()
    def update(self) -> None:
        for averaged, current in self._pairs:
            averaged.lerp_(current, 1.0 - self.beta)  # θ_ema ← β θ_ema + (1−β) θ
        for averaged, current in self._buffers:
            averaged.copy_(current)
