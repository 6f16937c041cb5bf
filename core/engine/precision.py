"""Mixed precision: which autocast dtype to use, and a context manager for it.

``auto`` picks bf16 autocast where the hardware does bf16 matrix maths fast (CUDA devices that
support bf16; CPUs with AVX512-BF16 or AMX, where it is several times faster than fp32) and
fp32 elsewhere. Weights always stay fp32; loss terms compute their reductions in fp32.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch
from torch import Tensor

from gantk.errors import UsageError


@functools.lru_cache(maxsize=None)
def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX-BF16 (read from /proc/cpuinfo, else oneDNN's own check)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        checker = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(checker and checker())


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: plain fp32)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise UsageError("--precision fp16 needs a CUDA device (it relies on loss scaling); "
                             "on a CPU use --precision bf16 or auto.")
        return torch.float16
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        if device.type == "cpu":
            return torch.bfloat16 if cpu_has_fast_bf16() else None
        return None
    raise UsageError(f"Unknown precision '{precision}'; use auto, fp32, bf16 or fp16.")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype``, or a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def describe(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def backward(loss: Tensor, scaler: torch.amp.GradScaler) -> None:
    """Back-propagate ``loss``, scaled when fp16 loss scaling is on."""
    (scaler.scale(loss) if scaler.is_enabled() else loss).backward()


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """One optimizer step (through the scaler, which skips steps with inf/NaN gradients, under fp16)."""
    if scaler.is_enabled():
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
