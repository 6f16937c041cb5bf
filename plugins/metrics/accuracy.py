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

    def __init__(self, n_per_class: int = 100, seed: int = 0, cache_dir: str | Path | None = None,
                 classifier_seed: int = 0, batch_size: int = 500) -> None:
        for option, value in (("n_per_class", n_per_class), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"The metric 'accuracy' needs {option} to be a positive whole number, got {value!r}.")
        self.n_per_class, self.seed, self.batch_size = n_per_class, int(seed), batch_size
        self.cache_dir, self.classifier_seed = cache_dir, int(classifier_seed)
        self.protocol: dict = {}

    def __call__(self, generator: nn.Module, dataset: Dataset, *, device: str | torch.device = "cpu") -> dict[str, float]:
        _require_conditional(generator)
        require_labelled_images(dataset, METRIC)
        classes = dataset.spec.num_classes
        _require_same_classes(generator, classes, dataset.spec.name)
        labels = torch.arange(classes).repeat_interleave(self.n_per_class)
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
                         "classifier_heldout_accuracy": info.heldout_accuracy, "samples_per_class": self.n_per_class,
                         "seed": self.seed, "gantk_version": gantk.__version__}
        result: dict[str, float] = {
            "accuracy": float(correct.mean()),
            "classifier_accuracy": info.heldout_accuracy,
            "n": len(labels),
        }
        per_class = correct.view(classes, self.n_per_class).mean(dim=1)
        result.update({f"accuracy/{k}": float(per_class[k]) for k in range(classes)})
        return result


def _require_conditional(generator: nn.Module) -> None:
    if getattr(generator, "conditional", False) is not True:
        raise UsageError(
            f"{METRIC} asks the generator for samples of each class, but this "
            f"'{generator.__class__.__name__}' is unconditional (it ignores labels), so its accuracy would be "
            "meaningless. Train with a conditional generator (e.g. gantk train -G conditioning=cbn --loss hinge+ac) "
            "and evaluate that one.")


def _require_same_classes(generator: nn.Module, classes: int, name: str) -> None:
    spec = getattr(generator, "spec", None)
    generated = getattr(spec, "num_classes", None)
    if generated is not None and generated != classes:
        raise UsageError(
            f"{METRIC} needs a generator of the data set's classes, but the generator knows {generated} classes and "
            f"the data set '{name}' has {classes}. Evaluate it on the data set it was trained on.")


def accuracy_metric(**options) -> ConditionalAccuracy:
    """Conditional accuracy: the share of generated samples a real-data classifier gives the class they were made for."""
    unknown = set(options) - {"n_per_class", "seed", "cache_dir", "classifier_seed", "batch_size"}
    if unknown:
        raise UsageError(f"The metric 'accuracy' has no option {', '.join(sorted(unknown))}; its options are "
                         "n_per_class, seed, cache_dir, classifier_seed and batch_size.")
    return ConditionalAccuracy(**options)


@gantk.hookimpl
def register_metrics(register):
    register("accuracy", accuracy_metric,
             summary="conditional accuracy: a real-data classifier's agreement with the labels samples were made for")
