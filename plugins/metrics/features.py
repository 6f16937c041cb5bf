"""Feature extractors for the sample-quality metrics, and the features of real and generated samples.

Three extractors, chosen with the metrics' ``features`` option (``gantk eval --features``):

- ``classifier``: the penultimate features (and class probabilities) of the small CNN trained on
  the real data set (:mod:`gantk.plugins.metrics.classifier`); offline, in-domain, the default for
  the embedded labelled image sets. Its numbers are comparable between gantk runs on the same data
  set, not with published Inception FIDs.
- ``inception``: Inception-v3 pool features from the FID weights file the user names
  (:mod:`gantk.plugins.metrics.inception`); the default for other image sets; comparable with
  published numbers when the protocol (samples, reference set) matches.
- ``raw``: the samples themselves, for vector data (the 2-D and 1-D sets).

Real features are cached as safetensors under ``$GANTK_CACHE_DIR/features`` per data set (name and
SHA-256 of its samples), extractor (and a SHA-256 of its weights), sample count and seed.
Generated samples are drawn with a seeded latent; a conditional generator gets balanced labels
(``n / K`` per class, the first ``n mod K`` classes one more).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor, nn

import gantk
from gantk.errors import UsageError
from gantk.plugins.metrics.classifier import (data_sha256, default_cache_dir, load_or_train_classifier,
                                              require_labelled_images)
from gantk.protocols import Dataset
from gantk.engine.safetensors_io import read_safetensors, write_safetensors
from gantk.engine.sampling import draw

EXTRACTORS = ("auto", "classifier", "inception", "raw")


class FeatureExtractor(Protocol):
    """Maps samples to feature vectors (and, for IS, to class probabilities)."""

    name: str
    dim: int
    weights_sha256: str

    def features(self, samples: Tensor) -> Tensor: ...

    def probabilities(self, samples: Tensor) -> Tensor: ...


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _batched(function, samples: Tensor, batch_size: int, device: torch.device | str) -> Tensor:
    with torch.no_grad():
        return torch.cat([function(samples[i:i + batch_size].to(device, torch.float32)).float().cpu()
                          for i in range(0, len(samples), batch_size)])


class ClassifierFeatures:
    """The in-domain classifier's penultimate features (global-average-pooled conv features)."""

    name = "classifier"

    def __init__(self, dataset: Dataset, *, device: torch.device | str = "cpu", batch_size: int = 500) -> None:
        require_labelled_images(dataset, "The 'classifier' feature extractor")
        self.model, info = load_or_train_classifier(dataset, device=device)
        self.device, self.batch_size = device, batch_size
        self.dim = self.model.feature_dim
        self.weights_sha256 = file_sha256(info.cache_path)
        self.heldout_accuracy = info.heldout_accuracy

    def features(self, samples: Tensor) -> Tensor:
        return _batched(self.model.features, samples, self.batch_size, self.device)

    def probabilities(self, samples: Tensor) -> Tensor:
        return _batched(lambda x: self.model(x).softmax(dim=1), samples, self.batch_size, self.device)


class RawFeatures:
    """The samples themselves, flattened: for vector data, where the coordinates are the features."""

    name = "raw"
    weights_sha256 = ""

    def __init__(self, dataset: Dataset) -> None:
        self.dim = dataset.spec.flat_dim

    def features(self, samples: Tensor) -> Tensor:
        return samples.reshape(len(samples), -1).float().cpu()

    def probabilities(self, samples: Tensor) -> Tensor:
        raise UsageError("The inception score needs class probabilities, which raw features (the samples "
                         "themselves) do not give. Use --features classifier or --features inception with an "
                         "image data set, or drop 'is'.")


def make_extractor(kind: str, dataset: Dataset, *, device: torch.device | str = "cpu",
                   inception_weights: str | Path | None = None) -> FeatureExtractor:
    """The extractor named ``kind``; ``auto`` picks raw (vectors), classifier (labelled images), else inception."""
    if kind not in EXTRACTORS:
        raise UsageError(f"Unknown feature extractor '{kind}'. Use one of {', '.join(EXTRACTORS)}.")
    spec = dataset.spec
    if kind == "auto":
        if not spec.is_image:
            kind = "raw"
        elif dataset.labels is not None and dataset.samples is not None and spec.num_classes > 1 \
                and inception_weights is None:
            kind = "classifier"
        else:
            kind = "inception"
    if kind == "raw":
        return RawFeatures(dataset)
    if kind == "classifier":
        return ClassifierFeatures(dataset, device=device)
    from gantk.plugins.metrics.inception import InceptionFeatures  # torchvision's Inception: loaded when asked
    if not spec.is_image:
        raise UsageError(f"Inception features are for images, but '{spec.name}' holds vectors of shape "
                         f"{spec.shape}. Use --features raw (the default for vector data).")
    return InceptionFeatures(inception_weights, device=device)


# ---------------------------------------------------------------------------------- samples
@dataclass(frozen=True)
class SampleSet:
    """Samples with their labels (None when unlabelled) and their features; a real set also records
    the SHA-256 of the data set it was drawn from (for the metrics' protocol)."""

    samples: Tensor | None
    labels: Tensor | None
    features: Tensor
    data_sha256: str = ""


def balanced_labels(n: int, num_classes: int) -> Tensor:
    """``n`` labels cycling through the classes: n // K of each, the first n mod K classes one more."""
    return torch.arange(n) % num_classes


def generated_set(extractor: FeatureExtractor, generator: nn.Module, n: int, *, seed: int,
                  device: torch.device | str = "cpu") -> SampleSet:
    """``n`` samples of ``generator`` (eval mode, seeded latents, balanced labels when conditional)."""
    labels = balanced_labels(n, generator.num_classes) if generator.conditional else None
    samples = draw(generator, n, seed=seed, labels=labels, device=device)  # eval mode, float32
    return SampleSet(samples, labels, extractor.features(samples))


def real_set(extractor: FeatureExtractor, dataset: Dataset, n: int, *, seed: int,
             cache_dir: str | Path | None = None) -> SampleSet:
    """Features of ``min(n, len(dataset))`` real samples (a seeded random subset), cached as safetensors."""
    if dataset.samples is None:
        raise UsageError(f"The sample-quality metrics read the real data from memory, but '{dataset.spec.name}' is "
                         "streamed from disk. Use a smaller --image-size so that it fits, or an embedded data set.")
    count = min(n, len(dataset.samples))
    digest = data_sha256(dataset)
    folder = (Path(cache_dir) if cache_dir is not None else default_cache_dir().parent) / "features"
    path = folder / (f"{dataset.spec.name}-{digest[:16]}-{extractor.name}-{extractor.weights_sha256[:16] or 'none'}"
                     f"-n{count}-seed{seed}.safetensors")
    metadata = {"gantk.dataset": dataset.spec.name, "gantk.data_sha256": digest, "gantk.extractor": extractor.name,
                "gantk.weights_sha256": extractor.weights_sha256, "gantk.count": str(count), "gantk.seed": str(seed)}
    chosen = torch.randperm(len(dataset.samples), generator=torch.Generator().manual_seed(seed))[:count]
    labels = dataset.labels[chosen] if dataset.labels is not None else None
    if path.exists():
        try:
            tensors, stored = read_safetensors(path)
            if all(stored.get(key) == value for key, value in metadata.items()):
                return SampleSet(None, labels, tensors["features"], digest)
        except gantk.GantkError:
            pass  # unreadable: recomputed and rewritten below
    features = extractor.features(dataset.samples[chosen])
    write_safetensors(path, {"features": features.contiguous()}, metadata)
    return SampleSet(None, labels, features, digest)
