"""One precision policy per run (:class:`PrecisionPolicy`): autocast dtype, memory layout, loss scaling.

``auto`` picks bf16 autocast for image data where the hardware does bf16 matrix maths fast (CUDA
devices that support bf16; CPUs with AVX512-BF16 or AMX, where it is several times faster than
fp32) and fp32 elsewhere, and fp32 for vector data (small networks gain nothing from bf16, whose 8
significant bits put a coordinate near 1 on steps of 2⁻⁸–2⁻⁷, coarse against a 2-D mixture's σ of
0.01). Weights always stay fp32; fp16 scales the losses (Micikevicius et al. 2018); image models use
channels-last where that is faster; loss terms receive float32 logits (the procedure casts D's
outputs once, :meth:`gantk.DiscriminatorOutput.to_float32`).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gantk.engine.distributed import average_gradients
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


def resolve_dtype(precision: str, device: torch.device, is_image: bool = True) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: plain fp32); ``auto`` is fp32 for vector data."""
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
        if not is_image:
            return None
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


def training_memory_format(device: torch.device, dtype: torch.dtype | None, is_image: bool) -> torch.memory_format:
    """Channels-last for image models on a CPU (any precision) or under reduced precision elsewhere.

    On CUDA, channels-last pays with tensor cores (bf16/fp16); fp32 stays in the default layout.
    """
    if is_image and (device.type == "cpu" or dtype is not None):
        return torch.channels_last
    return torch.preserve_format


@dataclass(frozen=True)
class PrecisionPolicy:
    """A run's precision: the autocast dtype (None: fp32), the tensors' memory layout and loss scaling."""

    device: torch.device
    dtype: torch.dtype | None
    memory_format: torch.memory_format

    @classmethod
    def resolve(cls, precision: str, device: torch.device, is_image: bool) -> "PrecisionPolicy":
        """The policy ``--precision`` asks for on ``device``, for image or vector data."""
        dtype = resolve_dtype(precision, device, is_image)
        return cls(device, dtype, training_memory_format(device, dtype, is_image))

    @property
    def name(self) -> str:
        """fp32, bf16 or fp16."""
        return describe(self.dtype)

    def autocast(self):
        """The context a forward pass runs in."""
        return autocast(self.device, self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A loss scaler: active under fp16, a no-op otherwise."""
        return torch.amp.GradScaler(self.device.type, enabled=self.dtype is torch.float16)


def backward(loss: Tensor, scaler: torch.amp.GradScaler) -> None:
    """Back-propagate ``loss``, scaled when fp16 loss scaling is on."""
    (scaler.scale(loss) if scaler.is_enabled() else loss).backward()


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """One optimizer step (through the scaler, which skips steps with inf/NaN gradients, under fp16).

    Under torchrun the gradients are first averaged over the ranks (before the scaler looks for
    inf/NaN, so that every rank takes or skips the step alike).
    """
    average_gradients(p for group in optimizer.param_groups for p in group["params"])
    if scaler.is_enabled():
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
