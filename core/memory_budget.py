"""The memory budget: refuse an allocation that cannot fit, before it is made.

Code about to allocate something whose size follows from what a user asked for (a data set
resized to ``--image-size``, networks built from options, ``--n`` samples) first calls
:func:`check_fits` with its estimate in bytes. Above the budget it raises a :class:`UsageError`
saying what was asked and what fits, instead of letting the allocation fail (or the machine swap).

The budget is the memory available now (``MemAvailable`` in ``/proc/meminfo``, else free pages
from ``os.sysconf``; the free memory of a CUDA device for that device), lowered by a
``--max-memory`` limit while one is in force (:func:`limited`). Data set plugins call it where
they make their arrays::

    gantk.memory_budget.check_fits(4 * n * channels * side * side, f"The data set 'mine' at {side}x{side}",
                                   "Use a smaller --image-size.")
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from typing import Any, Iterator

from gantk.errors import GantkError, UsageError

_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
#: The ``--max-memory`` limit in force (bytes), or None.
_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("gantk_max_memory", default=None)
#: Phrases of PyTorch's (and NumPy's) allocation failures.
_ALLOCATION_FAILURES = ("can't allocate memory", "out of memory", "not enough memory", "unable to allocate")


def parse_size(text: Any, flag: str = "--max-memory") -> int:
    """``"8G"``, ``"512M"``, ``"1.5GiB"``, ``"64k"`` or a number of bytes, as bytes (units are powers of 1024)."""
    match = _SIZE.match(str(text)) if not isinstance(text, bool) else None
    nbytes = int(float(match.group(1)) * _UNITS[match.group(2).upper()]) if match else 0
    if nbytes < 1:
        raise UsageError(f"{flag} takes an amount of memory such as 8G, 512M or 64K (units of 1024 bytes), "
                         f"got '{text}'.")
    return nbytes


def format_size(nbytes: float) -> str:
    """Bytes for people: ``1.5 GiB``, ``512 MiB``, ``12 KiB``, ``100 bytes``."""
    for unit, name in ((1024 ** 5, "PiB"), (1024 ** 4, "TiB"), (1024 ** 3, "GiB"), (1024 ** 2, "MiB"), (1024, "KiB")):
        if nbytes >= unit:
            return f"{nbytes / unit:.3g} {name}"
    return f"{int(nbytes)} bytes"


def available_bytes(device: Any = None) -> int | None:
    """Memory available for new allocations now: host memory, or a CUDA device's free memory; None if unknown."""
    if device is not None and str(device).startswith("cuda"):
        import torch

        try:
            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        except (RuntimeError, AssertionError, ValueError):
            return None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


@contextlib.contextmanager
def limited(max_memory: int | str | None, flag: str = "--max-memory") -> Iterator[None]:
    """Within the block, the budget is at most ``max_memory`` (bytes, or text such as ``8G``); None: no change."""
    if max_memory is None:
        yield
        return
    limit = max_memory if isinstance(max_memory, int) and not isinstance(max_memory, bool) else \
        parse_size(max_memory, flag)
    outer = _LIMIT.get()
    token = _LIMIT.set(limit if outer is None else min(limit, outer))
    try:
        yield
    finally:
        _LIMIT.reset(token)


def budget(device: Any = None) -> tuple[int | None, str]:
    """The bytes an allocation may take now, and where that number comes from (for messages)."""
    available, limit = available_bytes(device), _LIMIT.get()
    where = f"free on {device}" if device is not None and str(device).startswith("cuda") else \
        "available on this machine"
    if limit is not None and (available is None or limit <= available):
        return limit, "that --max-memory allows"
    return available, where


def fits(nbytes: int, device: Any = None) -> bool:
    """Whether ``nbytes`` fit the budget (true when the available memory cannot be read)."""
    allowed, _ = budget(device)
    return allowed is None or nbytes <= allowed


def check_fits(nbytes: int, what: str, fix: str, device: Any = None) -> None:
    """Refuse ``nbytes`` above the budget with one paragraph: ``{what} needs about X of memory, more than the Y
    {where}. {fix}``.

    ``what`` names the request (``"5,000 images at 4096x4096"``); ``fix`` says what to lower (``"Use a smaller
    --image-size."``). ``device`` is where the memory goes (None: host memory).
    """
    allowed, where = budget(device)
    if allowed is not None and nbytes > allowed:
        raise UsageError(f"{what} needs about {format_size(nbytes)} of memory, more than the {format_size(allowed)} "
                         f"{where}. {fix}")


def is_allocation_failure(error: BaseException) -> bool:
    """Whether ``error`` is PyTorch's or NumPy's failure to allocate (host or CUDA memory)."""
    if isinstance(error, MemoryError):
        return True
    return isinstance(error, RuntimeError) and any(phrase in str(error).lower() for phrase in _ALLOCATION_FAILURES)


@contextlib.contextmanager
def allocation_failures_reported(what: str, fix: str) -> Iterator[None]:
    """Within the block, an allocation failure becomes a GantkError: ``{what} ran out of memory (...). {fix}``."""
    try:
        yield
    except GantkError:
        raise
    except (RuntimeError, MemoryError) as error:
        if not is_allocation_failure(error):
            raise
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise GantkError(f"{what} ran out of memory ({detail[:200]}). {fix}") from error
