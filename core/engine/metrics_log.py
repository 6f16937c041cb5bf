"""Loss values without a host sync per step: kept on the device, read back every N steps.

:class:`MetricsLog` holds each step's detached 0-dim loss tensors. :meth:`flush` copies the
whole window to the host in one transfer, checks every value is finite (naming the first step
and term that is not), appends the window's means to ``metrics.jsonl`` and returns them.
:func:`cut_metrics` cuts ``metrics.jsonl`` back to the step a run resumes from. With TensorBoard
every value also goes there as a scalar, and :meth:`MetricsLog.write_picture` adds images (the
sample grids).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gantk.engine.atomic_files import write_atomic
from gantk.engine.distributed import mean_over_ranks
from gantk.errors import GantkError, UsageError


class NonFiniteLossError(GantkError):
    """A loss term became NaN or infinite (exit code 1)."""

    def __init__(self, step: int, key: str, value: float, kept: str) -> None:
        group, _, name = key.partition("/")
        if group == "weights":  # a module's weights, checked before each checkpoint
            what = f"the weights of the {name} are not finite"
        else:
            network = {"d": "discriminator", "g": "generator"}.get(group, group)
            what = f"the {network} loss term '{name}' is {value} (not finite)"
        super().__init__(
            f"Training stopped at step {step}: {what}. {kept} "
            "Start a new run with a lower learning rate, --precision fp32, or a regulariser "
            "(e.g. --loss hinge+0.5*r1).")
        self.step, self.key = step, key


def cut_metrics(path: Path, step: int) -> None:
    """Drop the lines of ``metrics.jsonl`` after ``step`` (and any line cut short), rewriting it atomically."""
    if not path.is_file():
        return
    lines = path.read_text(errors="replace").splitlines(keepends=True)
    kept = [line for line in lines if (line_step := _step_of(line)) is not None and line_step <= step]
    if kept != lines:
        write_atomic(path, "".join(kept).encode())


def _step_of(line: str) -> int | None:
    """The step of one metrics.jsonl line; None for a line that is not a complete record."""
    if not line.endswith("\n"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) else None


def tensorboard_writer(log_dir: Path):
    """A TensorBoard SummaryWriter, or a usage error saying how to install TensorBoard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise UsageError("--tensorboard needs the tensorboard package, which is not installed. Install it with "
                         "pip install 'gantk[tensorboard]' (or pip install tensorboard), or drop --tensorboard.") from error
    return SummaryWriter(log_dir=str(log_dir))


class MetricsLog:
    """Loss values of recent steps, flushed to metrics.jsonl (and TensorBoard when ``tensorboard_dir`` is set)."""

    def __init__(self, path: Path | None, tensorboard_dir: Path | None = None) -> None:
        self.path = path
        self.writer = tensorboard_writer(tensorboard_dir) if tensorboard_dir is not None else None
        self.pending: list[tuple[int, dict[str, Tensor]]] = []
        self.last: dict[str, float] = {}
        self._window_start = time.perf_counter()

    def add(self, step: int, values: dict[str, Tensor]) -> None:
        self.pending.append((step, values))

    def flush(self, extra: dict[str, Any] | None = None, kept: str = "") -> dict[str, float]:
        """Read the window back, check it, write one metrics.jsonl line; returns the window means."""
        if not self.pending:
            return self.last
        keys = [(step, key) for step, values in self.pending for key in values]
        stacked = torch.stack([values[key].float() for _, values in self.pending for key in values])
        flat = mean_over_ranks(stacked).cpu().tolist()  # under torchrun: the mean of every rank's values
        sums: dict[str, list[float]] = {}
        for (step, key), value in zip(keys, flat):
            if not math.isfinite(value):
                self.pending.clear()
                raise NonFiniteLossError(step, key, value, kept)
            sums.setdefault(key, []).append(value)
        last_step = self.pending[-1][0]
        elapsed = time.perf_counter() - self._window_start
        means = {key: sum(v) / len(v) for key, v in sums.items()}
        record = {"step": last_step, **means, "steps_per_s": len(self.pending) / max(elapsed, 1e-9), **(extra or {})}
        self._emit(record)
        self.pending.clear()
        self._window_start = time.perf_counter()
        self.last = record
        return record

    def write(self, step: int, values: dict[str, float]) -> None:
        """One metrics.jsonl line (and TensorBoard scalars) of already-computed values, e.g. evaluations."""
        self._emit({"step": step, **values})

    def write_picture(self, step: int, tag: str, pixels: Tensor) -> None:
        """A picture, uint8 pixels (C, H, W), to TensorBoard as the image ``tag`` at ``step`` (nothing without
        TensorBoard)."""
        if self.writer is not None:
            self.writer.add_image(tag, pixels, step)  # uint8: stored as given, no rescaling
            self.writer.flush()

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` spent outside training (an evaluation) out of the current window's steps/s."""
        self._window_start += seconds

    def _emit(self, record: dict[str, Any]) -> None:
        if self.path is not None:
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            step = record["step"]
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()
