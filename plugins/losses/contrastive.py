"""The conditional contrastive loss ``contrastive`` (2C loss; ContraGAN: Kang & Park 2020, "ContraGAN:
Contrastive Learning for Conditional Image Generation", NeurIPS 2020, arXiv:2006.12681).

D gets a projection head ``h: F → d`` on its penultimate features and class proxies ``e: K → d``.
With cosine similarities ``s(a, b) = aᵀb / (‖a‖‖b‖)``, temperature ``t`` and ``l_i = h(φ(x_i))``:

    ℓ_i = −log [exp(s(l_i, e(y_i))/t) + Σ_{k≠i, y_k=y_i} exp(s(l_i, l_k)/t)]
               / [exp(s(l_i, e(y_i))/t) + Σ_{k≠i} exp(s(l_i, l_k)/t)],      L_2C = mean_i ℓ_i

D minimises ``adv + λ L_2C`` on real samples with their labels, G ``adv + λ L_2C`` on its fakes with
the labels they were generated for; λ is the term's weight in the loss expression (``hinge+contrastive``,
``hinge+0.5*contrastive``). Options: ``dim`` (d, 512 as StudioGAN) and ``temperature`` (t, 1.0 as
StudioGAN's CIFAR-10 config; the ContraGAN tutorial uses 0.5).

Design: ``h`` is a single ``Linear(F → d)``, as in StudioGAN's ContraGAN (the tutorial's
Linear-LeakyReLU-Linear head is not offered); the proxies are an ``Embedding(K, d)``. Both are
created by :meth:`ContrastiveLoss.attach` from D's ``feature_dim``, train with D's optimizer and
are saved in checkpoints. The loss is computed as log-sum-exps over exactly the entries a sample's
numerator and denominator contain: masked-out entries are excluded (−∞ before the log-sum-exp).
The tutorial instead multiplies the similarity matrix by a 0/1 mask before the exponential, so
every masked-out entry still adds ``exp(0) = 1``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gantk
from gantk.distributed import gather_rows
from gantk.plugins.losses._heads import check_attached, check_features, check_labels, device_of, feature_dim_to_attach
from gantk.protocols import DataSpec, DiscriminatorPhase, GeneratorPhase, LossTerm

NAME = "contrastive"
DEFAULT_DIM = 512
DEFAULT_TEMPERATURE = 1.0


# ------------------------------------------------------------------------------------ maths
def unit_vectors(x: Tensor) -> Tensor:
    """x / ‖x‖ along the last dimension, for any positive norm (zero vectors stay zero).

    The vector is first divided by its largest absolute entry ``m`` (a scale to which the result is
    invariant, so it is detached), so that ‖x‖² neither overflows for huge vectors nor underflows
    for tiny ones. Then ‖x/m‖ ≥ 1 for every nonzero vector, so the norm's floor (0.5) only acts on a
    zero vector, which maps to zero with a finite gradient (PyTorch's default floor, 1e-12, would
    give it a gradient of 1e12).
    """
    largest = x.detach().abs().amax(dim=-1, keepdim=True)  # m = max_j |x_j|
    scaled = x / torch.where(largest > 0, largest, torch.ones_like(largest))  # x/m, entries in [-1, 1], one is ±1
    return F.normalize(scaled, dim=-1, eps=0.5)  # x/‖x‖ = (x/m)/‖x/m‖, ‖x/m‖ ∈ [1, √d]


def contrastive_2c_loss(embeddings: Tensor, proxies: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """ContraGAN's 2C loss ``mean_i ℓ_i`` (Kang & Park 2020), in the embeddings' dtype (float32 in a term).

    ``embeddings`` (B, d) are the projected features ``l_i``, ``proxies`` (K, d) the class proxy
    table ``e`` (row ``y_i`` is sample i's proxy), ``labels`` (B,) int64 class indices, ``temperature``
    t > 0. Written as ``ℓ_i = log(1 + N_i / P_i)`` with ``P_i`` the numerator (proxy + same-class
    samples) and ``N_i`` the other-class samples, i.e. ``softplus(lse(negatives) − lse(positives))``:
    ≥ 0 exactly, precise when ℓ_i is tiny, finite for any t, and 0 for a sample with no other-class
    sample in the batch (numerator = denominator).
    """
    with torch.autocast(embeddings.device.type, enabled=False):  # float32 embeddings: float32 similarities, always
        labels = labels.long()
        l = unit_vectors(embeddings)  # l_i / ‖l_i‖
        e = unit_vectors(proxies[labels])  # e(y_i) / ‖e(y_i)‖
        to_proxy = (l * e).sum(dim=1) / temperature  # s(l_i, e(y_i)) / t
        to_samples = (l @ l.T) / temperature  # s(l_i, l_k) / t
        same = labels[:, None] == labels[None, :]  # y_k = y_i
        others = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)  # k ≠ i
        negative = others & ~same  # k ≠ i, y_k ≠ y_i: in the denominator only
        positive = others & same  # k ≠ i, y_k = y_i: in the numerator (and the denominator)
        minus_inf = torch.tensor(-math.inf, device=to_samples.device)
        # log P_i = log [exp(s(l_i, e(y_i))/t) + Σ_{k≠i, y_k=y_i} exp(s(l_i, l_k)/t)]
        log_positives = torch.logsumexp(
            torch.cat([to_proxy[:, None], torch.where(positive, to_samples, minus_inf)], dim=1), dim=1)
        has_negative = negative.any(dim=1)
        # a row without negatives would be a log-sum-exp of −∞ only (NaN gradient): give it finite stand-ins
        negative_logits = torch.where(negative, to_samples, torch.where(has_negative[:, None], minus_inf, 0.0))
        log_negatives = torch.logsumexp(negative_logits, dim=1)  # log N_i = log Σ_{y_k≠y_i} exp(s(l_i, l_k)/t)
        per_sample = torch.where(has_negative, F.softplus(log_negatives - log_positives),  # ℓ_i = log(1 + N_i/P_i)
                                 torch.zeros_like(log_positives))  # no negatives: numerator = denominator, ℓ_i = 0
        return per_sample.mean()  # L_2C = mean_i ℓ_i


# ------------------------------------------------------------------------------------- term
class ContrastiveLoss(LossTerm):
    """ContraGAN's conditional contrastive (2C) loss (Kang & Park 2020): projection head and class proxies."""

    needs = frozenset({"labels"})
    auxiliary = True  # not an adversarial loss: composes with one (hinge+contrastive)

    def __init__(self, num_classes: int, dim: int = DEFAULT_DIM, temperature: float = DEFAULT_TEMPERATURE) -> None:
        super().__init__()
        self.num_classes, self.dim, self.temperature = num_classes, dim, temperature
        self.register_module("projection", None)  # h = Linear(F → d), created by attach()
        self.register_module("proxies", None)  # e = Embedding(K, d), created by attach()

    def attach(self, discriminator: nn.Module) -> None:
        feature_dim = feature_dim_to_attach(NAME, discriminator, self.num_classes, self.projection)
        if feature_dim is None:
            return
        device = device_of(discriminator)
        self.projection = nn.Linear(feature_dim, self.dim, device=device)
        self.proxies = nn.Embedding(self.num_classes, self.dim, device=device)

    def embed(self, features: Tensor) -> Tensor:
        """l = h(φ(x)): the projected features (B, d) for D's features (B, F)."""
        projection = check_attached(NAME, self.projection)
        return projection(check_features(NAME, features, projection.in_features))

    def loss(self, features: Tensor, labels: Tensor) -> Tensor:
        """L_2C over the whole batch: under torchrun every rank's rows are gathered (the pairs span ranks)."""
        with torch.autocast(features.device.type, enabled=False):  # float32 features: the head runs in float32 too
            embeddings, labels = gather_rows(self.embed(features)), gather_rows(labels)
            return contrastive_2c_loss(embeddings, self.proxies.weight, labels, self.temperature)

    def discriminator_loss(self, step: DiscriminatorPhase) -> Tensor:
        return self.loss(step.real_out.features, check_labels(NAME, step.real_labels, "real"))  # L_2C on real

    def generator_loss(self, step: GeneratorPhase) -> Tensor:
        return self.loss(step.fake_out.features, check_labels(NAME, step.fake_labels, "fake"))  # L_2C on fake

    def options(self) -> dict[str, Any]:
        return {"dim": self.dim, "temperature": self.temperature}


def build_contrastive(spec: DataSpec, *, dim: int = DEFAULT_DIM,
                      temperature: float = DEFAULT_TEMPERATURE) -> ContrastiveLoss:
    """ContraGAN 2C loss (Kang & Park 2020): D on real, G on fake; options dim (512) and temperature (1.0)."""
    owner = f"loss '{NAME}'"
    dim = gantk.options.positive_int(owner, "dim", dim, hint=f"the size of the projection and of the class "
                                                             f"proxies, {DEFAULT_DIM} in StudioGAN")
    temperature = gantk.options.number_in(owner, "temperature", temperature, above=0.0, below=math.inf,
                                          what="a positive number", hint=f"t in exp(s/t): {DEFAULT_TEMPERATURE} in "
                                                                         "StudioGAN, 0.5 in the ContraGAN tutorial")
    return ContrastiveLoss(spec.num_classes, dim, temperature)


@gantk.hookimpl
def register_losses(register):
    register("contrastive", build_contrastive, summary="ContraGAN conditional contrastive 2C loss (Kang & Park "
                                                       "2020); needs labels; options dim, temperature")
