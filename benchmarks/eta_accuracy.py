"""How well the progress display's ETA predicts the end of a run with --eval-every (issue 17).

Trains the default run (dcgan on mnist5k, CPU) for ``--steps`` steps with ``--evaluations`` evaluations (5: one every fifth of
the run; ``--eval-metrics fid``: 5,000 samples on the in-domain classifier's features), the losses read
back every hundredth of the run. At every read-back it records the elapsed time and the ETA the display
computes (a recording :class:`gantk.engine.progress.TrainingProgress`); when the run has ended it prints,
for each read-back from 10 % of the run onward, the error of the predicted end,
|elapsed + ETA − final wall time| / final wall time, and the largest.

``--cache cold`` (the default) starts from an empty ``$GANTK_CACHE_DIR``: the first evaluation then
trains the classifier and extracts the real features, work the later ones find cached. ``--cache warm``
keeps the user's cache.

Needs a quiet machine: the ETA extrapolates the rate measured so far, so other processes that start or
stop during the run move the end by an amount no ETA can foresee.

    python benchmarks/eta_accuracy.py                    # 600 steps, an evaluation every 120
    python benchmarks/eta_accuracy.py --steps 20         # a quick check that it runs (not a measurement)
    python benchmarks/eta_accuracy.py --evaluations 10 --eval-metrics fid,kid,pr,dc   # evaluation-heavy
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import gantk.engine.trainer as trainer_module
from gantk.engine.config import TrainConfig
from gantk.engine.progress import TrainingProgress
from gantk.engine.trainer import Trainer

#: read-backs before this share of the run are not judged (the must-show: "from 10 % of the run onward")
JUDGED_FROM = 0.1


class RecordingProgress(TrainingProgress):
    """The display of the run, recording (step, seconds since its start, ETA) at every read-back."""

    latest: "RecordingProgress | None" = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.predictions: list[tuple[int, float, float]] = []
        RecordingProgress.latest = self

    def report(self, step: int, record: dict) -> None:
        super().report(step, record)
        self.predictions.append((step, self.clock() - self.started, self.eta(step)))


def train(steps: int, evaluations: int, metrics: str, runs_dir: Path) -> tuple[RecordingProgress, float]:
    """Train the run; return its display and its wall time (from the display's start to the end of training)."""
    config = TrainConfig.from_options({"steps": steps, "eval_every": max(1, steps // evaluations), "eval_metrics": metrics,
                                       "log_every": max(1, steps // 100), "device": "cpu"})
    trainer_module.TrainingProgress = RecordingProgress  # the trainer builds its display by this name
    try:
        Trainer(config, runs_dir / "run").train()
    finally:
        trainer_module.TrainingProgress = TrainingProgress
    display = RecordingProgress.latest
    return display, time.perf_counter() - display.started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--cache", choices=("cold", "warm"), default="cold",
                        help="cold: an empty $GANTK_CACHE_DIR (the first evaluation trains the classifier)")
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--evaluations", type=int, default=5, help="evaluations in the run (besides step 0)")
    parser.add_argument("--eval-metrics", default="fid", help="the metrics of each evaluation, e.g. fid,kid,pr,dc")
    args = parser.parse_args()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="gantk-eta-"))
    if args.cache == "cold":
        os.environ["GANTK_CACHE_DIR"] = str(runs_dir / "cache")
    display, wall = train(args.steps, args.evaluations, args.eval_metrics, runs_dir)
    print(f"\n{args.steps} steps, an evaluation every {max(1, args.steps // args.evaluations)} ({args.eval_metrics}), "
          f"cache {args.cache}: "
          f"{wall:.1f} s from the display's start to the end of training")
    print(f"{'step':>6} {'share':>6} {'elapsed s':>10} {'ETA s':>8} {'error':>7}")
    errors = []
    for step, elapsed, eta in display.predictions:
        share = step / args.steps
        if share < JUDGED_FROM:
            continue
        error = abs(elapsed + eta - wall) / wall  # |elapsed + ETA − final wall| / final wall
        errors.append(error)
        print(f"{step:>6} {share:>6.0%} {elapsed:>10.1f} {eta:>8.1f} {error:>7.1%}")
    if errors:
        print(f"largest error from {JUDGED_FROM:.0%} of the run onward: {max(errors):.1%} over {len(errors)} "
              "read-backs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
