"""Learning-rate schedules (``--lr-schedule``): the learning rate as a pure function of the step.

With ``s`` the steps done, ``T`` = ``--steps`` and ``S`` the decay's start, each optimizer's rate
for the next step is its configured rate times

- ``constant``: 1;
- ``linear-decay:S`` (or ``linear-decay:P%``, S = P% of T): 1 until step S, then falling linearly to 0
  at step T (CycleGAN, Zhu et al. 2017, keeps the rate for the first half of training and decays it
  to 0 over the second);
- ``cosine``: ½(1 + cos(π s / T)) (Loshchilov & Hutter 2017, without restarts).

The schedules are :class:`torch.optim.lr_scheduler.LambdaLR` objects stepped once per training
step (whatever ``--n-critic`` is). Being a function of the step, a schedule needs no state of its
own in checkpoints: a resumed run rebuilds it at its step. Raising ``--steps`` on resume stretches it.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR

from gantk.engine.config import parse_lr_schedule


def lr_factor(schedule: str, steps: int) -> Callable[[int], float]:
    """The multiplier of the configured learning rate after ``s`` steps, for ``--lr-schedule`` and ``--steps``."""
    kind, start = parse_lr_schedule(schedule, steps)
    if kind == "linear-decay":
        return lambda s: 1.0 if s < start else max(0.0, 1.0 - (s - start) / (steps - start))  # 1 → 0 from S to T
    if kind == "cosine":
        return lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, steps) / steps))  # ½(1 + cos(π s/T))
    return lambda s: 1.0


def schedules_at(optimizers: dict[str, torch.optim.Optimizer], schedule: str, steps: int,
                 step: int) -> list[LambdaLR]:
    """One LambdaLR per optimizer, positioned at ``step`` (a resumed run's); none for ``constant``."""
    if parse_lr_schedule(schedule, steps)[0] == "constant":
        return []
    factor = lr_factor(schedule, steps)
    built = []
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:  # the configured rate (a checkpoint from before schedules lacks it)
            group.setdefault("initial_lr", group["lr"])
        built.append(LambdaLR(optimizer, factor, last_epoch=step - 1))  # sets lr = initial_lr · factor(step)
    return built
