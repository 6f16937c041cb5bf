"""The :class:`gantk.TrainingSetup` the engine hands a procedure factory: the run's choices and builders.

A procedure builds what it trains through this object, so that every network lands on the
training device in the run's memory format with gantk's CPU kernels applied, every optimizer
follows the ``--g-*``/``--d-*`` flags, and the batches come from the run's data set.
"""

from __future__ import annotations

import sys
from typing import Any, ContextManager, Iterable

import torch
from torch import nn

from gantk.accel import enable_cpu_kernels
from gantk.engine.batches import make_batches
from gantk.engine.build import (
    build_augmentation, build_discriminator, build_gan, build_generator, domain_of, lazy_adjusted, make_optimizer,
)
from gantk.engine.loss_composition import build_loss
from gantk.engine.config import OptimizerConfig, TrainConfig
from gantk.engine.distributed import check_sync_batch_norm
from gantk.engine.precision import PrecisionPolicy
from gantk.engine.run_dir import is_main_process
from gantk.distributed import world_size
from gantk.errors import UsageError
from gantk.protocols import Augmentation, Batches, ComponentRecord, DataSpec, Dataset, GanNetworks
from gantk.registry import Registry


class Setup:
    """The engine's :class:`gantk.TrainingSetup` for one run."""

    def __init__(self, config: TrainConfig, registry: Registry, dataset: Dataset, precision: PrecisionPolicy) -> None:
        self.config, self.registry, self.dataset, self.precision = config, registry, dataset, precision
        self.device, self.dtype, self.memory_format = precision.device, precision.dtype, precision.memory_format

    @property
    def spec(self) -> DataSpec:
        return self.dataset.spec

    def _place(self, network: nn.Module) -> nn.Module:
        """``network`` on the device in the run's layout, with gantk's CPU kernels where they apply (and
        SyncBatchNorm for BatchNorm under torchrun with ``--sync-bn``)."""
        if self.config.sync_bn:
            check_sync_batch_norm(self.device)
            if world_size() > 1:
                network = nn.SyncBatchNorm.convert_sync_batchnorm(network)
        network = network.to(self.device, memory_format=self.memory_format)
        enable_cpu_kernels([network], self.device, self.dtype, self.config.cpu_kernels)
        return network

    def build_gan(self) -> GanNetworks:
        networks = build_gan(self.config, self.registry, self.spec)
        networks.generator = self._place(networks.generator)
        networks.discriminator = self._place(networks.discriminator)
        networks.loss = networks.loss.to(self.device)
        return networks

    def build_generator(self) -> tuple[nn.Module, ComponentRecord]:
        generator, record = build_generator(self.config, self.registry, self.spec)
        return self._place(generator), record

    def augmentation(self) -> Augmentation | None:
        augmentation = build_augmentation(self.config, self.registry, self.spec)
        return augmentation.to(self.device) if augmentation is not None else None

    def build_discriminator(self) -> tuple[nn.Module, ComponentRecord]:
        discriminator, record = build_discriminator(self.config, self.registry, self.spec)
        return self._place(discriminator), record

    def build_loss(self) -> nn.Module:
        return build_loss(self.config.loss, self.spec, self.config.loss_options, self.registry).to(self.device)

    def batches(self, domain: int | None = None) -> Batches:
        data, seed = domain_of(self.dataset, domain, self.config), self.config.seed
        if domain is not None:
            seed += 1 + int(domain)  # a streamed domain's own order: the two domains are drawn unpaired
        return make_batches(data, self.config.batch_size, self.device, self.memory_format, seed=seed,
                            workers=self.config.worker_count)

    def generator_optimizer(self, parameters: Iterable[nn.Parameter], lazy_interval: int = 1) -> torch.optim.Optimizer:
        return self._optimizer("generator", self.config.g_optimizer, parameters, lazy_interval)

    def discriminator_optimizer(self, parameters: Iterable[nn.Parameter],
                                lazy_interval: int = 1) -> torch.optim.Optimizer:
        return self._optimizer("discriminator", self.config.d_optimizer, parameters, lazy_interval)

    def _optimizer(self, network: str, config: OptimizerConfig, parameters: Iterable[nn.Parameter],
                   lazy_interval: int) -> torch.optim.Optimizer:
        """``make_optimizer``; when lazy regularisation changes Adam's settings, one note says so (rank 0)."""
        lazy_interval = int(lazy_interval)
        if lazy_interval < 1:
            raise UsageError(f"The {network}'s lazy regularisation interval must be at least 1, got {lazy_interval}.")
        adjusted = lazy_adjusted(config, lazy_interval)
        if adjusted is not config and is_main_process():
            print(f"gantk: note: the {network}'s regularisers run every {lazy_interval} steps, so its Adam gets the "
                  f"lazy-regularisation adjustment (Karras et al. 2020), c = {lazy_interval}/{lazy_interval + 1}: "
                  f"lr {config.lr:g} -> {adjusted.lr:.6g}, betas ({config.betas[0]:g}, {config.betas[1]:g}) -> "
                  f"({adjusted.betas[0]:.6g}, {adjusted.betas[1]:.6g}).", file=sys.stderr)
        return make_optimizer(config, parameters, lazy_interval)

    def autocast(self) -> ContextManager[Any]:
        return self.precision.autocast()

    def grad_scaler(self) -> torch.amp.GradScaler:
        return self.precision.grad_scaler()
