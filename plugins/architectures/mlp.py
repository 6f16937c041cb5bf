"""The ``mlp`` generator and discriminator: fully connected networks for vectors and small images.

The original GAN's networks (Goodfellow et al. 2014, "Generative Adversarial Nets",
arXiv:1406.2661) and the conditional GAN's (Mirza & Osindero 2014, "Conditional Generative
Adversarial Nets", arXiv:1411.1784) are MLPs. G: z → hidden layers → ``spec.flat_dim``, reshaped
to ``spec.shape``, tanh for images (which live in [-1, 1]) and linear for vectors (which keep
their own units). D: flattened x → hidden layers → one logit (no sigmoid); its features are the
last hidden activation. A hidden layer is Linear → [BatchNorm] → activation → [Dropout].

Every option left unset takes its default from the kind of data, so that the two tutorials the
presets reproduce are the defaults (ALGORITHMS.md §3):

    option          vectors (D,): the 1-D toy GAN   images (C, H, W): the CGAN tutorial
    z_dim (G)       10                              100
    hidden (G)      50,50                           128,256,512,1024
    hidden (D)      50,50                           512,512,512
    activation      relu                            lrelu (LeakyReLU, slope 0.2)
    batchnorm (G)   false                           true: BatchNorm1d on every hidden layer but the first
    dropout (D)     0                               0.4 on every hidden layer but the first
    init            default (PyTorch's)             default (PyTorch's)

``activation=maxout`` makes every hidden unit the max over ``maxout_pieces`` (default 5) linear
pieces (Goodfellow et al. 2013), the discriminator of PacGAN's 2-D experiments (Lin et al. 2018).
``batchnorm=all`` puts BatchNorm on every hidden layer, the first included (PacGAN's and VEEGAN's
2-D generator). ``init=normal`` is DCGAN's initialisation (weights N(0, 0.02), biases 0), which
PacGAN's 2-D networks use too.

``hidden`` takes a tuple/list of ints or a comma string (``"128,256"``). ``dropout`` takes one
rate, applied to every hidden layer but the first (as the CGAN tutorial's D has it on its 2nd and
3rd), or one rate per hidden layer (``0.2,0.4,0.4``). BatchNorm uses PyTorch's default eps (1e-5)
and momentum (0.1): the tutorial's ``BatchNorm1d(n, 0.8)`` sets eps = 0.8 by mistake. A linear
layer followed by BatchNorm has no bias (BatchNorm's shift replaces it). Weights keep PyTorch's
default initialisation unless ``init=normal``, as in both tutorials.
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

import gantk
from gantk.errors import UsageError
from gantk.plugins.architectures._layers import (
    ACTIVATIONS, BackboneDiscriminator, LatentGenerator, Maxout, dcgan_init_, make_activation, pairs, sn_option,
    spectral_normalise_,
)
from gantk.options import as_bool, choice, number_in, option_error, positive_int, positive_ints, split_items
from gantk.conditioning import Conditioning, resolve_conditioning
from gantk.protocols import DataSpec

ARCH = "mlp"
GENERATOR, DISCRIMINATOR = f"generator '{ARCH}'", f"discriminator '{ARCH}'"  # owners named in option errors
VECTOR_DEFAULTS = {"z_dim": 10, "g_hidden": (50, 50), "d_hidden": (50, 50), "activation": "relu",
                   "batchnorm": False, "dropout": 0.0}
MLP_ACTIVATIONS = (*ACTIVATIONS, "maxout")
INITS = ("default", "normal")
IMAGE_DEFAULTS = {"z_dim": 100, "g_hidden": (128, 256, 512, 1024), "d_hidden": (512, 512, 512),
                  "activation": "lrelu", "batchnorm": True, "dropout": 0.4}


def defaults_for(spec: DataSpec, key: str, value: Any) -> Any:
    """``value`` if the user set it, else the default for the spec's kind of data."""
    if value is not None:
        return value
    return (IMAGE_DEFAULTS if spec.is_image else VECTOR_DEFAULTS)[key]


def dropout_rates(value: Any, layers: int) -> list[float]:
    """One dropout rate per hidden layer: a single rate goes on every layer but the first."""
    expected = f"a rate in [0, 1) or {layers} comma-separated rates, one per hidden layer"
    items = split_items(value)
    try:
        rates = [number_in(DISCRIMINATOR, "dropout", item, at_least=0, below=1) for item in items]
    except UsageError:
        raise option_error(DISCRIMINATOR, "dropout", value, expected) from None
    if len(rates) == 1 and not isinstance(value, (list, tuple)):
        rates = [0.0] + rates * (layers - 1)
    if len(rates) != layers:
        raise option_error(DISCRIMINATOR, "dropout", value, expected)
    return rates


def batchnorm_layers(value: Any, layers: int) -> list[bool]:
    """Which of G's hidden layers get BatchNorm: ``all``, every one; true, every one but the first; false, none."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return [True] * layers
    try:
        on = as_bool(GENERATOR, "batchnorm", value)
    except UsageError:
        raise option_error(GENERATOR, "batchnorm", value, "true (every hidden layer but the first), all or false") \
            from None
    return [on and i > 0 for i in range(layers)]


def activation_options(owner: str, activation: Any, maxout_pieces: Any) -> tuple[str, int]:
    """The activation's name and its piece count: ``maxout_pieces`` (≥ 2) for maxout, 1 for the others."""
    act = choice(owner, "activation", activation, MLP_ACTIVATIONS)
    if act != "maxout":
        return act, 1
    pieces = positive_int(owner, "maxout_pieces", maxout_pieces)
    if pieces < 2:
        raise option_error(owner, "maxout_pieces", maxout_pieces, "an integer ≥ 2 (each unit is the max of that "
                           "many linear pieces)")
    return act, pieces


def recorded_options(options: dict[str, Any], init: str, pieces: int) -> dict[str, Any]:
    """``options`` plus ``init`` and, for maxout, ``maxout_pieces`` (they change the weights' shapes)."""
    return {**options, "init": init, **({"maxout_pieces": pieces} if pieces > 1 else {})}


def initialised(module: nn.Module, init: str) -> nn.Module:
    """``init=normal``: DCGAN's N(0, 0.02) weights and zero biases (Radford et al. 2016); ``default``: PyTorch's."""
    return dcgan_init_(module) if init == "normal" else module


def hidden_layers(sizes: Sequence[int], act: str, batchnorm: Sequence[bool],
                  dropout: Sequence[float], conditioning: Conditioning | None = None,
                  pieces: int = 1) -> list[nn.Module]:
    """Linear → [BatchNorm1d, or the conditioning's norm] → activation → [Dropout] per pair of ``sizes``.

    For maxout (``pieces`` > 1) each Linear has ``pieces`` outputs per unit and the activation takes their max.
    """
    layers: list[nn.Module] = []
    for (n_in, n_out), norm, rate in zip(pairs(sizes), batchnorm, dropout):
        width = n_out * pieces
        layers.append(nn.Linear(n_in, width, bias=not norm))
        if norm:  # default eps/momentum, not the tutorial's eps=0.8
            layers.append(conditioning.generator_norm(width, 1) if conditioning else nn.BatchNorm1d(width))
        layers.append(Maxout(pieces) if act == "maxout" else make_activation(act))
        if rate > 0:
            layers.append(nn.Dropout(rate))
    return layers


class MLPGenerator(LatentGenerator):
    """MLP generator: ``net`` maps (B, z_dim) latents to (B, *spec.shape) samples."""


class MLPDiscriminator(BackboneDiscriminator):
    """MLP discriminator: ``body`` flattens x and ends at the last hidden activation, ``head`` is Linear → 1."""


def build_mlp_generator(spec: DataSpec, z_dim: int | None = None, hidden: Sequence[int] | str | None = None,
                        activation: str | None = None, batchnorm: bool | str | None = None,
                        conditioning: str = "none", init: str = "default", maxout_pieces: int = 5) -> MLPGenerator:
    """MLP generator (Goodfellow 2014; Mirza 2014): z → hidden → sample; tanh for images, linear for vectors.

    ``conditioning``: none, concat (the CGAN tutorial's; what ``auto`` picks), mul or cbn (needs batchnorm).
    ``batchnorm``: true (every hidden layer but the first), all, or false.
    """
    z_dim = positive_int(GENERATOR, "z_dim", defaults_for(spec, "z_dim", z_dim))
    cond = resolve_conditioning(conditioning, spec, "generator", auto="concat")
    hidden = positive_ints(GENERATOR, "hidden", defaults_for(spec, "g_hidden", hidden))
    act, pieces = activation_options(GENERATOR, defaults_for(spec, "activation", activation), maxout_pieces)
    norms = batchnorm_layers(defaults_for(spec, "batchnorm", batchnorm), len(hidden))
    init = choice(GENERATOR, "init", init, INITS)
    if cond.name == "cbn" and not any(norms):
        raise UsageError(f"The {ARCH} generator can take conditioning=cbn only with batchnorm=true and two or more "
                         "hidden layers (cbn replaces its BatchNorm); use conditioning=concat or mul instead.")
    label_input, in_dim = cond.generator_input(z_dim)  # z, or z ⊕ emb(y), or emb(y) ⊙ z
    layers = [*([label_input] if label_input else []),
              *hidden_layers([in_dim, *hidden], act, norms, [0.0] * len(hidden), cond, pieces)]
    layers.append(nn.Linear(hidden[-1], spec.flat_dim))  # -> C·H·W (or D) values
    if spec.is_image:
        layers.append(nn.Tanh())
    if spec.is_image:
        layers.append(nn.Unflatten(1, spec.shape))  # (B, C·H·W) -> (B, C, H, W); vectors are already (B, D)
    batchnorm = "all" if norms[0] else any(norms)  # recorded so that the same layers are rebuilt
    options = recorded_options({"z_dim": z_dim, "hidden": hidden, "activation": act, "batchnorm": batchnorm,
                                "conditioning": cond.name}, init, pieces)
    generator = MLPGenerator(spec, z_dim, nn.Sequential(*layers), options, conditional=cond.conditional)
    return initialised(generator, init)


def build_mlp_discriminator(spec: DataSpec, hidden: Sequence[int] | str | None = None,
                            activation: str | None = None, dropout: float | Sequence[float] | str | None = None,
                            sn: bool = False, conditioning: str = "none", spectral_norm: bool | None = None,
                            init: str = "default", maxout_pieces: int = 5) -> MLPDiscriminator:
    """MLP discriminator (Goodfellow 2014; Mirza 2014): flattened x → hidden → one logit (no sigmoid).

    ``sn``: spectral normalisation on every linear layer (Miyato 2018); ``spectral_norm`` is its older name.

    ``conditioning``: none, concat (x ⊕ emb(y), the CGAN tutorial's; what ``auto`` picks) or projection.
    """
    hidden = positive_ints(DISCRIMINATOR, "hidden", defaults_for(spec, "d_hidden", hidden))
    act, pieces = activation_options(DISCRIMINATOR, defaults_for(spec, "activation", activation), maxout_pieces)
    init = choice(DISCRIMINATOR, "init", init, INITS)
    rates = dropout_rates(defaults_for(spec, "dropout", dropout), len(hidden))
    sn = sn_option(DISCRIMINATOR, sn, spectral_norm)
    cond = resolve_conditioning(conditioning, spec, "discriminator", auto="concat")
    flatten = [nn.Flatten(1)] if spec.is_image else []  # images (B, C, H, W) -> (B, C·H·W); vectors are (B, D)
    label_input, in_dim = cond.discriminator_vector_input(spec.flat_dim)  # x, or x ⊕ emb(y)
    body = nn.Sequential(*flatten, *([label_input] if label_input else []),
                         *hidden_layers([in_dim, *hidden], act, [False] * len(hidden), rates, pieces=pieces))
    options = recorded_options({"hidden": hidden, "activation": act, "dropout": rates, "sn": sn,
                                "conditioning": cond.name}, init, pieces)
    discriminator = MLPDiscriminator(body, nn.Linear(hidden[-1], 1), hidden[-1], options,
                                     conditional=cond.conditional, label_output=cond.discriminator_output(hidden[-1]))
    discriminator = initialised(discriminator, init)  # before SN, which keeps the initialised weight
    return spectral_normalise_(discriminator) if sn else discriminator


@gantk.hookimpl
def register_generators(register):
    register("mlp", build_mlp_generator,
             summary="MLP generator (Goodfellow 2014): vectors 10→50→50 ReLU; images 100→128…1024 LReLU+BN, tanh")


@gantk.hookimpl
def register_discriminators(register):
    register("mlp", build_mlp_discriminator,
             summary="MLP discriminator (Goodfellow 2014): vectors 50,50 ReLU; images 512×3 LReLU, dropout 0.4")
