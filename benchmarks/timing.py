"""Timing shared by the benchmark scripts: images per second of a step, synchronised on CUDA."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def images_per_second(step: Callable[[], None], batch: int, steps: int, warmup: int, rounds: int,
                      device: torch.device) -> float:
    """The median over ``rounds`` windows of ``steps`` calls (after ``warmup`` calls) of batch·steps / seconds."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(batch * steps / (time.perf_counter() - started))
    return statistics.median(rates)
