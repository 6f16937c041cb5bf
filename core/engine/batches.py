"""Batches of real data for the training loop: in memory on the device, or streamed from disk.

Data sets that fit in memory live on the training device as one tensor (uint8 pixels for 8-bit
images, float32 otherwise) and are batched by indexing a random permutation drawn from the global
random stream (no DataLoader, no host round trip); the permutation and the position in it are part
of the checkpoint. Each batch is mapped to the model's range on the device
(:func:`gantk.protocols.signed_unit`) and put in the run's memory format.

Data too big for memory streams through a ``torch.utils.data.DataLoader`` whose workers decode
(and resize) the samples. Its order is a :class:`SeededBatchOrder`: epoch e is
``torch.randperm(N)`` drawn from a generator seeded with :func:`epoch_seed` (``--seed``, e), cut into
global batches of ``--batch-size`` rows (the last partial batch is dropped). The state saved in a
checkpoint is (epoch, batches delivered to the training loop in that epoch), not the loader's
position (its workers read ahead), so a resumed run continues with exactly the batch an
uninterrupted one would have seen.

Under ``torchrun`` every rank follows the same global order and keeps its own rows of each global
batch (:func:`gantk.distributed.local_rows`); ``batch_size`` stays the global batch size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import default_collate

from gantk.distributed import local_rows
from gantk.engine.cpu_share import usable_cores
from gantk.errors import GantkError, UsageError
from gantk.protocols import Dataset, signed_unit

#: Most decoding processes ``--workers auto`` starts.
MOST_AUTO_WORKERS = 4
#: Batches each worker decodes ahead of the training loop.
PREFETCH_BATCHES = 2


def auto_workers() -> int:
    """``--workers auto``: one decoding process per two cores, at most :data:`MOST_AUTO_WORKERS`.

    The training threads need the cores too: on 2 cores one worker decodes beside the training
    (decoding a 64×64 PNG batch costs a few percent of a CPU training step), on 1 core the
    training process decodes itself (0 workers), from 8 cores on 4 workers feed a GPU.
    """
    cores = usable_cores()
    return min(MOST_AUTO_WORKERS, cores // 2)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s order: the first 63 bits of SHA-256("gantk-batch-order:{seed}:{epoch}").

    A hash rather than ``seed + epoch``, so that two runs whose seeds differ by one do not share
    shifted orders.
    """
    digest = hashlib.sha256(f"gantk-batch-order:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class SeededBatchOrder(Sampler):
    """The global batch order of a stream, from (``epoch``, ``batch``) on, forever; yields this rank's rows.

    Epoch e visits ``torch.randperm(count, generator=manual_seed(epoch_seed(seed, e)))`` in
    global batches of ``batch_size`` indices (``count // batch_size`` per epoch, the rest dropped);
    each yielded list is :func:`gantk.distributed.local_rows` of one global batch.
    """

    def __init__(self, count: int, batch_size: int, seed: int) -> None:
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.per_epoch = count // batch_size
        self.epoch, self.batch = 0, 0  # where the next iteration starts

    def epoch_order(self, epoch: int) -> Tensor:
        return torch.randperm(self.count, generator=torch.Generator().manual_seed(epoch_seed(self.seed, epoch)))

    def global_batch(self, order: Tensor, batch: int) -> Tensor:
        return order[batch * self.batch_size:(batch + 1) * self.batch_size]

    def __iter__(self) -> Iterator[list[int]]:
        epoch, batch = self.epoch, self.batch
        while True:
            order = self.epoch_order(epoch)
            for index in range(batch, self.per_epoch):
                yield local_rows(self.global_batch(order, index)).tolist()
            epoch, batch = epoch + 1, 0

    def after(self, delivered: int) -> tuple[int, int]:
        """(epoch, batch) once ``delivered`` batches have been taken from an iteration started here."""
        position = self.batch + delivered
        return self.epoch + position // self.per_epoch, position % self.per_epoch


# ------------------------------------------------------------------ DataLoader plumbing
@dataclass(frozen=True)
class _WorkerFailure:
    """An error a worker met while reading rows, carried to the training process as data.

    A DataLoader re-raises a worker's exception with the worker's traceback pasted into its
    message; gantk's errors are one paragraph, so the worker hands back what to raise instead.
    """

    message: str
    exit_code: int = 1
    errno: int | None = None
    filename: str | None = None

    def raise_it(self) -> None:
        if self.errno is not None:
            raise OSError(self.errno, self.message, self.filename)
        raise (UsageError if self.exit_code == UsageError.exit_code else GantkError)(self.message)


class _GuardedStream(TorchDataset):
    """``stream`` read a batch of rows at a time (its ``__getitems__`` when it has one); errors become data."""

    def __init__(self, stream: TorchDataset) -> None:
        self.stream = stream

    def __len__(self) -> int:
        return len(self.stream)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        return self.stream[index]

    def __getitems__(self, indices: Sequence[int]) -> Any:
        try:
            many = getattr(self.stream, "__getitems__", None)
            return many(list(indices)) if many is not None else [self.stream[i] for i in indices]
        except GantkError as error:
            return _WorkerFailure(str(error), error.exit_code)
        except OSError as error:  # the file system's: the CLI names the path and what to do
            if error.errno is None:
                raise
            return _WorkerFailure(error.strerror or str(error), errno=error.errno,
                                  filename=None if error.filename is None else str(error.filename))


def _collate(rows: Any) -> Any:
    return rows if isinstance(rows, _WorkerFailure) else default_collate(rows)


def _checked(batch: Any) -> tuple[Tensor, Tensor]:
    if isinstance(batch, _WorkerFailure):
        batch.raise_it()
    return batch


def data_loader(stream: TorchDataset, workers: int, *, batch_sampler: Sampler | None = None, batch_size: int = 1,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader over ``stream`` with ``workers`` decoding processes, whose errors are gantk's paragraphs.

    Its own generator keeps it off the global random stream (a DataLoader draws its workers' base
    seed when it starts iterating, which would shift the noise of a resumed run). Workers start
    with the platform's default method (``fork`` on Linux: instant, nothing is pickled, and no
    hang was seen in the test suite or on Ctrl-C) and, behind a ``batch_sampler``, live as long as
    the loader (a new iteration after :meth:`StreamBatches.load_state` reuses them).
    """
    options: dict[str, Any] = {"batch_sampler": batch_sampler} if batch_sampler is not None else \
        {"batch_size": batch_size, "shuffle": False}
    if workers > 0:
        options.update(persistent_workers=batch_sampler is not None, prefetch_factor=PREFETCH_BATCHES)
    return DataLoader(_GuardedStream(stream), num_workers=workers, collate_fn=_collate, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(0), **options)


def read_in_order(stream: TorchDataset, workers: int, batch_size: int = 256) -> Iterator[tuple[Tensor, Tensor]]:
    """Every item of ``stream`` in index order, ``batch_size`` at a time (the last batch may be shorter)."""
    for batch in data_loader(stream, workers, batch_size=batch_size):
        yield _checked(batch)


# ------------------------------------------------------------------ the two kinds of batches
class DeviceBatches:
    """Shuffled batches drawn from tensors on the device; each epoch is a fresh permutation (global RNG)."""

    def __init__(self, samples: Tensor, labels: Tensor | None, batch_size: int,
                 memory_format: torch.memory_format = torch.preserve_format) -> None:
        if samples.shape[0] < batch_size:
            batch_size = int(samples.shape[0])
        self.samples, self.labels, self.batch_size = samples, labels, batch_size
        self.memory_format = memory_format
        self.permutation = torch.randperm(samples.shape[0], device=samples.device)
        self.position = 0

    def next(self) -> tuple[Tensor, Tensor | None]:
        if self.position + self.batch_size > self.permutation.numel():
            self.permutation = torch.randperm(self.samples.shape[0], device=self.samples.device)
            self.position = 0
        index = local_rows(self.permutation[self.position:self.position + self.batch_size])
        self.position += self.batch_size
        batch = signed_unit(self.samples[index]).to(memory_format=self.memory_format)
        return batch, None if self.labels is None else self.labels[index]

    def state(self) -> dict[str, Any]:
        return {"permutation": self.permutation, "position": self.position}

    def load_state(self, state: dict[str, Any]) -> None:
        self.permutation = state["permutation"].to(self.samples.device)
        self.position = int(state["position"])


class StreamBatches:
    """Batches of a ``torch.utils.data.Dataset`` read by ``workers`` processes in a :class:`SeededBatchOrder`."""

    def __init__(self, stream: TorchDataset, batch_size: int, device: torch.device, *, labelled: bool,
                 seed: int = 0, workers: int = 0, memory_format: torch.memory_format = torch.preserve_format) -> None:
        count = len(stream)  # type: ignore[arg-type]
        self.batch_size = min(batch_size, count)
        self.device, self.labelled, self.memory_format = device, labelled, memory_format
        self.order = SeededBatchOrder(count, self.batch_size, seed)
        self.loader = data_loader(stream, workers, batch_sampler=self.order, pin_memory=device.type == "cuda")
        self._iterator: Iterator | None = None
        self.delivered = 0  # batches handed to the training loop since the iterator started at self.order's position

    def next(self) -> tuple[Tensor, Tensor | None]:
        if self._iterator is None:
            self._iterator = iter(self.loader)
        samples, labels = _checked(next(self._iterator))
        self.delivered += 1
        batch = signed_unit(samples.to(self.device, non_blocking=True)).to(memory_format=self.memory_format)
        return batch, labels.to(self.device, non_blocking=True) if self.labelled else None

    def state(self) -> dict[str, Any]:
        epoch, batch = self.order.after(self.delivered)
        return {"epoch": epoch, "batch": batch}

    def load_state(self, state: dict[str, Any]) -> None:
        if not state:  # a checkpoint from before the order was resumable: start from the beginning
            return
        self.order.epoch, self.order.batch = int(state["epoch"]), int(state["batch"])
        self.delivered, self._iterator = 0, None  # the next batch starts a fresh iteration from there


def make_batches(dataset: Dataset, batch_size: int, device: torch.device,
                 memory_format: torch.memory_format = torch.preserve_format, *, seed: int = 0,
                 workers: int | None = None) -> DeviceBatches | StreamBatches:
    """The batches of ``dataset``: on the device when it holds ``samples``, else streamed by ``workers`` processes
    (None: :func:`auto_workers`) in the order ``seed`` fixes."""
    if dataset.samples is not None:
        labels = dataset.labels.to(device) if dataset.labels is not None else None
        # stored in the run's layout once: indexing keeps it, so each batch's .to(memory_format) is free
        return DeviceBatches(dataset.samples.to(device, memory_format=memory_format), labels, batch_size, memory_format)
    return StreamBatches(dataset.stream, batch_size, device, labelled=dataset.spec.labelled, seed=seed,
                         workers=auto_workers() if workers is None else workers, memory_format=memory_format)
