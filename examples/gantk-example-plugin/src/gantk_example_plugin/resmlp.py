"""The ``resmlp`` generator: a residual MLP that builds samples of any :class:`gantk.DataSpec`.

Architecture (``width`` = W, ``blocks`` = N)::

    z (B, z_dim) [⊕ or ⊙ label embedding]
      → Linear(z_in, W)
      → N × residual block:  h ← h + act(Linear(W, W)(norm(h)))
      → norm → act → Linear(W, C·H·W or D)
      → tanh and reshape to (B, C, H, W) for image specs; reshape to (B, D) for vector specs

``norm`` is LayerNorm (default), BatchNorm1d or nothing; ``act`` is LeakyReLU(0.2). Because the
network is fully connected it builds any shape: there is no size table and no size it cannot
build (large images only cost a large last layer, W·C·H·W weights).

Labels: ``"concat"`` (the choice of the default ``conditioning="auto"`` on a labelled spec)
appends an ``Embedding(K, K)`` of the label to ``z`` (CGAN, Mirza & Osindero 2014); ``"mul"`` multiplies ``z`` by an
``Embedding(K, z_dim)`` (the ACGAN tutorial's input); ``"none"`` ignores labels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import gantk

NORMS = ("layer", "batch", "none")
CONDITIONINGS = ("concat", "mul", "none")


def _positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum`` (options may arrive as strings from the command line)."""
    try:
        number = int(value)
        if number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise gantk.UsageError(f"The generator 'resmlp' option {name}={value!r} must be a whole number.") from None
    if number < minimum:
        raise gantk.UsageError(f"The generator 'resmlp' option {name}={number} must be at least {minimum}.")
    return number


def _norm(kind: str, width: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "batch":
        return nn.BatchNorm1d(width)
    return nn.Identity()


class ResidualBlock(nn.Module):
    """``h + act(Linear(norm(h)))``: pre-normalised, with an identity skip connection."""

    def __init__(self, width: int, norm: str) -> None:
        super().__init__()
        self.norm = _norm(norm, width)
        self.linear = nn.Linear(width, width)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.act(self.linear(self.norm(h)))  # h ← h + act(W·norm(h) + b)


class ResMLPGenerator(nn.Module):
    """A residual MLP generator: ``forward(z, y=None)`` returns samples of shape ``(B, *spec.shape)``."""

    def __init__(self, spec: gantk.DataSpec, *, z_dim: int, width: int, blocks: int, norm: str,
                 conditioning: str) -> None:
        super().__init__()
        self.spec = spec
        self.z_dim = z_dim
        self.conditioning = conditioning
        self.conditional = conditioning != "none"  # whether forward follows the labels y
        self.num_classes = spec.num_classes if self.conditional else 0
        #: The resolved factory options: ``build_resmlp(spec, **options)`` rebuilds this module.
        self.options: dict[str, Any] = {"z_dim": z_dim, "width": width, "blocks": blocks, "norm": norm,
                                        "conditioning": conditioning}
        in_features = z_dim
        self.embed: nn.Embedding | None = None
        if conditioning == "concat":
            self.embed = nn.Embedding(spec.num_classes, spec.num_classes)
            in_features = z_dim + spec.num_classes
        elif conditioning == "mul":
            self.embed = nn.Embedding(spec.num_classes, z_dim)
        self.stem = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(*(ResidualBlock(width, norm) for _ in range(blocks)))
        self.head = nn.Sequential(_norm(norm, width), nn.LeakyReLU(0.2), nn.Linear(width, spec.flat_dim))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"resmlp expects latents of shape (B, {self.z_dim}), got {tuple(z.shape)}")
        if self.embed is not None:
            if y is None:
                raise ValueError(f"resmlp was built with conditioning='{self.conditioning}' for "
                                 f"{self.spec.num_classes} classes; pass the labels y")
            label = self.embed(y.long())
            z = torch.cat([z, label], dim=1) if self.conditioning == "concat" else z * label  # z ⊕ e(y) | z ⊙ e(y)
        h = self.blocks(self.stem(z))
        out = self.head(h)
        if self.spec.is_image:
            out = torch.tanh(out)  # images live in [-1, 1]
        return out.reshape(z.shape[0], *self.spec.shape)


def build_resmlp(spec: gantk.DataSpec, *, z_dim: int = 64, width: int = 256, blocks: int = 4,
                 norm: str | None = "layer", conditioning: str | None = "auto") -> ResMLPGenerator:
    """Residual MLP generator for any image or vector shape (example plugin).

    :param spec: the data set's :class:`gantk.DataSpec`.
    :param z_dim: latent size.
    :param width: hidden width of every residual block.
    :param blocks: number of residual blocks (0 gives a plain two-layer MLP).
    :param norm: ``"layer"`` (LayerNorm), ``"batch"`` (BatchNorm1d) or ``"none"``.
    :param conditioning: ``"concat"``, ``"mul"`` or ``"none"``; ``"auto"`` (the default) picks
        ``"concat"`` for labelled data and ``"none"`` otherwise.

    ``None`` counts as ``"none"``: gantk's command line reads ``--gen-option norm=none`` as None.
    """
    z_dim = _positive_int("z_dim", z_dim)
    width = _positive_int("width", width)
    blocks = _positive_int("blocks", blocks, minimum=0)
    norm = "none" if norm is None else norm
    if norm not in NORMS:
        raise gantk.UsageError(f"The generator 'resmlp' has no norm '{norm}'; it supports {', '.join(NORMS)}.")
    conditioning = "none" if conditioning is None else conditioning
    if conditioning == "auto":
        conditioning = "concat" if spec.labelled else "none"
    if conditioning not in CONDITIONINGS:
        raise gantk.UsageError(f"The generator 'resmlp' has no conditioning '{conditioning}'; "
                               f"it supports auto, {', '.join(CONDITIONINGS)}.")
    if conditioning != "none" and not spec.labelled:
        raise gantk.UsageError(f"The generator 'resmlp' was asked for conditioning='{conditioning}', but the data "
                               f"set '{spec.name}' has no labels. Use conditioning=none or a labelled data set.")
    return ResMLPGenerator(spec, z_dim=z_dim, width=width, blocks=blocks, norm=norm, conditioning=conditioning)


@gantk.hookimpl
def register_generators(register):
    register("resmlp", build_resmlp, summary="Residual MLP generator for any image or vector shape (example plugin)")
