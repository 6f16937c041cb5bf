"""Two ``gantk train`` runs sharing the CPU: each one's steps/s against a lone run's, per thread setting.

    .venv/bin/python benchmarks/contention.py [--steps 300] [--rounds 2]

For each ``--threads`` setting (PyTorch's default of one thread per core, which gantk used before
``auto``; one thread; ``auto``) it times the default command (a DCGAN on mnist5k) trained alone,
then two copies started together, and prints each run's steps/s (from its summary.json, training
time only) and the ratio to the lone run with PyTorch's default, the reference for every figure.
``--wait-policy-passive`` adds a row with ``OMP_WAIT_POLICY=PASSIVE`` and PyTorch's threads (slow to
run: it measured 0.04 on 2 cores). Run it on a quiet machine: anything else on the cores changes
every number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

GANTK = str(Path(sys.executable).with_name("gantk"))

#: Each setting: the flags of both runs, and what it adds to their environment.
SETTINGS: dict[str, tuple[list[str], dict[str, str]]] = {
    "one per core (PyTorch's default)": (["--threads", str(len(os.sched_getaffinity(0)))], {}),
    "--threads 1": (["--threads", "1"], {}),
    "--threads auto (gantk's default)": ([], {}),
}
PASSIVE = {"OMP_WAIT_POLICY=PASSIVE, one per core": (["--threads", str(len(os.sched_getaffinity(0)))],
                                                     {"OMP_WAIT_POLICY": "PASSIVE"})}


def start(runs: Path, name: str, steps: int, setting: tuple[list[str], dict[str, str]]) -> subprocess.Popen:
    flags, environment = setting
    command = [GANTK, "train", *flags, "--steps", str(steps), "--sample-every", "100000", "--checkpoint-every", "100000",
               "--ema", "off", "--quiet", "--runs-dir", str(runs), "--name", name]
    # the settings replace whatever this shell set: each row measures exactly its own
    base = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    return subprocess.Popen(command, env={**base, **environment}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def steps_per_s(runs: Path, name: str, process: subprocess.Popen) -> float:
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"gantk train failed ({process.returncode}): {stderr.decode()}")
    return json.loads((runs / name / "summary.json").read_text())["steps_per_s"]


def measure(runs: Path, label: str, steps: int, setting: tuple[list[str], dict[str, str]]) -> tuple[float, list[float]]:
    lone = steps_per_s(runs, f"{label}-lone", start(runs, f"{label}-lone", steps, setting))
    pair = [start(runs, f"{label}-pair{i}", steps, setting) for i in range(2)]
    return lone, [steps_per_s(runs, f"{label}-pair{i}", process) for i, process in enumerate(pair)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every setting, interleaved; medians shown")
    parser.add_argument("--wait-policy-passive", action="store_true", help="also measure OMP_WAIT_POLICY=PASSIVE")
    options = parser.parse_args()
    settings = {**SETTINGS, **(PASSIVE if options.wait_policy_passive else {})}
    print(f"cores: {len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()[0]:.2f}; "
          f"{options.steps} steps of the default command per run")
    results: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label in settings}
    with tempfile.TemporaryDirectory(prefix="gantk-contention-") as folder:
        for round_ in range(options.rounds):
            for index, (label, setting) in enumerate(settings.items()):
                lone, pair = measure(Path(folder), f"r{round_}s{index}", options.steps, setting)
                results[label][0].append(lone)
                results[label][1].extend(pair)
    reference = statistics.median(next(iter(results.values()))[0])
    print("\n| threads | lone steps/s | lone / reference | each of two runs, steps/s | each of two / reference |")
    print("|---|---|---|---|---|")
    for label, (lone, pair) in results.items():
        lone_median, pair_median = statistics.median(lone), statistics.median(pair)
        print(f"| {label} | {lone_median:.2f} | {lone_median / reference:.2f} | {pair_median:.2f} "
              f"(min {min(pair):.2f}) | {pair_median / reference:.2f} |")


if __name__ == "__main__":
    main()
