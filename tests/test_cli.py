"""The command line: listing, plugin reports, errors, completion; in-process and as a real subprocess."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys

import gantk
import gantk.registry

from fake_plugins import BROKEN_PLUGIN, GOOD_PLUGIN


def run_gantk(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script as a user would."""
    gantk_script = os.path.join(os.path.dirname(sys.executable), "gantk")
    return subprocess.run([gantk_script, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"gantk {gantk.__version__}"


def test_list_shows_builtins_with_their_package(cli):
    result = cli("list")
    assert result.exit_code == 0
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == ["name", "kind", "summary", "package"]
    assert any(row.startswith("dcgan") and " generator " in row and row.endswith(f"gantk {gantk.__version__}")
               for row in rows)


def test_list_filters_by_kind_and_wildcard(cli):
    result = cli("list", "losses", "h*")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.stdout.splitlines()[2:]]
    assert names == ["hinge"]


def test_list_json(cli):
    entries = json.loads(cli("list", "generator", "--json").stdout)
    assert {"name": "dcgan", "kind": "generator", "package": "gantk"}.items() <= entries[0].items() or any(
        e["name"] == "dcgan" and e["package"] == "gantk" for e in entries)
    assert all(e["kind"] == "generator" for e in entries)


def test_unknown_kind_is_one_paragraph_exit_2(cli):
    result = cli("list", "generatr")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: Unknown plugin kind 'generatr'. Did you mean: generator")
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_broken_package_is_listed_as_failure_and_list_still_succeeds(fake_package, cli):
    fake_package("gantk-broken", {"gantk_broken_plugin": BROKEN_PLUGIN}, {"broken": "gantk_broken_plugin"})
    fake_package("gantk-fake", {"gantk_fake_plugin": GOOD_PLUGIN}, {"fake": "gantk_fake_plugin"})
    listed = cli("list")
    assert listed.exit_code == 0
    assert any(line.startswith("fakegen") and line.endswith("gantk-fake 1.2.3") for line in listed.stdout.splitlines())
    assert "dcgan" in listed.stdout
    gantk.registry._default = None
    report = cli("plugins")
    assert report.exit_code == 0
    assert "gantk-broken 1.2.3" in report.stdout
    assert "FAILED gantk_broken_plugin (import): ModuleNotFoundError" in report.stdout
    gantk.registry._default = None
    as_json = {p["package"]: p for p in json.loads(cli("plugins", "--json").stdout)}
    assert as_json["gantk-broken"]["failures"][0]["stage"] == "import"
    assert as_json["gantk-fake"]["modules"][0]["hooks"] == ["register_generators"]
    assert "register_losses" in {h for m in as_json["gantk"]["modules"] for h in m["hooks"]}


def test_subprocess_list_and_strict_mode(fake_package, tmp_path):
    root = fake_package("gantk-broken", {"gantk_broken_plugin": BROKEN_PLUGIN}, {"broken": "gantk_broken_plugin"})
    env = {"PYTHONPATH": str(root)}
    lenient = run_gantk("list", "loss", env=env)
    assert lenient.returncode == 0 and "hinge" in lenient.stdout
    assert [line for line in lenient.stderr.splitlines() if "gantk-broken" in line][0].startswith("gantk: plugin package")
    strict = run_gantk("list", env={**env, "GANTK_STRICT_PLUGINS": "1"})
    assert strict.returncode != 0 and "gantk-broken" in strict.stderr


def test_subprocess_unknown_name_has_no_traceback():
    result = run_gantk("presets", "dcgn")
    assert result.returncode == 2
    assert result.stderr.startswith("Error: Unknown preset 'dcgn'. Did you mean: dcgan")
    assert "Traceback" not in result.stderr


def test_shell_completion_of_plugin_names():
    env = {"_GANTK_COMPLETE": "complete_bash", "COMP_WORDS": "gantk list loss hi", "COMP_CWORD": "2"}
    kinds = run_gantk(env={**env, "COMP_WORDS": "gantk list lo"})
    assert kinds.stdout.split() == ["loss"]
    presets = run_gantk(env={**env, "COMP_WORDS": "gantk presets dc", "COMP_CWORD": "2"})
    assert "dcgan" in presets.stdout.split()


def test_loss_expression_completion_completes_the_last_term():
    from gantk.completion import names_of

    completions = names_of("loss")("hinge+0.5*r")
    assert {"hinge+0.5*r1", "hinge+0.5*ragan", "hinge+0.5*rahinge"} <= set(completions)
    assert all(c.startswith("hinge+0.5*r") for c in completions)
    assert names_of("loss")("hinge+0.5*r1") == ["hinge+0.5*r1"]
    assert "wgan+gp" in names_of("loss")("wgan+g")


def test_list_with_only_a_wildcard_searches_every_kind(cli):
    result = cli("list", "*gan*")
    assert result.exit_code == 0
    kinds = {line.split()[1] for line in result.stdout.splitlines()[2:]}
    assert {"generator", "discriminator", "loss", "preset"} <= kinds


def help_entries(text: str) -> dict[str, str]:
    """``--flag`` -> its -h entry on one line (flag line and wrapped help joined)."""
    entries: dict[str, str] = {}
    flag = None
    for line in text.splitlines():
        start = re.match(r"  (?:-\w, )?(--[\w-]+)", line)
        if start:
            flag = start.group(1)
            entries[flag] = line
        elif flag and line.startswith("   "):
            entries[flag] += " " + line
    return {flag: " ".join(entry.split()) for flag, entry in entries.items()}


def test_every_config_field_is_a_train_option_whose_help_shows_its_default(cli):
    from gantk.engine.config import TRAIN_OPTIONS, TrainConfig

    fields = dataclasses.fields(TrainConfig)
    assert {name for option in TRAIN_OPTIONS for name in option.sets} == {f.name for f in fields} - {"preset"}
    result = cli("train", "-h")
    assert result.exit_code == 0
    entries = help_entries(result.stdout)
    for option in TRAIN_OPTIONS:
        assert f"[default: {option.default_text}]" in entries[option.flag], option.flag
    for field in fields:  # a plain default is the one TrainConfig uses
        if isinstance(field.default, (int, float, str)):
            shown = str(field.default).lower() if isinstance(field.default, bool) else str(field.default)
            assert entries["--" + field.name.replace("_", "-")].endswith(f"[default: {shown}]"), field.name
    assert entries["--steps"].endswith("[default: 3500]") and entries["--ema"].endswith("[default: 0.999]")
    for short, flag in [("-G", "--gen-option"), ("-D", "--disc-option"), ("-L", "--loss-option"),
                        ("-O", "--data-option"), ("-P", "--procedure-option"), ("-q", "--quiet")]:
        assert f"{short}, {flag}" in result.stdout
    assert "--download / --no-download" in result.stdout and "May change on --resume" in entries["--keep-best"]


def test_the_flags_listed_for_each_preset_rebuild_its_config():
    import typer.main

    from gantk.cli.app import build_app
    from gantk.cli.train import explicit_options
    from gantk.engine.config import TrainConfig, as_flags

    train = typer.main.get_command(build_app()).commands["train"]
    registry = gantk.get_registry()
    for name in registry.names("preset"):
        options = registry.create("preset", name)
        with train.make_context("train", shlex.split(as_flags(options))) as context:
            from_flags = explicit_options(context.params)
        # '-D conditioning=none' reads back as None, which the plugins take for "none"
        as_read = json.dumps(TrainConfig.from_options(options).to_dict()).replace('"none"', "null")
        assert json.dumps(TrainConfig.from_options(from_flags).to_dict()) == as_read, name


def test_train_options_complete_plugin_names():
    env = {"_GANTK_COMPLETE": "complete_bash", "COMP_WORDS": "gantk train --gen dc", "COMP_CWORD": "3"}
    assert "dcgan" in run_gantk(env=env).stdout.split()
    metrics = run_gantk(env={**env, "COMP_WORDS": "gantk train --eval-metrics accu"})
    assert metrics.stdout.split() == ["accuracy"]
