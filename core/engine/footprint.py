"""How much memory a network takes, measured on PyTorch's ``meta`` device, where tensors have shapes but no data.

A network built under ``with torch.device("meta")`` costs nothing however large its options say it
is; :func:`measure` then reads its parameter bytes and runs one forward pass on meta inputs with
a hook on every leaf module, summing what they output. That is what training keeps for the
backward pass; the largest single output bounds the peak of an inference pass. (PyTorch's meta
kernels for many operations are Python decompositions that import ``torch._dynamo`` on first use;
training imports it anyway, so the engine measures forward passes only there.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from gantk.errors import GantkError

T = TypeVar("T")


@dataclass(frozen=True)
class Footprint:
    """A network's memory: its parameters and buffers, and the outputs of one forward pass (None: unknown)."""

    parameters: int
    activations: int | None = None  # every leaf module's output, summed
    largest: int | None = None  # the largest single output


#: Fills whose meta kernels import ``torch._dynamo`` on first use (about 2 s and 150 MB of memory).
_NORMAL_FILLS = (Tensor.normal_, nn.init.normal_, nn.init.xavier_normal_, nn.init.kaiming_normal_)


class _NoRandomFills(TorchFunctionMode):
    """Random fills of meta tensors do nothing (they hold no values), and ``randn`` makes an empty tensor."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")
        if func in _NORMAL_FILLS and isinstance(target, Tensor) and target.is_meta:
            return target
        if func is torch.randn and kwargs.get("device") in (None, "meta", torch.device("meta")):
            kwargs = {key: value for key, value in kwargs.items() if key != "generator"}
            return torch.empty(*args, **kwargs)
        return func(*args, **kwargs)


def on_meta(build: Callable[[], T]) -> T | None:
    """``build()`` on the meta device (shapes only, nothing allocated); None when the plugin cannot build there.

    A GantkError (a bad option, a broken plugin) is raised as it is; other failures are left for the real
    build to report, naming the plugin.
    """
    try:
        with torch.device("meta"), _NoRandomFills():
            return build()
    except GantkError:
        raise
    except Exception:  # noqa: BLE001 - e.g. an operation without a meta kernel in a plugin's __init__
        return None


def parameter_bytes(module: nn.Module) -> int:
    """Bytes of ``module``'s parameters and buffers (their shapes and dtypes; the data may be on meta)."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def _tensor_bytes(value: Any) -> list[int]:
    if isinstance(value, Tensor):
        return [value.numel() * value.element_size()]
    if isinstance(value, (tuple, list)):
        return [n for item in value for n in _tensor_bytes(item)]
    if isinstance(value, dict):
        return [n for item in value.values() for n in _tensor_bytes(item)]
    return []


def measure(module: nn.Module, *inputs: Any) -> Footprint:
    """``module``'s parameter bytes and the outputs of ``module(*inputs)``, inputs on the meta device.

    When the forward pass cannot run on meta (a plugin reading values, an operation without a meta
    kernel), the activations are None.
    """
    outputs: list[int] = []

    def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
        outputs.extend(_tensor_bytes(output))

    leaves = [m for m in module.modules() if not any(True for _ in m.children())]
    handles = [leaf.register_forward_hook(record) for leaf in leaves]
    try:
        with torch.no_grad():
            module(*inputs)
    except GantkError:
        raise
    except Exception:  # noqa: BLE001 - the estimate is best effort; the real pass reports real errors
        return Footprint(parameter_bytes(module))
    finally:
        for handle in handles:
            handle.remove()
    return Footprint(parameter_bytes(module), sum(outputs), max(outputs, default=0))


def meta_tensor(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """A tensor of ``shape`` on the meta device (no memory)."""
    return torch.empty(shape, dtype=dtype, device="meta")
