"""The reliability figures: one writer per run, forged files refused before allocating, damaged
checkpoints skipped, kill -9 survived.

    .venv/bin/python benchmarks/reliability_checks.py [--kills 5] [--seed 0]

Every check runs the real ``gantk`` command in subprocesses on the 1-D toy GAN (``--preset
gan1d``) in a temporary folder, and prints what it measured:

1. two ``gantk train`` with one ``--name``: the second's exit code and message, and whether the first
   run's exported generator is bit-identical to the same run trained alone;
2. forged exports (``z_dim=2,000,000``; 65536x65536 images): refused, with the process's peak
   memory (``ru_maxrss``) next to the same process's memory after importing torch;
3. finite garbage in the newest checkpoint: skipped, and the resumed run's export bit-identical to
   one resumed from the previous checkpoint;
4. kill -9 at random moments with a checkpoint every step: after each kill the newest or previous
   checkpoint verifies, and after the final resume ``metrics.jsonl`` has no duplicate step.

Not a speed benchmark: the figures do not depend on how busy the machine is.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

GANTK = str(Path(sys.executable).with_name("gantk"))
# a fixed thread count: with --threads auto a run that shares the CPU may round differently from one alone
TRAIN = [GANTK, "train", "--preset", "gan1d", "--quiet", "--device", "cpu", "--threads", "1"]


def gantk(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*map(str, args)], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr}")
    return done


def tensors_of(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}


def identical(a: Path, b: Path) -> bool:
    """Same tensor names and bitwise-equal values (the metadata order of a safetensors file varies)."""
    left, right = tensors_of(a), tensors_of(b)
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def loss_steps(run: Path) -> list[int]:
    """The steps of a run's loss lines in metrics.jsonl (the lines with steps/s; not samples' or evaluations')."""
    records = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return [record["step"] for record in records if "steps_per_s" in record]


def first_line(text: str) -> str:
    line = next((line for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= 200 else line[:197] + "..."


def two_writers(root: Path) -> None:
    print("\n## 1. two trains with one --name")
    runs = root / "runs"
    args = [*TRAIN, "--steps", "3000", "--checkpoint-every", "1000", "--runs-dir", runs]
    first = subprocess.Popen([*map(str, args), "--name", "same"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    lock = runs / "same" / ".lock"
    while not lock.exists() and first.poll() is None:
        time.sleep(0.05)
    second = gantk(*args, "--name", "same", check=False)
    first_out, first_err = first.communicate()
    alone = gantk(*args, "--name", "alone")
    print(f"second writer: exit {second.returncode}: {first_line(second.stderr)}")
    print(f"first writer: exit {first.returncode}")
    same = identical(runs / "same" / "generator.safetensors", runs / "alone" / "generator.safetensors")
    steps = loss_steps(runs / "same")
    print(f"first run's export bit-identical to the same run trained alone: {same}; "
          f"its metrics.jsonl loss lines' steps strictly increasing: {steps == sorted(set(steps))}")
    del alone, first_out, first_err


def _peak_rss_script(path: Path) -> str:
    return f"""
import resource, sys
import torch, gantk
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:
    gantk.load_generator({str(path)!r})
    outcome = "LOADED"
except gantk.GantkError as error:
    outcome = "refused: " + str(error)[:160]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{{outcome}}\\n  peak RSS {{peak:.0f}} MB; after importing torch and gantk {{baseline:.0f}} MB; "
      f"added by the load {{peak - baseline:.0f}} MB")
"""


def forged_exports(root: Path) -> None:
    print("\n## 2. forged exports")
    from gantk.engine.export import export_generator
    from gantk.protocols import ComponentRecord, DataSpec
    import gantk

    def export(path: Path, spec: DataSpec, **options) -> Path:
        generator = gantk.get_registry().get("generator", "dcgan").create(spec, **options)
        record = ComponentRecord("generator", "dcgan", "gantk", gantk.__version__, dict(generator.options))
        return export_generator(path, generator, record, spec)

    small = export(root / "z_dim.safetensors", DataSpec((1, 8, 8), 0, "digits"), z_dim=2, width=2)
    with safe_open(str(small), framework="pt") as handle:
        metadata = dict(handle.metadata())
    config = json.loads(metadata["gantk.config"])
    config["options"]["z_dim"] = config["z_dim"] = 2_000_000
    metadata["gantk.config"] = json.dumps(config)
    save_file(tensors_of(small), str(small), metadata=metadata)
    huge = export(root / "huge.safetensors", DataSpec((1, 65536, 65536), 0, "forged"), z_dim=2, width=1)
    for path, what in ((small, "config claims z_dim=2,000,000"), (huge, "self-consistent, 65536x65536 images")):
        done = subprocess.run([sys.executable, "-c", _peak_rss_script(path)], capture_output=True, text=True)
        print(f"{what} ({path.stat().st_size / 1024:.0f} KB): {done.stdout.strip() or done.stderr.strip()}")


def garbage_checkpoint(root: Path) -> None:
    print("\n## 3. finite garbage in the newest checkpoint")
    runs = root / "runs"
    gantk(*TRAIN, "--steps", "300", "--checkpoint-every", "100", "--keep-checkpoints", "3", "--runs-dir", runs,
          "--name", "base")
    damaged, reference = runs / "damaged", runs / "reference"
    shutil.copytree(runs / "base", damaged)
    shutil.copytree(runs / "base", reference)
    newest = damaged / "checkpoints" / "step_000300.safetensors"
    data = bytearray(newest.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    garbage = torch.randn(1024, generator=torch.Generator().manual_seed(1)).numpy().tobytes()  # 4 KB, all finite
    data[header:header + len(garbage)] = garbage
    newest.write_bytes(bytes(data))
    (reference / "checkpoints" / "step_000300.safetensors").unlink()
    resumed = gantk(GANTK, "train", "--resume", damaged, "--steps", "400", "--quiet")
    gantk(GANTK, "train", "--resume", reference, "--steps", "400", "--quiet")
    notes = [line for line in resumed.stderr.splitlines() if line.startswith("gantk:")]
    print(f"resume printed: {notes[0] if notes else '(nothing)'}")
    print("export bit-identical to a run resumed from step 200: "
          f"{identical(damaged / 'generator.safetensors', reference / 'generator.safetensors')}")


def kills(root: Path, count: int, rng: random.Random) -> None:
    print(f"\n## 4. kill -9 at {count} random moments, a checkpoint every step")
    from gantk.engine.checkpoint import list_checkpoints, read_checkpoint

    run = root / "runs" / "killed"
    args = [*TRAIN, "--steps", "3000", "--checkpoint-every", "1", "--log-every", "1"]
    for attempt in range(count):
        command = [*args, "--runs-dir", run.parent, "--name", run.name] if attempt == 0 else \
            [GANTK, "train", "--resume", run, "--quiet"]
        before = list_checkpoints(run)[-1][0] if list_checkpoints(run) else 0
        process = subprocess.Popen([*map(str, command)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while (not list_checkpoints(run) or list_checkpoints(run)[-1][0] <= before) and process.poll() is None:
            time.sleep(0.05)  # training has started: this run has written a checkpoint of its own
        time.sleep(rng.uniform(0.5, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        saved = list_checkpoints(run)
        verified = []
        for step, path in reversed(saved[-2:]):
            try:
                read_checkpoint(path)
                verified.append(step)
            except Exception as error:  # noqa: BLE001 - reported below
                print(f"  {path.name}: {error}")
        print(f"kill {attempt + 1}: newest checkpoint step {saved[-1][0]}; verified among the newest two: {verified}")
    final = gantk(GANTK, "train", "--resume", run, "--steps", str(list_checkpoints(run)[-1][0] + 50), "--quiet")
    steps = loss_steps(run)
    print(f"final resume: exit {final.returncode}; metrics.jsonl loss lines {len(steps)}, duplicate steps "
          f"{len(steps) - len(set(steps))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the subprocesses run one at a time, but keep them light
    with tempfile.TemporaryDirectory(prefix="gantk-reliability-") as folder:
        root = Path(folder)
        two_writers(root)
        forged_exports(root)
        garbage_checkpoint(root)
        kills(root, options.kills, random.Random(options.seed))


if __name__ == "__main__":
    main()
