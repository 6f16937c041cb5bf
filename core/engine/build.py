"""Build a run's components (data, networks, loss, optimizers) from a :class:`TrainConfig`.

Procedures call these through their :class:`gantk.engine.setup.Setup`.

Every check that can fail before training does so here, with a message that says what works:
unknown names, options a plugin does not take, sizes an architecture cannot build, loss terms
that need labels the data set lacks.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, Iterable

import torch
from torch import nn

from gantk.engine.config import OptimizerConfig, TrainConfig
from gantk.errors import GantkError, UsageError
from gantk.engine.loss_composition import CompositeLoss, build_loss, parse_loss_expression
from gantk.protocols import ComponentRecord, DataSpec, Dataset, GanNetworks
from gantk.registry import Entry, Registry


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UsageError(f"Unknown device '{name}' ({error}). Use auto, cpu, cuda or cuda:N.") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name} asks for CUDA, but PyTorch sees no CUDA device here. Use --device cpu.")
    return device


#: What the engine reads from each network (declared in gantk.protocols.Generator / Discriminator).
REQUIRED_ATTRIBUTES = {"generator": ("z_dim", "spec", "conditional", "num_classes", "options"),
                       "discriminator": ("feature_dim", "options")}


def _build_network(entry: Entry, kind: str, spec: DataSpec, options: dict[str, Any]) -> tuple[nn.Module, ComponentRecord]:
    module = entry.create(spec, **options)
    missing = [name for name in REQUIRED_ATTRIBUTES[kind] if not hasattr(module, name)]
    if not isinstance(module, nn.Module) or missing:
        what = "an nn.Module" if not isinstance(module, nn.Module) else f"the attribute(s) {', '.join(missing)}"
        raise GantkError(f"The {kind} plugin '{entry.qualified_name}' ({entry.source.label}) built a "
                         f"{type(module).__name__} without {what} that gantk.{kind.capitalize()} declares; the "
                         "plugin is broken: report it to its authors.")
    return module, ComponentRecord(kind, entry.name, entry.source.package, entry.source.version, dict(module.options))


def build_dataset(registry: Registry, name: str, *, data_root: str | None, image_size: int | None,
                  download: bool, options: dict[str, Any]) -> Dataset:
    """A data set plugin called with the engine's options and its own ``options``."""
    return registry.get("dataset", name).create(data_root=data_root, image_size=image_size, download=download,
                                                **options)


def check_names(config: TrainConfig, registry: Registry) -> None:
    """Look every name of ``config`` up before any data loads, so that a typo fails at once."""
    registry.get("procedure", config.procedure)
    registry.get("dataset", config.dataset)
    registry.get("generator", config.gen)
    registry.get("discriminator", config.disc)
    for term in parse_loss_expression(config.loss):
        registry.get("loss", term.name)


def build_generator(config: TrainConfig, registry: Registry, spec: DataSpec) -> tuple[nn.Module, ComponentRecord]:
    """The generator named by ``config.gen`` with its options (on the CPU)."""
    return _build_network(registry.get("generator", config.gen), "generator", spec, dict(config.gen_options))


def build_gan(config: TrainConfig, registry: Registry, spec: DataSpec) -> GanNetworks:
    """G, D and the composite loss for ``config`` (on the CPU; the caller moves them)."""
    generator_entry = registry.get("generator", config.gen)
    discriminator_entry = registry.get("discriminator", config.disc)
    loss = build_loss(config.loss, spec, config.loss_options, registry)
    label_terms = [name for name, term in zip(loss.names, loss.terms) if "labels" in term.needs]
    gen_options, disc_options = dict(config.gen_options), dict(config.disc_options)
    if label_terms and spec.labelled:
        # A loss on labels needs a generator that follows them; a discriminator that sees them ties each
        # label to its real class (without it the 2C loss leaves the label -> class assignment free).
        for entry, options in ((generator_entry, gen_options), (discriminator_entry, disc_options)):
            if "conditioning" in inspect.signature(entry.factory).parameters:
                options.setdefault("conditioning", "auto")
    generator, generator_record = _build_network(generator_entry, "generator", spec, gen_options)
    if label_terms and spec.labelled and not generator.conditional:
        raise UsageError(
            f"The loss term(s) {', '.join(label_terms)} train the generator to produce given classes, but the "
            f"generator '{config.gen}' is unconditional here. Give it a conditioning (e.g. -G conditioning=cbn, "
            "concat or mul; 'auto' picks the architecture's usual one) or drop the term.")
    discriminator, discriminator_record = _build_network(discriminator_entry, "discriminator", spec, disc_options)
    loss.attach(discriminator)  # heads sized by D's features are created before the optimizers
    if "input_grad" in loss.needs and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()):
        print(f"gantk: warning: the loss '{config.loss}' penalises D's gradient per sample, but the "
              f"discriminator '{config.disc}' uses BatchNorm, which mixes samples; WGAN-GP critics use no "
              "normalisation or layer norm (for dcgan: --disc-option norm=none).", file=sys.stderr)
    return GanNetworks(generator, discriminator, loss, generator_record, discriminator_record)


def make_optimizer(config: OptimizerConfig, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """Adam (β₁, β₂ from the config), RMSprop (the WGAN paper's), or SGD with momentum β₁."""
    parameters = list(parameters)
    # The fused kernels update every parameter in one call (CPU and CUDA, PyTorch ≥ 2.4): for small
    # networks the per-parameter Python loop of the default implementation is most of the step.
    fused = {"fused": True} if parameters and all(p.is_floating_point() for p in parameters) else {}
    if config.name == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, betas=config.betas, **fused)
    if config.name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.lr)  # no fused RMSprop in PyTorch
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.betas[0], **fused)
