"""Metrics during training: ``--eval-every N --eval-metrics accuracy,...``.

Every ``N`` steps (and at step 0, as a baseline that also checks the metrics apply to this run
before any training time is spent, and at the last step) each named metric plugin scores the
sampling generator (the EMA copy when there is one) against the run's data set. The values go to
``metrics.jsonl`` (and TensorBoard) as ``eval/<key>`` records beside the losses.

A metric plugin is a factory returning ``metric(generator, dataset, *, device) -> dict[str, float]``
(see docs/plugins.md, "Metrics").
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from gantk.errors import UsageError
from gantk.protocols import Dataset
from gantk.registry import Registry

#: The metric a conditional generator is scored with when --eval-every comes without --eval-metrics.
CONDITIONAL_DEFAULT = "accuracy"


def metric_names_for(requested: Sequence[str], conditional: bool, registry: Registry) -> list[str]:
    """The metrics to run: the requested ones, or ``accuracy`` for a conditional generator."""
    if requested:
        return list(requested)
    if conditional:
        return [CONDITIONAL_DEFAULT]
    available = ", ".join(registry.names("metric")) or "none installed"
    raise UsageError("--eval-every needs --eval-metrics for an unconditional generator (the default, accuracy, "
                     f"scores conditional generators only). Name one or more metrics (available: {available}), "
                     "e.g. --eval-metrics fid, or drop --eval-every.")


def run_metrics(metrics: dict[str, Any], generator: nn.Module, dataset: Dataset, device: torch.device | str,
                shared: dict) -> dict[str, Any]:
    """Every metric's values on ``generator``; metrics with ``shares_features`` also get ``shared``,
    one dict for the whole evaluation, so that they draw samples and features once."""
    values: dict[str, Any] = {}
    for metric in metrics.values():
        extra = {"shared": shared} if getattr(metric, "shares_features", False) else {}
        values.update(metric(generator, dataset, device=device, **extra))  # each metric manages its grad mode
    return values


class PeriodicEvaluation:
    """Runs named metric plugins on a generator; returns their numeric values as ``eval/<key>``."""

    def __init__(self, names: Sequence[str], dataset: Dataset, device: torch.device, registry: Registry) -> None:
        self.dataset, self.device = dataset, device
        self.metrics = {name: registry.create("metric", name) for name in names}
        self._kept: dict = {}  # what sharing metrics keep between evaluations (their feature extractors)

    def __call__(self, generator: nn.Module) -> dict[str, float]:
        shared = dict(self._kept)
        values = run_metrics(self.metrics, generator, self.dataset, self.device, shared)
        results = {f"eval/{key}": float(value) for key, value in values.items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)}
        self._kept = {key: value for key, value in shared.items() if key[0] == "extractor"}
        return results
