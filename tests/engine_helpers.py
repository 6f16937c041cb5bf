"""Small, fast training configurations and subprocess helpers for the engine tests."""

from __future__ import annotations

import os
import subprocess
import sys

from gantk.engine.config import TrainConfig

#: A DCGAN on the 8x8 digits, narrow enough to train a step in milliseconds.
TINY = {"gen": "dcgan", "dataset": "digits", "gen_options": {"width": 8, "z_dim": 16},
        "disc_options": {"width": 8}, "batch_size": 16, "precision": "fp32", "log_every": 1,
        "sample_every": 1000, "checkpoint_every": 1000, "num_samples": 16}


def tiny_config(**overrides) -> TrainConfig:
    return TrainConfig.from_options({**TINY, **overrides})


def gantk_command(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    script = os.path.join(os.path.dirname(sys.executable), "gantk")
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, **kwargs)


def tiny_cli_args(*extra: str) -> list[str]:
    return ["train", "--gen", "dcgan", "--dataset", "digits", "-G", "width=8", "-G", "z_dim=16", "-D", "width=8",
            "--batch-size", "16", "--precision", "fp32", "--log-every", "1", "--quiet", *extra]


def loss_records(run_dir) -> list[dict]:
    """The loss lines of a run's metrics.jsonl (evaluation and diversity lines left out)."""
    import json
    from pathlib import Path

    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if "steps_per_s" in record]


#: The checkpoint settings of :func:`~conftest.checkpointed_run`: checkpoints at steps 2 and 4, none pruned.
CHECKPOINTED = {"checkpoint_every": 2, "keep_checkpoints": 3}
