"""Metrics during training: ``--eval-every N --eval-metrics accuracy,...``.

Every ``N`` steps (and at step 0, as a baseline that also checks the metrics apply to this run
before any training time is spent, and at the last step) each named metric plugin scores the
sampling generator (the EMA copy when there is one) against the run's data set. The values go to
``metrics.jsonl`` (and TensorBoard) as ``eval/<key>`` records beside the losses.

A metric plugin is a factory returning ``metric(generator, dataset, *, device) -> dict[str, float]``
(see docs/plugin-reference.md, "register_metrics").
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from gantk.errors import UsageError
from gantk.protocols import Dataset, Metric
from gantk.registry import Registry

def build_metrics(names: Sequence[str], registry: Registry, options: dict[str, dict[str, Any]] | None = None
                  ) -> dict[str, Metric]:
    """The named metric plugins (``Entry.create`` checks each against the :class:`gantk.protocols.Metric` protocol)."""
    return {name: registry.get("metric", name).create(**(options or {}).get(name, {})) for name in names}


def metric_names_for(requested: Sequence[str], conditional: bool, registry: Registry) -> list[str]:
    """The metrics to run: the requested ones, or for a conditional generator those that say they are its default."""
    if requested:
        return list(requested)
    if conditional:
        built = ((entry.name, entry.create()) for entry in registry.list("metric"))
        defaults = [name for name, metric in built if isinstance(metric, Metric) and metric.default_for_conditional]
        if defaults:
            return defaults
    available = ", ".join(registry.names("metric")) or "none installed"
    raise UsageError("--eval-every needs --eval-metrics here: no installed metric is the default for "
                     f"{'this conditional' if conditional else 'an unconditional'} generator. Name one or more "
                     f"metrics (available: {available}), e.g. --eval-metrics fid, or drop --eval-every.")


def lower_is_better(metrics: dict[str, Metric]) -> frozenset[str]:
    """Every value name the metrics declare smaller-is-better."""
    return frozenset().union(*(metric.lower_is_better for metric in metrics.values()))


def run_metrics(metrics: dict[str, Any], generator: nn.Module, dataset: Dataset, device: torch.device | str,
                shared: dict) -> dict[str, Any]:
    """Every metric's values on ``generator``; metrics with ``shares_features`` also get ``shared``,
    one dict for the whole evaluation, so that they draw samples and features once."""
    values: dict[str, Any] = {}
    for metric in metrics.values():
        extra = {"shared": shared} if metric.shares_features else {}
        values.update(metric(generator, dataset, device=device, **extra))  # each metric manages its grad mode
    return values


class PeriodicEvaluation:
    """Runs named metric plugins on a generator; returns their numeric values as ``eval/<key>``."""

    def __init__(self, names: Sequence[str], dataset: Dataset, device: torch.device, registry: Registry) -> None:
        self.dataset, self.device = dataset, device
        self.metrics = build_metrics(names, registry)
        self._kept: dict = {}  # what sharing metrics keep between evaluations (their feature extractors)

    def __call__(self, generator: nn.Module) -> dict[str, float]:
        shared = dict(self._kept)
        values = run_metrics(self.metrics, generator, self.dataset, self.device, shared)
        results = {f"eval/{key}": float(value) for key, value in values.items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)}
        self._kept = {key: value for key, value in shared.items() if key[0] == "extractor"}
        return results
