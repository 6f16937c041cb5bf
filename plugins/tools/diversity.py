"""The ``diversity`` monitor: warns when a run's samples collapse onto a few modes.

:class:`DiversityMonitor` compares the spread of the fixed-noise samples with that of real data:
``diversity = mean pairwise distance(generated) / mean pairwise distance(real)`` (1 for a
generator as varied as the data, near 0 when every latent gives the same sample). When it falls
below ``threshold`` after having been above it, a warning goes once to stderr: the generator may
be collapsing onto a few modes. (An untrained generator starts near 0, so a low value before the
samples ever spread out is not a collapse.)
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor

import gantk
from gantk.engine.sampling import mean_pairwise_distance
from gantk.protocols import MonitorSetup, signed_unit

DIVERSITY_THRESHOLD = 0.2


class DiversityMonitor:
    """Diversity of generated samples relative to real ones; warns once when it falls below ``threshold``."""

    def __init__(self, real_samples: Tensor, threshold: float = DIVERSITY_THRESHOLD, max_real: int = 256) -> None:
        chosen = torch.randperm(len(real_samples), generator=torch.Generator().manual_seed(0))[:max_real]
        self.reference = mean_pairwise_distance(signed_unit(real_samples[chosen]))  # uint8 pixels → [-1, 1]
        self.threshold = threshold
        self.warned = False
        self.spread = False  # whether the samples have been at least ``threshold`` diverse yet

    def __call__(self, samples: Tensor, step: int) -> dict[str, float]:
        """``{"diversity": ratio}`` for ``samples`` drawn at ``step``; warns the first time it collapses."""
        ratio = mean_pairwise_distance(samples) / max(self.reference, 1e-12)
        if ratio >= self.threshold:
            self.spread = True
        elif self.spread and not self.warned:
            self.warned = True
            print(f"gantk: warning: at step {step} the generated samples are {ratio:.2f}x as diverse as real data "
                  f"(mean pairwise distance; below {self.threshold}): the generator may be collapsing onto a few "
                  "modes. Look at the sample pictures; a lower learning rate, --loss hinge+0.5*r1 or wgan+gp "
                  "often help.", file=sys.stderr, flush=True)
        return {"diversity": ratio}


def diversity_monitor(setup: MonitorSetup) -> DiversityMonitor | None:
    """Sample diversity relative to real data, logged as ``diversity``; one warning if it collapses."""
    samples = setup.dataset.samples
    if samples is None or setup.previews:  # streamed data: no in-memory reference; previews are not samples
        return None
    return DiversityMonitor(samples)


@gantk.hookimpl
def register_monitors(register):
    register("diversity", diversity_monitor)
