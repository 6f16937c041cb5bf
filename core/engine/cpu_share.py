"""Sharing the CPU: PyTorch's thread count follows the cores other processes leave free (``--threads``).

PyTorch's OpenMP threads wait for each other at the end of every parallel region, spinning. When
another process runs on the same cores, one of our threads is often descheduled while the others
spin for it: two runs of the default command on 2 cores, each with PyTorch's 2 threads, ran at
0.17 of a lone run's steps/s each, and at 0.65 with one thread each (``benchmarks/contention.py``;
``OMP_WAIT_POLICY=PASSIVE`` measured worse, 0.04).

With ``--threads auto`` the loop calls :meth:`ThreadShare.poll` every step; every
:data:`INTERVAL` seconds it reads how much CPU the rest of the machine used since the last look
(``/proc/stat``'s busy time less this process's own, :func:`os.times`) and sets
``torch.set_num_threads`` to the cores left over, at least 1 and at most PyTorch's own choice; when
the other work stops, the threads come back. ``--threads N`` fixes N threads. Where ``/proc/stat``
cannot be read, ``auto`` keeps PyTorch's choice.
"""

from __future__ import annotations

import os
import time

import torch

#: Seconds between two looks at the machine's load.
INTERVAL = 2.0


def _busy_seconds() -> float | None:
    """CPU seconds every process on the machine has used since boot (``/proc/stat``), or None if unknown."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user..steal; guest time is inside user


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


class ThreadShare:
    """Keeps ``torch.get_num_threads()`` at the cores other processes leave free (``threads=None``), or fixed."""

    def __init__(self, threads: int | None) -> None:
        self.most = torch.get_num_threads()  # PyTorch's choice: one per core it may use
        self.adaptive = threads is None and _busy_seconds() is not None
        if threads is not None:
            torch.set_num_threads(threads)
        self.fewest = torch.get_num_threads()
        self._last = (time.monotonic(), _busy_seconds(), _own_seconds())

    def poll(self) -> None:
        """Every :data:`INTERVAL` seconds, set the thread count from the other processes' recent CPU use."""
        if not self.adaptive or time.monotonic() - self._last[0] < INTERVAL:
            return
        now, busy, own = time.monotonic(), _busy_seconds(), _own_seconds()
        then, busy_then, own_then = self._last
        self._last = (now, busy, own)
        if busy is None or busy_then is None:
            return
        others = max(0.0, (busy - busy_then) - (own - own_then)) / (now - then)  # cores the rest of the machine used
        threads = max(1, min(self.most, round(usable_cores() - others)))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
            self.fewest = min(self.fewest, threads)

    def restore(self) -> None:
        """Give the process PyTorch's own thread count back (the run is over)."""
        torch.set_num_threads(self.most)

    def summary(self) -> dict[str, object]:
        """What ``summary.json`` records: the setting, and the fewest and most threads used."""
        return {"threads": "auto" if self.adaptive else torch.get_num_threads(),
                "threads_fewest": self.fewest, "threads_most": self.most if self.adaptive else torch.get_num_threads()}
