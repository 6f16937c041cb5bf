"""Mode coverage of the plain ``ring8`` and ``grid25`` presets over 10 seeds, beside PacGAN's Table 1.

For each preset and training seed 0..9: train the preset as it is (``gantk train --preset ring8
--seed S``), then score the generator with the ``modes`` metric (2,500 samples, sampling seed 0):
modes covered, high-quality share, reverse KL. Printed: mean ± standard error over the seeds, and
PacGAN's published numbers for the plain GAN and PacGAN4 (Lin et al. 2018, Table 1, 10 trials).

    python benchmarks/mode_coverage.py [--seeds 10] [--steps N] [--runs-dir DIR]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import gantk
from gantk.engine.config import TrainConfig
from gantk.engine.trainer import Trainer

#: PacGAN Table 1 (ALGORITHMS.md §4): modes, high-quality %, reverse KL.
PUBLISHED = {
    "ring8": {"GAN": (6.3, 98.2, 0.45), "PacGAN4": (7.8, 95.9, 0.07)},
    "grid25": {"GAN": (17.3, 94.8, 0.70), "PacGAN4": (24.8, 93.6, 0.04)},
}


def mean_and_error(values: list[float]) -> str:
    """mean ± standard error (sample std / √n)."""
    if any(math.isinf(v) for v in values):
        return "inf"
    error = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {error:.2f}"


def run_preset(preset: str, seed: int, runs_dir: Path, steps: int | None) -> tuple[dict, float]:
    options = {**gantk.get_registry().create("preset", preset), "seed": seed, "preset": preset,
               "sample_every": 10**9, "checkpoint_every": 10**9}
    if steps:
        options["steps"] = steps
    config = TrainConfig.from_options(options)
    started = time.perf_counter()
    trainer = Trainer(config, runs_dir / f"{preset}-seed{seed}", show_progress=False)
    trainer.train()
    seconds = time.perf_counter() - started
    dataset = trainer.dataset
    return gantk.get_registry().create("metric", "modes")(trainer.sample_generator(), dataset), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=None, help="override the presets' step count")
    parser.add_argument("--runs-dir", type=Path, default=None)
    args = parser.parse_args()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="gantk-modes-"))
    print(f"{'data':<7} {'method':<22} {'modes':>14} {'high quality %':>16} {'reverse KL':>14}")
    for preset in ("ring8", "grid25"):
        results, seconds = [], []
        for seed in range(args.seeds):
            result, took = run_preset(preset, seed, runs_dir, args.steps)
            results.append(result)
            seconds.append(took)
        modes = mean_and_error([r["modes"] for r in results])
        quality = mean_and_error([100 * r["high_quality"] for r in results])
        kl = mean_and_error([r["reverse_kl"] for r in results])
        print(f"{preset:<7} {'gantk preset (' + str(args.seeds) + ' seeds)':<22} {modes:>14} {quality:>16} {kl:>14}"
              f"   ({statistics.fmean(seconds):.0f} s per run)")
        for method, (m, q, k) in PUBLISHED[preset].items():
            print(f"{preset:<7} {method + ' (PacGAN Tab. 1)':<22} {m:>14} {q:>16} {k:>14}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
