"""The training engine: resume, export round trip, guards, checkpoints, composite losses, presets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import gantk
from gantk.engine.checkpoint import list_checkpoints, load_latest_checkpoint, read_checkpoint
from gantk.engine.metrics_log import NonFiniteLossError
from gantk.engine.trainer import Trainer

from engine_helpers import gantk_command, loss_records, tiny_cli_args, tiny_config


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    checkpoint = load_latest_checkpoint(run_dir)
    return {k: v for k, v in checkpoint.tensors.items() if k.startswith(("module/", "optim/"))}


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    straight = Trainer(tiny_config(steps=8, checkpoint_every=4), tmp_path / "straight", show_progress=False)
    straight.train()
    first_half = Trainer(tiny_config(steps=4, checkpoint_every=4), tmp_path / "split", show_progress=False)
    first_half.train()
    resumed = Trainer(tiny_config(steps=8, checkpoint_every=4), tmp_path / "split", resume=True, show_progress=False)
    assert resumed.step == 4
    resumed.train()
    expected, actual = final_weights(tmp_path / "straight"), final_weights(tmp_path / "split")
    assert expected.keys() == actual.keys() and len(expected) > 20
    differing = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert differing == []
    # and the weights did move from their (seeded, identical) initialisation
    initial = Trainer(tiny_config(steps=8), tmp_path / "fresh", show_progress=False).generator.state_dict()
    moved = [k for k, v in initial.items() if v.is_floating_point() and not torch.equal(expected[f"module/generator/{k}"], v)]
    assert len(moved) >= 4


def test_export_round_trip_in_a_fresh_process_matches_the_ema_generator(tmp_path):
    trainer = Trainer(tiny_config(steps=6, ema=0.9), tmp_path / "run", show_progress=False)
    result = trainer.train()
    assert result.exported == tmp_path / "run" / "generator.safetensors"
    from gantk.engine.sampling import draw

    expected = draw(trainer.ema.model.eval(), 12, seed=7)
    out = tmp_path / "samples.safetensors"
    sampled = gantk_command("sample", str(result.exported), "--n", "12", "--seed", "7", "--out", str(out))
    assert sampled.returncode == 0, sampled.stderr
    from safetensors.torch import load_file

    assert torch.allclose(load_file(out)["samples"], expected, atol=1e-6)
    info = gantk_command("info", str(result.exported))
    assert info.returncode == 0
    assert "gantk.kind: generator" in info.stdout and "gantk.name: dcgan" in info.stdout
    assert f"gantk.plugin: gantk=={gantk.__version__}" in info.stdout and '"width": 8' in info.stdout
    loaded = gantk.load_generator(result.exported)
    assert loaded.spec.shape == (1, 8, 8) and loaded.z_dim == 16


def test_export_command_writes_ema_weights_from_the_newest_checkpoint(tmp_path, cli):
    trainer = Trainer(tiny_config(steps=4, ema=0.5), tmp_path / "run", show_progress=False)
    trainer.train()
    result = cli("export", str(tmp_path / "run"), "--out", str(tmp_path / "g.safetensors"))
    assert result.exit_code == 0, result.output
    exported = gantk.load_generator(tmp_path / "g.safetensors")
    for key, value in trainer.ema.model.state_dict().items():
        assert torch.equal(exported.state_dict()[key], value)
    raw = cli("export", str(tmp_path / "run"), "--no-ema", "--out", str(tmp_path / "raw.safetensors"))
    assert raw.exit_code == 0, raw.output
    trained = gantk.load_generator(tmp_path / "raw.safetensors").state_dict()
    live = trainer.procedure.modules()["generator"].state_dict()
    assert all(torch.equal(trained[key], value) for key, value in live.items())
    assert not all(torch.equal(trained[key], value) for key, value in trainer.ema.model.state_dict().items())


def test_cli_train_writes_the_run_directory(tmp_path):
    result = gantk_command(*tiny_cli_args("--steps", "3", "--sample-every", "2", "--runs-dir", str(tmp_path),
                                          "--name", "r"))
    assert result.returncode == 0, result.stderr
    run = tmp_path / "r"
    config = json.loads((run / "config.json").read_text())
    assert config["gen_options"] == {"width": 8, "z_dim": 16} and config["steps"] == 3
    lines = loss_records(run)
    assert [line["step"] for line in lines] == [1, 2, 3] and all("d/ns" in line and "g/ns" in line for line in lines)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000002.png", "step_000003.png"]
    assert (tmp_path / "latest").resolve() == run.resolve()
    assert "Generator:" in result.stdout


def test_composite_loss_logs_each_term(tmp_path):
    trainer = Trainer(tiny_config(steps=2, loss="wgan+10*gp", disc_options={"width": 8, "norm": "none"}),
                      tmp_path / "run", show_progress=False)
    trainer.train()
    line = loss_records(tmp_path / "run")[-1]
    assert {"d/wgan", "d/gp", "g/wgan", "d/total", "g/total"} <= line.keys()
    assert line["d/total"] == pytest.approx(line["d/wgan"] + 10 * line["d/gp"], rel=1e-5)


NAN_PLUGIN = """
import torch
import gantk
from gantk.protocols import LossTerm

class NanAfter(LossTerm):
    def __init__(self, step):
        super().__init__()
        self.after = step
    def discriminator_loss(self, s):
        value = s.real_out.logits.float().mean() * 0
        return value + (float("nan") if s.step >= self.after else 0.0)

@gantk.hookimpl
def register_losses(register):
    register("nan-after", lambda spec, *, step=5: NanAfter(step))
"""


def test_nan_loss_stops_with_exit_1_naming_step_and_term_and_keeps_the_checkpoint(tmp_path, fake_package):
    root = fake_package("gantk-nan", {"gantk_nan_plugin": NAN_PLUGIN}, {"nan": "gantk_nan_plugin"})
    result = gantk_command(*tiny_cli_args("--loss", "ns+nan-after", "-L", "nan-after.step=5", "--steps", "20",
                                          "--checkpoint-every", "2", "--log-every", "3", "--runs-dir", str(tmp_path),
                                          "--name", "r"), env={"PYTHONPATH": str(root)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "step 5" in result.stderr and "'nan-after'" in result.stderr
    assert "step_000004.safetensors" in result.stderr
    saved = list_checkpoints(tmp_path / "r")
    assert [step for step, _ in saved] == [2, 4]
    assert read_checkpoint(saved[-1][1]).step == 4


def test_nan_guard_in_process(tmp_path):
    from gantk.registry import PluginSource, Registry

    import types

    module = types.ModuleType("nan_plugin")
    exec(NAN_PLUGIN, module.__dict__)
    registry = Registry.discover()
    registry.add_plugin(module, PluginSource("nanpkg", "1", "nan_plugin", "nan"))
    trainer = Trainer(tiny_config(steps=10, loss="ns+nan-after", loss_options={"nan-after": {"step": 3}}),
                      tmp_path / "run", registry=registry, show_progress=False)
    with pytest.raises(NonFiniteLossError) as info:
        trainer.train()
    assert info.value.step == 3 and info.value.key == "d/nan-after" and info.value.exit_code == 1


@pytest.mark.slow
def test_sigkill_while_checkpointing_leaves_a_loadable_checkpoint(tmp_path):
    # Checkpoint every step with a wider net so that most of the wall time is spent writing checkpoints.
    args = ["train", "--gen", "dcgan", "--dataset", "digits", "-G", "width=64", "-D", "width=64", "--batch-size", "8",
            "--precision", "fp32", "--steps", "100000", "--checkpoint-every", "1", "--log-every", "1", "--quiet",
            "--runs-dir", str(tmp_path), "--name", "r"]
    script = os.path.join(os.path.dirname(sys.executable), "gantk")
    checkpoints = tmp_path / "r" / "checkpoints"
    for attempt, delay in enumerate((0.0, 0.37, 0.71)):
        seen = {p.name for p in checkpoints.glob("step_*.safetensors")}
        # a resumed run keeps its saved settings: only the resumable options are given again
        resume = ["train", "--resume", str(tmp_path / "r"), "--steps", "100000", "--checkpoint-every", "1",
                  "--log-every", "1", "--quiet"]
        process = subprocess.Popen([script, *(resume if attempt else args)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        # once this process writes checkpoints (after a start-up whose length depends on the machine's load),
        # kill it at an offset into its run of one checkpoint per step
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not {p.name for p in checkpoints.glob("step_*.safetensors")} - seen:
            time.sleep(0.02)
        time.sleep(delay)
        assert process.poll() is None, process.communicate()[1]  # still training when killed
        process.send_signal(signal.SIGKILL)
        process.wait()
        checkpoint = load_latest_checkpoint(tmp_path / "r")
        assert checkpoint is not None and checkpoint.step >= 1
        assert checkpoint.has_module("generator") and checkpoint.has_module("ema")
    resumed = gantk_command("train", "--resume", str(tmp_path / "r"), "--steps", str(checkpoint.step + 1), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert list((tmp_path / "r" / "checkpoints").glob(".*.tmp")) == []  # partial writes were cleaned up


def test_ctrl_c_saves_and_exits_130(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "gantk")
    process = subprocess.Popen([script, *tiny_cli_args("--steps", "1000000", "--checkpoint-every", "100000",
                                                       "--runs-dir", str(tmp_path), "--name", "r")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (tmp_path / "r" / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Interrupted at step" in stderr and "--resume" in stderr and "Traceback" not in stderr
    checkpoint = load_latest_checkpoint(tmp_path / "r")
    assert checkpoint is not None and checkpoint.step >= 1


@pytest.mark.parametrize("args, code, words", [
    (["train", "--gen", "dcgn", "--quiet"], 2, "Unknown generator 'dcgn'. Did you mean: dcgan"),
    (["train", "--loss", "hinge+0.5*r2", "--quiet"], 2, "Unknown loss 'r2'. Did you mean: r1?"),
    (["train", "--dataset", "digits", "--image-size", "30", "--quiet"], 2, "--image-size 32"),
    (["train", "--dataset", "cifar10", "--data-root", "/nonexistent/cifar", "--quiet"], 1, "--data-root"),
    (["train", "--dataset", "digits", "-G", "widht=8", "--quiet"], 2, "has no option 'widht'"),
    (["train", "--loss", "hinge+", "--quiet"], 2, "Cannot read the loss expression"),
    (["train", "--precision", "fp16", "--device", "cpu", "--quiet"], 2, "needs a CUDA device"),
])
def test_bad_training_input_is_one_paragraph_with_exit_code(tmp_path, args, code, words):
    result = gantk_command(*args, "--runs-dir", str(tmp_path))
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("Error: ") and words in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_corrupt_or_truncated_safetensors_is_a_clear_error(tmp_path):
    trainer = Trainer(tiny_config(steps=1), tmp_path / "run", show_progress=False)
    exported = trainer.train().exported
    data = exported.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    for path in (truncated, garbage):
        for command in (["info", str(path)], ["sample", str(path), "--out", str(tmp_path / "x.png")]):
            result = gantk_command(*command)
            assert result.returncode == 1, result.stderr
            assert result.stderr.startswith(f"Error: Cannot read '{path}'") and "Traceback" not in result.stderr
    missing = gantk_command("sample", str(tmp_path / "nope.safetensors"))
    assert missing.returncode == 1 and "No generator found" in missing.stderr


def test_presets_list_their_settings_and_flags_override_them(tmp_path, cli):
    listing = cli("presets")
    assert listing.exit_code == 0
    for name in ("dcgan", "gan1d", "wgan", "wgan-gp", "lsgan"):
        assert any(line.startswith(f"{name}  ") for line in listing.stdout.splitlines())
    assert "--loss wgan+10*gp" in listing.stdout
    result = gantk_command("train", "--preset", "wgan-gp", "--dataset", "digits", "-G", "width=8", "-D", "width=8",
                           "--steps", "2", "--quiet", "--runs-dir", str(tmp_path), "--name", "r")
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (config["loss"], config["n_critic"], config["steps"], config["dataset"]) == (
        "gantk:wgan+10*gantk:gp", 5, 2, "gantk:digits")  # runs record package:name (tests/test_plugin_isolation.py)
    assert config["disc_options"] == {"norm": "none", "width": 8}
    assert config["d_optimizer"] == {"name": "adam", "lr": 1e-4, "betas": [0.0, 0.9]}


def test_gan1d_preset_saves_histogram_snapshots(tmp_path):
    result = gantk_command("train", "--preset", "gan1d", "--steps", "40", "--sample-every", "20", "--quiet",
                           "--runs-dir", str(tmp_path), "--name", "r")
    assert result.returncode == 0, result.stderr
    from PIL import Image

    pictures = sorted((tmp_path / "r" / "samples").iterdir())
    assert [p.name for p in pictures] == ["step_000020.png", "step_000040.png"]
    assert Image.open(pictures[0]).size == (450, 450)


def test_resume_changes_only_the_options_marked_resumable(tmp_path):
    Trainer(tiny_config(steps=1), tmp_path / "run", show_progress=False).train()
    result = gantk_command("train", "--resume", str(tmp_path / "run"), "--loss", "hinge", "-O", "n=3", "--quiet")
    assert result.returncode == 2 and "keeps its saved configuration" in result.stderr
    assert "but --data-option, --loss was given" in result.stderr and "--keep-best" in result.stderr
    resumed = gantk_command("train", "--resume", str(tmp_path / "run"), "--steps", "2", "--keep-checkpoints", "1",
                            "--log-every", "2", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["steps"], saved["keep_checkpoints"], saved["log_every"], saved["loss"]) == (2, 1, 2, "ns")


def test_preset_overrides_follow_what_the_flag_replaces():
    from gantk.engine.config import apply_overrides

    preset = {"gen": "dcgan", "disc": "dcgan", "loss": "wgan+10*gp", "disc_options": {"norm": "none"},
              "loss_options": {"wgan": {"clip": 0.01}}, "g_lr": 1e-4, "d_lr": 1e-4, "g_betas": (0.0, 0.9)}
    assert apply_overrides(preset, {"lr": 1e-3}).keys() >= {"lr"} and "g_lr" not in apply_overrides(preset, {"lr": 1e-3})
    switched = apply_overrides(preset, {"gen": "mlp"})
    assert "disc" not in switched and "disc_options" not in switched
    assert "loss_options" not in apply_overrides(preset, {"loss": "hinge"})
    assert apply_overrides(preset, {"disc_options": {"width": 8}})["disc_options"] == {"norm": "none", "width": 8}
    assert apply_overrides(preset, {"gen": "dcgan"})["disc_options"] == {"norm": "none"}  # same value: nothing replaced


def test_non_finite_weights_message_names_the_module():
    error = NonFiniteLossError(7, "weights/discriminator", float("nan"), "Kept.")
    assert str(error).startswith("Training stopped at step 7: the weights of the discriminator are not finite. Kept.")


def test_norm_none_from_the_command_line_builds_a_critic_without_batchnorm(tmp_path):
    result = gantk_command(*tiny_cli_args("-D", "norm=none", "--loss", "wgan+gp", "--steps", "1", "--runs-dir",
                                          str(tmp_path), "--name", "r"))
    assert result.returncode == 0, result.stderr
    assert "BatchNorm" not in result.stderr
    assert json.loads((tmp_path / "r" / "components.json").read_text())["discriminator"]["options"]["norm"] == "none"


def test_a_loss_without_an_adversarial_term_fails_before_training(tmp_path):
    result = gantk_command(*tiny_cli_args("--loss", "r1", "--steps", "5", "--runs-dir", str(tmp_path), "--name", "r"))
    assert result.returncode == 2 and "no adversarial term" in result.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_resume_needs_more_steps_and_latest_points_at_finished_runs(tmp_path):
    Trainer(tiny_config(steps=2), tmp_path / "a", show_progress=False).train()
    assert (tmp_path / "latest").resolve() == (tmp_path / "a").resolve()
    again = gantk_command("train", "--resume", str(tmp_path / "a"), "--quiet")
    assert again.returncode == 2 and "already at step 2" in again.stderr
    failing = gantk_command(*tiny_cli_args("--loss", "ns", "-L", "ns.real_target=2", "--runs-dir", str(tmp_path)))
    assert failing.returncode == 2
    assert (tmp_path / "latest").resolve() == (tmp_path / "a").resolve()


def test_tensorboard_without_the_package_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(gantk.UsageError, match="pip install 'gantk\\[tensorboard\\]'"):
        Trainer(tiny_config(steps=1, tensorboard=True), tmp_path / "run", show_progress=False).train()


def test_label_on_an_unconditional_generator_is_refused(tmp_path):
    exported = Trainer(tiny_config(steps=1), tmp_path / "run", show_progress=False).train().exported
    result = gantk_command("sample", str(exported), "--label", "3", "--out", str(tmp_path / "x.png"))
    assert result.returncode == 2 and "need a class-conditional generator" in result.stderr
