"""Training checkpoints: one self-verifying safetensors file per checkpoint, written atomically.

A checkpoint holds every tensor of the run (G, D, EMA G, loss-term heads, optimizer state, RNG
states, the data sampler's permutation) and, as JSON in its metadata header, the step, the
non-tensor parts of that state and the run's configuration. ``runs/<name>/checkpoints/step_XXXXXX.safetensors``;
the newest ``keep`` are kept. A checkpoint is used only if it verifies (the SHA-256 of its tensors,
its state JSON, finite weights) and restores completely; :func:`restore_newest` reports each one
that does not in one line on stderr and falls back to the one before it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

import gantk
from gantk.engine import tensor_tree
from gantk.errors import GantkError, UsageError
from gantk.engine.safetensors_io import DamagedFileError, read_safetensors, write_safetensors

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
    config: dict[str, Any] | None = None  # the run's TrainConfig as saved with it (None before gantk stored it)

    def restore_module(self, name: str, module: nn.Module) -> None:
        prefix = f"module/{name}/"
        state = {key[len(prefix):]: value for key, value in self.tensors.items() if key.startswith(prefix)}
        module.load_state_dict(state, strict=True)

    def restore_optimizer(self, name: str, optimizer: torch.optim.Optimizer) -> None:
        """Load an optimizer's state; per-parameter state that does not fit its parameter's shape is refused."""
        optimizer.load_state_dict(tensor_tree.join(self.tensors, self.skeletons[f"optim/{name}"]))
        # safetensors stores row-major tensors: give per-parameter state (Adam's moments) its parameter's
        # layout back (channels-last convs), so that a resumed run computes bit for bit as an unbroken one
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                state = optimizer.state.get(parameter, {})
                for key, value in list(state.items()):
                    if torch.is_tensor(value) and value.dim() == parameter.dim() and value.shape != parameter.shape:
                        raise ValueError(f"the {name} optimizer's {key} has shape {tuple(value.shape)} for a parameter "
                                         f"of shape {tuple(parameter.shape)}")
                    if torch.is_tensor(value) and value.shape == parameter.shape and value.stride() != parameter.stride():
                        state[key] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)

    def extra(self) -> Any:
        return tensor_tree.join(self.tensors, self.skeletons["extra"])

    def has_module(self, name: str) -> bool:
        return any(key.startswith(f"module/{name}/") for key in self.tensors)


def save_checkpoint(run_dir: Path, step: int, modules: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], extra: Any, keep: int,
                    config: dict[str, Any] | None = None) -> Path:
    """Write the training state at ``step`` atomically; keep it and the ``keep - 1`` newest older ones."""
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
    if config is not None:
        metadata["gantk.config"] = json.dumps(config)
    path = checkpoint_path(run_dir, step)
    write_safetensors(path, tensors, metadata)
    # newer files than this one are left for this run to overwrite: they are ones a resume found unusable
    older = [old for old_step, old in list_checkpoints(run_dir) if old_step < step]
    for old in older[:max(len(older) - (keep - 1), 0)]:
        old.unlink(missing_ok=True)
    return path


def _damaged(path: Path, reason: str) -> DamagedFileError:
    return DamagedFileError(path, reason, "Resume from another checkpoint of the run.")


def _json_field(metadata: dict[str, str], key: str, path: Path, required: bool = True) -> Any:
    if key not in metadata:
        if required:
            raise _damaged(path, f"its metadata has no {key}")
        return None
    try:
        return json.loads(metadata[key])
    except ValueError:
        raise _damaged(path, f"its {key} metadata is not valid JSON") from None


def read_checkpoint(path: Path) -> Checkpoint:
    """A checkpoint that verifies: its tensors' SHA-256, its step and state JSON, finite weights."""
    path = Path(path)
    tensors, metadata = read_safetensors(path)
    if metadata.get("gantk.kind") != "checkpoint":
        raise GantkError(f"'{path}' is not a gantk training checkpoint.")
    step = metadata.get("gantk.step", "")
    if not (step.isascii() and step.isdigit()):
        raise _damaged(path, f"its gantk.step metadata is {step!r}, not a step number")
    skeletons = _json_field(metadata, "gantk.state", path)
    config = _json_field(metadata, "gantk.config", path, required=False)
    if not isinstance(skeletons, dict) or not isinstance(config, (dict, type(None))):
        raise _damaged(path, "its gantk.state or gantk.config metadata is not a JSON object")
    for name, tensor in tensors.items():
        if name.startswith("module/") and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise _damaged(path, f"the weights {name.removeprefix('module/')} are not finite")
    return Checkpoint(int(step), path, tensors, skeletons, config)


def remove_partial_files(run_dir: Path) -> int:
    """Delete temporary files left by a checkpoint write that was killed; returns how many."""
    partial = list((Path(run_dir) / CHECKPOINT_DIR).glob(".step_*.tmp"))
    for path in partial:
        path.unlink(missing_ok=True)
    return len(partial)


def _one_line(error: Exception) -> str:
    """Why a checkpoint was skipped, in one line."""
    text = " ".join(str(getattr(error, "reason", error)).split())
    if not isinstance(error, GantkError):
        text = f"it does not fit this run ({type(error).__name__}: {text})"
    return text if len(text) <= 400 else text[:397] + "..."


def restore_newest(run_dir: Path, restore: Callable[[Checkpoint], None] | None = None) -> Checkpoint | None:
    """The newest checkpoint that verifies and that ``restore`` accepts (it restores the run's state from it).

    Each checkpoint that fails (damaged, or ``restore`` raises) is reported in one line on stderr
    and the one before it is tried. A UsageError from ``restore`` (a config that no longer matches)
    is not damage and stops the search. None when no checkpoint is usable (see :func:`why_none_usable`).
    """
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            checkpoint = read_checkpoint(path)
            if restore is not None:
                restore(checkpoint)
            return checkpoint
        except UsageError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure means this checkpoint cannot be used
            print(f"gantk: skipped checkpoint {path} ({_one_line(error)}); trying the one before it.", file=sys.stderr)
    return None


def load_latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest checkpoint that verifies (older ones are tried if the newest is damaged)."""
    return restore_newest(run_dir)


def why_none_usable(run_dir: Path) -> str:
    """Why :func:`restore_newest` found nothing, as a clause for an error message."""
    count = len(list_checkpoints(run_dir))
    if not count:
        return f"it has no checkpoint in {Path(run_dir) / CHECKPOINT_DIR}"
    return f"none of its {count} checkpoint(s) in {Path(run_dir) / CHECKPOINT_DIR} can be used (each is reported above)"
