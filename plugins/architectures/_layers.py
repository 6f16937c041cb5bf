"""Shared pieces of the built-in architectures: layer factories, weight init, module bases.

Private to ``gantk.plugins.architectures``. Option values arrive as Python values from the
engine (``--gen-option hidden=128,256`` is already ``(128, 256)``), from presets, or from a
``config.json`` (lists instead of tuples); the architectures check them with the published
validators of :mod:`gantk.options`, as a third-party plugin would.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from gantk.conditioning import run_layers
from gantk.errors import UsageError
from gantk.options import as_bool
from gantk.protocols import DataSpec, DiscriminatorOutput

ACTIVATIONS = ("relu", "lrelu")
CONV_NORMS = ("batch", "none", "layer", "instance")
TRANSLATION_NORMS = ("instance", "batch", "none")  # the choices of CycleGAN's and pix2pix's networks


# --------------------------------------------------------------------------- layers
def make_activation(name: str) -> nn.Module:
    """``relu`` or ``lrelu`` (LeakyReLU with slope 0.2, as in DCGAN's discriminator)."""
    return nn.ReLU() if name == "relu" else nn.LeakyReLU(0.2)


class Maxout(nn.Module):
    """Maxout (Goodfellow et al. 2013, "Maxout Networks"): the max over ``pieces`` linear pieces per unit.

    Its input is a Linear layer's output of ``units · pieces`` features, laid out unit by unit.
    """

    def __init__(self, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces

    def forward(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (-1, self.pieces)).amax(-1)  # h_i = max_j (W x + b)_{i·k + j}

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


def conv_norm(kind: str, channels: int, instance_affine: bool = True) -> nn.Module | None:
    """The normalisation after a conv: BatchNorm, layer norm over (C, H, W), instance norm, or None.

    Layer norm is ``GroupNorm(1, C)``: statistics over each sample's whole map with a per-channel
    affine, the per-sample normalisation WGAN-GP critics use (Gulrajani et al. 2017). Instance norm has a
    per-channel affine unless ``instance_affine`` is False (CycleGAN's networks, Zhu et al. 2017, have none).
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=instance_affine)
    return None


def normalised_conv(conv: type[nn.Module], c_in: int, c_out: int, norm: str, activation: nn.Module | None,
                    instance_affine: bool = True, **conv_options: Any) -> list[nn.Module]:
    """[conv, normalisation, activation]: ``conv`` (Conv2d or ConvTranspose2d) from ``c_in`` to ``c_out`` channels,
    then ``conv_norm(norm, c_out)`` and ``activation`` where they are not None. The conv has a bias only when no
    normalisation follows it (a normalisation subtracts the mean, and with it any bias)."""
    normalisation = conv_norm(norm, c_out, instance_affine)
    layers = [conv(c_in, c_out, bias=normalisation is None, **conv_options)]
    return layers + [layer for layer in (normalisation, activation) if layer is not None]


_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)
_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


@torch.no_grad()
def dcgan_init_(module: nn.Module) -> nn.Module:
    """DCGAN's initialisation (Radford et al. 2016, §4): every conv/linear weight N(0, 0.02), biases 0;
    every normalisation's scale γ N(1, 0.02) and shift β 0. Returns ``module``."""
    for layer in module.modules():
        if isinstance(layer, _WEIGHTED):
            nn.init.normal_(layer.weight, 0.0, 0.02)
        elif isinstance(layer, _NORMS) and getattr(layer, "weight", None) is not None:
            nn.init.normal_(layer.weight, 1.0, 0.02)
        else:
            continue
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return module


@torch.no_grad()
def orthogonal_init_(module: nn.Module) -> nn.Module:
    """Orthogonal initialisation (Saxe et al. 2014), StudioGAN's default for its ResNet GANs: every conv/linear
    weight, flattened to (out, in·k·k), has orthonormal rows or columns; biases 0; norms keep γ 1, β 0."""
    for layer in module.modules():
        if isinstance(layer, _WEIGHTED):
            nn.init.orthogonal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def spectral_normalise_(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every conv and linear layer of ``module``.

    Call it after initialising the weights: the parametrisation keeps the initialised weight
    (as ``parametrizations.weight.original``) and divides it by its largest singular value σ(W),
    estimated by one power iteration per training forward pass (torch runs 15 when it is applied);
    the vectors u and v are buffers, so checkpoints carry them. Embeddings (a projection
    discriminator's label embedding) are left as they are.
    """
    for layer in [m for m in module.modules() if isinstance(m, _WEIGHTED)]:
        spectral_norm(layer)  # W_SN = W / σ(W)
    return module


def sn_option(owner: str, sn: Any, spectral_norm: Any = None) -> bool:
    """The ``sn`` option (spectral normalisation on every layer) of a discriminator, also read under its older
    name ``spectral_norm``, which the configs of earlier runs record. Both given and disagreeing is an error."""
    value = as_bool(owner, "sn", sn)
    if spectral_norm is None:
        return value
    older = as_bool(owner, "spectral_norm", spectral_norm)
    if value and not older:
        raise UsageError(f"The {owner} got sn={value} and spectral_norm={older}; spectral_norm is the older name of "
                         "sn. Give only sn (-D sn=true or -D sn=false).")
    return older or value


# --------------------------------------------------------------------------- image sizes
def multiples_near(side: int, multiple: int, minimum: int) -> list[int]:
    """The buildable sides (multiples of ``multiple``, at least ``minimum``) nearest ``side``, nearest first;
    two when ``side`` lies between them, the larger first on a tie."""
    below = side // multiple * multiple
    above = -(-side // multiple) * multiple
    candidates = {s for s in (below, above) if s >= minimum} or {minimum}
    return sorted(candidates, key=lambda s: (abs(s - side), -s))


def require_image(arch: str, role: str, spec: DataSpec) -> tuple[int, int, int]:
    """``(C, H, W)`` of an image spec; a UsageError pointing to mlp for vector data."""
    if not spec.is_image:
        raise UsageError(f"The {arch} {role} builds images, but got vectors of shape {spec.shape}{_source(spec)}. "
                         f"Use {_flag(role)} mlp for vector data.")
    return spec.shape


def size_error(arch: str, role: str, spec: DataSpec, rule: str, targets: list[int],
               other_fix: str | None = None) -> UsageError:
    """The error for an image size ``arch`` cannot build: the ``rule`` it follows and the sizes to resize to.

    ``other_fix``: what else the user can do (by default: use mlp, which takes any shape); "" for nothing else.
    """
    target, *other = targets
    alternative = f" (or {other[0]})" if other else ""
    channels, height, width = spec.shape
    fix = f"use {_flag(role)} mlp" if other_fix is None else other_fix
    return UsageError(f"The {arch} {role} builds {rule}; got {channels}×{height}×{width}{_source(spec)}. "
                      f"Resize with --image-size {target}{alternative}" + (f", or {fix}." if fix else "."))


def _flag(role: str) -> str:
    return "--gen" if role == "generator" else "--disc"


def _source(spec: DataSpec) -> str:
    return f" from the data set '{spec.name}'" if spec.name else ""


def square_side(arch: str, role: str, spec: DataSpec, multiple: int, minimum: int, sizes: str,
                note: str = "") -> int:
    """The side S of the spec's square images if S is a multiple of ``multiple`` and ≥ ``minimum``; else a
    UsageError naming the sizes ``arch`` builds (``sizes``) and the ``--image-size`` to use."""
    _, height, width = require_image(arch, role, spec)
    if height == width and height % multiple == 0 and height >= minimum:
        return height
    raise size_error(arch, role, spec, f"square images whose side is a multiple of {multiple}, at least "
                     f"{minimum}: {sizes}{note}", multiples_near(max(height, width), multiple, minimum))


# --------------------------------------------------------------------------- module bases
class LatentGenerator(nn.Module):
    """A generator that is one network ``net`` from latents (B, z_dim) to samples.

    ``options`` holds the resolved factory options, which the engine records to rebuild the module.
    A ``conditional`` generator passes the labels to its label-dependent layers (see gantk.conditioning)
    and knows ``spec.num_classes`` labels (``num_classes`` is 0 otherwise).
    """

    def __init__(self, spec: DataSpec, z_dim: int, net: nn.Sequential, options: dict[str, Any],
                 conditional: bool = False) -> None:
        super().__init__()
        self.spec, self.z_dim = spec, z_dim
        self.num_classes = spec.num_classes if conditional else 0
        self.net = net
        self.options = options
        self.conditional = conditional

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return run_layers(self.net, z, y) if self.conditional else self.net(z)


class BackboneDiscriminator(nn.Module):
    """A discriminator made of a ``body`` (input → last hidden activation) and a ``head`` (→ one logit).

    The features are the flattened body output, the head's input; the logits are raw scores
    (no sigmoid: every gantk loss works on logits). A ``conditional`` discriminator passes the labels
    to its label-dependent layers and ``label_output``.
    """

    def __init__(self, body: nn.Sequential, head: nn.Module, feature_dim: int, options: dict[str, Any],
                 conditional: bool = False, label_output: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.feature_dim = feature_dim
        self.options = options
        self.conditional = conditional
        self.label_output = label_output  # adds a label term to the logit (projection), or None

    def forward(self, x: Tensor, y: Tensor | None = None) -> DiscriminatorOutput:
        hidden = run_layers(self.body, x, y) if self.conditional else self.body(x)
        features = hidden.flatten(1)
        logits = self.head(hidden).flatten()  # (B, 1) or (B, 1, 1, 1) -> (B,)
        if self.label_output is not None:
            logits = self.label_output(logits, features, y)
        return DiscriminatorOutput(logits, features)


def pairs(sizes: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive (in, out) pairs of a list of layer sizes."""
    sizes = list(sizes)
    return list(zip(sizes, sizes[1:]))
