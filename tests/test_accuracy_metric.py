"""The conditional-accuracy metric and its cached real-data classifier (ALGORITHMS.md §4)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import gantk
from gantk.engine.config import TrainConfig
from gantk.errors import GantkError, UsageError
from gantk.plugins.datasets.digits import load_digits
from gantk.plugins.metrics import accuracy
from gantk.plugins.metrics.accuracy import ConditionalAccuracy, accuracy_metric
from gantk.plugins.metrics.classifier import (ImageClassifier, classify, default_cache_dir, load_or_train_classifier,
                                              split_indices)
from gantk.protocols import DataSpec, Dataset
from gantk.engine.safetensors_io import read_safetensors, write_safetensors
from gantk.engine.trainer import Trainer
from engine_helpers import tiny_config


# ------------------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory, digits):
    """A cache folder already holding the digits classifier (trained once for the module)."""
    folder = tmp_path_factory.mktemp("classifiers")
    model, info = load_or_train_classifier(digits, cache_dir=folder)
    return folder, model, info


def blobs(seed: int = 0, n_per_class: int = 40, classes: int = 3) -> Dataset:
    """A tiny labelled set of 8x8 images: class k is a bright 4x4 square in corner k, plus noise."""
    noise = torch.Generator().manual_seed(seed)
    images = -1 + 0.2 * torch.rand(classes * n_per_class, 1, 8, 8, generator=noise)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    for k in range(classes):
        row, col = divmod(k, 2)
        images[labels == k, :, 4 * row:4 * row + 4, 4 * col:4 * col + 4] = 0.8
    return Dataset(DataSpec((1, 8, 8), classes, "blobs"), images, labels, tuple("abc"[:classes]))


class RealImages(nn.Module):
    """A fake conditional generator: for label y it returns a real image of class (y + shift) % K."""

    def __init__(self, dataset: Dataset, shift: int = 0, conditional: bool = True) -> None:
        super().__init__()
        self.z_dim, self.conditional, self.shift = 4, conditional, shift
        self.classes = dataset.spec.num_classes
        # the other attributes gantk.Generator declares
        self.spec, self.num_classes, self.options = dataset.spec, self.classes if conditional else 0, {}
        self.register_buffer("images", dataset.samples.clone())
        self.by_class = [torch.nonzero(dataset.labels == k).flatten() for k in range(self.classes)]

    def forward(self, z, y=None):
        target = (y + self.shift) % self.classes
        pick = (z[:, 0].abs() * 1e4).long()
        index = [self.by_class[t][p % len(self.by_class[t])] for t, p in zip(target.tolist(), pick.tolist())]
        return self.images[torch.stack(index)]


# ------------------------------------------------------------------------------ the classifier
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 8, 13)])
def test_classifier_builds_for_any_image_size_of_at_least_8(shape):
    model = ImageClassifier(shape, num_classes=7).eval()
    x = torch.randn(2, *shape)
    assert model(x).shape == (2, 7)
    assert model.features(x).shape == (2, model.feature_dim)


def test_classifier_reaches_90_percent_held_out_on_digits(digits, digits_cache):
    _, model, info = digits_cache
    assert info.heldout_accuracy >= 0.9
    _, held_out = split_indices(len(digits), seed=0)  # recompute it: the reported figure must be real
    predicted = classify(model, digits.samples[held_out])
    assert len(held_out) == 180
    assert float((predicted == digits.labels[held_out]).float().mean()) == pytest.approx(info.heldout_accuracy)


def test_second_call_loads_the_cache_and_predicts_the_same(digits, digits_cache):
    folder, trained, first = digits_cache
    model, info = load_or_train_classifier(digits, cache_dir=folder)
    assert not first.loaded and info.loaded
    assert info.cache_path == first.cache_path and info.cache_path.parent == folder
    assert info.heldout_accuracy == pytest.approx(first.heldout_accuracy)
    assert torch.equal(classify(model, digits.samples), classify(trained, digits.samples))
    _, metadata = read_safetensors(info.cache_path)
    assert metadata["gantk.dataset"] == "digits" and metadata["gantk.data_sha256"] == info.data_sha256
    assert info.cache_path.name.startswith(f"digits-{info.data_sha256[:16]}-seed0")


def test_the_classifier_trains_when_first_needed_inside_no_grad(tmp_path):
    """An evaluation may run under torch.no_grad(); the first one on a new data set trains the classifier."""
    with torch.no_grad():
        _, info = load_or_train_classifier(blobs(), cache_dir=tmp_path)
    assert not info.loaded and info.heldout_accuracy == 1.0


@pytest.mark.slow
def test_training_is_deterministic_for_a_seed(tmp_path):
    data = blobs()
    weights = []
    for folder, seed in (("a", 0), ("b", 0), ("c", 1)):
        model, info = load_or_train_classifier(data, cache_dir=tmp_path / folder, seed=seed)
        assert not info.loaded and info.heldout_accuracy == 1.0
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def _truncate(path):
    path.write_bytes(path.read_bytes()[:200])


def _garbage(path):
    path.write_bytes(b"not a safetensors file at all")


def _other_data(path):
    tensors, metadata = read_safetensors(path)
    write_safetensors(path, tensors, {**metadata, "gantk.data_sha256": "0" * 64})


def _missing_tensor(path):
    tensors, metadata = read_safetensors(path)
    tensors.pop(next(iter(tensors)))
    save_file(tensors, str(path), metadata=metadata)


def _missing_batch_count(path):
    """The one key strict loading forgives: a BatchNorm's num_batches_tracked."""
    tensors, metadata = read_safetensors(path)
    tensors.pop(next(key for key in sorted(tensors) if key.endswith("num_batches_tracked")))
    save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize("damage", [_truncate, _garbage, _other_data, _missing_tensor, _missing_batch_count])
def test_a_damaged_or_stale_cache_file_is_retrained_not_an_error(tmp_path, damage):
    data = blobs()
    _, first = load_or_train_classifier(data, cache_dir=tmp_path)
    damage(first.cache_path)
    model, second = load_or_train_classifier(data, cache_dir=tmp_path)
    assert not second.loaded and second.retrain_reason
    assert second.cache_path == first.cache_path and second.heldout_accuracy >= 0.9
    _, third = load_or_train_classifier(data, cache_dir=tmp_path)  # the rewritten file is good again
    assert third.loaded and third.retrain_reason == ""
    assert [p.name for p in tmp_path.iterdir()] == [first.cache_path.name]  # no temporary files left


@pytest.mark.slow
def test_different_data_or_seed_gives_a_different_cache_file(tmp_path):
    data = blobs()
    changed = blobs()
    changed.samples[0, 0, 0, 0] += 0.01
    relabelled = blobs()
    relabelled.labels[:2] = relabelled.labels[:2].flip(0) + 1
    paths = {load_or_train_classifier(d, cache_dir=tmp_path, seed=s)[1].cache_path
             for d, s in ((data, 0), (changed, 0), (relabelled, 0), (data, 1))}
    assert len(paths) == 4 and all(p.is_file() for p in paths)


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "classifiers"
    monkeypatch.delenv("GANTK_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "gantk" / "classifiers"


# ------------------------------------------------------------------------------ the metric
def test_a_generator_of_real_images_scores_high_and_a_shifted_one_low(digits, digits_cache):
    folder, _, info = digits_cache
    metric = accuracy_metric(n_per_class=30, cache_dir=folder)
    perfect = RealImages(digits).train()
    good = metric(perfect, digits)
    assert perfect.training  # the metric restores the generator's mode
    assert good["accuracy"] >= 0.9
    assert good["n"] == 300 and good["classifier_accuracy"] == pytest.approx(info.heldout_accuracy)
    per_class = [good[f"accuracy/{k}"] for k in range(10)]
    assert sum(per_class) / 10 == pytest.approx(good["accuracy"])
    bad = metric(RealImages(digits, shift=1), digits)
    assert bad["accuracy"] <= 0.2
    assert max(bad[f"accuracy/{k}"] for k in range(10)) <= 0.5
    assert metric(perfect, digits) == good  # same seed, same samples, same score


def test_an_unconditional_generator_is_refused(digits, tmp_path):
    with pytest.raises(UsageError, match="unconditional.*conditional generator"):
        accuracy_metric(cache_dir=tmp_path)(RealImages(digits, conditional=False), digits)
    assert list(tmp_path.iterdir()) == []  # refused before training anything


def test_an_unlabelled_data_set_is_refused(digits, tmp_path):
    unlabelled = Dataset(DataSpec((1, 8, 8), 0, "plain"), digits.samples, None)
    with pytest.raises(UsageError, match="labelled data set.*mnist5k or digits"):
        accuracy_metric(cache_dir=tmp_path)(RealImages(digits), unlabelled)
    with pytest.raises(UsageError, match="labelled data set"):
        load_or_train_classifier(unlabelled, cache_dir=tmp_path)


def test_vector_data_is_refused(tmp_path):
    vectors = Dataset(DataSpec((2,), 2, "points"), torch.randn(20, 2), torch.arange(2).repeat(10))
    with pytest.raises(UsageError, match=r"at least 8x8.*\(2,\)"):
        load_or_train_classifier(vectors, cache_dir=tmp_path)


def test_a_generator_of_another_shape_is_refused_naming_both(digits, digits_cache):
    class Bigger(RealImages):
        def forward(self, z, y=None):
            return nn.functional.interpolate(super().forward(z, y), size=(16, 16))

    with pytest.raises(UsageError, match=r"\(1, 16, 16\).*\(1, 8, 8\)"):
        accuracy_metric(n_per_class=2, cache_dir=digits_cache[0])(Bigger(digits), digits)


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match="n_per_class"):
        accuracy_metric(n_per_class=0)
    with pytest.raises(UsageError, match="has no option 'n_samples'. Its options are: n_per_class=100"):
        gantk.Registry.discover().create("metric", "accuracy", n_samples=10)


def test_registered_as_metric_accuracy(tmp_path):
    registry = gantk.Registry()
    registry.add_plugin(accuracy)
    entry = registry.get("metric", "accuracy")
    assert entry.factory is accuracy_metric and "conditional accuracy" in entry.summary
    metric = registry.create("metric", "accuracy", n_per_class=7, seed=3, cache_dir=tmp_path)
    assert isinstance(metric, ConditionalAccuracy)
    assert (metric.n_per_class, metric.seed, metric.cache_dir) == (7, 3, tmp_path)


def test_accuracy_is_registered_through_the_entry_points():
    entry = gantk.get_registry().get("metric", "accuracy")
    assert entry.source.package == "gantk" and callable(entry.create())


# ------------------------------------------------------------------ during training (--eval-every)
def conditional_tiny(**overrides):
    """The tiny digits DCGAN made conditional (cBN G, ns + auxiliary classifier)."""
    return tiny_config(loss="ns+ac", gen_options={"width": 8, "z_dim": 16, "conditioning": "cbn"}, **overrides)


def test_eval_every_logs_accuracy_at_start_every_n_steps_and_at_the_end(tmp_path, monkeypatch, digits_cache):
    cached = digits_cache[2].cache_path  # the default cache is $GANTK_CACHE_DIR/classifiers: reuse the trained one
    (tmp_path / "cache" / "classifiers").mkdir(parents=True)
    shutil.copy(cached, tmp_path / "cache" / "classifiers" / cached.name)
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path / "cache"))
    result = Trainer(conditional_tiny(steps=5, eval_every=2), tmp_path / "run", show_progress=False).train()
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    evaluations = [r for r in records if "eval/accuracy" in r]
    assert [r["step"] for r in evaluations] == [0, 2, 4, 5]
    for record in evaluations:
        assert 0.0 <= record["eval/accuracy"] <= 1.0 and record["eval/n"] == 1000
        assert record["eval/classifier_accuracy"] >= 0.9
        assert len([k for k in record if k.startswith("eval/accuracy/")]) == 10
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["eval/accuracy"] == evaluations[-1]["eval/accuracy"]
    # steps/s of the loss records leaves the evaluations out: it is not dragged down to the eval's pace
    assert all("eval/accuracy" not in r for r in records if "steps_per_s" in r)


def test_eval_every_on_an_unconditional_generator_needs_metrics_named_before_training(tmp_path):
    with pytest.raises(UsageError, match="--eval-metrics") as caught:
        Trainer(tiny_config(steps=3, eval_every=1), tmp_path / "run", show_progress=False)
    assert "accuracy" in str(caught.value)


def test_eval_metrics_that_do_not_fit_the_run_fail_at_step_zero_not_after_training(tmp_path):
    trainer = Trainer(tiny_config(steps=1000, eval_every=500, eval_metrics="accuracy"), tmp_path / "run",
                      show_progress=False)
    with pytest.raises(UsageError, match="unconditional"):
        trainer.train()
    assert trainer.step == 0


def test_eval_metrics_are_parsed_from_a_comma_list_and_unknown_names_are_refused(tmp_path):
    assert TrainConfig(eval_metrics=" accuracy, accuracy ,").eval_metrics == ["accuracy"]
    with pytest.raises(UsageError, match="eval-every"):
        TrainConfig(eval_every=-1)
    with pytest.raises(GantkError, match="nosuchmetric"):
        Trainer(conditional_tiny(steps=2, eval_every=1, eval_metrics="nosuchmetric"), tmp_path / "run",
                show_progress=False)


def test_eval_n_reaches_accuracy_as_samples_in_all():
    """``gantk eval --n N`` goes to every metric that takes n: accuracy splits it over the classes."""
    from gantk.plugins.tools.eval_result import build_metrics

    common = {"n": 30, "seed": 0, "features": None, "inception_weights": None}
    metrics = build_metrics(["accuracy", "fid"], gantk.get_registry(), common, {})
    assert metrics["accuracy"].n == 30 and metrics["fid"].n == 30
