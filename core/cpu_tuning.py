"""How the engine makes the same model train faster on a CPU without changing what it computes.

Three settings, each measured on the ContraGAN tutorial shapes of ``benchmarks/throughput.py``
(2 cores with AVX512-BF16; docs/training.md has the figures):

- **Channels-last tensors** for image models: oneDNN's convolution kernels work on NHWC data, so
  NCHW tensors are reordered on every call. On a CPU this pays in fp32 as well as in bf16.
- **Freed host memory kept for reuse** (:func:`keep_freed_memory`): glibc's malloc serves big
  blocks with fresh ``mmap`` regions and unmaps them when freed, so every step page-faults all of
  its activations back in.
- **Convolution bias added outside oneDNN** under bf16 (:func:`add_conv_bias_separately`): the
  AVX512-BF16 backward-weights kernel spends nearly as long reducing the bias gradient as computing
  the weight gradient; a separate add, whose gradient is a plain sum, is far cheaper (the output
  is rounded to bf16 once more, the only numerical difference of these settings).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import types

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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


def _forward_with_separate_bias(module: nn.Conv2d | nn.ConvTranspose2d, input: Tensor,
                                output_size: list[int] | None = None) -> Tensor:
    """The module's own convolution without its bias, then ``y + b`` (b cast to y's dtype)."""
    if isinstance(module, nn.ConvTranspose2d):
        output_padding = module._output_padding(input, output_size, module.stride, module.padding,
                                                module.kernel_size, 2, module.dilation)
        output = F.conv_transpose2d(input, module.weight, None, module.stride, module.padding, output_padding,
                                    module.groups, module.dilation)
    else:
        output = module._conv_forward(input, module.weight, None)
    return output + module.bias.view(1, -1, 1, 1).to(output.dtype)


def add_conv_bias_separately(model: nn.Module) -> int:
    """Give every biased Conv2d/ConvTranspose2d in ``model`` a forward that adds its bias itself.

    Same maths (one more bf16 rounding: the bias is added to the rounded output), same parameters
    and state_dict; only the instance's ``forward`` changes (a deep copy, such as the EMA
    generator, keeps it). Returns how many layers were changed.
    """
    changed = 0
    for module in model.modules():
        # a subclass with a forward of its own is left alone; parametrised layers (spectral norm) keep the stock one
        stock = type(module).forward in (nn.Conv2d.forward, nn.ConvTranspose2d.forward)
        transposed_padding_ok = not isinstance(module, nn.ConvTranspose2d) or module.padding_mode == "zeros"
        if stock and module.bias is not None and transposed_padding_ok:
            module.forward = types.MethodType(_forward_with_separate_bias, module)
            changed += 1
    return changed
