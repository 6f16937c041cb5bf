"""The auxiliary classifier loss ``ac`` (ACGAN: Odena, Olah & Shlens 2017, "Conditional Image Synthesis
with Auxiliary Classifier GANs", arXiv:1610.09585).

D gets a second head, a classifier ``cls = Linear(F → K)`` on its penultimate features; D learns to
classify real samples (and, with ``fake=True``, fakes by the label they were generated for) and G
learns to make fakes that D classifies as their label:

    L_D = CE(cls(φ(x)), y) [+ CE(cls(φ(x~)), y~)]        L_G = CE(cls(φ(x~)), y~)

The paper and the ACGAN tutorial train D on real and fake (``fake=True``); StudioGAN's ACGAN-Mod
trains it on real only (``fake=False``, the default: classifying fakes by the label they were asked
for rewards D for G's mistakes). The term is added to an adversarial loss: ``ns+ac``, ``hinge+ac``,
``hinge+0.5*ac``. The head is created by :meth:`AuxiliaryClassifierLoss.attach` from D's
``feature_dim``, trains with D's optimizer and is saved in checkpoints. Everything works on logits
through ``F.cross_entropy`` (never a Softmax layer followed by a log-loss: the tutorial's double
softmax).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

import gantk
from gantk.options import as_bool
from gantk.plugins.losses._heads import check_attached, check_features, check_labels, device_of, feature_dim_to_attach
from gantk.protocols import DataSpec, DiscriminatorPhase, GeneratorPhase, LossTerm

NAME = "ac"


# ------------------------------------------------------------------------------------ maths
def classifier_cross_entropy(class_logits: Tensor, labels: Tensor) -> Tensor:
    """E CE(c, y) = −E log softmax(c)_y for class logits (B, K) and int64 labels (B,)."""
    return F.cross_entropy(class_logits, labels.long())  # −E [c_y − log Σ_k exp(c_k)], stable for any c


def ac_discriminator_loss(real_class_logits: Tensor, real_labels: Tensor, fake_class_logits: Tensor | None = None,
                          fake_labels: Tensor | None = None) -> Tensor:
    """D's auxiliary classifier loss: CE on real, plus CE on fake when fake logits are given."""
    loss = classifier_cross_entropy(real_class_logits, real_labels)  # CE(cls(φ(x)), y)
    if fake_class_logits is not None:
        loss = loss + classifier_cross_entropy(fake_class_logits, fake_labels)  # + CE(cls(φ(x~)), y~)
    return loss


def ac_generator_loss(fake_class_logits: Tensor, fake_labels: Tensor) -> Tensor:
    """G's auxiliary classifier loss: make D classify each fake as the label it was generated for."""
    return classifier_cross_entropy(fake_class_logits, fake_labels)  # L_G = CE(cls(φ(x~)), y~)


# ------------------------------------------------------------------------------------- term
class AuxiliaryClassifierLoss(LossTerm):
    """ACGAN's auxiliary classifier loss (Odena et al. 2017) with a ``Linear(F → K)`` head on D's features."""

    needs = frozenset({"labels"})
    auxiliary = True  # not an adversarial loss: composes with one (ns+ac)

    def __init__(self, num_classes: int, fake: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.fake = fake
        self.register_module("classifier", None)  # Linear(F → K), created by attach()

    def attach(self, discriminator: nn.Module) -> None:
        feature_dim = feature_dim_to_attach(NAME, discriminator, self.num_classes, self.classifier)
        if feature_dim is None:
            return
        self.classifier = nn.Linear(feature_dim, self.num_classes, device=device_of(discriminator))

    def class_logits(self, features: Tensor) -> Tensor:
        """cls(φ(x)): the head's class logits (B, K) for D's features (B, F)."""
        classifier = check_attached(NAME, self.classifier)
        return classifier(check_features(NAME, features, classifier.in_features))

    def discriminator_loss(self, step: DiscriminatorPhase) -> Tensor:
        real_labels = check_labels(NAME, step.real_labels, "real")
        real_logits = self.class_logits(step.real_out.features)
        if not self.fake:
            return ac_discriminator_loss(real_logits, real_labels)
        fake_labels = check_labels(NAME, step.fake_labels, "fake")
        return ac_discriminator_loss(real_logits, real_labels, self.class_logits(step.fake_out.features), fake_labels)

    def generator_loss(self, step: GeneratorPhase) -> Tensor:
        fake_labels = check_labels(NAME, step.fake_labels, "fake")
        return ac_generator_loss(self.class_logits(step.fake_out.features), fake_labels)

    def options(self) -> dict[str, Any]:
        return {"fake": self.fake}


def build_ac(spec: DataSpec, *, fake: bool = False) -> AuxiliaryClassifierLoss:
    """ACGAN auxiliary classifier (Odena 2017): D CE(cls(x), y) [+ CE(cls(x~), y~) if fake=true], G CE(cls(x~), y~)."""
    return AuxiliaryClassifierLoss(spec.num_classes, as_bool(f"loss '{NAME}'", "fake", fake))


@gantk.hookimpl
def register_losses(register):
    register("ac", build_ac, summary="ACGAN auxiliary classifier (Odena 2017) on D's features; needs labels; "
                                     "option fake (also classify fakes, as the paper)")
