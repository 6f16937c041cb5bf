"""Watching a run while it trains: sample diversity (mode collapse) and the best model by a metric.

:class:`DiversityMonitor` compares the spread of the fixed-noise samples with that of real data:
``diversity = mean pairwise distance(generated) / mean pairwise distance(real)`` (1 for a
generator as varied as the data, near 0 when every latent gives the same sample). When it falls
below ``threshold`` after having been above it, a warning goes once to stderr: the generator may
be collapsing onto a few modes. (An untrained generator starts near 0, so a low value before the
samples ever spread out is not a collapse.)

:class:`BestKeeper` follows one evaluation value (``--keep-best fid`` or ``accuracy:max``) and, each
time it improves, exports the sampling generator to ``best_generator.safetensors`` (atomically)
and writes ``best.json`` with the step and the value.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from gantk.errors import UsageError
from gantk.engine.safetensors_io import write_atomic

#: Metrics whose smaller values are better; every other metric is taken as larger-is-better.
LOWER_IS_BETTER = frozenset({"fid", "kid", "ifid", "reverse_kl"})
DIVERSITY_THRESHOLD = 0.2


def mean_pairwise_distance(samples: Tensor) -> float:
    """Mean ‖x_i − x_j‖ over pairs i ≠ j of the flattened samples (float32)."""
    flat = samples.detach().float().reshape(len(samples), -1).cpu()
    if len(flat) < 2:
        return 0.0
    distances = torch.cdist(flat, flat)
    return float(distances.sum() / (len(flat) * (len(flat) - 1)))  # the diagonal is 0


class DiversityMonitor:
    """Diversity of generated samples relative to real ones; warns once when it falls below ``threshold``."""

    def __init__(self, real_samples: Tensor, threshold: float = DIVERSITY_THRESHOLD, max_real: int = 256) -> None:
        chosen = torch.randperm(len(real_samples), generator=torch.Generator().manual_seed(0))[:max_real]
        self.reference = mean_pairwise_distance(real_samples[chosen])
        self.threshold = threshold
        self.warned = False
        self.spread = False  # whether the samples have been at least ``threshold`` diverse yet

    def __call__(self, samples: Tensor, step: int) -> float:
        ratio = mean_pairwise_distance(samples) / max(self.reference, 1e-12)
        if ratio >= self.threshold:
            self.spread = True
        elif self.spread and not self.warned:
            self.warned = True
            print(f"gantk: warning: at step {step} the generated samples are {ratio:.2f}x as diverse as real data "
                  f"(mean pairwise distance; below {self.threshold}): the generator may be collapsing onto a few "
                  "modes. Look at the sample pictures; a lower learning rate, --loss hinge+0.5*r1 or wgan+gp "
                  "often help.", file=sys.stderr, flush=True)
        return ratio


def parse_keep_best(value: str | None) -> tuple[str, bool] | None:
    """``"fid"`` → ("fid", lower is better); ``"accuracy:max"`` → ("accuracy", False); None → None."""
    if not value:
        return None
    key, _, direction = value.partition(":")
    key = key.strip().removeprefix("eval/")
    if direction not in ("", "min", "max") or not key:
        raise UsageError(f"--keep-best takes a metric value name, optionally with :min or :max (e.g. fid, "
                         f"accuracy:max), got '{value}'.")
    return key, (direction == "min") if direction else key in LOWER_IS_BETTER


class BestKeeper:
    """Exports the generator whenever the followed evaluation value improves."""

    def __init__(self, key: str, lower_is_better: bool, run_dir: Path, export: Callable[[Path, dict], Path]) -> None:
        self.key, self.lower_is_better, self.run_dir, self.export = key, lower_is_better, run_dir, export
        self.best: float | None = None
        previous = run_dir / "best.json"
        if previous.is_file():  # a resumed run keeps the best it already had
            record = json.loads(previous.read_text())
            if record.get("metric") == key and record.get("lower_is_better") == lower_is_better:
                self.best = float(record["value"])

    def update(self, step: int, evaluation: dict[str, float]) -> bool:
        """Record ``evaluation`` (``eval/<key>`` values) at ``step``; True when it was a new best and was saved."""
        name = f"eval/{self.key}"
        if name not in evaluation:
            raise UsageError(f"--keep-best follows '{self.key}', but the evaluation gave only "
                             f"{', '.join(k.removeprefix('eval/') for k in evaluation) or 'nothing'}. Name one of "
                             "those, or add the metric that gives it to --eval-metrics.")
        value = evaluation[name]
        better = self.best is None or (value < self.best if self.lower_is_better else value > self.best)
        if not better:
            return False
        self.best = value
        self.export(self.run_dir / "best_generator.safetensors", {"best_step": step, "best_" + self.key: value})
        record = {"step": step, "metric": self.key, "value": value, "lower_is_better": self.lower_is_better}
        write_atomic(self.run_dir / "best.json", (json.dumps(record) + "\n").encode())  # read back on --resume
        return True
