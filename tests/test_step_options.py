"""--accumulate, --lr-schedule, --time-limit, --compile and --sync-bn: what each one changes in a run, and what it must not."""

from __future__ import annotations

import math

import pytest
import torch

from engine_helpers import tiny_cli_args, tiny_config
from gantk.engine.checkpoint import checkpoint_path
from gantk.engine.lr_schedule import lr_factor
from gantk.engine.trainer import Trainer
from gantk.errors import UsageError

# vector data and MLPs without BatchNorm or dropout: the maths of a batch does not depend on how it is cut
RING = {"dataset": "ring8", "gen": "mlp", "disc": "mlp", "gen_options": {"batchnorm": False},
        "disc_options": {"dropout": 0}, "batch_size": 32, "ema": None, "precision": "fp32", "threads": "1",
        "log_every": 1, "sample_every": 100}


def trained(tmp_path, name: str, **options) -> Trainer:
    trainer = Trainer(tiny_config(**{**RING, **options}), tmp_path / name, show_progress=False)
    trainer.train()
    return trainer


def parameters(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": value for name, module in trainer.procedure.modules().items()
            for key, value in module.state_dict().items()}


def test_micro_batches_give_the_weights_of_the_whole_batch(tmp_path):
    whole = parameters(trained(tmp_path, "whole", steps=4, loss="wgan+gp"))
    cut = parameters(trained(tmp_path, "cut", steps=4, loss="wgan+gp", accumulate=4))
    for key in whole:  # the same sums in another order: float32 rounding only
        torch.testing.assert_close(cut[key], whole[key], rtol=1e-5, atol=2e-6, msg=key)


def test_accumulate_must_divide_the_batch(tmp_path):
    with pytest.raises(UsageError, match="multiple of it"):
        tiny_config(**{**RING, "batch_size": 30, "accumulate": 4})


@pytest.mark.parametrize("schedule, expected", [
    ("constant", [1.0, 1.0, 1.0, 1.0, 1.0]),
    ("linear-decay:2", [1.0, 1.0, 1.0, 0.5, 0.0]),  # steps 4: kept until step 2, then 1 → 0 over steps 2..4
    ("cosine", [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0]),
])
def test_lr_factor(schedule, expected):
    factor = lr_factor(schedule, 4)
    assert [factor(s) for s in range(5)] == pytest.approx(expected, abs=1e-12)


def test_a_schedule_sets_the_rate_of_every_step_and_survives_a_resume(tmp_path):
    straight = trained(tmp_path, "straight", steps=6, lr_schedule="linear-decay:2", checkpoint_every=3)
    for optimizer in straight.procedure.optimizers().values():  # the rate after the last step: 0 at --steps
        assert optimizer.param_groups[0]["lr"] == 0.0
    trained(tmp_path, "resumed", steps=3, lr_schedule="linear-decay:2", checkpoint_every=3)
    resumed = Trainer(tiny_config(**{**RING, "steps": 6, "lr_schedule": "linear-decay:2", "checkpoint_every": 3}),
                      tmp_path / "resumed", resume=True, show_progress=False)
    assert resumed.procedure.optimizers()["generator"].param_groups[0]["lr"] == pytest.approx(2e-4 * 0.75)
    resumed.train()
    expected, got = parameters(straight), parameters(resumed)
    assert all(torch.equal(got[key], expected[key]) for key in expected)


@pytest.mark.parametrize("text, message", [
    ("linear", "must be one of constant, linear-decay:START, cosine"),
    ("linear-decay:9", "starts its decay at step 9, but the run has only --steps 6"),
    ("cosine:3", "must be one of"),
])
def test_a_bad_schedule_is_one_paragraph(cli, tmp_path, text, message):
    result = cli(*tiny_cli_args("--steps", "6", "--lr-schedule", text, "--runs-dir", str(tmp_path)))
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_sync_bn_on_a_cpu_says_it_needs_cuda(cli, tmp_path):
    result = cli(*tiny_cli_args("--steps", "1", "--sync-bn", "--device", "cpu", "--runs-dir", str(tmp_path)))
    assert result.exit_code == 2 and "--sync-bn needs CUDA devices" in result.output


@pytest.mark.slow
def test_a_compiled_run_trains_the_same_weights(tmp_path):
    """torch.compile (inductor, on the CPU here) changes how the networks run, not what they compute."""
    plain = trained(tmp_path, "plain", steps=3, loss="ns")
    compiled = trained(tmp_path, "compiled", steps=3, loss="ns", compile=True)
    expected, got = parameters(plain), parameters(compiled)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-5, msg=key)
    assert (tmp_path / "compiled" / "generator.safetensors").is_file()


def test_the_time_limit_makes_the_step_reached_the_last_one(tmp_path):
    import json
    limited = trained(tmp_path, "limited", steps=10**6, time_limit="1s", checkpoint_every=10**5)
    step = limited.step
    assert 0 < step < 10**6
    run = tmp_path / "limited"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["time_limit_reached"] is True and summary["steps"] == step
    assert (run / "generator.safetensors").exists()  # exported as at --steps
    assert checkpoint_path(run, step).exists()
    resumed = Trainer(tiny_config(**{**RING, "steps": step + 3, "checkpoint_every": 10**5}), run, resume=True,
                      show_progress=False)
    resumed.train()  # the saved limit applies again, but 3 more steps take far less than a second
    assert resumed.step == step + 3
    assert json.loads((run / "summary.json").read_text())["time_limit_reached"] is False


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("90s", 90.0), ("20m", 1200.0), ("1.5h", 5400.0)])
def test_time_limits_read_as_seconds(text, seconds):
    from gantk.engine.config import parse_duration
    assert parse_duration(text, "--time-limit") == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "20 minutes", "m", "inf", "nan"])
def test_a_bad_time_limit_says_how_to_write_one(text):
    with pytest.raises(UsageError, match="e.g. 90s, 20m, 1.5h"):
        tiny_config(**{**RING, "time_limit": text})
