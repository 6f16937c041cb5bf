"""Memory settings that make the same model train faster on a CPU without changing what it computes.

Measured on the ContraGAN tutorial shapes of ``benchmarks/throughput.py`` (docs/performance.md):

- **Channels-last tensors** for image models (:func:`training_memory_format`): oneDNN's convolution
  kernels work on NHWC data, so NCHW tensors are reordered on every call. On a CPU this pays in
  fp32 as well as in bf16.
- **Freed host memory kept for reuse** (:func:`keep_freed_memory`): glibc's malloc serves big
  blocks with fresh ``mmap`` regions and unmaps them when freed, so every step page-faults all of
  its activations back in.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

import torch

#: Set to 0 to leave glibc's malloc settings alone (the process then returns freed memory to the OS).
KEEP_FREED_MEMORY_ENV = "GANTK_KEEP_FREED_MEMORY"

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameter numbers from glibc's <malloc.h>

def training_memory_format(device: torch.device, dtype: torch.dtype | None, is_image: bool) -> torch.memory_format:
    """Channels-last for image models on a CPU (any precision) or under reduced precision elsewhere.

    On CUDA, channels-last pays with tensor cores (bf16/fp16); fp32 stays in the default layout.
    """
    if is_image and (device.type == "cpu" or dtype is not None):
        return torch.channels_last
    return torch.preserve_format


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
