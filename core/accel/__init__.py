"""gantk's own speed kernels, behind one switch, with PyTorch's stock layers as the fallback.

Today: bf16 convolutions on a CPU (:mod:`gantk.accel.bf16_convolutions`), which route each call
of a plain Conv2d/ConvTranspose2d to gantk's kernels or oneDNN's, whichever was measured faster,
and add the bias outside oneDNN. They rely on private PyTorch APIs (``Conv2d._conv_forward``,
``ConvTranspose2d._output_padding``, ``aten.convolution_backward``); when one of those is missing
or behaves differently, :func:`enable_cpu_kernels` leaves every layer stock and warns once.

The engine alone imports this package (an import-linter contract); ``--cpu-kernels off`` turns it off.
"""

from __future__ import annotations

import functools
import sys

import torch
from torch import nn

#: The values of ``--cpu-kernels``.
CPU_KERNEL_CHOICES = ("auto", "off")


@functools.lru_cache(maxsize=None)
def private_apis_missing() -> str | None:
    """What the kernels need from PyTorch and this install lacks (None when everything is there).

    Besides looking the private APIs up, it checks that a tuned layer still computes what the stock
    layer computes (one tiny fp32 convolution each way), so that a changed signature falls back too.
    """
    needs = {"torch.nn.Conv2d._conv_forward": hasattr(nn.Conv2d, "_conv_forward"),
             "torch.nn.ConvTranspose2d._output_padding": hasattr(nn.ConvTranspose2d, "_output_padding"),
             "torch.ops.aten.convolution_backward": hasattr(torch.ops.aten, "convolution_backward")}
    missing = [name for name, present in needs.items() if not present]
    if missing:
        return ", ".join(missing)
    from gantk.accel.bf16_convolutions import tune_bf16_cpu_convolutions

    try:
        with torch.no_grad():
            stock = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ConvTranspose2d(3, 2, 4, 2, 1))
            tuned = nn.Sequential(*(type(m)(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
                                    for m in stock))
            tuned.load_state_dict(stock.state_dict())
            tune_bf16_cpu_convolutions(tuned)
            x = torch.randn(1, 2, 5, 5, generator=torch.Generator().manual_seed(0))
            if not torch.allclose(stock(x), tuned(x), atol=1e-5):
                return "a tuned convolution that matches the stock one"
    except Exception as error:  # noqa: BLE001 - any failure of a private API means: use the stock layers
        return f"working private convolution APIs ({type(error).__name__}: {error})"
    return None


@functools.lru_cache(maxsize=None)
def _warn_once(missing: str) -> None:
    print(f"gantk: warning: this PyTorch {torch.__version__} lacks {missing}, which gantk's bf16 CPU convolution "
          "kernels use; training goes on with PyTorch's stock layers (correct, possibly slower). "
          "--cpu-kernels off silences this.", file=sys.stderr, flush=True)


def enable_cpu_kernels(networks: list[nn.Module], device: torch.device, dtype: torch.dtype | None,
                       choice: str = "auto") -> int:
    """Give ``networks`` gantk's bf16 CPU convolutions where they apply; returns how many layers changed.

    Nothing changes unless ``choice`` is ``auto``, training runs on a CPU in bf16, and the private
    APIs the kernels use are present and behave (else one warning and the stock layers).
    """
    if choice == "off" or device.type != "cpu" or dtype is not torch.bfloat16:
        return 0
    missing = private_apis_missing()
    if missing is not None:
        _warn_once(missing)
        return 0
    from gantk.accel.bf16_convolutions import tune_bf16_cpu_convolutions

    return sum(tune_bf16_cpu_convolutions(network) for network in networks)


__all__ = ["CPU_KERNEL_CHOICES", "enable_cpu_kernels", "private_apis_missing"]
