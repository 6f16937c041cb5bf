"""Run monitors: the mode-collapse warning (sample diversity) and keeping the best generator by a metric."""

from __future__ import annotations

import json
import pytest
import torch

import gantk
from gantk.errors import UsageError
from gantk.engine.best_export import BestGeneratorExport, parse_keep_best
from gantk.plugins.tools.diversity import DiversityMonitor, mean_pairwise_distance
from gantk.engine.trainer import Trainer
from engine_helpers import tiny_config


def test_mean_pairwise_distance_is_the_average_over_distinct_pairs():
    points = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    # pairs: (0,1) 5, (0,2) 0, (1,2) 5 -> mean 10/3
    assert mean_pairwise_distance(points) == pytest.approx(10 / 3)
    assert mean_pairwise_distance(points[:1]) == 0.0


def test_a_collapsed_generator_warns_once_and_a_varied_one_does_not(capsys):
    real = torch.randn(300, 1, 8, 8)
    monitor = DiversityMonitor(real)
    collapsed = torch.randn(1, 1, 8, 8).repeat(64, 1, 1, 1) + 0.01 * torch.randn(64, 1, 8, 8)
    assert monitor(collapsed, step=1)["diversity"] < 0.05  # an untrained generator starts collapsed: no warning yet
    assert capsys.readouterr().err == ""
    assert monitor(torch.randn(64, 1, 8, 8), step=10)["diversity"] == pytest.approx(1.0, abs=0.1)
    assert capsys.readouterr().err == ""
    assert monitor(collapsed, step=20)["diversity"] < 0.05
    assert monitor(collapsed, step=30)["diversity"] < 0.05
    warning = capsys.readouterr().err
    assert warning.count("warning") == 1 and "step 20" in warning and "collapsing" in warning


def test_training_logs_diversity_with_each_sample_picture(tmp_path):
    result = Trainer(tiny_config(steps=4, sample_every=2), tmp_path / "run", show_progress=False).train()
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    diversity = [(r["step"], r["diversity"]) for r in records if "diversity" in r]
    assert [step for step, _ in diversity] == [2, 4] and all(value > 0 for _, value in diversity)


@pytest.mark.parametrize("text, expected", [("fid", ("fid", None)), ("accuracy", ("accuracy", None)),
                                            ("eval/kid", ("kid", None)), ("precision:min", ("precision", True)),
                                            ("fid:max", ("fid", False)), (None, None)])
def test_keep_best_direction(text, expected):
    assert parse_keep_best(text) == expected


@pytest.mark.parametrize("metric, value, lower", [("fid", "fid", True), ("kid", "kid", True), ("pr", "recall", False),
                                                  ("kid", "kid:max", False)])
def test_keep_best_follows_the_direction_the_metric_declares(tmp_path, metric, value, lower):
    trainer = Trainer(tiny_config(steps=2, eval_every=2, eval_metrics=[metric], keep_best=value), tmp_path / "run",
                      show_progress=False)
    assert trainer.best.lower_is_better is lower


def test_keep_best_rejects_a_bad_direction_and_needs_evaluations(tmp_path):
    with pytest.raises(UsageError, match=":min or :max"):
        parse_keep_best("fid:lowest")
    with pytest.raises(UsageError, match="--eval-every"):
        Trainer(tiny_config(steps=2, keep_best="fid"), tmp_path / "run", show_progress=False)


def test_best_generator_export_happens_only_on_improvement_and_remembers_across_resumes(tmp_path):
    exported = []
    keeper = BestGeneratorExport("fid", True, tmp_path, lambda path, extra: exported.append(extra) or path)
    assert keeper.update(10, {"eval/fid": 5.0}) and not keeper.update(20, {"eval/fid": 6.0})
    assert keeper.update(30, {"eval/fid": 4.0})
    assert [e["best_step"] for e in exported] == [10, 30]
    assert json.loads((tmp_path / "best.json").read_text())["value"] == 4.0
    resumed = BestGeneratorExport("fid", True, tmp_path, lambda path, extra: exported.append(extra) or path)
    assert not resumed.update(40, {"eval/fid": 4.5})
    with pytest.raises(UsageError, match="gave only x"):
        resumed.update(50, {"eval/x": 1.0})


def test_training_keeps_the_generator_of_the_best_evaluation(tmp_path, monkeypatch):
    from gantk.plugins.datasets.digits import load_digits
    from gantk.plugins.metrics.classifier import load_or_train_classifier
    load_or_train_classifier(load_digits(), cache_dir=tmp_path / "cache" / "classifiers")
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path / "cache"))
    config = tiny_config(steps=4, loss="ns+ac", gen_options={"width": 8, "z_dim": 16, "conditioning": "cbn"},
                         eval_every=2, keep_best="accuracy")
    result = Trainer(config, tmp_path / "run", show_progress=False).train()
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    evaluations = {r["step"]: r["eval/accuracy"] for r in records if "eval/accuracy" in r}
    best = json.loads((result.run_dir / "best.json").read_text())
    assert best["value"] == max(evaluations.values()) and evaluations[best["step"]] == best["value"]
    generator = gantk.load_generator(result.run_dir / "best_generator.safetensors")
    assert generator.conditional
