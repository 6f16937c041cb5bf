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

Real samples are read a batch at a time (uint8 pixels mapped to [-1, 1] per batch); a streamed set
(``samples`` None) is read by one DataLoader pass over the chosen indices, never whole. Real features
(and labels) are cached as safetensors under ``$GANTK_CACHE_DIR/features`` (see :func:`real_features_dir`),
one file per SHA-256 of what changes them: data set name, shape, ``fingerprint`` and the SHA-256 of
in-memory samples, extractor, feature size and weights' SHA-256, sample count and seed. A damaged or
mismatched file is recomputed and replaced; a streamed set without a fingerprint is never cached on
disk, only in this process, for as long as its stream object lives. Extracting them shows its progress
as one-time work (:func:`gantk.engine.progress.one_time_work`) and names the cache file.
Generated samples are drawn with a seeded latent; a conditional generator gets balanced labels
(``n / K`` per class, the first ``n mod K`` classes one more).
"""

from __future__ import annotations

import hashlib
import json
import re
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

import gantk
from gantk.engine.cpu_share import usable_cores
from gantk.engine.progress import notice, one_time_work
from gantk.errors import UsageError
from gantk.plugins.metrics.classifier import (data_sha256, default_cache_dir, load_or_train_classifier,
                                              require_labelled_images)
from gantk.protocols import Dataset, signed_unit
from gantk.engine.safetensors_io import read_safetensors, write_safetensors
from gantk.engine.sampling import draw

EXTRACTORS = ("auto", "classifier", "inception", "raw")
#: Real samples read (and mapped to [-1, 1]) at a time, from memory or from a stream.
REAL_BATCH = 256
#: Bump when the real-feature pipeline or its cache files change: older cache files are then recomputed.
REAL_FEATURES_VERSION = 2
#: Real features of streamed sets without a fingerprint, per stream object, for as long as it lives.
_STREAM_MEMO: "weakref.WeakKeyDictionary[object, dict[str, SampleSet]]" = weakref.WeakKeyDictionary()


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


def _labelled(dataset: Dataset) -> bool:
    """Whether the real features come with labels: the in-memory labels, or a labelled streamed set's."""
    return dataset.labels is not None if dataset.samples is not None else dataset.spec.labelled


def _loader_workers(count: int) -> int:
    """DataLoader workers for a streaming pass: up to 4 (one core left to the extractor), none for one batch."""
    if count <= REAL_BATCH:
        return 0  # starting processes costs more than reading one batch
    cores = usable_cores()
    return max(0, min(4, cores - 1))


def _real_batches(dataset: Dataset, chosen: Tensor, workers: int | None) -> Iterator[tuple[Tensor, Tensor | None]]:
    """The ``chosen`` samples as stored (uint8 pixels or float32) with their labels, :data:`REAL_BATCH` at a
    time: sliced from memory, or read from ``dataset.stream`` (a DataLoader over just those indices)."""
    if dataset.samples is not None:
        for start in range(0, len(chosen), REAL_BATCH):
            index = chosen[start:start + REAL_BATCH]
            yield dataset.samples[index], dataset.labels[index].cpu() if dataset.labels is not None else None
        return
    workers = _loader_workers(len(chosen)) if workers is None else workers
    loader = DataLoader(Subset(dataset.stream, chosen.tolist()), batch_size=REAL_BATCH, shuffle=False,
                        num_workers=workers)
    for samples, labels in loader:
        yield samples, torch.as_tensor(labels, dtype=torch.int64) if dataset.spec.labelled else None


def _extract(extractor: FeatureExtractor, dataset: Dataset, chosen: Tensor, workers: int | None,
             digest: str) -> SampleSet:
    """The real :class:`SampleSet` of the ``chosen`` samples, extracted now, one batch in [-1, 1] at a time
    (shown as one-time work: later evaluations find them cached)."""
    features, labels, done = [], [], 0
    with one_time_work(f"Extracting the {extractor.name} features of {len(chosen)} real samples of "
                       f"{dataset.spec.name} (first use)", unit="samples") as advance:
        for samples, batch_labels in _real_batches(dataset, chosen, workers):
            features.append(extractor.features(signed_unit(samples)))  # uint8: x/255·2 − 1
            if batch_labels is not None:
                labels.append(batch_labels)
            done += len(samples)
            advance(done, len(chosen))
    return SampleSet(None, torch.cat(labels) if labels else None, torch.cat(features), digest)


def real_features_dir(cache_dir: str | Path | None = None) -> Path:
    """Where real features are cached: ``<cache_dir>/features``, by default ``$GANTK_CACHE_DIR/features``, else
    ``$XDG_CACHE_HOME/gantk/features``, else ``~/.cache/gantk/features``."""
    return (Path(cache_dir) if cache_dir is not None else default_cache_dir().parent) / "features"


def _identity(extractor: FeatureExtractor, dataset: Dataset, count: int, seed: int, digest: str) -> dict[str, str]:
    """Everything that changes the real features, as the cache file's metadata (its SHA-256 is the file's key)."""
    return {"gantk.kind": "real-features", "gantk.recipe": str(REAL_FEATURES_VERSION),
            "gantk.dataset": dataset.spec.name, "gantk.shape": json.dumps(list(dataset.spec.shape)),
            "gantk.fingerprint": dataset.fingerprint, "gantk.data_sha256": digest,
            "gantk.extractor": extractor.name, "gantk.feature_dim": str(extractor.dim),
            "gantk.weights_sha256": extractor.weights_sha256, "gantk.count": str(count), "gantk.seed": str(seed)}


def _cache_path(folder: Path, identity: dict[str, str]) -> Path:
    """``<data set>-<extractor>-n<count>-seed<seed>-<first 16 hex digits of the identity's SHA-256>.safetensors``."""
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", identity["gantk.dataset"]).strip("._") or "dataset"
    return folder / (f"{name}-{identity['gantk.extractor']}-n{identity['gantk.count']}-seed{identity['gantk.seed']}"
                     f"-{key[:16]}.safetensors")


def _read_cached(path: Path, identity: dict[str, str], dim: int, labelled: bool
                 ) -> tuple[Tensor, Tensor | None] | None:
    """The features (and labels) cached at ``path`` for ``identity``; None if absent, damaged or made for other data."""
    if not path.is_file():
        return None
    try:
        tensors, stored = read_safetensors(path)  # checks the SHA-256 gantk recorded of the tensors
    except gantk.GantkError:
        return None
    if any(stored.get(key) != value for key, value in identity.items()):
        return None
    count = int(identity["gantk.count"])
    features, labels = tensors.get("features"), tensors.get("labels")
    if features is None or features.dtype != torch.float32 or tuple(features.shape) != (count, dim):
        return None
    if labelled != (labels is not None) or (labels is not None and tuple(labels.shape) != (count,)):
        return None
    return features, labels


def real_set(extractor: FeatureExtractor, dataset: Dataset, n: int, *, seed: int,
             cache_dir: str | Path | None = None, workers: int | None = None) -> SampleSet:
    """Features of ``min(n, len(dataset))`` real samples (a seeded random subset), cached as safetensors.

    In-memory samples are read :data:`REAL_BATCH` at a time; a streamed set is read once by a DataLoader
    over the chosen indices only (``workers`` processes, default up to 4). The cache is keyed by the data's
    identity (``dataset.fingerprint``, and the SHA-256 of in-memory samples), the extractor and its weights,
    the sample shape, count and seed; a streamed set without a fingerprint is kept in this process only.
    """
    count = min(n, len(dataset))
    chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    digest = data_sha256(dataset) if dataset.samples is not None else ""
    identity = _identity(extractor, dataset, count, seed, digest)
    if not (digest or dataset.fingerprint):  # nothing identifies the data beyond this stream object
        memo, key = _memo_of(dataset.stream), json.dumps(identity, sort_keys=True)
        if key not in memo:
            memo[key] = _extract(extractor, dataset, chosen, workers, digest)
        return memo[key]
    path = _cache_path(real_features_dir(cache_dir), identity)
    cached = _read_cached(path, identity, extractor.dim, _labelled(dataset))
    if cached is not None:
        return SampleSet(None, cached[1], cached[0], digest)
    real = _extract(extractor, dataset, chosen, workers, digest)
    tensors = {"features": real.features} if real.labels is None else {"features": real.features, "labels": real.labels}
    write_safetensors(path, tensors, identity)  # atomically; replaces a damaged or stale file
    notice(f"Real features cached at {path}; the next run reuses them.")
    return real


def _memo_of(stream: object) -> dict[str, SampleSet]:
    """The in-process memo of ``stream``'s real features (a throwaway dict when it cannot be weakly referenced)."""
    try:
        return _STREAM_MEMO.setdefault(stream, {})
    except TypeError:
        return {}
