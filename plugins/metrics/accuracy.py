"""``accuracy``: conditional accuracy (ALGORITHMS.md §4).

A classifier trained on the real data (see :mod:`gantk.plugins.metrics.classifier`) labels
samples a conditional generator made for each class; the score is the share whose predicted
class is the one they were generated for, overall and per class (``accuracy/<k>``). It is only
meaningful next to the classifier's own held-out accuracy on real data, reported beside it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import gantk
from gantk.errors import UsageError
from gantk.options import positive_int
from gantk.plugins.metrics.classifier import classify, load_or_train_classifier, require_labelled_images
from gantk.protocols import Dataset
from gantk.engine.sampling import draw

METRIC = "The conditional-accuracy metric"


class ConditionalAccuracy:
    """Scores ``generator(z, y)`` against ``dataset``: ``metric(generator, dataset, device="cpu") -> dict``.

    ``n_per_class`` samples per class, latents from a generator seeded with ``seed``; the
    classifier is trained with ``classifier_seed`` and cached in ``cache_dir``. The generator
    must already be on ``device``; it runs in eval mode (its mode is restored afterwards).
    """

    # gantk.Metric's declarations: larger is better; the metric --eval-every uses for conditional generators
    lower_is_better: frozenset[str] = frozenset()
    default_for_conditional = True
    shares_features = False

    def __init__(self, n_per_class: int = 100, seed: int = 0, cache_dir: str | Path | None = None,
                 classifier_seed: int = 0, batch_size: int = 500, n: int | None = None) -> None:
        self.n_per_class = positive_int("metric 'accuracy'", "n_per_class", n_per_class)
        #: ``n`` (gantk eval --n): samples in all, split evenly over the classes; replaces n_per_class
        self.n = None if n is None else positive_int("metric 'accuracy'", "n", n)
        self.batch_size = positive_int("metric 'accuracy'", "batch_size", batch_size)
        self.seed = int(seed)
        self.cache_dir, self.classifier_seed = cache_dir, int(classifier_seed)
        self.protocol: dict = {}

    def __call__(self, generator: nn.Module, dataset: Dataset, *, device: str | torch.device = "cpu") -> dict[str, float]:
        _require_conditional(generator)
        require_labelled_images(dataset, METRIC)
        classes = dataset.spec.num_classes
        _require_same_classes(generator, classes, dataset.spec.name)
        per_class_count = self.n_per_class if self.n is None else max(1, self.n // classes)
        labels = torch.arange(classes).repeat_interleave(per_class_count)
        samples = draw(generator, len(labels), seed=self.seed, labels=labels, batch_size=self.batch_size,
                       device=device)  # eval mode
        if tuple(samples.shape[1:]) != dataset.spec.shape:
            raise UsageError(
                f"{METRIC} compares generated samples with the data set '{dataset.spec.name}', but the generator "
                f"makes samples of shape {tuple(samples.shape[1:])} and the data set holds {dataset.spec.shape}. "
                "Evaluate the generator on the data set (and --image-size) it was trained on.")
        classifier, info = load_or_train_classifier(dataset, cache_dir=self.cache_dir, seed=self.classifier_seed,
                                                    device=device)
        correct = (classify(classifier, samples, batch_size=self.batch_size, device=device) == labels).float()
        self.protocol = {"metric": "accuracy", "dataset": dataset.spec.name, "data_sha256": info.data_sha256,
                         "classifier": str(info.cache_path), "classifier_seed": info.seed,
                         "classifier_heldout_accuracy": info.heldout_accuracy, "samples_per_class": per_class_count,
                         "seed": self.seed, "gantk_version": gantk.__version__}
        result: dict[str, float] = {
            "accuracy": float(correct.mean()),
            "classifier_accuracy": info.heldout_accuracy,
            "n": len(labels),
        }
        per_class = correct.view(classes, per_class_count).mean(dim=1)
        result.update({f"accuracy/{k}": float(per_class[k]) for k in range(classes)})
        return result


def _require_conditional(generator: nn.Module) -> None:
    if not generator.conditional:
        raise UsageError(
            f"{METRIC} asks the generator for samples of each class, but this "
            f"'{generator.__class__.__name__}' is unconditional (it ignores labels), so its accuracy would be "
            "meaningless. Train with a conditional generator (e.g. gantk train -G conditioning=cbn --loss hinge+ac) "
            "and evaluate that one.")


def _require_same_classes(generator: nn.Module, classes: int, name: str) -> None:
    generated = generator.num_classes
    if generated != classes:
        raise UsageError(
            f"{METRIC} needs a generator of the data set's classes, but the generator knows {generated} classes and "
            f"the data set '{name}' has {classes}. Evaluate it on the data set it was trained on.")


def accuracy_metric(n_per_class: int = 100, seed: int = 0, cache_dir: str | Path | None = None,
                    classifier_seed: int = 0, batch_size: int = 500, n: int | None = None) -> ConditionalAccuracy:
    """Conditional accuracy: the share of generated samples a real-data classifier gives the class they were made for."""
    return ConditionalAccuracy(n_per_class, seed, cache_dir, classifier_seed, batch_size, n)


@gantk.hookimpl
def register_metrics(register):
    register("accuracy", accuracy_metric,
             summary="conditional accuracy: a real-data classifier's agreement with the labels samples were made for")
