"""Host memory: freed blocks kept for reuse, which makes the same model train faster on a CPU.

Measured on the ContraGAN tutorial shapes of ``benchmarks/throughput.py`` (docs/performance.md):
**freed host memory kept for reuse** (:func:`keep_freed_memory`): glibc's malloc serves big
  blocks with fresh ``mmap`` regions and unmaps them when freed, so every step page-faults all of
  its activations back in.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

#: Set to 0 to leave glibc's malloc settings alone (the process then returns freed memory to the OS).
KEEP_FREED_MEMORY_ENV = "GANTK_KEEP_FREED_MEMORY"

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameter numbers from glibc's <malloc.h>

@functools.lru_cache(maxsize=None)
def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks for reuse instead of unmapping them; True when applied.

    ``M_MMAP_MAX = 0`` serves every block from the heap (glibc still falls back to ``mmap`` when
    the heap cannot grow) and a huge ``M_TRIM_THRESHOLD`` never hands the heap's top back, so a
    step's activations reuse the previous step's pages instead of faulting fresh ones in: the
    behaviour of jemalloc or tcmalloc, which PyTorch's CPU tuning guides preload for this reason.
    The cost is that the process keeps its peak memory until it exits. Process-wide and done once;
    a no-op off glibc or with ``GANTK_KEEP_FREED_MEMORY=0``.
    """
    if os.environ.get(KEEP_FREED_MEMORY_ENV, "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
