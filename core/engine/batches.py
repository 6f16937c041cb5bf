"""Batches of real data for the training loop.

Data sets that fit in memory live on the training device as one tensor and are batched by
indexing a random permutation (no DataLoader, no host round trip); the permutation and the
position in it are part of the checkpoint, so a resumed run sees the same batches. Data too big
for memory streams through a DataLoader.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import Tensor

from gantk.protocols import Dataset


class DeviceBatches:
    """Shuffled batches drawn from tensors on the device; each epoch is a fresh permutation."""

    def __init__(self, samples: Tensor, labels: Tensor | None, batch_size: int) -> None:
        if samples.shape[0] < batch_size:
            batch_size = int(samples.shape[0])
        self.samples, self.labels, self.batch_size = samples, labels, batch_size
        self.permutation = torch.randperm(samples.shape[0], device=samples.device)
        self.position = 0

    def next(self) -> tuple[Tensor, Tensor | None]:
        if self.position + self.batch_size > self.permutation.numel():
            self.permutation = torch.randperm(self.samples.shape[0], device=self.samples.device)
            self.position = 0
        index = self.permutation[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return self.samples[index], None if self.labels is None else self.labels[index]

    def state(self) -> dict[str, Any]:
        return {"permutation": self.permutation, "position": self.position}

    def load_state(self, state: dict[str, Any]) -> None:
        self.permutation = state["permutation"].to(self.samples.device)
        self.position = int(state["position"])


class StreamBatches:
    """Batches from a ``torch.utils.data.Dataset`` too big for memory (order is not resumable)."""

    def __init__(self, stream, batch_size: int, device: torch.device, workers: int = 2) -> None:
        self.loader = torch.utils.data.DataLoader(stream, batch_size=batch_size, shuffle=True, drop_last=True,
                                                  num_workers=workers, persistent_workers=workers > 0)
        self.device, self.batch_size = device, batch_size
        self._iterator: Iterator | None = None

    def next(self) -> tuple[Tensor, Tensor | None]:
        if self._iterator is None:
            self._iterator = iter(self.loader)
        try:
            samples, labels = next(self._iterator)
        except StopIteration:
            self._iterator = iter(self.loader)
            samples, labels = next(self._iterator)
        labels = labels.to(self.device, non_blocking=True) if torch.is_tensor(labels) and labels.min() >= 0 else None
        return samples.to(self.device, non_blocking=True), labels

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        return None


def make_batches(dataset: Dataset, batch_size: int, device: torch.device,
                 memory_format: torch.memory_format = torch.preserve_format) -> DeviceBatches | StreamBatches:
    if dataset.samples is not None:
        labels = dataset.labels.to(device) if dataset.labels is not None else None
        return DeviceBatches(dataset.samples.to(device, torch.float32, memory_format=memory_format), labels, batch_size)
    return StreamBatches(dataset.stream, batch_size, device)
