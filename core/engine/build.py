"""Build a run's components (data, networks, loss, optimizers) from a :class:`TrainConfig`.

Procedures call these through their :class:`gantk.engine.setup.Setup`.

Every check that can fail before training does so here, with a message that says what works:
unknown names, options a plugin does not take, sizes an architecture cannot build, loss terms
that need labels the data set lacks, and a run that cannot fit in memory (estimated from the
networks built on the meta device first, before anything real is allocated).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import sys
from typing import Any, Iterable

import torch
from torch import nn

from gantk import memory_budget
from gantk.engine.config import OptimizerConfig, TrainConfig
from gantk.engine.discriminator_input import (
    check_pack_divides, input_spec, split_input_options, wrap_discriminator,
)
from gantk.engine.footprint import measure, meta_tensor, on_meta
from gantk.distributed import world_size
from gantk.errors import GantkError, UsageError
from gantk.engine.loss_composition import build_loss, parse_loss_expression
from gantk.engine.train_options import plugin_choice
from gantk.protocols import (
    NEEDS, Augmentation, ComponentRecord, DataSpec, Dataset, GanNetworks, SelfSupervisedDiscriminator, StyleGenerator,
    two_domain_dataset,
)
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


def _build_discriminator_network(entry: Entry, spec: DataSpec, options: dict[str, Any]
                                 ) -> tuple[nn.Module, ComponentRecord]:
    """The discriminator plugin built for its input under ``-D pack``/``mbstd`` (taken out of the options it
    receives) and wrapped (:func:`wrap_discriminator`); the plugin's own module without them."""
    pack, mbstd, plugin_options = split_input_options(options, entry.name)
    module, record = _build_network(entry, "discriminator", input_spec(spec, pack, mbstd), plugin_options)
    if pack == 1 and not mbstd:
        return module, record
    wrapped = wrap_discriminator(module, pack, mbstd)
    return wrapped, dataclasses.replace(record, options=dict(wrapped.options))


def build_dataset(registry: Registry, name: str, *, data_root: str | None, image_size: int | None,
                  download: bool, options: dict[str, Any], max_memory: int | str | None = None) -> Dataset:
    """A data set plugin called with the engine's options and its own ``options``; the arrays it makes are
    checked against ``max_memory`` (``--max-memory``) as well as the memory available."""
    with memory_budget.limited(max_memory):
        return registry.get("dataset", name).create(data_root=data_root, image_size=image_size, download=download,
                                                    **options)


def build_training_data(config: TrainConfig, registry: Registry) -> Dataset:
    """The run's data: ``--dataset``, or with ``--dataset-b`` the two as the domains A and B of one data set."""
    def build(name: str, options: dict[str, Any], data_root: str | None) -> Dataset:
        return build_dataset(registry, name, data_root=data_root, image_size=config.image_size,
                             download=config.download, options=options, max_memory=config.max_memory)

    dataset = build(config.dataset, config.dataset_options, config.data_root)
    if config.dataset_b is None:
        return dataset
    options_b = dict(config.dataset_b_options)
    data_root_b = options_b.pop("data_root", config.data_root)  # --dataset-b-option data_root=DIR: B's own folder
    second = build(config.dataset_b, options_b, None if data_root_b is None else str(data_root_b))
    if dataset.domain_data or second.domain_data:
        both = config.dataset if dataset.domain_data else config.dataset_b
        raise UsageError(f"--dataset-b pairs two one-domain data sets, but '{both}' already has two domains: give it "
                         "alone as --dataset.")
    names = tuple(name.rpartition(":")[2] for name in (config.dataset, config.dataset_b))  # without 'gantk:'
    domains = names if names[0] != names[1] else ("A", "B")
    try:
        return two_domain_dataset(dataset, second, domains, name="+".join(names))
    except ValueError as error:
        raise UsageError(f"--dataset {config.dataset} and --dataset-b {config.dataset_b} cannot be the two domains "
                         f"of a translation: {error}. Give both the same --image-size, and image data sets of the "
                         "same number of channels.") from error


def check_names(config: TrainConfig, registry: Registry) -> None:
    """Look every name of ``config`` up before any data loads, so that a typo fails at once."""
    registry.get("procedure", config.procedure)
    registry.get("dataset", config.dataset)
    if config.dataset_b is not None:
        registry.get("dataset", config.dataset_b)
    registry.get("generator", config.gen)
    registry.get("discriminator", config.disc)
    for term in parse_loss_expression(config.loss):
        registry.get("loss", term.name)
    if config.augment is not None:
        registry.get("augmentation", plugin_choice(config.augment, "--augment")[0])


#: Copies of each trained parameter in memory: the weights, their gradients and Adam's two moments.
TRAINING_COPIES = 4
#: What to lower when a run does not fit.
TRAINING_FIX = ("Lower --batch-size, --image-size or --num-samples, or make the networks smaller (-G/-D options "
                "such as width or z_dim); --max-memory sets a lower limit than the machine's.")


def check_training_memory(config: TrainConfig, spec: DataSpec, generator: nn.Module,
                          discriminator: nn.Module | None = None) -> None:
    """Refuse a run whose networks, one batch of activations and the sample pictures do not fit in memory
    (or in ``--max-memory``).

    ``generator`` and ``discriminator`` are built on the meta device; one forward pass of a batch through
    each (also on meta) gives the activations training keeps for the backward pass.
    """
    batch, z_dim = config.batch_size, int(generator.z_dim)
    labels = meta_tensor(batch, dtype=torch.long) if spec.labelled else None
    g_input = meta_tensor(batch, z_dim) if z_dim else meta_tensor(batch, *spec.shape)  # z_dim 0: image to image
    g = measure(generator, g_input, labels if generator.conditional else None)
    weights = TRAINING_COPIES * g.parameters + (g.parameters if config.ema else 0)
    activations = (g.activations or 0) + 4 * batch * math.prod(spec.shape)  # G's, and a batch of real data
    if discriminator is not None:
        d = measure(discriminator, meta_tensor(batch, *spec.shape), labels)  # D gets the labels, as in training
        weights += TRAINING_COPIES * d.parameters
        activations += 2 * (d.activations or 0)  # a real and a fake batch
    count = config.num_samples  # the fixed noise of the sample pictures, drawn in one pass
    pictures = 4 * count * (z_dim + math.prod(spec.shape)) + 2 * (g.largest or 0) * count // batch
    parts = [f"{memory_budget.format_size(weights)} for the networks' weights, gradients and optimizer state"]
    if g.activations is not None:
        parts.append(f"{memory_budget.format_size(activations)} of activations for a batch of {batch:,}")
    parts.append(f"{memory_budget.format_size(pictures)} for {count:,} sample pictures (--num-samples)")
    with memory_budget.limited(config.max_memory):
        memory_budget.check_fits(weights + activations + pictures,
                                 f"This run ({', '.join(parts)})", TRAINING_FIX, _device_budget(config.device))


def _device_budget(device: str) -> str | None:
    """The device whose memory a run uses, for the budget: a CUDA device, or None for host memory."""
    resolved = resolve_device(device)
    return str(resolved) if resolved.type == "cuda" else None


def build_generator(config: TrainConfig, registry: Registry, spec: DataSpec) -> tuple[nn.Module, ComponentRecord]:
    """The generator named by ``config.gen`` with its options (on the CPU), once its memory was checked."""
    entry, options = registry.get("generator", config.gen), dict(config.gen_options)
    skeleton = on_meta(lambda: _build_network(entry, "generator", spec, options)[0])
    if skeleton is not None:
        check_training_memory(config, spec, skeleton)
    return _build_network(entry, "generator", spec, options)


def build_discriminator(config: TrainConfig, registry: Registry, spec: DataSpec
                        ) -> tuple[nn.Module, ComponentRecord]:
    """The discriminator named by ``config.disc`` with its options (on the CPU); ``-D pack`` checked first."""
    check_packing(config, dict(config.disc_options), [])
    return _build_discriminator_network(registry.get("discriminator", config.disc), spec, dict(config.disc_options))


def domain_of(dataset: Dataset, domain: int | None, config: TrainConfig) -> Dataset:
    """``dataset`` itself (``domain`` None, one-domain data) or its domain number ``domain`` (two-domain data);
    a UsageError naming what fits when they do not match."""
    if domain is None and dataset.domain_data:
        raise UsageError(
            f"The data set '{config.dataset}' has two domains ({' and '.join(dataset.domains)}), for unpaired "
            f"translation, but the procedure '{config.procedure}' trains on one. Choose a procedure that translates "
            "between two domains (gantk list procedure), or a one-domain data set.")
    if domain is None:
        return dataset
    if not 0 <= int(domain) < len(dataset.domain_data):
        raise UsageError(
            f"The procedure '{config.procedure}' trains on two domains, but the data set '{config.dataset}' has "
            f"{len(dataset.domain_data) or 'only one'}. Give a two-domain data set (a folder with trainA/ and "
            "trainB/, or a data set for translation: gantk list dataset), or pair two data sets of one shape with "
            "--dataset-b NAME.")
    return dataset.domain_data[int(domain)]


def build_gan(config: TrainConfig, registry: Registry, spec: DataSpec) -> GanNetworks:
    """G, D and the composite loss for ``config`` (on the CPU; the caller moves them), once their memory was
    checked."""
    generator_entry = registry.get("generator", config.gen)
    discriminator_entry = registry.get("discriminator", config.disc)
    loss = build_loss(config.loss, spec, config.loss_options, registry)
    label_terms = [name for name, term in zip(loss.names, loss.terms) if "labels" in term.needs]
    gen_options, disc_options = dict(config.gen_options), dict(config.disc_options)
    check_packing(config, disc_options, label_terms)  # before 'auto' conditioning is filled in below
    if label_terms and spec.labelled:
        # A loss on labels needs a generator that follows them; a discriminator that sees them ties each
        # label to its real class (without it the 2C loss leaves the label -> class assignment free).
        for entry, options in ((generator_entry, gen_options), (discriminator_entry, disc_options)):
            if "conditioning" in inspect.signature(entry.factory).parameters:
                options.setdefault("conditioning", "auto")
    skeletons = on_meta(lambda: (_build_network(generator_entry, "generator", spec, gen_options)[0],
                                 _build_discriminator_network(discriminator_entry, spec, disc_options)[0]))
    if skeletons is not None:
        check_training_memory(config, spec, *skeletons)
    generator, generator_record = _build_network(generator_entry, "generator", spec, gen_options)
    if label_terms and spec.labelled and not generator.conditional:
        raise UsageError(
            f"The loss term(s) {', '.join(label_terms)} train the generator to produce given classes, but the "
            f"generator '{config.gen}' is unconditional here. Give it a conditioning (e.g. -G conditioning=cbn, "
            "concat or mul; 'auto' picks the architecture's usual one) or drop the term.")
    check_style_generator(loss, generator, config.gen)
    discriminator, discriminator_record = _build_discriminator_network(discriminator_entry, spec, disc_options)
    check_self_supervised_discriminator(loss, discriminator, config.disc)
    loss.attach(discriminator)  # heads sized by D's features are created before the optimizers
    if "input_grad" in loss.needs and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()):
        print(f"gantk: warning: the loss '{config.loss}' penalises D's gradient per sample, but the "
              f"discriminator '{config.disc}' uses BatchNorm, which mixes samples; WGAN-GP critics use no "
              "normalisation or layer norm (for dcgan: --disc-option norm=none).", file=sys.stderr)
    return GanNetworks(generator, discriminator, loss, generator_record, discriminator_record)


def check_packing(config: TrainConfig, disc_options: dict[str, Any], label_terms: list[str]) -> None:
    """With ``-D pack=M``: a UsageError for loss terms on labels (a packed group has M labels, and PacGAN defines
    no conditional packing) and for a batch whose micro-batches (per process) M does not divide."""
    pack, _, _ = split_input_options(disc_options, config.disc)
    if pack == 1:
        return
    if label_terms:
        raise UsageError(
            f"-D pack={pack} cannot be combined with the loss term(s) {', '.join(label_terms)}: they need one label "
            f"per discriminator input, but a packed input holds {pack} samples of {pack} classes, and PacGAN "
            "(Lin et al. 2018) defines packing for an unconditional discriminator only. Drop the term(s) or -D pack.")
    splits = world_size() * config.accumulate  # the rows one D pass gets: the batch / (processes × micro-batches)
    if config.batch_size % splits == 0:  # otherwise the procedure refuses the split itself, saying why
        check_pack_divides(config.batch_size // splits, pack, f"each micro-batch of --batch-size {config.batch_size} "
                                                              "(per process, per --accumulate step)")


def build_augmentation(config: TrainConfig, registry: Registry, spec: DataSpec) -> Augmentation | None:
    """The augmentation ``--augment NAME:KEY=VALUE,...`` names, built for ``spec`` (on the CPU), or None without one."""
    if config.augment is None:
        return None
    name, options = plugin_choice(config.augment, "--augment")
    return registry.get("augmentation", name).create(spec, **options)


def lazy_adjusted(config: OptimizerConfig, lazy_interval: int) -> OptimizerConfig:
    """``config`` adjusted for regularisers that run every ``lazy_interval`` = k steps (Karras et al. 2020,
    "Analyzing and Improving the Image Quality of StyleGAN", appendix B): lr·c and betas β^c, c = k/(k+1).
    Unchanged for k = 1 and for optimizers other than Adam."""
    if lazy_interval <= 1 or config.name != "adam":
        return config
    c = lazy_interval / (lazy_interval + 1)  # c = k/(k+1)
    return OptimizerConfig(config.name, config.lr * c, (config.betas[0] ** c, config.betas[1] ** c))  # lr·c, β^c


def check_style_generator(loss, generator: nn.Module, name: str) -> None:
    """Refuse a loss with terms that need a style-based generator (the ``"style_generator"`` need) when the
    generator does not implement :class:`gantk.StyleGenerator`."""
    _check_network_need(loss, "style_generator", generator, StyleGenerator, "generator", name,
                        "is not one (it has no mapping and synthesis networks)")


def check_self_supervised_discriminator(loss, discriminator: nn.Module, name: str | None) -> None:
    """Refuse a loss with terms that need D's reconstructions (the ``"reconstruction"`` need) when the
    discriminator does not implement :class:`gantk.SelfSupervisedDiscriminator`."""
    _check_network_need(loss, "reconstruction", discriminator, SelfSupervisedDiscriminator, "discriminator", name,
                        "has no decoders")


def _check_network_need(loss, need: str, network: nn.Module, protocol: type, role: str, name: str | None,
                        lacks: str) -> None:
    """A UsageError when terms of ``loss`` declare ``need`` and ``network`` (the ``role``) does not implement
    ``protocol``, naming the terms and what ``network`` lacks."""
    terms = ", ".join(term_name for term_name, term in zip(loss.names, loss.terms) if need in term.needs)
    if terms and not isinstance(network, protocol):
        flag = "--gen" if role == "generator" else "--disc"
        raise UsageError(f"The loss term(s) {terms} need {NEEDS[need]}, but the {role} '{name}' {lacks}. Choose "
                         f"such a {role} with {flag}, or drop {terms} from --loss.")


def make_optimizer(config: OptimizerConfig, parameters: Iterable[nn.Parameter],
                   lazy_interval: int = 1) -> torch.optim.Optimizer:
    """Adam (β₁, β₂ from the config), RMSprop (the WGAN paper's), or SGD with momentum β₁; Adam adjusted for lazy
    regularisation every ``lazy_interval`` steps (:func:`lazy_adjusted`)."""
    config = lazy_adjusted(config, lazy_interval)
    parameters = list(parameters)
    # The fused kernels update every parameter in one call (CPU and CUDA, PyTorch ≥ 2.4): for small
    # networks the per-parameter Python loop of the default implementation is most of the step.
    fused = {"fused": True} if parameters and all(p.is_floating_point() for p in parameters) else {}
    if config.name == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, betas=config.betas, **fused)
    if config.name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.lr)  # no fused RMSprop in PyTorch
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.betas[0], **fused)
