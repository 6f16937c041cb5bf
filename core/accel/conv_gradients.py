"""A Conv2d whose forward pass is oneDNN's and whose gradients may be computed another way.

Two gradients of ``y = conv2d(x, W)`` are slow in oneDNN's bf16 kernels without AMX (figures in
docs/training.md, 2-core AVX512-BF16):

- **the input gradient of a layer that reads an image** (1–4 input channels, a discriminator's
  first layer): it is a transposed convolution with 1–4 output channels, computed by
  :mod:`gantk.narrow_conv` as a matrix product plus shifted adds;
- **the weight gradient of a layer with a small output map** (at most 16 positions, the last
  strided layer of a 32×32 or 64×64 discriminator): there oneDNN's backward-weights pass ran at
  half its forward speed (5.4–6.0 ms against 2.5 ms for the same 2.1 GFLOP on the ContraGAN
  tutorial's 128→256 layer). The weight gradient

      dL/dW[o, c, i, j] = Σ_{b, h, w} dL/dy[b, o, h, w] · x_pad[b, c, s·h + i, s·w + j]

  is one product ``dY_mᵀ · P`` of the output gradient (B·Ho·Wo × O) with the input's patches
  (im2col, B·Ho·Wo × kh·kw·C): on a small map a short copy and a GEMM at full speed (3.1–3.4 ms).

Everything else, and the forward pass, is oneDNN's (``aten.convolution_backward``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gantk.accel.narrow_conv import narrow_conv_transpose2d_to


def _patch_rows(x: Tensor, kernel, stride, padding, out_hw) -> Tensor:
    """im2col: (B, C, H, W) → (B·Ho·Wo, kh·kw·C), row (b, h, w) holding x_pad[b, :, s·h + i, s·w + j]."""
    batch, channels = x.shape[:2]
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, padding[1], padding[1], padding[0], padding[0]))  # B, H+2p, W+2p, C
    sb, sh, sw, sc = padded.stride()
    windows = padded.as_strided((batch, *out_hw, *kernel, channels), (sb, stride[0] * sh, stride[1] * sw, sh, sw, sc))
    return windows.reshape(batch * out_hw[0] * out_hw[1], -1)


class _Conv2dOwnGradients(torch.autograd.Function):
    """``F.conv2d(x, W, stride, padding)`` (no bias, groups 1, dilation 1) with either gradient replaced."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, stride, padding, narrow_input: bool, small_map: bool) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.plan = stride, padding, narrow_input, small_map
        return F.conv2d(x, weight, None, stride, padding)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        stride, padding, narrow_input, small_map = ctx.plan
        grad_out = grad_out.to(x.dtype)
        want_x, want_w = ctx.needs_input_grad[:2]
        grad_x = grad_w = None
        if want_x and narrow_input:
            # dL/dx = conv_transpose(dL/dy, W): W's (Cout, Cin, kh, kw) is a transposed conv's (in, out) weight
            grad_x = narrow_conv_transpose2d_to(grad_out, weight, stride, padding, tuple(x.shape[2:]))
        if want_w and small_map:
            out_channels, kernel = weight.shape[0], tuple(weight.shape[2:])
            grad_rows = grad_out.permute(0, 2, 3, 1).reshape(-1, out_channels)  # dY_m: (B·Ho·Wo, O)
            patches = _patch_rows(x, kernel, stride, padding, tuple(grad_out.shape[2:]))
            grad_w = (grad_rows.t() @ patches).view(out_channels, *kernel, -1).permute(0, 3, 1, 2)  # dY_mᵀ · P
        onednn_x, onednn_w = want_x and grad_x is None, want_w and grad_w is None
        if onednn_x or onednn_w:
            grads = torch.ops.aten.convolution_backward(grad_out, x, weight, None, list(stride), list(padding), [1, 1],
                                                        False, [0, 0], 1, [onednn_x, onednn_w, False])
            grad_x = grads[0] if onednn_x else grad_x
            grad_w = grads[1] if onednn_w else grad_w
        return grad_x, grad_w, None, None, None, None


def conv2d_with_own_gradients(x: Tensor, weight: Tensor, stride, padding, narrow_input: bool,
                              small_map: bool) -> Tensor:
    """``F.conv2d`` (no bias, groups 1, dilation 1) with the input gradient through gantk.narrow_conv
    (``narrow_input``) and/or the weight gradient as one GEMM (``small_map``)."""
    return _Conv2dOwnGradients.apply(x, weight, tuple(stride), tuple(padding), narrow_input, small_map)
