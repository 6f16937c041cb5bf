"""Exponential moving average of the generator's weights (Karras et al. 2018; Yazıcı et al. 2019).

``θ_ema ← β_t θ_ema + (1−β_t) θ`` after every generator update; buffers (BatchNorm statistics) are
copied. Samples, evaluation and export use the EMA copy when there is one.

With the warm-up (``ema_warmup``, on for new runs) ``β_t = min(β, (1 + t)/(10 + t))``, t the updates
made before this one: the ``num_updates`` rule of TensorFlow's ``ExponentialMovingAverage``. Without
it the random initial weights keep a share β^k of the average after k updates (8 % for β = 0.999
after 2,500); with it they are gone after the first few updates.

:class:`SpreadCheck` watches what the average costs: when the EMA generator's samples are much less
spread than the trained generator's, or centred elsewhere (it averages a generator that is still
moving between modes), it warns once.
"""

from __future__ import annotations

import copy
import sys

import torch
from torch import Tensor, nn

from gantk.engine.sampling import mean_pairwise_distance

#: below this ratio of spreads (EMA / trained) the run is warned once
SPREAD_WARNING_RATIO = 0.5
#: above this distance between the two generators' mean samples, in units of the trained spread, likewise
MEAN_SHIFT_WARNING = 1.0
#: at most this many of the fixed-noise samples are drawn through both generators for the check
SPREAD_SAMPLES = 256


class EMA:
    """The averaged copy of ``model``; ``updates`` (t) counts the updates made and is saved in checkpoints."""

    def __init__(self, model: nn.Module, beta: float, warmup: bool = True) -> None:
        self.beta, self.warmup = beta, warmup
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._pairs = list(zip(self.model.parameters(), model.parameters()))
        self._buffers = list(zip(self.model.buffers(), model.buffers()))

    def decay(self) -> float:
        """β_t, the decay the next update uses."""
        if not self.warmup:
            return self.beta
        t = self.updates
        return min(self.beta, (1 + t) / (10 + t))  # β_t = min(β, (1 + t)/(10 + t))

    @torch.no_grad()
    def update(self) -> None:
        decay = self.decay()
        for averaged, current in self._pairs:
            averaged.lerp_(current, 1.0 - decay)  # θ_ema ← β_t θ_ema + (1−β_t) θ
        for averaged, current in self._buffers:
            averaged.copy_(current)
        self.updates += 1


def spread_indices(count: int, limit: int = SPREAD_SAMPLES) -> Tensor:
    """At most ``limit`` indices spaced evenly over ``count`` fixed-noise rows (so every class of a grid is kept)."""
    return torch.arange(0, count, max(1, -(-count // limit)))  # stride ⌈count / limit⌉


class SpreadCheck:
    """Compares the EMA generator's samples with the trained generator's, both drawn from the same noise:

    - ``ema/spread_ratio``: their mean pairwise distances, EMA over trained (below :data:`SPREAD_WARNING_RATIO`,
      the average is less varied than the generator it averages);
    - ``ema/mean_shift``: the distance between their mean samples over the trained mean pairwise distance (above
      :data:`MEAN_SHIFT_WARNING`, the average draws elsewhere: a collapsed generator that moves between modes
      averages to a point between them, which the spreads alone do not show).

    Either gives one warning per run (on stderr).
    """

    def __init__(self, beta: float, threshold: float = SPREAD_WARNING_RATIO,
                 shift_threshold: float = MEAN_SHIFT_WARNING) -> None:
        self.beta, self.threshold, self.shift_threshold = beta, threshold, shift_threshold
        self.warned = False

    def __call__(self, ema_samples: Tensor, trained_samples: Tensor, step: int) -> dict[str, float]:
        trained_spread = max(mean_pairwise_distance(trained_samples), 1e-12)
        ratio = mean_pairwise_distance(ema_samples) / trained_spread
        ema_mean, trained_mean = (s.detach().float().reshape(len(s), -1).mean(0).cpu()
                                  for s in (ema_samples, trained_samples))
        shift = float(torch.linalg.vector_norm(ema_mean - trained_mean)) / trained_spread  # ‖x̄_ema − x̄‖ / spread
        if (ratio < self.threshold or shift > self.shift_threshold) and not self.warned:
            self.warned = True
            how = (f"its samples are {1 / max(ratio, 1e-12):.1f}x less spread than the trained weights'"
                   if ratio < self.threshold else
                   f"its mean sample is {shift:.1f} times the trained samples' typical distance away from theirs")
            print(f"gantk: warning: at step {step} the EMA generator (--ema {self.beta:g}) averages a generator that "
                  f"is still moving: {how} (from the same noise; logged as ema/spread_ratio and ema/mean_shift). "
                  "The sample pictures, evaluations and generator.safetensors use the EMA weights. Train with --ema "
                  "off or a smaller decay (e.g. --ema 0.99), or write the trained weights with 'gantk export RUN --no-ema'.",
                  file=sys.stderr, flush=True)
        return {"ema/spread_ratio": ratio, "ema/mean_shift": shift}
