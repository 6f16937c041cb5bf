"""The sample-quality metric plugins end to end: features, caching, sharing, protocols, and `gantk eval`."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import gantk
from gantk.errors import UsageError
from gantk.plugins.datasets.mixtures import load_ring8
from gantk.plugins.metrics.features import balanced_labels, make_extractor, real_set
from gantk.plugins.metrics.modes import mode_statistics
from gantk.plugins.metrics.quality import FID, PrecisionRecall
from gantk.protocols import DataSpec
from engine_helpers import gantk_command


class Replay(nn.Module):
    """A fake generator that returns data-set samples (shifted by ``offset``), chosen by the latent's seed."""

    def __init__(self, samples: torch.Tensor, offset: float = 0.0, conditional: bool = False, classes: int = 1):
        super().__init__()
        self.z_dim, self.conditional, self.offset = 3, conditional, offset
        self.spec = DataSpec(tuple(samples.shape[1:]), classes, "replay")
        self.num_classes, self.options = (classes if conditional else 0), {}  # as gantk.Generator declares
        self.register_buffer("samples", samples)

    def forward(self, z, y=None):
        index = (z[:, 0].abs() * 1e6).long() % len(self.samples)
        return self.samples[index] + self.offset


@pytest.fixture(scope="module")
def ring():
    return load_ring8(num_samples=3000)


def test_fid_pr_and_dc_on_raw_features_tell_the_data_from_a_shifted_copy(ring, tmp_path, monkeypatch):
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path))
    registry = gantk.get_registry()
    good, bad = Replay(ring.samples), Replay(ring.samples, offset=0.5)
    fid = registry.create("metric", "fid", n=1000)
    pr = registry.create("metric", "pr", n=1000)
    assert fid(good, ring)["fid"] < 0.01 < 0.2 < fid(bad, ring)["fid"]
    assert pr(good, ring)["precision"] > 0.9 and pr(bad, ring)["precision"] < 0.1
    dc = registry.create("metric", "dc", n=1000)(bad, ring)
    assert dc["density"] < 0.05 and dc["coverage"] < 0.05
    assert fid.protocol["extractor"] == "raw" and fid.protocol["real_samples"] == 1000
    assert fid.protocol["dataset"] == "ring8" and len(fid.protocol["data_sha256"]) == 64


def test_metrics_evaluated_together_draw_the_samples_once(ring, tmp_path, monkeypatch):
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path))
    calls = []
    generator = Replay(ring.samples)
    generator.register_forward_hook(lambda module, args, output: calls.append(len(output)))
    shared: dict = {}
    FID(n=500)(generator, ring, shared=shared)
    PrecisionRecall(n=500)(generator, ring, shared=shared)
    assert sum(calls) == 500


def test_real_features_are_cached_per_data_set_extractor_count_and_seed(ring, tmp_path):
    extractor = make_extractor("raw", ring)
    first = real_set(extractor, ring, 400, seed=0, cache_dir=tmp_path)
    files = list((tmp_path / "features").iterdir())
    assert len(files) == 1 and "ring8" in files[0].name and "n400-seed0" in files[0].name
    again = real_set(extractor, ring, 400, seed=0, cache_dir=tmp_path)
    assert torch.equal(first.features, again.features)
    other = real_set(extractor, ring, 400, seed=1, cache_dir=tmp_path)
    assert not torch.equal(first.features, other.features) and len(list((tmp_path / "features").iterdir())) == 2


def test_balanced_labels_give_every_class_its_share():
    counts = torch.bincount(balanced_labels(23, 10), minlength=10)
    assert counts.tolist() == [3, 3, 3] + [2] * 7


def test_ifid_needs_labels_and_is_refused_for_an_unconditional_generator(ring, tmp_path, monkeypatch):
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path))
    with pytest.raises(UsageError, match="ifid"):
        gantk.get_registry().create("metric", "ifid", n=200)(Replay(ring.samples), ring)


def test_unknown_metric_options_and_extractors_are_usage_errors():
    registry = gantk.get_registry()
    with pytest.raises(UsageError, match="no option 'bogus'"):
        registry.create("metric", "kid", bogus=1)
    with pytest.raises(UsageError, match="features"):
        registry.create("metric", "fid", features="vgg")
    with pytest.raises(UsageError, match="metric 'pr' option 'k' must be a positive integer"):
        registry.create("metric", "pr", k=0)


def test_the_inception_score_refuses_raw_features(ring, tmp_path, monkeypatch):
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path))
    with pytest.raises(UsageError, match="class probabilities"):
        gantk.get_registry().create("metric", "is", n=100)(Replay(ring.samples), ring)


def test_mode_statistics_count_covered_modes_quality_and_reverse_kl():
    modes = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    samples = torch.tensor([[0.0, 0.01], [10.0, -0.01], [10.0, 0.02], [5.0, 5.0]])  # the last is far from all
    result = mode_statistics(samples, modes, std=0.01)
    assert result["modes"] == 2 and result["high_quality"] == pytest.approx(0.75)
    # high-quality histogram (1, 2, 0) against uniform over 3 modes: Σ q log(3q)
    q = torch.tensor([1 / 3, 2 / 3])
    assert result["reverse_kl"] == pytest.approx(float((q * (3 * q).log()).sum()))


# ----------------------------------------------------------------------------- gantk eval
@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    done = gantk_command("train", "--preset", "ring8", "--steps", "30", "--runs-dir", str(root), "--name", "r",
                         "--quiet", "-G", "hidden=32,32", "-D", "hidden=32")
    assert done.returncode == 0, done.stderr
    return root / "r"


def test_gantk_eval_writes_values_and_protocol(ring_run, tmp_path):
    out = tmp_path / "result.json"
    done = gantk_command("eval", str(ring_run), "--metrics", "modes,fid,kid", "--n", "500",
                         "-M", "kid.subsets=5", "--out", str(out), env={"GANTK_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert {"modes", "high_quality", "reverse_kl", "fid", "kid", "kid_std"} <= set(result["values"])
    protocol = result["protocol"]["fid"]
    assert protocol["generated_samples"] == 500 and protocol["real_samples"] == 500 and protocol["seed"] == 0
    assert protocol["dataset"] == "ring8" and protocol["gantk_version"] == gantk.__version__
    assert result["protocol"]["modes"]["high_quality_radius"] == pytest.approx(0.03)
    assert "fid " in done.stdout and str(out) in done.stdout


@pytest.mark.slow
def test_gantk_eval_errors_are_one_paragraph_with_exit_2(ring_run, tmp_path):
    for args, expected in (
            (["--metrics", "nosuch"], "nosuch"),
            (["--metrics", "accuracy"], "unconditional"),
            (["--metrics", "fid", "--features", "inception", "--n", "10"], "vectors"),
            (["--metrics", "fid", "-M", "fid"], "METRIC.KEY=VALUE")):
        done = gantk_command("eval", str(ring_run), *args, env={"GANTK_CACHE_DIR": str(tmp_path)})
        assert done.returncode == 2, (args, done.stderr)
        assert expected in done.stderr and "Traceback" not in done.stderr


class LabelledReplay(nn.Module):
    """A conditional fake generator: for label y it returns a real image of class (y + shift) % K."""

    def __init__(self, dataset, shift: int = 0):
        super().__init__()
        self.z_dim, self.conditional, self.shift, self.spec = 3, True, shift, dataset.spec
        self.num_classes, self.options = dataset.spec.num_classes, {}  # as gantk.Generator declares
        self.register_buffer("images", dataset.samples.clone())
        self.by_class = [torch.nonzero(dataset.labels == k).flatten() for k in range(dataset.spec.num_classes)]

    def forward(self, z, y=None):
        picks = (z[:, 0].abs() * 1e6).long()
        classes = (y + self.shift) % len(self.by_class)
        return torch.stack([self.images[self.by_class[c][p % len(self.by_class[c])]]
                            for c, p in zip(classes.tolist(), picks.tolist())])


def test_classifier_features_give_ifid_and_is_that_reward_the_right_classes(tmp_path, monkeypatch):
    from gantk.plugins.datasets.digits import load_digits
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path))
    digits = load_digits()
    registry = gantk.get_registry()
    right, wrong = LabelledReplay(digits), LabelledReplay(digits, shift=1)
    ifid = registry.create("metric", "ifid", n=1000)
    assert ifid(right, digits)["ifid"] < 0.5 * ifid(wrong, digits)["ifid"]
    assert len([k for k in ifid(right, digits) if k.startswith("ifid/")]) == 10
    assert ifid.protocol["extractor"] == "classifier" and len(ifid.protocol["weights_sha256"]) == 64
    score = registry.create("metric", "is", n=1000)(right, digits)
    assert 5.0 < score["is"] <= 10.0  # confident and balanced over 10 classes
