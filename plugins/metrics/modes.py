"""``modes``: mode coverage on the 2-D mixtures (PacGAN protocol: Lin et al. 2018, Table 1).

Draw 2,500 samples. A sample is *high quality* when it lies within 3 standard deviations of its
nearest mode; a mode is *covered* when it is the nearest mode of at least one high-quality sample;
the *reverse KL* is KL(q ‖ uniform) for q the histogram of the high-quality samples over the modes.
Reported: ``modes`` (covered count), ``high_quality`` (share, 0–1) and ``reverse_kl``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import gantk
from gantk.errors import UsageError
from gantk.options import positive_int
from gantk.plugins.datasets.mixtures import GRID25_STD, RING8_STD, grid25_modes, ring8_modes
from gantk.plugins.metrics.formulas import reverse_kl_to_uniform
from gantk.protocols import Dataset
from gantk.engine.sampling import draw

#: The mixtures this metric knows: their mode centres and the standard deviation around each.
MIXTURES = {"ring8": (ring8_modes, RING8_STD), "grid25": (grid25_modes, GRID25_STD)}


def mode_statistics(samples: Tensor, modes: Tensor, std: float) -> dict[str, float]:
    """Covered modes, high-quality share and reverse KL of ``samples`` (n, 2) against ``modes`` (K, 2)."""
    distances = torch.cdist(samples.double(), modes.double())  # ‖x − μ_k‖
    nearest_distance, nearest = distances.min(dim=1)
    high_quality = nearest_distance <= 3 * std  # within 3σ of the nearest mode
    counts = torch.bincount(nearest[high_quality], minlength=len(modes))  # high-quality samples per mode
    return {"modes": int((counts > 0).sum()), "high_quality": float(high_quality.double().mean()),
            "reverse_kl": reverse_kl_to_uniform(counts)}


class ModeCoverage:
    """Scores a generator of a 2-D mixture: ``metric(generator, dataset, device="cpu") -> dict``."""

    # gantk.Metric's declarations: reverse KL to the uniform mode distribution is lower-is-better
    lower_is_better = frozenset({"reverse_kl"})
    default_for_conditional = False
    shares_features = False

    def __init__(self, n: int = 2500, seed: int = 0) -> None:
        self.n, self.seed = positive_int("metric 'modes'", "n", n), int(seed)
        self.protocol: dict = {}

    def __call__(self, generator: nn.Module, dataset: Dataset, *, device: str | torch.device = "cpu") -> dict:
        name = dataset.spec.name
        if name not in MIXTURES:
            raise UsageError(f"The metric 'modes' counts the modes of the 2-D mixtures ({', '.join(MIXTURES)}), but "
                             f"the data set is '{name}'. Use it with --dataset ring8 or grid25, or pick another "
                             "metric (gantk list metric).")
        centres, std = MIXTURES[name]
        samples = draw(generator, self.n, seed=self.seed, device=device)  # eval mode
        self.protocol = {"metric": "modes", "dataset": name, "generated_samples": self.n, "seed": self.seed,
                         "mode_std": std, "high_quality_radius": 3 * std, "modes_total": len(centres()),
                         "gantk_version": gantk.__version__}
        return {**mode_statistics(samples.reshape(self.n, -1), centres(), std), "n": self.n}


def modes_metric(n: int = 2500, seed: int = 0) -> ModeCoverage:
    """Modes covered, high-quality share and reverse KL on ring8/grid25 (PacGAN's protocol)."""
    return ModeCoverage(n=n, seed=seed)


@gantk.hookimpl
def register_metrics(register):
    register("modes", modes_metric,
             summary="2-D mixtures (ring8, grid25): modes covered, high-quality share, reverse KL (PacGAN)")
