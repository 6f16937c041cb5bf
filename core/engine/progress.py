"""Progress display: a rich progress bar on a terminal, a few plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def _losses(record: dict[str, Any]) -> str:
    return "  ".join(f"{key} {value:.3f}" for key, value in record.items()
                     if "/" in key and isinstance(value, float))


class TrainingProgress:
    """Shows steps done, steps/s, ETA and the latest losses; updates cost no host sync."""

    def __init__(self, total: int, start: int, enabled: bool = True) -> None:
        self.total, self.start = total, start
        self.console = Console(stderr=True)
        self.interactive = enabled and self.console.is_terminal
        self.enabled = enabled
        self._next_line = start
        self._t0 = time.perf_counter()
        if self.interactive:
            self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]:>6} steps/s"), TimeElapsedColumn(), TextColumn("ETA"),
                                TimeRemainingColumn(), TextColumn("{task.fields[losses]}"), console=self.console)
            self.task = self.bar.add_task("train", total=total, completed=start, rate="-", losses="")
            self.bar.start()

    def _rate(self, step: int) -> float:
        return (step - self.start) / max(time.perf_counter() - self._t0, 1e-9)

    def advance(self, step: int) -> None:
        if self.interactive:
            self.bar.update(self.task, completed=step)

    def report(self, step: int, record: dict[str, Any]) -> None:
        rate = self._rate(step)
        if self.interactive:
            self.bar.update(self.task, completed=step, rate=f"{rate:.1f}", losses=_losses(record))
        elif self.enabled and (step >= self._next_line or step == self.total):
            eta = (self.total - step) / max(rate, 1e-9)
            print(f"step {step}/{self.total}  {rate:.1f} steps/s  ETA {eta:.0f}s  {_losses(record)}",
                  file=sys.stderr, flush=True)
            self._next_line = step + max(1, self.total // 10)

    def note(self, evaluation: dict[str, float]) -> None:
        """A line with the headline evaluation values (``eval/x``; per-class ``eval/x/k`` are left to the log)."""
        if not self.enabled or not evaluation:
            return
        shown = "  ".join(f"{key} {value:.4g}" for key, value in evaluation.items() if key.count("/") == 1)
        self.console.print(shown) if self.interactive else print(shown, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.interactive:
            self.bar.stop()
