"""The within-class diversity metric ``idc``: per-class density and coverage against real-vs-real (Naeem 2020)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import gantk
from gantk.engine.scoring import metric_names_for
from gantk.errors import UsageError
from gantk.plugins.datasets.digits import load_digits
from gantk.protocols import DataSpec, Dataset, signed_unit


class ClassImages(nn.Module):
    """A fake conditional generator of real digits: for label y, a real image of class y chosen by the latent,
    or with ``collapsed`` always the same image of class y (mode collapse within each class)."""

    def __init__(self, dataset: Dataset, collapsed: bool = False, conditional: bool = True) -> None:
        super().__init__()
        self.z_dim, self.conditional, self.collapsed, self.spec = 3, conditional, collapsed, dataset.spec
        self.num_classes, self.options = (dataset.spec.num_classes if conditional else 0), {}  # as gantk.Generator
        self.register_buffer("images", signed_unit(dataset.samples))  # uint8 pixels → [-1, 1], as G makes
        self.by_class = [torch.nonzero(dataset.labels == k).flatten() for k in range(dataset.spec.num_classes)]

    def forward(self, z, y=None):
        y = torch.zeros(len(z), dtype=torch.int64) if y is None else y
        picks = torch.zeros(len(z), dtype=torch.int64) if self.collapsed else (z[:, 0].abs() * 1e6).long()
        return torch.stack([self.images[self.by_class[c][p % len(self.by_class[c])]]
                            for c, p in zip(y.tolist(), picks.tolist())])


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


@pytest.fixture
def cache(tmp_path_factory, monkeypatch):
    """One cache folder for the module (the digits classifier and real features are made once)."""
    folder = tmp_path_factory.getbasetemp() / "idc-cache"
    monkeypatch.setenv("GANTK_CACHE_DIR", str(folder))
    return folder


def idc(**options):
    return gantk.get_registry().create("metric", "idc", **options)


def test_a_generator_collapsed_to_one_digit_per_class_keeps_its_accuracy_but_not_its_coverage(digits, cache):
    collapsed = ClassImages(digits, collapsed=True)
    accuracy = gantk.get_registry().create("metric", "accuracy", n_per_class=20)(collapsed, digits)
    values = idc()(collapsed, digits)
    assert accuracy["accuracy"] >= 0.9  # each class's one digit is a good one
    assert values["idc_coverage"] < 0.1 and values["idc_coverage_ratio"] < 0.15
    assert values["idc_coverage_real"] > 0.8  # the reference: two real halves of a class cover each other
    assert max(values[f"idc_coverage/{k}"] for k in range(10)) < 0.3  # one digit of 87 covers a few balls


def test_a_generator_of_real_digits_of_the_right_class_reaches_the_real_coverage(digits, cache):
    metric = idc()
    values = metric(ClassImages(digits), digits)
    assert 0.9 <= values["idc_coverage_ratio"] <= 1.15
    assert values["idc_density"] > 0.8 and len([key for key in values if key.startswith("idc_coverage/")]) == 10
    # digits has 174 to 183 images a class: two disjoint real halves of 87, the generated side as large
    assert metric.protocol["real_samples_per_class"] == metric.protocol["generated_samples_per_class"] == 87
    assert metric.protocol["extractor"] == "classifier" and metric.protocol["k"] == 5


def test_samples_per_class_is_an_option_and_the_values_are_seeded(digits, cache):
    generator = ClassImages(digits)
    first, again = idc(n_per_class=40, seed=1)(generator, digits), idc(n_per_class=40, seed=1)(generator, digits)
    other_seed = idc(n_per_class=40, seed=2)(generator, digits)
    assert first == again
    assert first != other_seed


def test_unconditional_generators_unlabelled_data_and_bad_options_are_refused(digits, cache):
    with pytest.raises(UsageError, match="unconditional.*'dc'"):
        idc()(ClassImages(digits, conditional=False), digits)
    unlabelled = Dataset(DataSpec(digits.spec.shape, 0, "plain"), digits.samples)
    with pytest.raises(UsageError, match="needs class labels"):
        idc()(ClassImages(digits), unlabelled)
    with pytest.raises(UsageError, match="n_per_class"):
        idc(n_per_class=0)
    with pytest.raises(UsageError, match="only 174 samples"):
        idc(k=90)(ClassImages(digits), digits)


def test_conditional_runs_log_idc_beside_accuracy_by_default():
    registry = gantk.get_registry()
    assert set(metric_names_for([], True, registry)) >= {"accuracy", "idc"}
    assert metric_names_for(["fid"], True, registry) == ["fid"]
    with pytest.raises(UsageError, match="--eval-metrics"):
        metric_names_for([], False, registry)


def test_eval_every_on_a_conditional_run_logs_the_within_class_coverage(tmp_path, cache):
    from engine_helpers import tiny_config
    from gantk.engine.trainer import Trainer

    config = tiny_config(steps=2, eval_every=2, loss="ns+ac",
                         gen_options={"width": 8, "z_dim": 16, "conditioning": "cbn"})
    result = Trainer(config, tmp_path / "run", show_progress=False).train()
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    evaluations = [record for record in records if "eval/accuracy" in record]
    assert [record["step"] for record in evaluations] == [0, 2]
    for record in evaluations:
        assert 0.0 <= record["eval/idc_coverage_ratio"] and record["eval/idc_coverage_real"] > 0.8
        assert len([key for key in record if key.startswith("eval/idc_coverage/")]) == 10
