"""Data at scale: training from memory, from a streamed folder and from a prepared archive, side by side.

A folder of ``--images`` 64×64 RGB PNGs (20,000 by default: a colour gradient, a few bright
shapes and noise each, so that PNG has something to compress and decode) is written to a temporary
folder and prepared into an archive (``gantk data prepare``). Then the ``dcgan64`` preset trains
in three ways, each in a fresh ``gantk train`` process:

- ``memory``: the folder decoded into memory first (``-O memory=load``), batches by indexing;
- ``streamed``: the folder decoded batch by batch by ``--workers`` processes (``-O memory=stream``);
- ``prepared``: the archive memory-mapped (``--dataset prepared -O memory=stream``), rows read by
  fancy indexing, nothing decoded.

Rates are measured as in ``benchmarks/throughput.py``: the median of gantk's own per-window
steps/s in metrics.jsonl after ``--warmup`` steps; the modes run in interleaved rounds, ratios are
taken within a round and the median over rounds is printed. Memory: the largest resident set of
the training process (``ru_maxrss`` of the child; its decoding workers are not counted), and the
bytes per image the process holds (C·H·W = 12,288 for uint8 64×64×3 in memory, none streamed).
The floor: streamed and prepared at least 0.9 of in-memory steps/s.

    python benchmarks/data.py [--images 20000] [--steps 60] [--warmup 10] [--window 10] [--rounds 3]
                              [--workers auto] [--folder DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIDE = 64
MODES = ("memory", "streamed", "prepared")
FLOOR = 0.9


def gantk_script() -> str:
    return os.path.join(os.path.dirname(sys.executable), "gantk")


def make_images(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` structured 64×64 RGB PNGs (unlabelled: the images directly in ``folder``)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0.0, 1.0, SIDE)
    for index in range(count):
        start, end = rng.uniform(0, 255, size=(2, 3))
        angle = rng.uniform(0, 2 * math.pi)
        t = np.clip(0.5 + 0.5 * (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None] - 0.5), 0, 1)
        pixels = start + (end - start) * t[..., None] + rng.normal(0, 8, size=(SIDE, SIDE, 3))
        image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(rng.integers(1, 4)):
            x, y, size = rng.integers(0, SIDE, size=2).tolist() + [int(rng.integers(6, 24))]
            box, colour = (x, y, x + size, y + size), tuple(int(c) for c in rng.integers(0, 256, size=3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        image.save(folder / f"{index:06d}.png")
        if (index + 1) % 5000 == 0:
            print(f"  {index + 1:,} images written", flush=True)


def prepare(folder: Path, archive: Path) -> float:
    """Run ``gantk data prepare``; returns its seconds."""
    started = time.perf_counter()
    result = subprocess.run([gantk_script(), "data", "prepare", str(folder), "--image-size", str(SIDE),
                             "--out", str(archive), "--force"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"gantk data prepare failed:\n{result.stderr}")
    return time.perf_counter() - started


def data_flags(mode: str, folder: Path, archive: Path) -> list[str]:
    if mode == "memory":
        return ["--data-root", str(folder), "-O", "memory=load"]
    if mode == "streamed":
        return ["--data-root", str(folder), "-O", "memory=stream"]
    return ["--dataset", "prepared", "--data-root", str(archive), "-O", "memory=stream"]


def train(mode: str, folder: Path, archive: Path, runs: Path, name: str, args: argparse.Namespace) -> tuple[float, int]:
    """One fresh ``gantk train --preset dcgan64`` process: (median steps/s after the warm-up, max RSS in bytes)."""
    total = args.warmup + args.window * max(1, args.steps // args.window)
    command = [gantk_script(), "train", "--preset", "dcgan64", *data_flags(mode, folder, archive),
               "--steps", str(total), "--log-every", str(args.window), "--sample-every", str(10 ** 9),
               "--checkpoint-every", str(10 ** 9), "--ema", "off", "--workers", args.workers,
               "--runs-dir", str(runs), "--name", name, "--quiet"]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"training ({mode}) failed:\n{errors.read().decode(errors='replace')}")
    lines = (runs / name / "metrics.jsonl").read_text().splitlines()
    rates = [record["steps_per_s"] for record in map(json.loads, lines)
             if "steps_per_s" in record and record["step"] > args.warmup]
    return statistics.median(rates), usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=60, help="timed steps per run (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--window", type=int, default=10, help="steps per timed window (the median window counts)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="auto", help="--workers of the streamed and prepared runs")
    parser.add_argument("--folder", type=Path, help="use (or create once) the image folder here instead of a "
                                                    "temporary one")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="gantk-data-bench-") as scratch:
        scratch = Path(scratch)
        folder = args.folder or scratch / "images"
        if not (folder.is_dir() and len(list(folder.glob("*.png"))) == args.images):
            print(f"writing {args.images:,} 64x64 PNGs to {folder}", flush=True)
            make_images(folder, args.images)
        archive = scratch / "images.safetensors"
        seconds = prepare(folder, archive)
        print(f"gantk data prepare: {seconds:.1f} s, {archive.stat().st_size / 2 ** 20:.1f} MiB", flush=True)

        rates: dict[str, list[float]] = {mode: [] for mode in MODES}
        memory: dict[str, list[int]] = {mode: [] for mode in MODES}
        for round_number in range(1, args.rounds + 1):
            for mode in MODES:
                rate, rss = train(mode, folder, archive, scratch / "runs", f"{mode}-{round_number}", args)
                rates[mode].append(rate)
                memory[mode].append(rss)
            print(f"round {round_number}: " + ", ".join(f"{m} {rates[m][-1]:.3f}" for m in MODES), flush=True)

    def ratio(mode: str) -> float:
        return statistics.median(a / b for a, b in zip(rates[mode], rates["memory"]))

    held = {"memory": 3 * SIDE * SIDE, "streamed": 0, "prepared": 0}
    print(f"dcgan64 preset, {args.images:,} images 64x64x3, {os.cpu_count()} cores, --workers {args.workers}; "
          f"{args.rounds} interleaved rounds, each run a fresh 'gantk train'")
    print(f"{'mode':<10} {'steps/s':>8} {'ratio':>6} {'max RSS':>10} {'bytes/image held':>17}  floor")
    for mode in MODES:
        floor = "" if mode == "memory" else f">= {FLOOR}"
        print(f"{mode:<10} {statistics.median(rates[mode]):>8.3f} {ratio(mode):>6.2f} "
              f"{statistics.median(memory[mode]) / 2 ** 20:>7.0f} MiB {held[mode]:>17,}  {floor}")
    failed = any(ratio(mode) < FLOOR for mode in MODES if mode != "memory")
    print("floor:", "not met" if failed else "met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
