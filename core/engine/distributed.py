"""The engine's side of data-parallel training: the process group, and gradients averaged over ranks.

``torchrun`` starts one process per rank and sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and
the rendezvous address; :func:`join_process_group` joins them (gloo on CPUs, NCCL on GPUs).

Gradient synchronisation is the all-reduce of each optimizer's gradients just before its step
(:func:`average_gradients`, called by :func:`gantk.engine.precision.optimizer_step`), not
``DistributedDataParallel``: it runs after every backward a phase makes (the gradient penalty's
and R1's double backward, a lazy regulariser's extra pass, several accumulated micro-batches)
and over every parameter an optimizer holds (loss heads included), so no loss term needs to
know about it. docs/architecture.md gives the reasons in full.
"""

from __future__ import annotations

import os
from typing import Iterable

import torch
import torch.distributed as dist
from torch import Tensor

from gantk.distributed import world_size
from gantk.engine.run_dir import launched_by_torchrun
from gantk.errors import UsageError


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def join_process_group(device: torch.device) -> None:
    """Join torchrun's process group once per process: NCCL for CUDA devices, gloo otherwise."""
    if not launched_by_torchrun() or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def rank_device(device: torch.device) -> torch.device:
    """Under torchrun, a bare ``cuda`` device becomes this rank's GPU (``cuda:LOCAL_RANK``)."""
    if device.type == "cuda" and device.index is None and launched_by_torchrun():
        return torch.device("cuda", local_rank())
    return device


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Every parameter's gradient replaced by its mean over the ranks, in one all-reduce.

    A parameter without a gradient on a rank counts as a zero gradient there; one without a
    gradient on every rank keeps none (so an optimizer still skips it, as in one process).
    """
    if world_size() == 1:
        return
    parameters = [p for p in parameters if p.requires_grad]
    if not parameters:
        return
    reference = next((p.grad for p in parameters if p.grad is not None), parameters[0])
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(reference.dtype)
                      for p in parameters]
                     + [torch.tensor([p.grad is not None for p in parameters], dtype=reference.dtype,
                                     device=reference.device)])
    dist.all_reduce(flat)  # Σ over ranks of each gradient, and of "has a gradient"
    counts = flat[-len(parameters):]
    offset = 0
    for parameter, count in zip(parameters, counts.tolist()):
        size = parameter.numel()
        mean = flat[offset:offset + size].view(parameter.shape).div_(world_size())
        if parameter.grad is not None:
            parameter.grad.copy_(mean)  # in place: the gradient keeps its layout (channels-last convolutions)
        elif count > 0:
            parameter.grad = mean.to(parameter.dtype)
        offset += size


def mean_over_ranks(values: Tensor) -> Tensor:
    """``values`` averaged over the ranks (every rank gets the mean); unchanged in one process."""
    if world_size() == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values.div_(world_size())


def same_on_every_rank(modules: Iterable[torch.nn.Module]) -> None:
    """Copy rank 0's parameters and buffers to every rank (a guard: all ranks build them from one seed)."""
    if world_size() == 1:
        return
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def text_from_rank0(text: str | None, device: torch.device) -> str:
    """Rank 0's ``text`` on every rank (e.g. the run directory it created), sent as UTF-8 bytes, not pickled."""
    if world_size() == 1:
        return text or ""
    size = 4096  # PATH_MAX on Linux
    buffer = torch.zeros(size, dtype=torch.uint8, device=device)
    if text is not None:
        encoded = text.encode("utf-8", "surrogateescape")[:size]
        buffer[:len(encoded)] = torch.frombuffer(bytearray(encoded), dtype=torch.uint8)
    dist.broadcast(buffer, src=0)
    return bytes(buffer.cpu().tolist()).rstrip(b"\0").decode("utf-8", "surrogateescape")


def wait_for_every_rank() -> None:
    if world_size() > 1:
        dist.barrier()


def leave_process_group() -> None:
    """Leave the process group once every rank is done with it (rank 0 writes the last files while others wait).

    Only after a run that ended well: after a failure the process exits without it and torchrun
    stops the other ranks (a barrier would wait for ranks that are stuck in another collective).
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check_sync_batch_norm(device: torch.device) -> None:
    """--sync-bn needs CUDA: PyTorch's SyncBatchNorm runs on GPUs only."""
    if device.type != "cuda":
        raise UsageError("--sync-bn needs CUDA devices: PyTorch's SyncBatchNorm does not run on CPUs. Leave it out "
                         "(each process then normalises over its own rows of the batch), or train on GPUs.")
