"""Checks shared by the loss terms that put a head on the discriminator's features (``ac``, ``contrastive``)."""

from __future__ import annotations


import torch
from torch import Tensor, nn

import gantk


def feature_dim_of(term: str, discriminator: nn.Module) -> int:
    """D's ``feature_dim`` as a positive int, or a usage error naming what is missing."""
    value = getattr(discriminator, "feature_dim", None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise gantk.UsageError(
            f"The loss term '{term}' puts a head on the discriminator's features, but the discriminator "
            f"{type(discriminator).__name__} has no positive integer feature_dim (got {value!r}). A gantk "
            "discriminator returns DiscriminatorOutput(logits, features) and sets feature_dim = features.shape[1].")
    return value


def device_of(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer (CPU for a module without tensors)."""
    tensors = (*module.parameters(), *module.buffers()) if isinstance(module, nn.Module) else ()
    for tensor in tensors:
        return tensor.device
    return torch.device("cpu")


def check_attached(term: str, head: nn.Module | None) -> nn.Module:
    if head is None:
        raise gantk.UsageError(
            f"The loss term '{term}' has no head yet: call attach(discriminator) once before computing losses "
            "(the engine does so before making the optimizers; a custom training procedure must too).")
    return head


def check_labels(term: str, labels: Tensor | None, which: str) -> Tensor:
    if labels is None:
        raise gantk.UsageError(
            f"The loss term '{term}' needs class labels, but this training step passed no {which} labels. "
            "Use a labelled data set (e.g. --dataset mnist5k) or drop the term.")
    return labels


def check_features(term: str, features: Tensor, feature_dim: int) -> Tensor:
    if features.dim() != 2 or features.shape[1] != feature_dim:
        raise gantk.UsageError(
            f"The loss term '{term}' was attached to a discriminator with feature_dim={feature_dim}, but the "
            f"discriminator returned features of shape {tuple(features.shape)}; they must be (batch, "
            f"{feature_dim}). Fix the discriminator's feature_dim or its features.")
    return features


def feature_dim_to_attach(term: str, discriminator: nn.Module, num_classes: int, head: nn.Linear | None) -> int | None:
    """D's feature_dim for a new head, or None when ``head`` is already attached to features of that size.

    Refuses unlabelled data and a second discriminator with other features (usage errors).
    """
    feature_dim = feature_dim_of(term, discriminator)
    if num_classes < 1:
        raise gantk.UsageError(f"The loss term '{term}' needs a labelled data set (num_classes > 0); "
                               "this one has no classes. Use a labelled data set or drop the term.")
    if head is None:
        return feature_dim
    if head.in_features != feature_dim:
        raise gantk.UsageError(f"The loss term '{term}' is already attached to a discriminator with "
                               f"feature_dim={head.in_features}, not {feature_dim}.")
    return None  # attached before (e.g. rebuilt for a resumed run): keep the trained head
