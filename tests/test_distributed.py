"""Data-parallel training under torchrun: 2 gloo processes on the CPU against one process.

gantk's rule (gantk.distributed): each rank holds its rows of every global batch and of every
random draw, gradients are averaged over the ranks before each optimizer step, and terms that
compare samples across the batch gather it. So after k steps a 2-process run must hold the
weights of a 1-process run with the same --batch-size, up to the rounding of a different
summation order: the tolerance below (1e-5 relative, 2e-6 absolute, float32; measured: at most 5e-7) is
400 times below the change 3 steps make (about 8e-4).

Each run is a real ``torchrun`` (``gantk train --nproc 2``) in a subprocess, as a user starts it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow  # each test starts several torchrun groups (about 75 s for the file on 2 cores)

GANTK = [sys.executable, "-m", "gantk"]
# tiny networks without BatchNorm or dropout (whose per-rank statistics and draws differ by design)
RING = ["--dataset", "ring8", "--gen", "mlp", "-G", "batchnorm=false", "-D", "dropout=0"]
DIGITS = ["--dataset", "digits", "--gen", "mlp", "-G", "batchnorm=false", "-D", "dropout=0"]
COMMON = ["--precision", "fp32", "--ema", "off", "--threads", "1", "--batch-size", "32", "--log-every", "2",
          "--sample-every", "100", "--checkpoint-every", "3", "--keep-checkpoints", "5", "--quiet"]
STEPS = 6

# Records every file-system write a rank other than 0 makes under GANTK_WATCHED (Python audit events), so that
# the test can check that only rank 0 writes the run directory.
WATCHER = '''
import os, sys
if os.environ.get("RANK", "0") != "0" and os.environ.get("GANTK_WATCHED"):
    watched, log = os.environ["GANTK_WATCHED"], os.open(os.environ["GANTK_WRITES_LOG"], os.O_WRONLY | os.O_APPEND)
    WRITES = {"os.rename", "os.replace", "os.mkdir", "os.remove", "os.rmdir", "os.symlink", "os.truncate"}
    def hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            mode, flags = args[1] or "", args[2] or 0
            writing = any(c in str(mode) for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        else:
            writing = event in WRITES
        if writing and args and str(os.fsdecode(args[0]) if isinstance(args[0], (str, bytes, os.PathLike)) else "").startswith(watched):
            os.write(log, f"{event} {args[0]}\\n".encode())
    sys.addaudithook(hook)
'''


@pytest.fixture(scope="module")
def watcher(tmp_path_factory) -> dict[str, str]:
    """The environment of a gantk process: the audit hook for ranks above 0 on its PYTHONPATH."""
    folder = tmp_path_factory.mktemp("watcher")
    (folder / "sitecustomize.py").write_text(WATCHER)
    writes = folder / "writes.log"
    writes.touch()
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", "GANTK_WRITES_LOG": str(writes)}


def train(env: dict[str, str], runs: Path, name: str, *options: str, nproc: int = 1, steps: int = STEPS,
          resume: bool = False) -> Path:
    # a resumed run keeps its saved settings: only --steps (and the resumable --threads, --quiet) are given again
    where = ["--resume", name, "--threads", "1", "--quiet"] if resume else ["--name", name, *COMMON]
    command = [*GANTK, "train", *options, "--steps", str(steps), "--runs-dir", str(runs), *where, "--nproc", str(nproc)]
    result = subprocess.run(command, env={**env, "GANTK_WATCHED": str(runs)}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return runs / name


def weights(run: Path, step: int = STEPS) -> dict[str, torch.Tensor]:
    """G's, D's and the loss heads' tensors in the run's checkpoint at ``step``."""
    tensors = load_file(run / "checkpoints" / f"step_{step:06d}.safetensors")
    return {key: value for key, value in tensors.items() if key.startswith("module/")}


def logged_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if "d/total" in line]


def assert_close_weights(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=2e-6, msg=key)


# ADA: its draws follow the rule, and its p adapts to the signs of every rank's real batches (mean_over_ranks)
ADA = [*DIGITS, "--augment", "ada:p=0.5,kimg=0.2,interval=2"]


# CycleGAN: two unpaired domain streams, four networks; without its pool (each process keeps its own, by design)
# and without instance norm, whose 1/σ over these 4×4 maps magnifies float rounding (per-process batches of 16
# against 32 take other conv kernels) to 1e-4 after 6 steps; without it the weights agree within 1e-8
CYCLEGAN = ["--procedure", "cyclegan", "--dataset", "digits", "--dataset-b", "digits", "--image-size", "16", "--gen",
            "resnet-translator", "-G", "blocks=1", "-G", "width=4", "--disc", "patchgan", "-D", "width=4", "-D",
            "layers=2", "-P", "pool=0", "-G", "norm=none", "-D", "norm=none"]


@pytest.mark.parametrize("data, loss", [(RING, "ns"), (RING, "wgan+gp"), (DIGITS, "hinge+contrastive"), (ADA, "ns"),
                                        (CYCLEGAN, "lsgan")],
                         ids=["ns", "wgan+gp", "hinge+contrastive", "ada", "cyclegan"])
def test_two_processes_train_the_weights_of_one(tmp_path, watcher, data, loss):
    one = train(watcher, tmp_path, "one", *data, "--loss", loss)
    two = train(watcher, tmp_path, "two", *data, "--loss", loss, nproc=2)
    before = weights(one, 3)
    changed = any(not torch.equal(before[k], weights(one)[k]) for k in before)
    assert changed  # the steps moved the weights: the comparison below is not of untouched initial values
    assert_close_weights(weights(two), weights(one))
    assert Path(watcher["GANTK_WRITES_LOG"]).read_text() == ""  # rank 1 wrote nothing under the runs folder
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())


def test_a_resumed_two_process_run_continues_exactly(tmp_path, watcher):
    straight = train(watcher, tmp_path, "straight", *RING, "--loss", "wgan+gp", nproc=2)
    train(watcher, tmp_path, "resumed", *RING, "--loss", "wgan+gp", nproc=2, steps=3)
    resumed = train(watcher, tmp_path, "resumed", nproc=2, resume=True)
    got, expected = weights(resumed), weights(straight)
    assert all(torch.equal(got[key], expected[key]) for key in expected)  # bit for bit
    assert logged_steps(resumed) == logged_steps(straight) == [2, 3, 4, 6]  # every 2 steps and at checkpoints, once
    # the same run resumed by one process: the batch order and random draws do not depend on the process count
    train(watcher, tmp_path, "resumed-alone", *RING, "--loss", "wgan+gp", nproc=2, steps=3)
    alone = train(watcher, tmp_path, "resumed-alone", nproc=1, resume=True)
    assert_close_weights(weights(alone), expected)
    assert Path(watcher["GANTK_WRITES_LOG"]).read_text() == ""


def test_a_batch_the_processes_cannot_share_is_one_paragraph(tmp_path, watcher):
    command = [*GANTK, "train", *RING, *COMMON, "--batch-size", "33", "--steps", "2", "--runs-dir", str(tmp_path),
               "--nproc", "2"]
    result = subprocess.run(command, env=watcher, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "cannot be split evenly over 2 processes" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
