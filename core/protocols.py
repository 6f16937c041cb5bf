"""The protocols every component implements: data, generator, discriminator, loss term, procedure.

Architectures, losses, data sets and training procedures are plugins; this module is the contract
between them and the engine, so that any loss head can sit on any backbone, any backbone can train
on any data set it can build for, and any procedure runs in the same training loop.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterable, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # pragma: no cover
    from torch.utils.data import Dataset as TorchDataset


@dataclass(frozen=True)
class DataSpec:
    """What one sample looks like: ``shape`` is ``(C, H, W)`` for images or ``(D,)`` for vectors.

    ``num_classes`` is 0 for unlabelled data. Image values live in [-1, 1] (the range of a tanh
    output); vectors are in the data set's own units.
    """

    shape: tuple[int, ...]
    num_classes: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if len(self.shape) not in (1, 3) or any(s <= 0 for s in self.shape):
            raise ValueError(f"DataSpec.shape must be (C, H, W) or (D,) with positive sizes, got {self.shape}")

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    @property
    def channels(self) -> int:
        return self.shape[0] if self.is_image else 1

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of an image spec."""
        if not self.is_image:
            raise ValueError(f"data set '{self.name}' holds vectors of shape {self.shape}, not images")
        return self.shape[1], self.shape[2]

    @property
    def flat_dim(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def labelled(self) -> bool:
        return self.num_classes > 0

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "num_classes": self.num_classes, "name": self.name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataSpec":
        return cls(tuple(data["shape"]), int(data.get("num_classes", 0)), str(data.get("name", "")))


def signed_unit(samples: Tensor) -> Tensor:
    """Samples as float32 in the model's range: uint8 pixels map 0 → -1 and 255 → 1 (x/255·2 − 1); float
    samples are returned as float32 unchanged."""
    if samples.dtype == torch.uint8:
        return samples.to(torch.float32).div_(255.0).mul_(2.0).sub_(1.0)  # x/255·2 − 1
    return samples.to(torch.float32)


@dataclass
class Dataset:
    """A data set as a data set plugin returns it.

    Small data sets hold every sample in ``samples`` (``(N, *spec.shape)``) and the labels in
    ``labels`` (``(N,)`` int64, or None when unlabelled); the engine moves them to the training
    device once and batches by indexing. Samples are float32 in the model's range, or, for 8-bit
    images, uint8 pixels 0..255 (4× smaller), which :func:`signed_unit` maps to [-1, 1] per batch.
    Data too big for memory sets ``samples`` to None and gives a ``torch.utils.data.Dataset`` in
    ``stream`` yielding ``(sample, label)`` (the same two sample types; label -1 when unlabelled).
    """

    spec: DataSpec
    samples: Tensor | None
    labels: Tensor | None = None
    class_names: tuple[str, ...] = ()
    stream: "TorchDataset | None" = None
    description: str = ""
    #: the names of its domains: () for one; two (e.g. ("A", "B")) for unpaired translation data
    domains: tuple[str, ...] = ()
    #: two-domain data: one Dataset per domain, in the order of ``domains`` (the top level then holds no
    #: samples or stream of its own); () for one domain. Build it with :func:`two_domain_dataset`.
    domain_data: tuple["Dataset", ...] = ()
    #: two-domain data whose domains are index-aligned: sample i of A shows what sample i of B shows (a ground
    #: truth for evaluating translation; training still draws the domains independently)
    paired: bool = False
    #: for 2-D mixtures: the mode centres (M, 2), which plots mark and the ``modes`` metric counts
    modes: Tensor | None = None
    #: what identifies this exact data (e.g. a hash of its files' names, sizes and times), or "" when unknown:
    #: caches of values computed from the data (the metrics' real features) are keyed by it
    fingerprint: str = ""

    def __len__(self) -> int:
        if self.domain_data:
            return sum(len(part) for part in self.domain_data)
        if self.samples is not None:
            return int(self.samples.shape[0])
        return len(self.stream)  # type: ignore[arg-type]


def two_domain_dataset(a: Dataset, b: Dataset, domains: tuple[str, str], *, name: str, paired: bool = False,
                       description: str = "") -> Dataset:
    """Two data sets of the same image shape as the domains A and B of one unpaired-translation data set.

    Labels are dropped from the top-level spec (a translator does not follow classes); each domain keeps its
    own. ``paired``: the two are index-aligned (see :attr:`Dataset.paired`). Raises ValueError when the shapes
    differ or a side is not images.
    """
    if not (a.spec.is_image and b.spec.is_image) or a.spec.shape != b.spec.shape:
        raise ValueError(f"the two domains must be images of one shape, got {a.spec.shape} and {b.spec.shape}")
    if paired and len(a) != len(b):
        raise ValueError(f"paired domains must be as long as each other, got {len(a)} and {len(b)} samples")
    fingerprint = f"{a.fingerprint}+{b.fingerprint}" if a.fingerprint and b.fingerprint else ""
    return Dataset(DataSpec(a.spec.shape, 0, name), None, description=description, domains=tuple(domains),
                   domain_data=(a, b), paired=paired, fingerprint=fingerprint)


class DiscriminatorOutput(NamedTuple):
    """What a discriminator returns: adversarial ``logits`` and penultimate ``features`` (B, F).

    ``logits`` are (B,), or (B, H', W') or (B, P) for a patch discriminator (one logit per image patch);
    loss terms average over every logit, so that a loss written for (B,) takes patch maps as they are.
    """

    logits: Tensor
    features: Tensor
    #: named intermediate tensors a discriminator exposes for loss terms that use them, or None: FastGAN's
    #: 8×8 and 16×16 feature maps, which its reconstruction term decodes (:class:`SelfSupervisedDiscriminator`)
    extras: dict[str, Tensor] | None = None

    def to_float32(self) -> "DiscriminatorOutput":
        """Logits and features as float32 (what loss terms receive, whatever the run's precision); a cast stays
        in the graph. ``extras`` are left in the run's precision (a term that decodes them runs under autocast)."""
        if self.logits.dtype is torch.float32 and self.features.dtype is torch.float32:
            return self  # fp32 runs: nothing to cast (this runs several times per step)
        return DiscriminatorOutput(self.logits.to(torch.float32), self.features.to(torch.float32), self.extras)


@runtime_checkable
class Generator(Protocol):
    """A generator: an ``nn.Module`` mapping latents ``z`` (B, z_dim) and labels to samples.

    The engine reads these attributes (and checks them when it builds a generator):
    ``z_dim`` the latent size (0 for an image-to-image generator, which maps images of ``spec`` to images of
    ``spec``, ``generator(x)``: a translator's directions); ``spec`` the :class:`DataSpec` it generates for;
    ``conditional`` whether it follows the labels ``y``; ``num_classes`` how many labels it knows (0 when
    unconditional); ``options`` the JSON-serialisable keyword arguments that rebuild it through
    its factory (``factory(spec, **options)``), saved in runs and exports.
    """

    z_dim: int
    spec: DataSpec
    conditional: bool
    num_classes: int
    options: dict[str, Any]

    def __call__(self, z: Tensor, y: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class StyleGenerator(Generator, Protocol):
    """A style-based generator (Karras et al. 2019, 2020): a mapping network from latents to per-layer styles
    and a synthesis network from styles to samples, so that ``generator(z, y)`` is
    ``synthesis(mapping(z, y))``.

    - ``mapping(z, y=None)``: the styles ``ws`` (B, ``num_ws``, ``w_dim``), one w per synthesis layer (all
      alike unless styles are mixed). In training mode it may update ``w_avg`` and mix styles; in eval mode
      it is a deterministic function of ``z`` and ``y``;
    - ``synthesis(ws)``: samples (B, C, H, W) from styles;
    - ``num_ws``, ``w_dim``: the styles' shape; ``w_avg``: a buffer (``w_dim``,), the running mean of the
      mapping's outputs, which the truncation trick pulls styles towards (:func:`truncate_styles`).

    ``gantk sample --truncation PSI`` and the path-length regulariser (``pl``) use only these members.
    """

    num_ws: int
    w_dim: int
    w_avg: Tensor

    def mapping(self, z: Tensor, y: Tensor | None = None) -> Tensor: ...

    def synthesis(self, ws: Tensor) -> Tensor: ...


def truncate_styles(ws: Tensor, w_avg: Tensor, psi: float, cutoff: int | None = None) -> Tensor:
    """The truncation trick (Karras et al. 2019, §B): w' = w_avg + ψ(w − w_avg) on the first ``cutoff`` styles
    of ``ws`` (B, num_ws, w_dim), or on all of them when ``cutoff`` is None; the others are kept."""
    layers = ws.shape[1] if cutoff is None else min(int(cutoff), ws.shape[1])
    truncated = w_avg.to(ws.dtype) + psi * (ws[:, :layers] - w_avg.to(ws.dtype))  # w_avg + ψ(w − w_avg)
    return torch.cat([truncated, ws[:, layers:]], dim=1)


@runtime_checkable
class Discriminator(Protocol):
    """A discriminator: an ``nn.Module`` returning a :class:`DiscriminatorOutput`.

    ``feature_dim`` is the size F of its penultimate features; ``options`` the keyword arguments
    that rebuild it through its factory.
    """

    feature_dim: int
    options: dict[str, Any]

    def __call__(self, x: Tensor, y: Tensor | None = None) -> DiscriminatorOutput: ...


@runtime_checkable
class SelfSupervisedDiscriminator(Discriminator, Protocol):
    """A discriminator with decoders that reconstruct its real input from its own intermediate features, as a
    self-supervised task that regularises it (FastGAN, Liu et al. 2021, §3.2).

    Its outputs carry, in ``extras``, the intermediate maps and the input it saw (after any ``--augment``);
    ``reconstruct(extras)`` decodes them (on real images only, in D's update) and returns
    ``{name: (reconstruction, target)}``: each reconstruction beside the part of the input it should match,
    resized alike (FastGAN: the whole image from the 8×8 map, a random quarter from the 16×16 map). Loss
    terms that need ``"reconstruction"`` compare the pairs.
    """

    def reconstruct(self, extras: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]: ...


DiscriminatorFn = Callable[[Tensor, "Tensor | None"], DiscriminatorOutput]


@dataclass
class DiscriminatorPhase:
    """Everything a loss term may use in the discriminator's update.

    ``fake`` is detached from the generator. ``real`` requires grad when a term declared the
    ``"real_grad"`` need (R1). ``real_out`` and ``fake_out`` are float32 (the procedure casts D's
    outputs once, whatever the run's precision), and ``discriminator`` runs D again in the run's
    precision with float32 outputs (e.g. on interpolates for the GP). ``needs`` is what the whole
    loss declared (every term's needs), so that a term can adapt to its partners.
    """

    real: Tensor
    fake: Tensor
    real_labels: Tensor | None
    fake_labels: Tensor | None
    real_out: DiscriminatorOutput
    fake_out: DiscriminatorOutput
    discriminator: DiscriminatorFn
    step: int = 0
    needs: frozenset[str] = frozenset()


@dataclass
class GeneratorPhase:
    """Everything a loss term may use in the generator's update (``fake`` carries G's graph).

    ``real``, ``real_labels`` and ``real_out`` are given only when a term declared the
    ``"real_in_generator_phase"`` need: D's float32 output on the latest real batch, computed
    afresh with D's current weights and no gradient to D. They are None otherwise.
    ``generator`` is the generator being trained and ``z`` the latents ``fake`` was made from
    (``fake = generator(z, fake_labels)``), for terms that run G again (path-length regularisation);
    a procedure that does not give them leaves them None.
    """

    fake: Tensor
    fake_labels: Tensor | None
    fake_out: DiscriminatorOutput
    discriminator: DiscriminatorFn
    step: int = 0
    real: Tensor | None = None
    real_labels: Tensor | None = None
    real_out: DiscriminatorOutput | None = None
    generator: nn.Module | None = None
    z: Tensor | None = None


#: The old names of the phase contexts, kept for installed plugins (they clashed with the step counter).
_DEPRECATED_NAMES = {"DiscriminatorStep": "DiscriminatorPhase", "GeneratorStep": "GeneratorPhase"}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED_NAMES:
        new_name = _DEPRECATED_NAMES[name]
        warnings.warn(f"gantk.protocols.{name} is deprecated: use {new_name}, the same class under its new name.",
                      DeprecationWarning, stacklevel=2)
        return globals()[new_name]
    raise AttributeError(f"module 'gantk.protocols' has no attribute {name!r}")


#: Needs a loss term can declare; the engine checks them before training starts.
NEEDS = {
    "labels": "a labelled data set (num_classes > 0)",
    "real_grad": "gradients with respect to the real input (the engine enables them)",
    "input_grad": "gradients with respect to D's input (double back-propagation through D)",
    "real_in_generator_phase": "D's output on real data in the generator's update (the procedure runs D on the "
                               "latest real batch again, with D's current weights)",
    "style_generator": "a style-based generator (gantk.StyleGenerator: mapping, synthesis, w_avg), such as "
                       "stylegan2",
    "reconstruction": "a discriminator that decodes its real input from its own features "
                      "(gantk.SelfSupervisedDiscriminator: extras and reconstruct), such as fastgan",
}


class LossTerm(nn.Module):
    """One term of a (possibly composite) GAN loss.

    Most terms are functions of D's logits alone: write those with :func:`gantk.logit_loss`.
    Subclasses override :meth:`discriminator_loss` and/or :meth:`generator_loss` and return a
    scalar tensor (or None when the term does not apply to that network). Terms receive D's outputs
    as float32 and run in the phase's autocast region, so elementwise maths on them is float32
    without casts; a head a term runs on D's features follows autocast like D (``contrastive`` runs
    its head with autocast disabled, for float32 similarities). A term may own parameters (a classifier head, say); they train with the discriminator and are saved in
    checkpoints. ``needs`` names what the term requires (keys of :data:`NEEDS`) so that an
    impossible combination fails before training. ``every`` runs a regulariser lazily, only on
    training steps that are a multiple of ``every``, in D's phase and in G's (its value is then
    multiplied by ``every``, as in StyleGAN2); the network it regularises gets the paper's Adam
    adjustment for lazy regularisation (see :meth:`lazy_sides`).
    """

    needs: frozenset[str] = frozenset()
    every: int = 1
    #: weight used when the loss expression gives none (``wgan+gp`` means ``wgan+10*gp``).
    default_weight: float = 1.0
    #: True for terms that only add to an adversarial loss (regularisers, classifier and contrastive
    #: heads): a loss expression needs at least one term that is not auxiliary.
    auxiliary: bool = False

    def discriminator_loss(self, step: DiscriminatorPhase) -> Tensor | None:
        return None

    def generator_loss(self, step: GeneratorPhase) -> Tensor | None:
        return None

    def lazy_sides(self) -> frozenset[str]:
        """The networks whose updates this term joins lazily when ``every`` > 1: ``"discriminator"`` and/or
        ``"generator"``, those whose loss method the term overrides."""
        if self.every <= 1:
            return frozenset()
        sides = {"discriminator": type(self).discriminator_loss is not LossTerm.discriminator_loss,
                 "generator": type(self).generator_loss is not LossTerm.generator_loss}
        return frozenset(side for side, overridden in sides.items() if overridden)

    def attach(self, discriminator: nn.Module) -> None:
        """Called once with the discriminator before the optimizers are made.

        A term that owns parameters sized by D (a classifier or projection head on D's
        ``feature_dim`` features) creates them here; they then train with D.
        """

    def after_discriminator_update(self, discriminator: nn.Module) -> None:
        """Called after each optimizer step of D (WGAN's weight clipping lives here)."""

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options().items())

    def options(self) -> dict[str, Any]:
        """The term's options, for logs and config files."""
        return {}


class Augmentation(nn.Module):
    """A differentiable transform of everything the discriminator sees (a ``register_augmentations`` plugin).

    The procedure passes every D input through it, real and fake, in D's and G's phases, so that D
    never sees an un-augmented image (DiffAugment, Zhao et al. 2020; ADA, Karras et al. 2020).
    ``forward(x, real=...)`` returns a batch of ``x``'s shape and dtype, differentiable in ``x``:
    G's gradient flows through it, and R1's gradient is taken with respect to the un-augmented real
    batch through it. ``real`` says whether ``x`` is real data (``flip`` touches real data only).
    Random draws follow :mod:`gantk.distributed`: every rank draws for the global batch and keeps
    its rows. State that a resumed run needs (ADA's probability and counters) lives in buffers: the
    procedure saves the augmentation in checkpoints as the module ``"augment"``.
    """

    def forward(self, x: Tensor, *, real: bool) -> Tensor:
        raise NotImplementedError

    def observe(self, real_logits: Tensor) -> None:
        """Called after each optimizer step of D with D's detached float32 logits on that update's real batch
        (this process's rows). ADA adjusts its probability here; the default does nothing. It runs every step:
        keep it on the device (no host sync)."""

    def logged(self) -> dict[str, Tensor]:
        """Detached 0-dim tensors to log as ``aug/<name>`` (ADA's ``p``), read back only every ``--log-every``
        steps; new tensors each call (not buffers updated in place later). The default logs nothing."""
        return {}

    def options(self) -> dict[str, Any]:
        """The augmentation's options, for logs and config files."""
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options().items())


def describe_needs(needs: frozenset[str]) -> str:
    return "; ".join(NEEDS.get(n, n) for n in sorted(needs))


@dataclass(frozen=True)
class ComponentRecord:
    """What is needed to rebuild a component: its registry kind and name, providing package and options."""

    kind: str
    name: str
    package: str
    version: str
    options: dict[str, Any]


class Batches(Protocol):
    """A stream of real batches: ``next()`` gives ``(samples, labels or None)``; its state resumes it exactly."""

    batch_size: int

    def next(self) -> tuple[Tensor, Tensor | None]: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...


@dataclass
class GanNetworks:
    """The networks and loss named by ``--gen``, ``--disc`` and ``--loss``, built and on the training device."""

    generator: nn.Module
    discriminator: nn.Module
    loss: nn.Module  # the composite of the loss expression's terms; it may own parameters that train with D
    generator_record: ComponentRecord
    discriminator_record: ComponentRecord


class TrainingSetup(Protocol):
    """What a procedure factory receives: the run's choices and the engine's builders.

    ``config`` is the run's :class:`gantk.engine.config.TrainConfig`. Everything built here is on
    ``device`` in the run's memory format, with gantk's CPU kernels applied where they are on.
    """

    config: Any
    dataset: Dataset
    device: torch.device
    dtype: torch.dtype | None  # the autocast dtype (None: fp32)

    @property
    def spec(self) -> DataSpec: ...

    def build_gan(self) -> GanNetworks:
        """G, D and the composite loss from ``--gen``/``--disc``/``--loss`` and their options, checked together."""

    def build_generator(self) -> tuple[nn.Module, ComponentRecord]:
        """The generator named by ``--gen`` with ``--gen-option`` values, alone (no discriminator or loss)."""

    def build_discriminator(self) -> tuple[nn.Module, ComponentRecord]:
        """The discriminator named by ``--disc`` with ``--disc-option`` values, alone; each call builds a new one."""

    def build_loss(self) -> nn.Module:
        """The composite loss of ``--loss`` (a fresh one each call: a procedure with two discriminators builds one
        per discriminator and :meth:`LossTerm.attach` es each to its own), on ``device``."""

    def augmentation(self) -> "Augmentation | None":
        """The augmentation ``--augment NAME:KEY=VALUE,...`` names, on ``device``; None without ``--augment``."""

    def batches(self, domain: int | None = None) -> Batches:
        """A fresh stream of shuffled real batches of ``--batch-size`` from the data set; for two-domain data
        (:attr:`Dataset.domain_data`), from domain ``domain`` (0: A, 1: B), each domain shuffled by its own seed,
        so that the two streams are unpaired. A UsageError when ``domain`` does not fit the data set."""

    def generator_optimizer(self, parameters: Iterable[nn.Parameter], lazy_interval: int = 1) -> torch.optim.Optimizer:
        """The optimizer ``--g-opt``/``--g-lr``/``--g-betas`` describe, over ``parameters``.

        ``lazy_interval`` k > 1 says that G's regularisers run every k steps: Adam then gets the paper's
        adjustment for lazy regularisation (Karras et al. 2020), lr·c and betas β^c with c = k/(k+1)."""

    def discriminator_optimizer(self, parameters: Iterable[nn.Parameter],
                                lazy_interval: int = 1) -> torch.optim.Optimizer:
        """The optimizer ``--d-opt``/``--d-lr``/``--d-betas`` describe, over ``parameters`` (``lazy_interval``:
        as for the generator)."""

    def autocast(self) -> ContextManager[None]:
        """The run's precision for a forward pass (bf16/fp16 autocast, or nothing for fp32)."""

    def grad_scaler(self) -> "torch.amp.GradScaler":
        """A loss scaler: active under fp16 (Micikevicius et al. 2018), a no-op otherwise."""


class Translator(nn.Module):
    """Two image-to-image generators between the domains A and B of a two-domain data set: ``a2b`` and ``b2a``
    (CycleGAN's G and F, Zhu et al. 2017). ``translator(x, "a2b")`` is ``translator.a2b(x)``.

    A procedure exports it under the module name ``"translator"`` with a :class:`ComponentRecord` of kind
    ``"translator"`` naming the generator plugin both directions are built from (and its options); the loop
    then keeps its EMA and writes ``translator.safetensors``, which :func:`gantk.load_translator` reads back.
    """

    DIRECTIONS = ("a2b", "b2a")

    def __init__(self, a2b: nn.Module, b2a: nn.Module, domains: tuple[str, ...] = ("A", "B")) -> None:
        super().__init__()
        self.a2b, self.b2a, self.domains = a2b, b2a, tuple(domains)

    def forward(self, x: Tensor, direction: str = "a2b") -> Tensor:
        if direction not in self.DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(self.DIRECTIONS)}, got {direction!r}")
        return self.a2b(x) if direction == "a2b" else self.b2a(x)


@runtime_checkable
class Metric(Protocol):
    """A metric (a ``register_metrics`` plugin): scores a generator against a data set.

    Called as ``metric(generator, dataset, *, device)``, or with ``shared=`` too when
    ``shares_features`` is True (one dict per evaluation, in which metrics that draw the same
    samples and features keep them for each other). Returns ``{value name: number}``.

    - ``lower_is_better``: the value names whose smaller values are better (``{"fid"}``); every
      other value is larger-is-better. ``--keep-best`` follows these directions.
    - ``default_for_conditional``: scored by ``--eval-every`` when no ``--eval-metrics`` are given
      and the generator is conditional.
    - ``protocol``: after a call, how the values were measured (extractor, sample counts, seed ...),
      written beside them by ``gantk eval``.
    """

    lower_is_better: frozenset[str]
    default_for_conditional: bool
    shares_features: bool
    protocol: dict[str, Any]

    def __call__(self, generator: nn.Module, dataset: Dataset, *, device: Any = "cpu", **shared: Any
                 ) -> dict[str, float]: ...


@dataclass(frozen=True)
class MonitorSetup:
    """What a monitor factory receives: the run's data, where it writes, and how its sample pictures are laid out."""

    spec: DataSpec
    dataset: Dataset
    run_dir: Path
    grid_row: int | None = None  # samples per class row of a conditional generator's pictures (None: square grid)
    #: True when the pictures are a procedure's previews (inputs beside translations), not generated samples
    previews: bool = False


class Monitor(Protocol):
    """Watches a run: called with the fixed-noise samples every ``--sample-every`` steps (and at the last step).

    Returns values to log beside the losses in ``metrics.jsonl`` (``{}`` for none). A monitor may
    write files under the run directory (the ``pictures`` monitor writes ``samples/step_XXXXXX.png``).
    """

    def __call__(self, samples: Tensor, step: int) -> dict[str, float]: ...


@runtime_checkable
class Procedure(Protocol):
    """What one training step does with which networks (a ``register_procedures`` plugin).

    It owns its modules and optimizers; the training loop owns counting, checkpoints, logging,
    precision, progress, EMA and resume, and knows the procedure only through these members:

    - ``modules()``: every module whose weights are trained or kept (saved in checkpoints by name);
    - ``optimizers()``: the optimizers, by name (their state is saved too);
    - ``run(step)``: one training step; returns detached loss values by name (``d/hinge``,
      ``g/total``), read back by the loop only every ``--log-every`` steps;
    - ``state()`` / ``load_state(state)``: everything else a resumed run needs (batch streams, loss
      scalers), JSON values and tensors in nested dicts and lists;
    - ``exports()``: how to rebuild the modules a user takes away, by module name. A
      ``"generator"`` entry is the network the loop samples for pictures and metrics, keeps an EMA
      of, and exports as ``generator.safetensors``. Without one, a ``"translator"`` entry (a
      :class:`Translator`) is the network the loop keeps an EMA of and exports as
      ``translator.safetensors``, with the data's domains in its metadata.

    A procedure that also implements :class:`PreviewProcedure` draws the training pictures itself.
    """

    def modules(self) -> dict[str, nn.Module]: ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def run(self, step: int) -> dict[str, Tensor]: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...

    def exports(self) -> dict[str, ComponentRecord]: ...


@runtime_checkable
class PreviewProcedure(Procedure, Protocol):
    """A procedure that makes its own training pictures (e.g. translations beside their inputs).

    Every ``--sample-every`` steps the loop calls ``preview(module)`` with the exported module (its EMA copy
    when kept) and hands the images, (N, C, H, W) in [-1, 1], to the monitors, which lay them out
    ``preview_row`` to a row. ``preview`` runs under ``torch.no_grad`` with the module in eval mode.
    """

    preview_row: int

    def preview(self, module: nn.Module) -> Tensor: ...


__all__ = [
    "Augmentation", "Batches", "ComponentRecord", "Metric", "Monitor", "MonitorSetup", "DataSpec", "Dataset", "DiscriminatorOutput", "Generator", "Discriminator",
    "DiscriminatorPhase", "GanNetworks", "GeneratorPhase", "LossTerm", "NEEDS", "PreviewProcedure", "Procedure",
    "SelfSupervisedDiscriminator", "StyleGenerator", "TrainingSetup", "Translator", "describe_needs", "truncate_styles", "two_domain_dataset",
]


