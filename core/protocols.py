"""The protocols every component implements: data, generator, discriminator, loss term.

Architectures, losses and data sets are plugins; this module is the contract between them and
the engine, so that any loss head can sit on any backbone and any backbone can train on any data
set it can build for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Protocol, runtime_checkable


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


@dataclass
class Dataset:
    """A data set as a data set plugin returns it.

    Small data sets hold every sample in ``samples`` (``(N, *spec.shape)``, float32) and the
    labels in ``labels`` (``(N,)`` int64, or None when unlabelled); the engine moves them to the
    training device once and batches by indexing. Data too big for memory sets ``samples`` to
    None and gives a ``torch.utils.data.Dataset`` in ``stream`` yielding ``(sample, label)``.
    """

    spec: DataSpec
    samples: Tensor | None
    labels: Tensor | None = None
    class_names: tuple[str, ...] = ()
    stream: "TorchDataset | None" = None
    description: str = ""

    def __len__(self) -> int:
        if self.samples is not None:
            return int(self.samples.shape[0])
        return len(self.stream)  # type: ignore[arg-type]


class DiscriminatorOutput(NamedTuple):
    """What a discriminator returns: adversarial ``logits`` (B,) and penultimate ``features`` (B, F)."""

    logits: Tensor
    features: Tensor


@runtime_checkable
class Generator(Protocol):
    """A generator: an ``nn.Module`` mapping latents ``z`` (B, z_dim) and labels to samples."""

    z_dim: int

    def __call__(self, z: Tensor, y: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Discriminator(Protocol):
    """A discriminator: an ``nn.Module`` returning a :class:`DiscriminatorOutput`."""

    feature_dim: int

    def __call__(self, x: Tensor, y: Tensor | None = None) -> DiscriminatorOutput: ...


DiscriminatorFn = Callable[[Tensor, "Tensor | None"], DiscriminatorOutput]


@dataclass
class DiscriminatorStep:
    """Everything a loss term may use in the discriminator's update.

    ``fake`` is detached from the generator. ``real`` requires grad when a term declared the
    ``"real_grad"`` need (R1). ``discriminator`` runs D again (e.g. on interpolates for the GP).
    """

    real: Tensor
    fake: Tensor
    real_labels: Tensor | None
    fake_labels: Tensor | None
    real_out: DiscriminatorOutput
    fake_out: DiscriminatorOutput
    discriminator: DiscriminatorFn
    step: int = 0


@dataclass
class GeneratorStep:
    """Everything a loss term may use in the generator's update (``fake`` carries G's graph)."""

    fake: Tensor
    fake_labels: Tensor | None
    fake_out: DiscriminatorOutput
    discriminator: DiscriminatorFn
    step: int = 0


#: Needs a loss term can declare; the engine checks them before training starts.
NEEDS = {
    "labels": "a labelled data set (num_classes > 0)",
    "real_grad": "gradients with respect to the real input (the engine enables them)",
    "input_grad": "gradients with respect to D's input (double back-propagation through D)",
}


class LossTerm(nn.Module):
    """One term of a (possibly composite) GAN loss.

    Subclasses override :meth:`discriminator_loss` and/or :meth:`generator_loss` and return a
    scalar tensor (or None when the term does not apply to that network). A term may own
    parameters (a classifier head, say); they train with the discriminator and are saved in
    checkpoints. ``needs`` names what the term requires (keys of :data:`NEEDS`) so that an
    impossible combination fails before training. ``every`` runs a regulariser lazily, every
    ``every`` D steps (its value is then multiplied by ``every``, as in StyleGAN2).
    """

    needs: frozenset[str] = frozenset()
    every: int = 1
    #: weight used when the loss expression gives none (``wgan+gp`` means ``wgan+10*gp``).
    default_weight: float = 1.0
    #: True for terms that keep D Lipschitz by themselves (GP), so WGAN needs no weight clipping.
    lipschitz_regulariser: bool = False
    #: True for terms that only add to an adversarial loss (regularisers, classifier and contrastive
    #: heads): a loss expression needs at least one term that is not auxiliary.
    auxiliary: bool = False

    def discriminator_loss(self, step: DiscriminatorStep) -> Tensor | None:
        return None

    def generator_loss(self, step: GeneratorStep) -> Tensor | None:
        return None

    def compose_with(self, others: "list[LossTerm]") -> None:
        """Called once with the other terms of the composite loss, before training starts."""

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


def describe_needs(needs: frozenset[str]) -> str:
    return "; ".join(NEEDS.get(n, n) for n in sorted(needs))


__all__ = [
    "DataSpec", "Dataset", "DiscriminatorOutput", "Generator", "Discriminator", "DiscriminatorStep",
    "GeneratorStep", "LossTerm", "NEEDS", "describe_needs",
]


