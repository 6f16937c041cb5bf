"""Mode coverage of the 2-D presets over 10 seeds, beside PacGAN's Table 1.

For each preset and training seed 0..9: train the preset as it is (what ``gantk train --preset P
--seed S`` does), then score the trained generator with the ``modes`` metric (2,500 samples, sampling
seed 0): modes covered, high-quality share, reverse KL. Printed: mean ± standard error over the
seeds, the seconds per run, and PacGAN's published numbers (Lin et al. 2018, Table 1, 10 trials).

Runs go to ``--jobs`` worker processes of one thread each: these networks are too small for a second
thread to pay, so N processes on N cores finish N runs in the time of one. The seconds per run are
only comparable between runs made with the same ``--jobs`` on a quiet machine.

A 20,000-step run takes minutes, so the whole table is hours of CPU. ``--results FILE`` keeps one JSON
line per finished (preset, seed) and skips those already in the file, so the table can be built over
several sittings; the table is printed from every line of the file (presets with fewer seeds than asked
say so).

    python benchmarks/mode_coverage.py [--presets ring8,grid25] [--seeds 10] [--jobs 2] [--steps N]
                                       [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

import gantk
from gantk.engine.config import TrainConfig
from gantk.engine.trainer import Trainer

PRESETS = ("ring8", "pacgan4-ring8", "ring8-best", "grid25", "pacgan4-grid25", "grid25-best")
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


def run_preset(preset: str, seed: int, runs_dir: Path, steps: int | None) -> dict:
    """Train ``preset`` with ``seed`` (one thread) and score its trained generator with ``modes``: one result line."""
    torch.set_num_threads(1)
    options = {**gantk.get_registry().create("preset", preset), "seed": seed, "preset": preset, "threads": "1",
               "sample_every": 10**9, "checkpoint_every": 10**9}
    if steps:
        options["steps"] = steps
    started = time.perf_counter()
    trainer = Trainer(TrainConfig.from_options(options), runs_dir / f"{preset}-seed{seed}", show_progress=False)
    trainer.train()
    seconds = time.perf_counter() - started
    scores = gantk.get_registry().create("metric", "modes")(trainer.sample_generator(), trainer.dataset)
    return {"preset": preset, "seed": seed, "steps": trainer.config.steps, "seconds": seconds,
            **{key: float(scores[key]) for key in ("modes", "high_quality", "reverse_kl")}}


def read_results(path: Path | None) -> list[dict]:
    """The result lines of an earlier sitting (none without ``--results``)."""
    if path is None or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table_row(preset: str, results: list[dict]) -> str:
    if not results:
        return f"{preset:<16} {0:>5}   (no runs)"
    modes = mean_and_error([r["modes"] for r in results])
    quality = mean_and_error([100 * r["high_quality"] for r in results])
    kl = mean_and_error([r["reverse_kl"] for r in results])
    seconds = statistics.fmean(r["seconds"] for r in results)
    return f"{preset:<16} {len(results):>5} {modes:>14} {quality:>16} {kl:>14} {seconds:>6.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    parser.add_argument("--first-seed", type=int, default=0, help="train only seeds from this one on (another "
                        "process, or another sitting with --results, does the others)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, one thread each")
    parser.add_argument("--steps", type=int, default=None, help="override the presets' step count")
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--results", type=Path, default=None, help="JSON-lines file of per-seed results to extend")
    args = parser.parse_args()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="gantk-modes-"))
    presets = [name.strip() for name in args.presets.split(",") if name.strip()]
    steps = {preset: args.steps or gantk.get_registry().create("preset", preset)["steps"] for preset in presets}
    results = [r for r in read_results(args.results) if r["preset"] in steps and r["steps"] == steps[r["preset"]]]
    done = {(r["preset"], r["seed"]) for r in results}  # lines of other step counts are kept but not used
    to_run = [(preset, seed) for preset in presets for seed in range(args.first_seed, args.seeds)
              if (preset, seed) not in done]
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_preset, preset, seed, runs_dir, args.steps) for preset, seed in to_run]
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            print(json.dumps(result), flush=True)
            if args.results is not None:
                with args.results.open("a") as out:
                    out.write(json.dumps(result) + "\n")
    print(f"{'preset':<16} {'seeds':>5} {'modes':>14} {'high quality %':>16} {'reverse KL':>14} {'s/run':>6}")
    for preset in presets:
        print(table_row(preset, [r for r in results if r["preset"] == preset and r["seed"] < args.seeds]))
    for data, rows in PUBLISHED.items():
        for method, (m, q, k) in rows.items():
            print(f"{data + ' ' + method:<16} {'PacGAN Tab. 1, 10 trials':>22} {m:>7} {q:>16} {k:>14}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
