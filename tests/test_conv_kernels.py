"""gantk's own convolution kernels (narrow channels, GEMM weight gradients): PyTorch's maths, first and
second derivatives included.

The property tests run a few geometries by default and many under the ``slow`` mark (gradgradcheck
in float64 costs about a second per geometry): ``pytest -m slow tests/test_conv_kernels.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gantk.accel.bf16_convolutions import tune_bf16_cpu_convolutions
from gantk.accel.conv_gradients import conv2d_with_own_gradients
from gantk.accel.narrow_conv import narrow_conv2d, narrow_conv_transpose2d

F64 = torch.float64
#: geometries per property: a few in the default suite, many in the slow one
EXAMPLES = [pytest.param(4, id="4-geometries"), pytest.param(40, id="40-geometries", marks=pytest.mark.slow)]


def for_geometries(examples: int, *strategies):
    """Run the decorated check on ``examples`` geometries drawn from ``strategies`` (hypothesis)."""
    def decorate(check):
        settings(max_examples=examples, deadline=None)(given(*strategies)(check))()
    return decorate


@st.composite
def transposed_geometry(draw):
    kernel, stride = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    padding = draw(st.integers(0, kernel - 1))
    output_padding = draw(st.integers(0, stride - 1))
    # at least one output position: (n − 1)·s − 2p + k + op ≥ 1
    smallest = max(1, -(-(2 * padding - kernel - output_padding + 1) // stride) + 1)
    side = st.integers(smallest, smallest + 4)
    return (draw(st.integers(1, 5)), draw(st.integers(1, 4)), kernel, stride, padding, output_padding,
            (draw(side), draw(side)))


@st.composite
def conv_geometry(draw, stride_one: bool):
    kernel = draw(st.integers(1, 5))
    stride = 1 if stride_one else draw(st.integers(1, 3))
    padding = draw(st.integers(0, kernel - 1))
    side = st.integers(max(1, kernel - 2 * padding), kernel + 5)  # at least one output position
    return draw(st.integers(1, 4)), draw(st.integers(1, 5)), kernel, stride, padding, (draw(side), draw(side))


def _close_with_gradients(ours, reference, *inputs):
    """Same values and same first derivatives as the reference, and second derivatives that check out."""
    torch.testing.assert_close(ours(*inputs), reference(*inputs))
    grad_out = torch.randn_like(reference(*inputs))
    ours_grads = torch.autograd.grad(ours(*inputs), inputs, grad_out)
    reference_grads = torch.autograd.grad(reference(*inputs), inputs, grad_out)
    for a, b in zip(ours_grads, reference_grads):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradgradcheck(ours, inputs)  # double backward: the gradient penalty needs it


@pytest.mark.parametrize("examples", EXAMPLES)
def test_narrow_transposed_convolution_is_conv_transpose2d(examples):
    for_geometries(examples, transposed_geometry())(check_narrow_transposed_convolution)


def check_narrow_transposed_convolution(geometry):
    in_channels, out_channels, kernel, stride, padding, output_padding, hw = geometry
    x = torch.randn(2, in_channels, *hw, dtype=F64, requires_grad=True)
    w = torch.randn(in_channels, out_channels, kernel, kernel, dtype=F64, requires_grad=True)
    _close_with_gradients(
        lambda a, b: narrow_conv_transpose2d(a, b, (stride, stride), (padding, padding), (output_padding,) * 2),
        lambda a, b: F.conv_transpose2d(a, b, None, stride, padding, output_padding), x, w)


@pytest.mark.parametrize("examples", EXAMPLES)
def test_narrow_output_convolution_is_conv2d(examples):
    for_geometries(examples, conv_geometry(stride_one=True))(check_narrow_output_convolution)


def check_narrow_output_convolution(geometry):
    out_channels, in_channels, kernel, _, padding, hw = geometry
    x = torch.randn(2, in_channels, *hw, dtype=F64, requires_grad=True)
    w = torch.randn(out_channels, in_channels, kernel, kernel, dtype=F64, requires_grad=True)
    _close_with_gradients(lambda a, b: narrow_conv2d(a, b, (padding, padding)),
                          lambda a, b: F.conv2d(a, b, None, 1, padding), x, w)


@pytest.mark.parametrize("examples", EXAMPLES)
def test_convolution_with_its_own_gradients_is_conv2d(examples):
    """The input gradient by matmul + col2im, the weight gradient by one GEMM, each on or off."""
    for_geometries(examples, conv_geometry(stride_one=False), st.booleans(), st.booleans())(
        check_convolution_with_its_own_gradients)


def check_convolution_with_its_own_gradients(geometry, narrow_input, small_map):
    in_channels, out_channels, kernel, stride, padding, hw = geometry
    x = torch.randn(2, in_channels, *hw, dtype=F64, requires_grad=True)
    w = torch.randn(out_channels, in_channels, kernel, kernel, dtype=F64, requires_grad=True)
    _close_with_gradients(
        lambda a, b: conv2d_with_own_gradients(a, b, (stride, stride), (padding, padding), narrow_input, small_map),
        lambda a, b: F.conv2d(a, b, None, stride, padding), x, w)


def test_bf16_results_match_onednn_to_bf16_precision_and_keep_channels_last():
    torch.manual_seed(0)
    x = torch.randn(8, 16, 12, 12).bfloat16().contiguous(memory_format=torch.channels_last)
    w = (torch.randn(3, 16, 3, 3) * 0.1).bfloat16()
    ours, reference = narrow_conv2d(x, w, (1, 1)), F.conv2d(x.double(), w.double(), None, 1, 1)
    assert ours.dtype is torch.bfloat16 and ours.is_contiguous(memory_format=torch.channels_last)
    # one bf16 rounding of the result plus one of each tap's partial sum: well inside 2⁻⁶ of the scale
    assert (ours.double() - reference).abs().max() < reference.abs().max() * 2**-6


def generator_tail() -> nn.Sequential:
    """An image generator's last layers and a small discriminator, at sizes where gantk's kernels pay."""
    torch.manual_seed(0)
    return nn.Sequential(nn.ConvTranspose2d(8, 8, 4, 2, 1), nn.Conv2d(8, 3, 3, 1, 1),  # 16 -> 32, 8 -> 3 channels
                         nn.Conv2d(3, 8, 4, 2, 1),  # reads the image: 3 channels, 32×32 -> 16×16
                         nn.Conv2d(8, 8, 4, 4, 0),  # 16×16 -> 4×4: a small map
                         nn.Conv2d(8, 1, 4, 1, 0))  # 4×4 -> 1×1 head: too little work for either kernel


def _kernel_nodes(output: torch.Tensor) -> list[str]:
    """The backward nodes of the convolutions along the main path, last layer first."""
    names, node = [], output.grad_fn
    while node is not None:
        if "Conv" in type(node).__name__:
            names.append(type(node).__name__)
        # the first input of a bias add, a cast or a convolution is the path back to x
        node = next((n for n, _ in node.next_functions if n is not None and "AccumulateGrad" not in type(n).__name__),
                    None)
    return names


def _relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float((ours.detach().float() - reference.detach().float()).norm() / reference.detach().float().norm())


def test_bf16_training_routes_each_layer_to_its_kernel_and_fp32_stays_stock():
    tuned, stock = generator_tail(), generator_tail()
    assert tune_bf16_cpu_convolutions(tuned) == 5
    x = torch.randn(64, 8, 16, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nodes = _kernel_nodes(tuned(x))
    assert nodes == ["ConvolutionBackward0",  # the head: oneDNN
                     "_Conv2dOwnGradientsBackward",  # 16×16 -> 4×4: weight gradient as one GEMM
                     "_Conv2dOwnGradientsBackward",  # 3 -> 8: image input gradient by col2im
                     "_NarrowTransposedConvBackward",  # 8 -> 3: the generator's image output
                     "ConvolutionBackward0"]  # 8 -> 8 transposed: oneDNN
    torch.testing.assert_close(tuned(x), stock(x), rtol=1e-5, atol=1e-5)  # fp32: the stock convolutions
    assert _kernel_nodes(tuned(x)) == ["ConvolutionBackward0"] * 5
    with torch.autocast("cpu", dtype=torch.bfloat16):  # under bf16 the results stay as close as bf16 allows
        ours, reference = tuned(x), stock(x)
    assert ours.dtype is reference.dtype is torch.bfloat16
    assert _relative_error(ours, reference) < 0.02
    (ours.float() ** 2).sum().backward()
    tuned_grads = [p.grad.clone() for p in tuned.parameters()]
    (reference.float() ** 2).sum().backward()
    for ours_grad, stock_param in zip(tuned_grads, stock.parameters()):
        assert _relative_error(ours_grad, stock_param.grad) < 0.05
