"""Training checkpoints: one safetensors file per checkpoint, written atomically.

A checkpoint holds every tensor of the run (G, D, EMA G, loss-term heads, optimizer state, RNG
states, the data sampler's permutation) and, as JSON in its metadata header, the step and the
non-tensor parts of that state. ``runs/<name>/checkpoints/step_XXXXXX.safetensors``; the newest
``keep`` are kept. Loading takes the newest file that reads completely, so a file cut short by a
crash never stops a resume.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import gantk
from gantk.engine import tensor_tree
from gantk.errors import GantkError
from gantk.engine.safetensors_io import read_safetensors, write_safetensors

CHECKPOINT_DIR = "checkpoints"
_PATTERN = "step_*.safetensors"


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:06d}.safetensors"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint in the run, oldest first."""
    found = []
    for path in (Path(run_dir) / CHECKPOINT_DIR).glob(_PATTERN):
        digits = path.stem.removeprefix("step_")
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


@dataclass
class Checkpoint:
    """A loaded checkpoint."""

    step: int
    path: Path
    tensors: dict[str, torch.Tensor]
    skeletons: dict[str, Any]

    def restore_module(self, name: str, module: nn.Module) -> None:
        prefix = f"module/{name}/"
        state = {key[len(prefix):]: value for key, value in self.tensors.items() if key.startswith(prefix)}
        module.load_state_dict(state, strict=True)

    def restore_optimizer(self, name: str, optimizer: torch.optim.Optimizer) -> None:
        optimizer.load_state_dict(tensor_tree.join(self.tensors, self.skeletons[f"optim/{name}"]))
        # safetensors stores row-major tensors: give per-parameter state (Adam's moments) its parameter's
        # layout back (channels-last convs), so that a resumed run computes bit for bit as an unbroken one
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                state = optimizer.state.get(parameter, {})
                for key, value in list(state.items()):
                    if torch.is_tensor(value) and value.shape == parameter.shape and value.stride() != parameter.stride():
                        state[key] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)

    def extra(self) -> Any:
        return tensor_tree.join(self.tensors, self.skeletons["extra"])

    def has_module(self, name: str) -> bool:
        return any(key.startswith(f"module/{name}/") for key in self.tensors)


def save_checkpoint(run_dir: Path, step: int, modules: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], extra: Any, keep: int) -> Path:
    """Write the training state at ``step`` atomically; delete all but the newest ``keep``."""
    tensors: dict[str, torch.Tensor] = {}
    skeletons: dict[str, Any] = {}
    for name, module in modules.items():
        tensors.update({f"module/{name}/{key}": value for key, value in module.state_dict().items()})
    for name, optimizer in optimizers.items():
        part, skeletons[f"optim/{name}"] = tensor_tree.split(optimizer.state_dict(), f"optim/{name}")
        tensors.update(part)
    part, skeletons["extra"] = tensor_tree.split(extra, "extra")
    tensors.update(part)
    metadata = {"format": "pt", "gantk.version": gantk.__version__, "gantk.kind": "checkpoint",
                "gantk.step": str(step), "gantk.state": json.dumps(skeletons)}
    path = checkpoint_path(run_dir, step)
    write_safetensors(path, tensors, metadata)
    for _, old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def read_checkpoint(path: Path) -> Checkpoint:
    tensors, metadata = read_safetensors(path)
    if metadata.get("gantk.kind") != "checkpoint":
        raise GantkError(f"'{path}' is not a gantk training checkpoint.")
    return Checkpoint(int(metadata["gantk.step"]), Path(path), tensors, json.loads(metadata["gantk.state"]))


def remove_partial_files(run_dir: Path) -> int:
    """Delete temporary files left by a checkpoint write that was killed; returns how many."""
    partial = list((Path(run_dir) / CHECKPOINT_DIR).glob(".step_*.tmp"))
    for path in partial:
        path.unlink(missing_ok=True)
    return len(partial)


def load_latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest checkpoint that reads completely (older ones are tried if the newest is damaged)."""
    for step, path in reversed(list_checkpoints(run_dir)):
        try:
            return read_checkpoint(path)
        except GantkError as error:
            print(f"gantk: skipping damaged checkpoint {path.name}: {error}", file=sys.stderr)
    return None
