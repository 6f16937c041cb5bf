"""Sample-quality metric plugins: ``fid``, ``kid``, ``is``, ``pr``, ``dc``, ``ifid`` and ``idc`` (ALGORITHMS.md §4).

Each is ``metric(generator, dataset, *, device, shared=None) -> dict[str, float]``. They draw
``n`` generated samples (seeded) and compare their features with those of ``n`` real samples (a
seeded subset, features cached); the maths is in :mod:`gantk.plugins.metrics.formulas`. Metrics
evaluated together (``gantk eval --metrics fid,kid,pr``) pass one ``shared`` dict so that the
samples and features are computed once. After a call, ``metric.protocol`` records how the
number was made (extractor and weights hash, sample counts, seed, data set, the SHA-256 of in-memory
samples and the data set's fingerprint).

Options (``gantk eval -M KEY=VALUE``): ``n`` (samples per side, default 5000), ``seed`` (0),
``features`` (auto, classifier, inception, raw), ``inception_weights`` (a path; else
``$GANTK_INCEPTION_WEIGHTS``), and ``k`` for ``pr`` (3), ``dc`` and ``idc`` (5); ``idc`` takes ``n_per_class``
(200) instead of ``n``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

import gantk
from gantk.errors import UsageError
from gantk.options import choice, positive_int
from gantk.plugins.metrics.features import EXTRACTORS, SampleSet, generated_set, make_extractor, real_set
from gantk.plugins.metrics.formulas import (FewSamplesWarning, density_coverage, frechet_distance, gaussian_statistics,
                                            inception_score, kernel_inception_distance, precision_recall)
from gantk.protocols import Dataset

DEFAULT_N = 5000


class FeatureMetric:
    """Shared machinery: the extractor, real and generated feature sets, the protocol record."""

    name = ""
    # gantk.Metric's declarations: a distance is lower-is-better (FID, KID); the others larger-is-better
    lower_is_better: frozenset[str] = frozenset()
    default_for_conditional = False
    shares_features = True

    def __init__(self, n: int = DEFAULT_N, seed: int = 0, features: str = "auto",
                 inception_weights: str | None = None) -> None:
        self.n, self.seed = positive_int(self.owner, "n", n), int(seed)
        self.features = choice(self.owner, "features", features, EXTRACTORS)
        self.inception_weights = inception_weights
        self.protocol: dict[str, Any] = {}

    @property
    def owner(self) -> str:
        """How option errors name this metric: ``metric 'fid'``."""
        return f"metric '{self.name}'"

    def __call__(self, generator: nn.Module, dataset: Dataset, *, device: torch.device | str = "cpu",
                 shared: dict | None = None) -> dict[str, float]:
        shared = {} if shared is None else shared
        extractor, key = self.extractor(dataset, device, shared)
        sets_key = (key, self.n, self.seed)
        if ("sets", sets_key) not in shared:
            shared[("sets", sets_key)] = (real_set(extractor, dataset, self.n, seed=self.seed),
                                          generated_set(extractor, generator, self.n, seed=self.seed, device=device))
        real, fake = shared[("sets", sets_key)]
        self.record_protocol(extractor, dataset, real, real_samples=len(real.features),
                             generated_samples=len(fake.features))
        return self.score(real, fake, extractor)

    def extractor(self, dataset: Dataset, device: torch.device | str, shared: dict) -> tuple[Any, tuple]:
        """This metric's feature extractor, made once per evaluation (kept in ``shared``), and its key."""
        key = (self.features, str(self.inception_weights), str(device))
        if ("extractor", key) not in shared:
            shared[("extractor", key)] = make_extractor(self.features, dataset, device=device,
                                                        inception_weights=self.inception_weights)
        return shared[("extractor", key)], key

    def record_protocol(self, extractor, dataset: Dataset, real: SampleSet, **counts: Any) -> None:
        """``self.protocol``: the extractor and its weights, the sample counts, seed, data set and versions."""
        self.protocol = {"metric": self.name, "extractor": extractor.name, "feature_dim": extractor.dim,
                         "weights_sha256": extractor.weights_sha256, **counts, "seed": self.seed,
                         "dataset": dataset.spec.name, "data_sha256": real.data_sha256,
                         "data_fingerprint": dataset.fingerprint,
                         "gantk_version": gantk.__version__}

    def score(self, real: SampleSet, fake: SampleSet, extractor) -> dict[str, float]:
        raise NotImplementedError


class FID(FeatureMetric):
    """Fréchet distance between Gaussians fitted to real and generated features (Heusel et al. 2017)."""

    name = "fid"
    lower_is_better = frozenset({"fid"})

    def score(self, real, fake, extractor):
        return {"fid": frechet_distance(gaussian_statistics(real.features), gaussian_statistics(fake.features))}


class KID(FeatureMetric):
    """Kernel inception distance: unbiased MMD², cubic kernel, 100 subsets of ≤ 1000 (Bińkowski et al. 2018)."""

    name = "kid"
    lower_is_better = frozenset({"kid"})

    def __init__(self, subsets: int = 100, subset_size: int = 1000, **options) -> None:
        super().__init__(**options)
        self.subsets = positive_int(self.owner, "subsets", subsets)
        self.subset_size = positive_int(self.owner, "subset_size", subset_size)

    def score(self, real, fake, extractor):
        mean, std = kernel_inception_distance(real.features, fake.features, subsets=self.subsets,
                                              subset_size=self.subset_size, seed=self.seed)
        return {"kid": mean, "kid_std": std}


class InceptionScore(FeatureMetric):
    """exp(E_x KL(p(y|x) ‖ p(y))) over 10 splits of the generated samples (Salimans et al. 2016)."""

    name = "is"

    def score(self, real, fake, extractor):
        mean, std = inception_score(extractor.probabilities(fake.samples), splits=10)
        return {"is": mean, "is_std": std}


class NeighbourMetric(FeatureMetric):
    """A k-NN-ball metric: ``formula(real, fake, k=k)`` gives the two values named ``outputs``."""

    default_k = 3
    outputs: tuple[str, str] = ("", "")

    def __init__(self, k: int | None = None, **options) -> None:
        super().__init__(**options)
        self.k = positive_int(self.owner, "k", self.default_k if k is None else k)

    @staticmethod
    def formula(real, fake, *, k):
        raise NotImplementedError

    def score(self, real, fake, extractor):
        return dict(zip(self.outputs, self.formula(real.features, fake.features, k=self.k)))


class PrecisionRecall(NeighbourMetric):
    """Improved precision and recall with k-NN balls, k = 3 (Kynkäänniemi et al. 2019)."""

    name, default_k, outputs = "pr", 3, ("precision", "recall")
    formula = staticmethod(precision_recall)


class DensityCoverage(NeighbourMetric):
    """Density and coverage with k-NN balls around the real samples, k = 5 (Naeem et al. 2020)."""

    name, default_k, outputs = "dc", 5, ("density", "coverage")
    formula = staticmethod(density_coverage)


class IntraClassFID(FeatureMetric):
    """FID per class (generated with label k against real samples of class k), and their mean."""

    name = "ifid"
    lower_is_better = frozenset({"ifid"})

    def score(self, real, fake, extractor):
        if real.labels is None or fake.labels is None:
            raise UsageError("The metric 'ifid' compares each class's generated and real samples, so it needs a "
                             "labelled data set and a conditional generator. Use 'fid' for this run.")
        per_class = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewSamplesWarning)  # per-class sets are small; the mean still ranks runs
            for k in sorted(set(real.labels.tolist())):
                real_k, fake_k = real.features[real.labels == k], fake.features[fake.labels == k]
                if len(real_k) > 1 and len(fake_k) > 1:
                    per_class[k] = frechet_distance(gaussian_statistics(real_k), gaussian_statistics(fake_k))
        return {"ifid": sum(per_class.values()) / len(per_class), **{f"ifid/{k}": v for k, v in per_class.items()}}


class IntraClassDensityCoverage(FeatureMetric):
    """Density and coverage per class (Naeem et al. 2020, k = 5), averaged, beside the real-vs-real coverage.

    For each class k: m generated samples of label k against m real samples of class k (the reference,
    whose k-NN balls define both values), and a disjoint set of m other real samples of class k against
    the same reference (real-vs-real). m = min(``n_per_class``, the smallest class's size / 2).
    Accuracy rewards one good sample per class; this measures how much of each class is drawn.
    """

    name = "idc"
    default_for_conditional = True

    def __init__(self, n_per_class: int = 200, k: int = 5, seed: int = 0, features: str = "auto",
                 inception_weights: str | None = None) -> None:
        n_per_class = positive_int(self.owner, "n_per_class", n_per_class)
        super().__init__(n=n_per_class, seed=seed, features=features, inception_weights=inception_weights)
        self.k = positive_int(self.owner, "k", k)

    def __call__(self, generator: nn.Module, dataset: Dataset, *, device: torch.device | str = "cpu",
                 shared: dict | None = None) -> dict[str, float]:
        classes = dataset.spec.num_classes
        if not generator.conditional:
            raise UsageError(
                f"The metric 'idc' compares each class's generated samples with the real samples of that class, but "
                f"this '{generator.__class__.__name__}' is unconditional (it ignores labels), so it has no classes "
                "to compare. Use 'dc' (density and coverage over all samples) for this run, or train a conditional "
                "generator (e.g. gantk train --loss hinge+ac) and evaluate that one.")
        if classes < 2:
            raise UsageError(f"The metric 'idc' needs class labels, but '{dataset.spec.name}' has none. Use 'dc' "
                             "(density and coverage over all samples) for an unlabelled data set.")
        if generator.num_classes != classes:
            raise UsageError(
                f"The metric 'idc' needs a generator of the data set's classes, but the generator knows "
                f"{generator.num_classes} classes and '{dataset.spec.name}' has {classes}. Evaluate it on the "
                "data set it was trained on.")
        extractor, _ = self.extractor(dataset, device, {} if shared is None else shared)
        # every real sample in a seeded order (cached): class k's first m are its reference, the next m held out
        real = real_set(extractor, dataset, len(dataset), seed=self.seed)
        members = [torch.nonzero(real.labels == label).flatten() for label in range(classes)]
        smallest = min(range(classes), key=lambda label: len(members[label]))
        per_class = min(self.n, len(members[smallest]) // 2)
        if per_class <= self.k:
            raise UsageError(
                f"The metric 'idc' splits each class's real samples into two halves of more than k = {self.k}, but "
                f"class {smallest} of '{dataset.spec.name}' has only {len(members[smallest])} samples. Use a data set "
                f"with at least {2 * (self.k + 1)} samples per class, or a smaller k (-M idc.k=3).")
        fake = generated_set(extractor, generator, per_class * classes, seed=self.seed, device=device)  # balanced
        values: dict[str, float] = {}
        density, coverage, real_coverage = [], [], []
        for label in range(classes):
            reference = real.features[members[label][:per_class]]
            held_out = real.features[members[label][per_class:2 * per_class]]
            generated_density, generated_coverage = density_coverage(reference, fake.features[fake.labels == label],
                                                                     k=self.k)
            real_coverage.append(density_coverage(reference, held_out, k=self.k)[1])
            density.append(generated_density)
            coverage.append(generated_coverage)
            values[f"idc_coverage/{label}"] = generated_coverage
        mean_coverage, mean_real_coverage = sum(coverage) / classes, sum(real_coverage) / classes
        self.record_protocol(extractor, dataset, real, k=self.k, classes=classes, real_samples_per_class=per_class,
                             held_out_real_samples_per_class=per_class, generated_samples_per_class=per_class)
        return {"idc_density": sum(density) / classes, "idc_coverage": mean_coverage,
                "idc_coverage_real": mean_real_coverage,
                # the share of real-vs-real coverage reached: 1 = each class as varied as real data (at this m)
                "idc_coverage_ratio": mean_coverage / mean_real_coverage if mean_real_coverage > 0 else 0.0,
                **values}


@gantk.hookimpl
def register_metrics(register):
    register("fid", FID, summary="Fréchet distance of real and generated features (Heusel 2017); float64, eigh")
    register("kid", KID, summary="kernel inception distance: unbiased MMD², cubic kernel, 100 subsets (Bińkowski 2018)")
    register("is", InceptionScore, summary="inception score over 10 splits (Salimans 2016); needs class probabilities")
    register("pr", PrecisionRecall, summary="improved precision and recall, k = 3 (Kynkäänniemi 2019)")
    register("dc", DensityCoverage, summary="density and coverage, k = 5 (Naeem 2020)")
    register("ifid", IntraClassFID, summary="intra-class FID: FID per class, averaged (conditional generators)")
    register("idc", IntraClassDensityCoverage,
             summary="density and coverage per class, k = 5 (Naeem 2020), and coverage against real-vs-real")
