"""Convolutions with few channels on one side, as one matrix product plus shifted adds (col2im).

oneDNN's bf16 kernels vectorise over channels, so a layer that writes an image (1 or 3 output
channels, the last layer of most image generators) or whose input gradient is an image (the first
layer of a discriminator) leaves most of each vector empty: on the ContraGAN tutorial's 64→3 3×3
output convolution a 2-core AVX512-BF16 CPU runs at 60–80 GFLOP/s against 450–700 for the wide
layers (docs/training.md). Written as a transposed convolution (Dumoulin & Visin 2016, §4),

    y[o, s·h + i − p, s·w + j − p] += Σ_c W[c, o, i, j] · x[c, h, w]

the work is one matrix product ``Z = W_m · X`` (rows (i, j, o), columns (b, h, w)) whose
contraction runs over the wide side, followed by kh·kw shifted adds of Z's tap planes into ``y``
(col2im), which touch only the narrow side. The adds accumulate in float32, so the result is
rounded to the working precision once, as oneDNN's is, apart from each tap's partial sum.

A stride-1 convolution is the transposed convolution with the kernel flipped and in/out swapped
(padding k − 1 − p), and a convolution's input gradient is the transposed convolution of its
output gradient (gantk.conv_gradients), so one autograd Function serves the image side of a
generator's last layer and of a discriminator's first.
"""

from __future__ import annotations

import torch
from torch import Tensor

def _tap_windows(tap: int, stride: int, padding: int, n_in: int, n_out: int) -> tuple[slice, slice] | None:
    """The input rows h with 0 ≤ s·h + tap − p < n_out, and the output rows they land on."""
    first = max(0, -((tap - padding) // stride))  # ⌈(p − tap)/s⌉, at least 0
    last = min(n_in - 1, (n_out - 1 + padding - tap) // stride)
    if last < first:
        return None
    start = stride * first + tap - padding
    return slice(first, last + 1), slice(start, stride * last + tap - padding + 1, stride)


def _col2im(taps: Tensor, stride: tuple[int, int], padding: tuple[int, int], out_hw: tuple[int, int]) -> Tensor:
    """(kh, kw, C, B, H, W) tap planes → (C, B, Ho, Wo) sums, y[s·h + i − p] += z[i, h], in float32 or wider."""
    kh, kw, channels, batch, height, width = taps.shape
    out = taps.new_zeros(channels, batch, *out_hw, dtype=torch.promote_types(taps.dtype, torch.float32))
    for i in range(kh):
        rows = _tap_windows(i, stride[0], padding[0], height, out_hw[0])
        for j in range(kw):
            cols = _tap_windows(j, stride[1], padding[1], width, out_hw[1])
            if rows is not None and cols is not None:
                out[:, :, rows[1], cols[1]].add_(taps[i, j, :, :, rows[0], cols[0]])  # in place, no write-back
    return out


def _im2col(grad: Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
            in_hw: tuple[int, int]) -> Tensor:
    """The adjoint of :func:`_col2im`: (C, B, Ho, Wo) → (kh, kw, C, B, H, W), z[i, h] = g[s·h + i − p]."""
    channels, batch = grad.shape[:2]
    taps = grad.new_zeros(*kernel, channels, batch, *in_hw)
    for i in range(kernel[0]):
        rows = _tap_windows(i, stride[0], padding[0], in_hw[0], grad.shape[2])
        for j in range(kernel[1]):
            cols = _tap_windows(j, stride[1], padding[1], in_hw[1], grad.shape[3])
            if rows is not None and cols is not None:
                taps[i, j, :, :, rows[0], cols[0]] = grad[:, :, rows[1], cols[1]]
    return taps


def _as_rows(x: Tensor) -> Tensor:
    """(B, C, H, W) → (B·H·W, C): a view for channels-last input, one copy otherwise."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _layout_of(x: Tensor) -> torch.memory_format:
    return torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else torch.contiguous_format


class _NarrowTransposedConv(torch.autograd.Function):
    """``conv_transpose2d(x, W, stride, padding)`` to ``out_hw`` for a W of shape (Cin, Cout, kh, kw)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, stride, padding, out_hw) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.geometry = stride, padding
        kh, kw = weight.shape[2:]
        weight_rows = weight.permute(2, 3, 1, 0).reshape(-1, weight.shape[0])  # (kh·kw·Cout, Cin)
        taps = weight_rows @ _as_rows(x).t()  # Z = W_m · X: (kh·kw·Cout, B·H·W)
        taps = taps.view(kh, kw, weight.shape[1], x.shape[0], *x.shape[2:])
        out = _col2im(taps, stride, padding, out_hw).to(x.dtype).permute(1, 0, 2, 3)
        return out.contiguous(memory_format=_layout_of(x))

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        stride, padding = ctx.geometry
        kh, kw = weight.shape[2:]
        grad_taps = _im2col(grad_out.permute(1, 0, 2, 3).to(x.dtype), (kh, kw), stride, padding, tuple(x.shape[2:]))
        grad_taps = grad_taps.view(-1, x.shape[0] * x.shape[2] * x.shape[3])  # dL/dZ: (kh·kw·Cout, B·H·W)
        weight_rows = weight.permute(2, 3, 1, 0).reshape(-1, weight.shape[0])
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            rows = grad_taps.t() @ weight_rows  # dL/dX = dL/dZᵀ · W_m: (B·H·W, Cin)
            grad_x = rows.view(x.shape[0], *x.shape[2:], x.shape[1]).permute(0, 3, 1, 2)
            grad_x = grad_x.contiguous(memory_format=_layout_of(x))
        if ctx.needs_input_grad[1]:
            grad_rows = grad_taps @ _as_rows(x)  # dL/dW_m = dL/dZ · Xᵀ: (kh·kw·Cout, Cin)
            grad_w = grad_rows.view(kh, kw, weight.shape[1], weight.shape[0]).permute(3, 2, 0, 1)
        return grad_x, grad_w, None, None, None


def transposed_output_hw(in_hw, kernel, stride, padding, output_padding) -> tuple[int, int]:
    """A transposed convolution's output side, (n − 1)·s − 2p + k + output_padding (dilation 1)."""
    return tuple((n - 1) * s - 2 * p + k + op for n, s, p, k, op in zip(in_hw, stride, padding, kernel, output_padding))


def narrow_conv_transpose2d_to(x: Tensor, weight: Tensor, stride, padding, out_hw: tuple[int, int]) -> Tensor:
    """``F.conv_transpose2d`` (no bias, groups 1, dilation 1) to an ``out_hw`` output, as matmul + col2im."""
    return _NarrowTransposedConv.apply(x, weight, tuple(stride), tuple(padding), tuple(out_hw))


def narrow_conv_transpose2d(x: Tensor, weight: Tensor, stride: tuple[int, int], padding: tuple[int, int],
                            output_padding: tuple[int, int] = (0, 0)) -> Tensor:
    """``F.conv_transpose2d`` (no bias, groups 1, dilation 1) computed as matmul + col2im."""
    out_hw = transposed_output_hw(x.shape[2:], weight.shape[2:], stride, padding, output_padding)
    return narrow_conv_transpose2d_to(x, weight, stride, padding, out_hw)


def narrow_conv2d(x: Tensor, weight: Tensor, padding: tuple[int, int]) -> Tensor:
    """``F.conv2d`` with stride 1 (no bias, groups 1, dilation 1) for a weight with few output channels.

    conv(x, W, p) = conv_transpose(x, W', k − 1 − p) with W'[c, o, i, j] = W[o, c, k−1−i, k−1−j].
    """
    kh, kw = weight.shape[2:]
    flipped = weight.flip(2, 3).transpose(0, 1)
    return narrow_conv_transpose2d(x, flipped, (1, 1), (kh - 1 - padding[0], kw - 1 - padding[1]))
