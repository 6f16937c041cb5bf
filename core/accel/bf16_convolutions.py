"""bf16 convolutions on a CPU, routed per call to the faster of oneDNN's kernel and gantk's own.

Measured on the ContraGAN tutorial shapes of ``benchmarks/throughput.py`` (2 cores with
AVX512-BF16; docs/performance.md has the figures):

- **bf16 convolutions tuned per layer** (:func:`tune_bf16_cpu_convolutions`): the bias is added
  outside oneDNN, whose AVX512-BF16 backward-weights kernel spends nearly as long reducing the bias
  gradient as computing the weight gradient (a separate add, whose gradient is a plain sum, is far
  cheaper); layers with 1–4 channels on one side (image in or out) go through
  :mod:`gantk.accel.narrow_conv`, and layers with small output maps take their weight gradient as one
  GEMM (:mod:`gantk.accel.conv_gradients`). These round differently from oneDNN, the only numerical
  difference of these settings.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantk.accel.conv_gradients import conv2d_with_own_gradients
from gantk.accel.narrow_conv import narrow_conv2d, narrow_conv_transpose2d, transposed_output_hw

# When gantk's own bf16 convolution kernels beat oneDNN's (measured on 2 AVX512-BF16 cores; docs/training.md):
#: an image side has at most this many channels (8 or 16 output channels ran slower than oneDNN),
NARROW_CHANNELS = 4
#: and at least this many positions per kernel tap (a 7×7 → 1×1 head ran 10× slower as 49 shifted adds),
NARROW_MIN_POSITIONS_PER_TAP = 4
#: and at least this many positions over the batch (below it the fixed cost per call ate the gain:
#: the default DCGAN's 64×28×28 sides were no faster in a training step);
NARROW_MIN_BATCH_POSITIONS = 2**16
#: a "small map" has at most this many output positions per sample (an 8×8 map was slower as a GEMM)
SMALL_MAP_POSITIONS = 16
#: and at least this many over the batch (the GEMM's depth; a 64-deep one made the default step 1.6 % slower).
SMALL_MAP_MIN_BATCH_POSITIONS = 1024


def _is_plain(module: nn.Conv2d | nn.ConvTranspose2d) -> bool:
    """Groups 1, dilation 1, zero padding given as numbers: the layers gantk's own kernels cover."""
    return (module.groups == 1 and module.padding_mode == "zeros" and not isinstance(module.padding, str)
            and tuple(module.dilation) == (1, 1))


def _may_reroute(module: nn.Conv2d | nn.ConvTranspose2d) -> bool:
    """Whether some input could send this layer through gantk's own kernels (decided per call)."""
    if not _is_plain(module):
        return False
    return isinstance(module, nn.Conv2d) or module.out_channels <= NARROW_CHANNELS


def _image_side(batch: int, side, kernel) -> bool:
    """An image side worth the shifted adds: enough positions per kernel tap and over the batch."""
    positions = side[0] * side[1]
    return (positions >= NARROW_MIN_POSITIONS_PER_TAP * kernel[0] * kernel[1]
            and batch * positions >= NARROW_MIN_BATCH_POSITIONS)


def _small_map(batch: int, out_hw) -> bool:
    positions = out_hw[0] * out_hw[1]
    return positions <= SMALL_MAP_POSITIONS and batch * positions >= SMALL_MAP_MIN_BATCH_POSITIONS


def _bf16_kernel(module: nn.Conv2d | nn.ConvTranspose2d, input: Tensor,
                 output_padding) -> Callable[[Tensor, Tensor], Tensor] | None:
    """gantk's computation of this call of a plain layer under bf16, or None for oneDNN's."""
    kernel, stride, padding, batch = module.kernel_size, module.stride, module.padding, input.shape[0]
    if isinstance(module, nn.ConvTranspose2d):
        out_hw = transposed_output_hw(input.shape[-2:], kernel, stride, padding, output_padding)
        if module.out_channels <= NARROW_CHANNELS and _image_side(batch, out_hw, kernel):
            return lambda x, w: narrow_conv_transpose2d(x, w, stride, padding, output_padding)
        return None
    out_hw = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(input.shape[-2:], padding, kernel, stride)]
    if module.out_channels <= NARROW_CHANNELS and tuple(stride) == (1, 1) and _image_side(batch, out_hw, kernel):
        return lambda x, w: narrow_conv2d(x, w, padding)
    narrow_input = module.in_channels <= NARROW_CHANNELS and _image_side(batch, input.shape[-2:], kernel)
    small_map = _small_map(batch, out_hw)
    if narrow_input or small_map:
        return lambda x, w: conv2d_with_own_gradients(x, w, stride, padding, narrow_input, small_map)
    return None


def _compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype a convolution of ``x`` computes in: autocast's when it is on for x's device."""
    return torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype


def _tuned_forward(module: nn.Conv2d | nn.ConvTranspose2d, input: Tensor,
                   output_size: list[int] | None = None) -> Tensor:
    """The module's convolution (gantk's own kernels where they are faster under bf16 on a CPU), then ``y + b``."""
    transposed = isinstance(module, nn.ConvTranspose2d)
    output_padding = module._output_padding(input, output_size, module.stride, module.padding, module.kernel_size,
                                            2, module.dilation) if transposed else None
    bf16_cpu = input.device.type == "cpu" and _compute_dtype(input) is torch.bfloat16
    kernel = _bf16_kernel(module, input, output_padding) if bf16_cpu and _is_plain(module) else None
    if kernel is not None:
        output = kernel(input.to(torch.bfloat16), module.weight.to(torch.bfloat16))
    elif transposed:
        output = F.conv_transpose2d(input, module.weight, None, module.stride, module.padding, output_padding,
                                    module.groups, module.dilation)
    else:
        output = module._conv_forward(input, module.weight, None)
    if module.bias is None:
        return output
    return output + module.bias.view(1, -1, 1, 1).to(output.dtype)


def tune_bf16_cpu_convolutions(model: nn.Module) -> int:
    """Give stock Conv2d/ConvTranspose2d layers of ``model`` the bf16 CPU forward; returns how many.

    A layer changes if it has a bias (added outside oneDNN) or could take one of gantk's own
    kernels: an image side (1–4 channels, gantk.narrow_conv) or a small output map (weight
    gradient as one GEMM, gantk.conv_gradients), chosen per call when it computes in bf16 on a
    CPU; otherwise the stock convolution runs. Same maths up to rounding, same parameters and
    state_dict; only the instance's ``forward`` changes (a deep copy, such as the EMA generator,
    keeps it).
    """
    changed = 0
    for module in model.modules():
        # a subclass with a forward of its own is left alone; parametrised layers (spectral norm) inherit the
        # stock forward and are tuned: the tuned forward reads module.weight, which applies the parametrisation
        stock = type(module).forward in (nn.Conv2d.forward, nn.ConvTranspose2d.forward)
        transposed_padding_ok = not isinstance(module, nn.ConvTranspose2d) or module.padding_mode == "zeros"
        if stock and transposed_padding_ok and (module.bias is not None or _may_reroute(module)):
            module.forward = types.MethodType(_tuned_forward, module)
            changed += 1
    return changed
