"""Conditional accuracy of the headline command and the conditional presets, with their wall times.

Each command runs as a user would type it (``gantk train ...``, on the embedded mnist5k digits),
then ``gantk eval RUN --metrics accuracy,idc`` labels 1,000 generated samples (100 per class) with the
classifier trained on the real digits and measures within-class diversity (``idc``: per-class coverage,
k = 5, 200 generated against 200 real digits per class on the classifier's features, over real-vs-real
coverage). Printed per command: wall time of the training command, accuracy, the coverage ratio, the
classifier's held-out accuracy. Floors: accuracy ≥ 0.90 and at most 600 s of training on 2 CPU cores
(the conditional-GAN issue); for the presets also accuracy ≥ 0.95 and a coverage ratio ≥ 0.9 (the
mode-collapse issue; the headline composition's ratio is printed, not held to it). Exit status 1 when a
floor is missed. ``--weights trained`` scores the trained weights instead of the EMA copy (``gantk
export RUN --no-ema``), to see what the average adds.

    python benchmarks/conditional_accuracy.py [--only headline,cgan] [--weights ema|trained] [--runs-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "headline": ["--gen", "dcgan", "--disc", "acgan", "--loss", "hinge+contrastive"],
    "cgan": ["--preset", "cgan"],
    "acgan": ["--preset", "acgan"],
    "contragan": ["--preset", "contragan"],
}
ACCURACY_FLOOR, SECONDS_FLOOR = 0.90, 600.0
PRESETS = {name for name, flags in COMMANDS.items() if flags[0] == "--preset"}  # held to the mode-collapse floors too
PRESET_ACCURACY_FLOOR, COVERAGE_RATIO_FLOOR = 0.95, 0.9


def gantk(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("gantk")
    return subprocess.run([str(script), *args], capture_output=True, text=True)


def measure(name: str, args: list[str], runs_dir: Path, weights: str) -> dict:
    started = time.perf_counter()
    trained = gantk("train", *args, "--runs-dir", str(runs_dir), "--name", name, "--quiet")
    seconds = time.perf_counter() - started
    if trained.returncode != 0:
        raise SystemExit(f"{name}: training failed:\n{trained.stderr}")
    scored = [str(runs_dir / name)]  # a run is scored on its own data set
    if weights == "trained":
        scored = [str(runs_dir / f"{name}-trained.safetensors"), "--dataset", "mnist5k"]
        exported = gantk("export", str(runs_dir / name), "--no-ema", "--out", scored[0])
        if exported.returncode != 0:
            raise SystemExit(f"{name}: export failed:\n{exported.stderr}")
    out = runs_dir / f"{name}-{weights}-accuracy.json"
    evaluated = gantk("eval", *scored, "--metrics", "accuracy,idc", "--out", str(out))
    if evaluated.returncode != 0:
        raise SystemExit(f"{name}: evaluation failed:\n{evaluated.stderr}")
    values = json.loads(out.read_text())["values"]
    return {"name": name, "seconds": seconds, "accuracy": values["accuracy"], "ratio": values["idc_coverage_ratio"],
            "classifier": values["classifier_accuracy"],
            "per_class": [round(values[f"accuracy/{k}"], 2) for k in range(10)]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(COMMANDS))
    parser.add_argument("--weights", choices=("ema", "trained"), default="ema")
    parser.add_argument("--runs-dir", type=Path, default=None)
    args = parser.parse_args()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="gantk-conditional-"))
    print(f"{os.cpu_count()} CPUs; runs in {runs_dir}")
    ok = True
    for name in args.only.split(","):
        result = measure(name, COMMANDS[name], runs_dir, args.weights)
        preset_met = name not in PRESETS or (result["accuracy"] >= PRESET_ACCURACY_FLOOR
                                               and result["ratio"] >= COVERAGE_RATIO_FLOOR)
        met = result["accuracy"] >= ACCURACY_FLOOR and result["seconds"] <= SECONDS_FLOOR and preset_met
        ok &= met
        print(f"{name:<10} {' '.join(COMMANDS[name]):<52} {result['seconds']:6.1f} s  accuracy {result['accuracy']:.3f}"
              f"  coverage ratio {result['ratio']:.2f}  (classifier {result['classifier']:.3f})  per class {result['per_class']}  "
              f"{'ok' if met else 'FLOOR MISSED'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
