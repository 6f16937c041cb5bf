"""Issue 12's smaller things: Ctrl-C while the CLI loads, --debug anywhere, and value checks named by flag."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
import typer.testing

import gantk
from gantk.cli.app import build_app, main
from gantk.cli.errors import hoist_debug_flag
from gantk.engine.config import OptimizerConfig, TrainConfig
from gantk.engine.loss_composition import build_loss, parse_loss_expression
from gantk.errors import UsageError
from gantk.options import parse_assignments, parse_value, positive_int
from gantk.protocols import DataSpec, LossTerm
from gantk.registry import PluginSource, Registry

from engine_helpers import tiny_cli_args

SCRIPT = os.path.join(os.path.dirname(sys.executable), "gantk")


# ----------------------------------------------------------------------------- Ctrl-C
def _torch_is_loading(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as maps:
        return "libtorch" in maps.read()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see the imports under way")
def test_ctrl_c_while_the_cli_loads_prints_one_line_and_exits_130():
    """SIGINT as soon as torch's libraries are mapped: the command line is still importing."""
    process = subprocess.Popen([SCRIPT, "list", "loss"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while process.poll() is None and not _torch_is_loading(process.pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.splitlines() == ["Interrupted."]


def test_ctrl_c_inside_a_command_is_one_line_and_130():
    def wait() -> None:
        raise KeyboardInterrupt

    app = build_app()
    app.command("wait")(wait)
    result = typer.testing.CliRunner().invoke(app, ["wait"])
    assert result.exit_code == 130
    assert result.stderr.splitlines() == ["Interrupted."] and "Traceback" not in result.output


# ----------------------------------------------------------------------------- --debug anywhere
@pytest.mark.parametrize("args, expected", [
    (["train", "--debug", "--gen", "x"], ["--debug", "train", "--gen", "x"]),
    (["train", "--gen", "x", "--debug"], ["--debug", "train", "--gen", "x"]),
    (["--debug", "train"], ["--debug", "train"]),
    (["train", "--name", "a", "--", "--debug"], ["train", "--name", "a", "--", "--debug"]),  # after --: a value
    (["train"], ["train"]),
])
def test_debug_is_hoisted_before_the_command(args, expected):
    assert hoist_debug_flag(args) == expected


def run_main(monkeypatch, *args: str) -> int:
    """gantk.cli.app.main on ``args`` in this process; its exit code."""
    monkeypatch.setattr(sys, "argv", ["gantk", *args])
    monkeypatch.delenv("GANTK_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_after_the_command_shows_the_traceback_and_keeps_exit_2(monkeypatch, capsys, tmp_path, where):
    args = ["train", "--gen", "dcgn", "--runs-dir", str(tmp_path), "--quiet"]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    assert run_main(monkeypatch, *args) == 2  # a usage error stays a usage error
    stderr = capsys.readouterr().err
    assert "Traceback" in stderr and "UnknownNameError: Unknown generator 'dcgn'" in stderr


def test_a_runtime_error_under_debug_exits_1_with_the_traceback(monkeypatch, capsys, tmp_path):
    assert run_main(monkeypatch, "info", str(tmp_path / "missing.safetensors"), "--debug") == 1
    stderr = capsys.readouterr().err
    assert "Traceback" in stderr and "missing.safetensors" in stderr


def test_without_debug_a_usage_error_is_one_paragraph(monkeypatch, capsys, tmp_path):
    assert run_main(monkeypatch, "train", "--gen", "dcgn", "--runs-dir", str(tmp_path), "--quiet") == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("Error: Unknown generator 'dcgn'") and "Traceback" not in stderr


# ----------------------------------------------------------------------------- values named by their flag
@pytest.mark.parametrize("flag, value, words", [
    ("--lr", "inf", "--lr must be a finite number > 0"),
    ("--lr", "nan", "--lr must be a finite number > 0"),
    ("--lr", "-1", "--lr must be a finite number > 0"),
    ("--lr", "0", "--lr must be a finite number > 0"),
    ("--g-lr", "inf", "--g-lr must be a finite number > 0"),
    ("--d-lr", "-0.1", "--d-lr must be a finite number > 0"),
    ("--betas", "1.5,-2", "--betas must be two numbers each in [0, 1)"),
    ("--betas", "0.5,1", "--betas must be two numbers each in [0, 1)"),
    ("--g-betas", "nan,0.9", "--g-betas must be two numbers each in [0, 1)"),
    ("--d-betas", "0.5", "--d-betas takes two numbers separated by a comma"),
    ("--ema", "nan", "--ema must be a decay in (0, 1)"),
    ("--ema", "inf", "--ema must be a decay in (0, 1)"),
    ("--ema", "1", "--ema must be a decay in (0, 1)"),
    ("--loss", "1e999*hinge", "is not a finite number"),
    ("--loss", "nan*hinge", "is not a finite number"),
    ("--loss", "0*hinge", "a weight of 0 switches the term off; drop it from --loss"),
    ("--loss", "hinge+0*r1", "a weight of 0 switches the term off; drop it from --loss"),
    ("--loss", "0*hinge+0.0*r1", "a weight of 0 switches the term off"),
    ("--loss", "hinge+-1*r1", "is negative"),
    ("--loss", "hinge+ten*r1", "Cannot read the weight 'ten'"),
])
def test_bad_training_values_are_usage_errors_naming_the_flag(cli, tmp_path, flag, value, words):
    result = cli(*tiny_cli_args("--steps", "1", "--runs-dir", str(tmp_path / "runs"), flag, value))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and words in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # refused before anything was written


@pytest.mark.parametrize("options, words", [
    ({"lr": math.inf}, "The learning rate (--lr, --g-lr, --d-lr) must be a finite number > 0"),
    ({"lr": True}, "learning rate"),
    ({"betas": (1.5, -2.0)}, "The betas (--betas, --g-betas, --d-betas) must be two numbers each in [0, 1)"),
    ({"betas": (0.5, 0.9, 0.1)}, "takes two numbers"),
])
def test_optimizer_config_checks_values_from_presets_and_files(options, words):
    with pytest.raises(UsageError) as error:
        OptimizerConfig(**options)
    assert words in str(error.value)


def test_good_optimizer_values_pass_and_betas_may_start_at_zero():
    config = TrainConfig.from_options({"g_lr": 1e-4, "betas": (0.0, 0.9)})
    assert config.g_optimizer.lr == 1e-4 and config.d_optimizer.lr == 2e-4
    assert config.g_optimizer.betas == (0.0, 0.9) and isinstance(config.g_optimizer.betas[0], float)


def test_loss_weights_that_are_finite_and_positive_are_read():
    terms = parse_loss_expression("1e-3*r1+hinge+2.5*gp")
    assert [(t.name, t.weight) for t in terms] == [("r1", 0.001), ("hinge", None), ("gp", 2.5)]


class _OffByDefault(LossTerm):
    default_weight = 0.0
    auxiliary = True


class _OffPlugin:
    @gantk.hookimpl
    def register_losses(self, register):
        register("off", lambda spec: _OffByDefault())


def test_a_plugin_default_weight_of_zero_is_refused_naming_the_plugin():
    registry = Registry()
    registry.add_plugin(_OffPlugin(), PluginSource("acme", "1.0", "acme.losses", "losses"))
    with pytest.raises(UsageError, match=r"'acme:off' declares default_weight 0.0, which is 0, and a weight of 0"):
        build_loss("off", DataSpec((2,), name="t"), {}, registry)


# ----------------------------------------------------------------------------- KEY=VALUE numbers
@pytest.mark.parametrize("text, value", [
    ("1e9", 1_000_000_000), ("1E6", 1_000_000), ("-2e3", -2000), ("+1e2", 100), ("3", 3),
    ("2.5e3", 2500.0), ("1e-3", 0.001), ("1e23", 1e23), ("1e999", math.inf),
])
def test_whole_numbers_in_scientific_notation_read_exactly(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_a_float_where_an_integer_is_expected_is_a_clear_error():
    options = parse_assignments(["z_dim=1e9", "width=2.5e3", "depth=inf"], "-G")
    assert positive_int("generator 'dcgan'", "z_dim", options["z_dim"]) == 10 ** 9  # read exactly
    for key in ("width", "depth"):
        with pytest.raises(UsageError, match=rf"'{key}' must be a positive integer, got"):
            positive_int("generator 'dcgan'", key, options[key])


# ----------------------------------------------------------------------------- click's usage errors
@pytest.mark.parametrize("args, words", [
    (["train", "--frobnicate"], "No such option: --frobnicate. See 'gantk train -h'."),
    (["trian"], "No such command 'trian'. Did you mean 'train'? See 'gantk -h'."),
    (["train", "--steps", "inf"], "Invalid value for '--steps'"),
    (["--nosuch", "list"], "No such option: --nosuch. See 'gantk -h'."),
    (["eval", "some-run", "--n", "0"], "--n must be a positive integer"),
])
def test_usage_errors_are_one_paragraph_with_exit_2(cli, args, words):
    result = cli(*args, prog_name="gantk")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and words in result.stderr
    assert result.stderr.startswith("Error: ") and "Usage:" not in result.stderr
