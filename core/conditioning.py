"""Conditioning: how a class label enters the generator and the discriminator.

A conditioning plugin's factory returns a :class:`Conditioning`. Architectures ask it for the
label-dependent pieces they need while they build themselves, so that any method works with any
architecture that asks:

- G's input: ``generator_input(z_dim)`` maps ``(z, y)`` to the vector G starts from
  (``concat``: z ⊕ emb(y), Mirza & Osindero 2014; ``mul``: emb(y) ⊙ z, the ACGAN tutorial);
- G's normalisation: ``generator_norm(channels, dims)`` (``cbn``: conditional BatchNorm with
  per-class γ and β, de Vries et al. 2017 / Miyato & Koyama 2018);
- D's input: ``discriminator_vector_input(in_dim)`` for flattened inputs (x ⊕ emb(y)) and
  ``discriminator_image_input(channels)`` for images (one-hot label maps as extra channels);
- D's output: ``discriminator_output(feature_dim)`` adds a label term to the logit
  (``projection``: D(x, y) = ψ(φ(x)) + emb(y)ᵀφ(x), Miyato & Koyama 2018).

Every method of the base class is the unconditional behaviour; a method that cannot condition the
side it is asked for raises a :class:`UsageError` naming what works. Label-dependent layers are
:class:`LabelledLayer` modules (``forward(x, y)``); architectures pass ``y`` to those.
"""

from __future__ import annotations

from torch import Tensor, nn

from gantk.errors import UsageError
from gantk.registry import current_registry


class LabelledLayer(nn.Module):
    """A layer whose forward takes the labels too: ``forward(x, y)``."""

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def run_layers(layers: nn.Sequential, x: Tensor, y: Tensor | None) -> Tensor:
    """Apply ``layers`` in order, passing the labels to every :class:`LabelledLayer`."""
    for layer in layers:
        x = layer(x, y) if isinstance(layer, LabelledLayer) else layer(x)
    return x


def require_labels(y: Tensor | None, method: str) -> Tensor:
    if y is None:
        raise UsageError(f"This network is class-conditional ({method}) and needs labels y, but got none. "
                         "Pass labels (gantk sample --label K) or use an unconditional network.")
    return y


class Conditioning:
    """The unconditional method; subclasses override the pieces they condition."""

    name = "none"
    #: which sides this method can condition ("generator", "discriminator")
    sides: frozenset[str] = frozenset({"generator", "discriminator"})

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    @property
    def conditional(self) -> bool:
        return self.name != "none"

    def check_side(self, side: str, works: str) -> None:
        """Refuse to condition ``side`` if this method cannot, naming the methods (``works``) that can."""
        if side not in self.sides:
            raise UsageError(f"The conditioning '{self.name}' cannot condition the {side}; for the {side} use "
                             f"{works}.")
        if self.conditional and self.num_classes < 1:
            raise UsageError(f"The conditioning '{self.name}' needs a labelled data set (num_classes > 0); this "
                             "one has no labels. Use --dataset mnist5k (or digits), or conditioning=none.")

    def generator_input(self, z_dim: int) -> tuple[LabelledLayer | None, int]:
        """A layer mapping (z, y) to G's input vector and that vector's width (None: z as it is)."""
        return None, z_dim

    def generator_norm(self, channels: int, dims: int) -> nn.Module:
        """G's normalisation over ``channels``; ``dims`` 1 for (B, C) inputs, 2 for (B, C, H, W)."""
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)

    def discriminator_vector_input(self, in_dim: int) -> tuple[LabelledLayer | None, int]:
        """A layer for D's flattened input and the width it outputs (None: x as it is)."""
        return None, in_dim

    def discriminator_image_input(self, channels: int) -> tuple[LabelledLayer | None, int]:
        """A layer for D's image input and the number of channels it outputs (None: x as it is)."""
        return None, channels

    def discriminator_output(self, feature_dim: int) -> nn.Module | None:
        """A module ``(logits, features, y) -> logits`` adding a label term (None: logits as they are)."""
        return None


def methods_for(side: str, spec, registry) -> str:
    """The registered conditioning names that can condition ``side``, as text ("none, concat or cbn")."""
    names = []
    for entry in registry.list("conditioning"):
        try:
            if side in entry.create(spec).sides:
                names.append(entry.name)
        except Exception:  # noqa: BLE001 - a method that cannot be built for this data is not suggested
            continue
    return " or ".join(filter(None, [", ".join(names[:-1]), names[-1]])) if names else "none"


def resolve_conditioning(value: "str | Conditioning | None", spec, side: str, auto: str = "none") -> Conditioning:
    """A :class:`Conditioning` from a registry name (``"auto"`` picks ``auto``), checked for ``side``.

    None is the ``none`` method: ``-G conditioning=none`` reads as None (:func:`gantk.options.parse_value`).

    Names are looked up in the registry building the calling architecture (the engine's), see
    :func:`gantk.registry.current_registry`.
    """
    registry = current_registry()
    if isinstance(value, Conditioning):
        conditioning = value
    else:
        name = "none" if value is None else auto if value == "auto" else str(value)
        conditioning = registry.create("conditioning", name, spec)
    conditioning.check_side(side, methods_for(side, spec, registry) if side not in conditioning.sides else "")
    return conditioning


__all__ = ["Conditioning", "LabelledLayer", "resolve_conditioning", "require_labels", "run_layers"]
