"""Progress display: a rich progress bar on a terminal, a few plain lines otherwise.

The steps/s and the ETA count training time only. What the loop does between steps (evaluations,
sample pictures, checkpoints) runs inside :meth:`TrainingProgress.paused`: its time is left out of
the rate, and the ETA adds the expected time of the pauses still to come::

    ETA = steps left / (steps / training seconds)  +  Σ_kind  (pauses of kind left) × (mean pause of kind)

The rate counts from the first read-back of the losses on (the steps before it also paid for warming
up). A pause's duration counts without the one-time work done inside it (a classifier trained, real
features extracted: :func:`one_time_work`), which later pauses find cached. None of this adds a host
synchronisation: the clock is read on the host, and the rate and ETA are worked out at read-backs.

Plugins report long one-time work with :func:`one_time_work` and one-line messages with :func:`notice`.
During training they appear in the progress display (a second bar on a terminal, plain lines otherwise)
and not at all under ``gantk train --quiet``; outside training (``gantk eval``) as plain lines on stderr.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Clock = Callable[[], float]
#: Plain-mode lines about one-time work come at most this often (seconds), besides its first and last.
WORK_LINE_EVERY_S = 10.0
TRAINING = "[bold]train"
#: The displays alive now (innermost last): where plugins' notices and one-time work are shown.
_displays: list["TrainingProgress"] = []


def clock_text(seconds: float) -> str:
    """``3:51``, or ``1:02:03`` from an hour on."""
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def jobs_left(every: int, step: int, total: int) -> int:
    """How many times a job run every ``every`` steps and at the last step still runs at steps ``step..total``
    (the report at ``step`` comes before that step's job)."""
    if step > total:
        return 0
    multiples = total // every - (step - 1) // every  # multiples of every in [step, total]
    return multiples + (total % every != 0)  # the last step, when it is no multiple


def _losses(record: dict[str, Any]) -> str:
    return "  ".join(f"{key} {value:.3f}" for key, value in record.items()
                     if "/" in key and isinstance(value, float))


def _plain(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class _Pauses:
    """One kind of pause: its interval in steps and the durations seen (one-time work left out)."""

    every: int
    seconds: list[float] = field(default_factory=list)

    def expected(self) -> float:
        return sum(self.seconds) / len(self.seconds) if self.seconds else 0.0


class TrainingProgress:
    """Shows steps done, steps/s and ETA of training time, and the latest losses; updates cost no host sync.

    ``periodic`` names the loop's other jobs and their interval in steps (``{"evaluation": 200}``); the
    loop runs each inside :meth:`paused`. ``clock`` and ``console`` are there for tests.
    """

    def __init__(self, total: int, start: int, enabled: bool = True, *, periodic: dict[str, int] | None = None,
                 clock: Clock = time.perf_counter, console: Console | None = None) -> None:
        self.total, self.start, self.enabled, self.clock = total, start, enabled, clock
        self.console = console or Console(stderr=True)
        self.interactive = enabled and self.console.is_terminal
        self.pauses = {kind: _Pauses(every) for kind, every in (periodic or {}).items() if every > 0}
        self._next_line = start
        self.started = clock()  # elapsed time counts from here
        self._paused_seconds = 0.0  # closed pauses since the start
        self._pause_started: float | None = None
        self._one_time_seconds = 0.0  # one-time work in the open pause
        self._warm: tuple[int, float] | None = None  # (step, training seconds) at the first read-back
        if self.interactive:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                TextColumn("ETA {task.fields[eta]}"), TextColumn("{task.fields[losses]}"),
                                console=self.console)
            self.task = self.bar.add_task(TRAINING, total=total, completed=start, rate="- steps/s", eta="-",
                                          losses="")
            self.bar.start()
        _displays.append(self)

    # ------------------------------------------------------------------ rate and ETA
    def training_seconds(self) -> float:
        """Seconds since the start, pauses left out."""
        now = self.clock()
        open_pause = now - self._pause_started if self._pause_started is not None else 0.0
        return now - self.started - self._paused_seconds - open_pause

    def rate(self, step: int) -> float:
        """Steps per second of training time, counted from the first read-back once there was one: the steps
        before it also paid for warming up (allocations, kernel choices, compilation)."""
        since_step, since_seconds = self._warm if self._warm and step > self._warm[0] else (self.start, 0.0)
        return (step - since_step) / max(self.training_seconds() - since_seconds, 1e-9)

    def eta(self, step: int) -> float:
        """Seconds until the run ends: its steps left at the training rate, plus the pauses still to come,
        each as long as the mean of its kind so far."""
        rate = self.rate(step)
        training = (self.total - step) / rate if rate > 0 else 0.0
        pausing = sum(jobs_left(kind.every, step, self.total) * kind.expected() for kind in self.pauses.values())
        return training + pausing

    # ------------------------------------------------------------------ the loop's calls
    def advance(self, step: int) -> None:
        if self.interactive:
            self.bar.update(self.task, completed=step)

    def report(self, step: int, record: dict[str, Any]) -> None:
        rate, eta = self.rate(step), self.eta(step)
        if self._warm is None:
            self._warm = (step, self.training_seconds())
        if not self.enabled:
            return
        if self.interactive:
            self.bar.update(self.task, completed=step, rate=f"{rate:.1f} steps/s", eta=clock_text(eta),
                            losses=_losses(record))
        elif step >= self._next_line or step == self.total:
            _plain(f"step {step}/{self.total}  {rate:.1f} steps/s  ETA {clock_text(eta)}  {_losses(record)}")
            self._next_line = step + max(1, self.total // 10)

    @contextmanager
    def paused(self, kind: str, status: str | None = None) -> Iterator[None]:
        """Time spent on ``kind`` (``evaluation``, ``samples``, ``checkpoint``), not on training; ``status`` is
        shown as a line of its own (``evaluating fid at step 200 ...``)."""
        if self._pause_started is not None:  # already paused: the outer pause counts the time
            yield
            return
        if status:
            self.show(f"{status} ...")
        if self.interactive:
            self.bar.update(self.task, description=f"[yellow]{kind}")
        self._pause_started, self._one_time_seconds = self.clock(), 0.0
        try:
            yield
        finally:
            seconds = self.clock() - self._pause_started
            self._paused_seconds += seconds
            self._pause_started = None
            if kind in self.pauses:
                self.pauses[kind].seconds.append(seconds - self._one_time_seconds)
            if self.interactive:
                self.bar.update(self.task, description=TRAINING)

    def note(self, evaluation: dict[str, float]) -> None:
        """A line with the headline evaluation values (``eval/x``; per-class ``eval/x/k`` are left to the log),
        and the time the evaluation took so far."""
        if not evaluation:
            return
        shown = "  ".join(f"{key} {value:.4g}" for key, value in evaluation.items() if key.count("/") == 1)
        if self._pause_started is not None:
            shown += f"  ({self.clock() - self._pause_started:.1f} s)"
        self.show(shown)

    def show(self, line: str) -> None:
        """One line above the bar (plain: on stderr); nothing when the display is off."""
        if self.interactive:
            self.console.print(line, highlight=False, markup=False)
        elif self.enabled:
            _plain(line)

    def close(self) -> None:
        if self.interactive:
            self.bar.stop()
        if self in _displays:
            _displays.remove(self)

    def left_out(self, seconds: float) -> None:
        """One-time work of ``seconds`` inside the open pause: not part of what later pauses of its kind take."""
        if self._pause_started is not None:
            self._one_time_seconds += seconds


class _Work:
    """One piece of one-time work on a display: a second bar (a rich ``Progress``), or plain lines
    through ``show`` (its description, one line every :data:`WORK_LINE_EVERY_S` s, the time it took)."""

    def __init__(self, description: str, unit: str, clock: Clock, show: Callable[[str], None],
                 bar: Progress | None) -> None:
        self.description, self.unit, self.clock, self.show, self.bar = description, unit, clock, show, bar
        self.started = self.last_line = clock()
        if bar is not None:
            self.task = bar.add_task(escape(description), total=None, rate="", eta="-", losses="")
        else:
            show(f"{description} ...")

    def advance(self, done: int, total: int) -> None:
        now = self.clock()
        rate = done / max(now - self.started, 1e-9)
        eta = clock_text((total - done) / rate) if rate > 0 else "-"
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total, rate=f"{rate:.1f} {self.unit}/s", eta=eta)
        elif now - self.last_line >= WORK_LINE_EVERY_S:
            self.last_line = now
            self.show(f"  {done}/{total} {self.unit}  {rate:.1f} {self.unit}/s  ETA {eta}")

    def end(self) -> float:
        seconds = self.clock() - self.started
        if self.bar is not None:
            self.bar.remove_task(self.task)
        self.show(f"{self.description}: done in {seconds:.1f} s")
        return seconds


@contextmanager
def one_time_work(description: str, unit: str = "steps", *, clock: Clock = time.perf_counter
                  ) -> Iterator[Callable[[int, int], None]]:
    """Show long work a plugin does once and caches (training a classifier, extracting real features).

    Yields ``advance(done, total)`` to call as it goes. During training: a second bar on a terminal,
    plain lines otherwise, nothing under ``--quiet``, and its time is left out of the ETA's estimate of
    later evaluations (they find the work cached). Outside training: plain lines on stderr.
    """
    display = _displays[-1] if _displays else None
    show = display.show if display is not None else _plain
    work = _Work(description, unit, clock, show, display.bar if display is not None and display.interactive else None)
    try:
        yield work.advance
    finally:
        seconds = work.end()
        if display is not None:
            display.left_out(seconds)


def notice(message: str) -> None:
    """One line from a plugin (``using the cached classifier at ...``): above the progress bar during training
    (nothing under ``--quiet``), else on stderr."""
    if _displays:
        _displays[-1].show(message)
    else:
        _plain(message)
