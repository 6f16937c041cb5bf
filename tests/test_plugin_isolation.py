"""A broken or greedy plugin costs only itself: SystemExit at import, command and name clashes, factories
returning the wrong thing, broken presets, names in the wrong case."""

from __future__ import annotations

import json
import types

import pytest

import gantk
import gantk.registry
from gantk.engine.config import TrainConfig
from gantk.engine.loss_composition import parse_loss_expression
from gantk.engine.qualified_names import names_on_resume, qualified_config, same_component
from gantk.errors import AmbiguousNameError, GantkError, UnknownNameError
from gantk.factories import RESULT_CHECKS
from gantk.registry import PluginSource, Registry

EXITS_AT_IMPORT = "raise SystemExit(3)\n"

COMMANDS = """
import gantk


@gantk.hookimpl
def register_commands(app):
    @app.command("train")
    def train():
        print("hijacked train")

    @app.command()
    def eval():
        print("hijacked eval")

    @app.command("hello")
    def hello():
        print("hello from hijack")
"""

# Every name the gan1d preset uses, registered again by a third-party package whose factories must never run.
SHADOWS = """
import gantk


def never(*args, **kwargs):
    raise AssertionError("acme's plugin was used instead of gantk's")


@gantk.hookimpl
def register_generators(register):
    register("mlp", never)
    register("dcgan", never)


@gantk.hookimpl
def register_discriminators(register):
    register("mlp", never)


@gantk.hookimpl
def register_losses(register):
    register("ns", never)


@gantk.hookimpl
def register_datasets(register):
    register("normal1d", never)


@gantk.hookimpl
def register_procedures(register):
    register("gan", never)


@gantk.hookimpl
def register_presets(register):
    register("gan1d", never)
"""

BROKEN_PRESETS = """
import gantk


def raising():
    raise ValueError("no such file: presets.yaml")


@gantk.hookimpl
def register_presets(register):
    register("raising", raising)
    register("listed", lambda: ["--gen", "dcgan"])
    register("colourful", lambda: {"gen": "dcgan", "colour": "red"})
    register("stepless", lambda: {"steps": 0})
"""

# One plugin of each kind whose factory returns a list; the CLI cases below pick one each.
WRONG_RESULTS = """
import gantk


def a_list(*args, **kwargs):
    return ["not", "a", "component"]


@gantk.hookimpl
def register_datasets(register):
    register("wrong", a_list)


@gantk.hookimpl
def register_presets(register):
    register("wrong", a_list)


@gantk.hookimpl
def register_metrics(register):
    register("wrong", a_list)


@gantk.hookimpl
def register_losses(register):
    register("wrong", a_list)


@gantk.hookimpl
def register_procedures(register):
    register("wrong", a_list)


@gantk.hookimpl
def register_monitors(register):
    register("wrong", a_list)
"""

GAN1D = ["--preset", "gan1d", "--steps", "2", "--log-every", "1", "--sample-every", "2", "--checkpoint-every", "2",
         "--quiet"]


def module_with(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, gantk.hookimpl(function))
    return module


def source(package: str) -> PluginSource:
    return PluginSource(package, "1.0", f"{package}_plugin", "main")


def stderr_lines(text: str, *words: str) -> list[str]:
    return [line for line in text.splitlines() if all(word in line for word in words)]


# ------------------------------------------------------------------ SystemExit and other BaseExceptions

def test_system_exit_at_import_is_isolated_like_any_failure(fake_package, cli, capsys):
    fake_package("exiter", {"exiter_plugin": EXITS_AT_IMPORT}, {"exits": "exiter_plugin"})
    report = cli("plugins")
    assert report.exit_code == 0
    assert "FAILED exiter_plugin (import): SystemExit: 3" in report.stdout
    assert len(stderr_lines(capsys.readouterr().err, "exiter")) == 1
    gantk.registry._default = None
    listed = cli("list", "loss")
    assert listed.exit_code == 0 and "hinge" in listed.stdout


def test_system_exit_in_a_hook_is_isolated_but_ctrl_c_is_not(capsys):
    def exits(register):
        raise SystemExit()

    registry = Registry()
    registry.add_plugin(module_with("exits", register_losses=exits), source("exiter"))
    registry.add_plugin(module_with("fine", register_losses=lambda register: register("mine", lambda spec: None)),
                        source("fine"))
    assert [e.name for e in registry.list("loss")] == ["mine"]
    assert [(f.stage, f.error) for f in registry.failures] == [("register_losses", "SystemExit")]
    assert len(capsys.readouterr().err.splitlines()) == 1

    def interrupted(register):
        raise KeyboardInterrupt

    registry = Registry()
    registry.add_plugin(module_with("ctrl_c", register_losses=interrupted), source("ctrl-c"))
    with pytest.raises(KeyboardInterrupt):
        registry.list("loss")


# ------------------------------------------------------------------ commands

def test_a_plugin_cannot_replace_builtin_commands_and_keeps_its_own_under_a_qualified_name(fake_package, cli, capsys):
    fake_package("hijack", {"hijack_commands": COMMANDS}, {"commands": "hijack_commands"})
    app_help = cli("--help")
    warnings = capsys.readouterr().err
    assert len(stderr_lines(warnings, "warning", "'hijack'", "'train'")) == 1
    assert len(stderr_lines(warnings, "warning", "'hijack'", "'eval'")) == 1
    assert stderr_lines(warnings, "'gantk hijack:train'")
    assert "hijack:train" in app_help.stdout and "hello" in app_help.stdout
    train_help = cli("train", "--help")
    assert train_help.exit_code == 0 and "--loss" in train_help.stdout  # gantk's train
    eval_help = cli("eval", "--help")
    assert eval_help.exit_code == 0 and "hijacked" not in eval_help.stdout and "--metrics" in eval_help.stdout
    assert cli("hijack:train").stdout == "hijacked train\n"
    assert cli("hijack:eval").stdout == "hijacked eval\n"
    assert cli("hello").stdout == "hello from hijack\n"  # no clash: the plain name


def test_a_command_clashing_with_an_earlier_plugins_is_qualified(capsys):
    from typer.testing import CliRunner

    from gantk.cli.app import build_app

    def commands(text):
        def register_commands(app):
            app.command("hello")(lambda: print(text))
        return register_commands

    registry = Registry()
    registry.add_plugin(module_with("first", register_commands=commands("first")), source("first"))
    registry.add_plugin(module_with("second", register_commands=commands("second")), source("second"))
    app = build_app(registry)
    (warning,) = capsys.readouterr().err.splitlines()
    loser = "first" if warning.startswith("gantk: warning: plugin package 'first'") else "second"
    winner = {"first": "second", "second": "first"}[loser]
    assert f"which plugin package '{winner}' already has" in warning and f"'gantk {loser}:hello'" in warning
    runner = CliRunner()
    assert runner.invoke(app, ["hello"]).stdout == f"{winner}\n"
    assert runner.invoke(app, [f"{loser}:hello"]).stdout == f"{loser}\n"


# ------------------------------------------------------------------ names shadowing built-ins

def test_a_third_party_name_never_shadows_a_builtin_and_runs_record_qualified_names(fake_package, cli, tmp_path):
    fake_package("acme", {"acme_shadows": SHADOWS}, {"shadows": "acme_shadows"})
    result = cli("train", *GAN1D, "--runs-dir", str(tmp_path), "--name", "r")
    assert result.exit_code == 0, result.output
    note = stderr_lines(result.stderr, "note", "generator 'mlp'")
    assert note == ["gantk: note: the generator 'mlp' also comes from package acme; using gantk's; write acme:mlp "
                    "for theirs."]  # once, though the name is looked up several times
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert {key: config[key] for key in ("procedure", "gen", "disc", "loss", "dataset", "preset")} == {
        "procedure": "gantk:gan", "gen": "gantk:mlp", "disc": "gantk:mlp", "loss": "gantk:ns",
        "dataset": "gantk:normal1d", "preset": "gantk:gan1d"}
    default_stem = cli("train", *GAN1D, "--runs-dir", str(tmp_path))  # the stem keeps the bare names
    assert default_stem.exit_code == 0 and any(p.name.startswith("mlp-normal1d-") for p in tmp_path.iterdir())
    gantk.registry._default = None
    resumed = cli("train", "--resume", "r", "--runs-dir", str(tmp_path), "--steps", "4", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert "to step 4" in resumed.stdout and "note" not in resumed.stderr


def test_resume_accepts_the_qualified_name_of_a_saved_bare_name(cli, tmp_path):
    assert cli("train", *GAN1D, "--runs-dir", str(tmp_path), "--name", "old").exit_code == 0
    config_path = tmp_path / "old" / "config.json"
    saved = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**saved, "gen": "mlp", "disc": "mlp", "loss": "ns", "dataset": "normal1d"}))
    refused = cli("train", "--resume", "old", "--runs-dir", str(tmp_path), "--steps", "4", "--gen", "gantk:dcgan")
    assert refused.exit_code == 2 and "keeps its saved configuration" in refused.stderr
    resumed = cli("train", "--resume", "old", "--runs-dir", str(tmp_path), "--steps", "4", "--quiet",
                  "--gen", "gantk:mlp", "--disc", "mlp", "--loss", "gantk:ns", "--dataset", "gantk:normal1d")
    assert resumed.exit_code == 0, resumed.output
    config = json.loads(config_path.read_text())
    assert (config["gen"], config["disc"], config["loss"], config["dataset"]) == (
        "gantk:mlp", "mlp", "gantk:ns", "gantk:normal1d")


def test_two_third_party_packages_with_one_name_stay_ambiguous():
    registry = Registry()
    for package in ("acme", "other"):
        registry.add_plugin(module_with(package, register_losses=lambda register: register("hinge2", lambda s: 0)),
                            source(package))
    with pytest.raises(AmbiguousNameError) as info:
        registry.get("loss", "hinge2")
    assert "'acme:hinge2'" in str(info.value) and "'other:hinge2'" in str(info.value)
    assert registry.get("loss", "other:hinge2").source.package == "other"


def test_qualified_config_names_every_plugin_and_keeps_loss_weights():
    registry = Registry.discover()
    config = TrainConfig(loss="hinge+0.5*r1", dataset="digits", eval_metrics=["fid", "modes"], preset="dcgan")
    qualified = qualified_config(config, registry)
    assert (qualified.gen, qualified.disc, qualified.procedure, qualified.dataset, qualified.preset) == (
        "gantk:dcgan", "gantk:dcgan", "gantk:gan", "gantk:digits", "gantk:dcgan")
    assert qualified.loss == "gantk:hinge+0.5*gantk:r1" and qualified.eval_metrics == ["gantk:fid", "gantk:modes"]
    assert [(t.name, t.weight) for t in parse_loss_expression(qualified.loss)] == [("gantk:hinge", None),
                                                                                   ("gantk:r1", 0.5)]
    assert qualified_config(qualified, registry) == qualified
    assert [registry.get("loss", t.name).name for t in parse_loss_expression(qualified.loss)] == ["hinge", "r1"]


def test_names_on_resume_take_only_spellings_of_the_saved_components():
    saved = TrainConfig(gen="dcgan", dataset="gantk:digits", loss="hinge+0.5*r1").to_dict()
    given = {"gen": "acme:dcgan", "dataset": "digits", "loss": "gantk:hinge+0.5*gantk:r1", "disc": "mlp"}
    assert names_on_resume(saved, given) == {"gen": "acme:dcgan", "dataset": "gantk:digits",
                                             "loss": "gantk:hinge+0.5*gantk:r1"}
    assert names_on_resume(saved, {"loss": "hinge+r1", "dataset": "other:digits"}) == {}
    assert same_component("Acme_Gan:x", "acme-gan:x") == "Acme_Gan:x" and same_component("x", "y") is None


# ------------------------------------------------------------------ what factories return

@pytest.mark.parametrize("kind", sorted(RESULT_CHECKS))
def test_every_kinds_factory_result_is_checked_and_the_plugin_named(kind):
    hook = gantk.registry.KIND_HOOKS[kind]
    registry = Registry()
    registry.add_plugin(module_with("wrong", **{hook: lambda register: register("wrong", lambda *a, **k: ["x"])}),
                        PluginSource("acme-gan", "2.0", "acme_gan.plugins", "main"))
    with pytest.raises(GantkError) as info:
        registry.create(kind, "wrong", *([None] if kind not in ("preset", "metric") else []))
    message = str(info.value)
    assert message.startswith(f"The {kind} plugin 'acme-gan:wrong' (acme-gan 2.0, acme_gan.plugins) returned a list")
    assert RESULT_CHECKS[kind].needs in message and "report it to acme-gan" in message
    assert info.value.exit_code == 1


def test_a_monitor_factory_may_return_none_and_a_procedure_must_have_every_member():
    def register_procedures(register):
        register("half", lambda setup: types.SimpleNamespace(run=print))

    registry = Registry()
    registry.add_plugin(module_with("plugin", register_monitors=lambda register: register("off", lambda setup: None),
                                    register_procedures=register_procedures), source("acme"))
    assert registry.create("monitor", "off", None) is None
    with pytest.raises(GantkError, match="returned a SimpleNamespace without modules, optimizers, state, load_state, "
                                         "exports, but a procedure factory must return a gantk.Procedure"):
        registry.create("procedure", "half", None)


@pytest.mark.parametrize("flags", [["--dataset", "wrong"], ["--preset", "wrong"], ["--loss", "ns+wrong"],
                                   ["--procedure", "wrong"], ["--eval-every", "1", "--eval-metrics", "wrong"], []],
                         ids=["dataset", "preset", "loss", "procedure", "metric", "monitor"])
def test_a_wrong_factory_result_is_one_paragraph_naming_the_plugin(flags, fake_package, cli, tmp_path):
    fake_package("acme", {"acme_wrong": WRONG_RESULTS}, {"wrong": "acme_wrong"})
    args = ["train", "--dataset", "normal1d", "--gen", "mlp", "--steps", "1", "--quiet", "--runs-dir", str(tmp_path)]
    result = cli(*args, *flags)
    kind = "monitor" if not flags else ("metric" if "--eval-metrics" in flags else flags[0][2:])
    assert result.exit_code == 1, result.output
    (line,) = stderr_lines(result.stderr, "Error:")
    assert line.startswith(f"Error: The {kind} plugin 'acme:wrong' (acme 1.2.3, acme_wrong) returned a list")
    assert "internal error" not in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------ presets

def test_broken_presets_are_listed_as_broken_and_the_others_still_list(fake_package, cli, tmp_path):
    fake_package("acme", {"acme_presets": BROKEN_PRESETS}, {"presets": "acme_presets"})
    result = cli("presets")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    reasons = {lines[i].split()[0]: lines[i + 1] for i in range(len(lines) - 1) if lines[i + 1].startswith("  ")}
    assert reasons["raising"] == "  BROKEN: ValueError: no such file: presets.yaml"
    assert reasons["listed"].startswith("  BROKEN: The preset plugin 'acme:listed' (acme 1.2.3, acme_presets) "
                                        "returned a list")
    assert reasons["colourful"].startswith("  BROKEN: The preset 'acme:colourful' (acme 1.2.3) sets colour,")
    assert reasons["stepless"] == "  BROKEN: --steps must be at least 1, got 0."
    assert reasons["dcgan"].startswith("  --gen dcgan") and reasons["wgan-gp"].startswith("  --gen dcgan")
    assert "4 preset(s) are broken" in result.stderr
    one = cli("presets", "raising")
    assert one.exit_code == 1 and "BROKEN: ValueError" in one.stdout
    assert cli("presets", "dcgan").exit_code == 0
    train = cli("train", "--preset", "colourful", "--runs-dir", str(tmp_path))
    assert train.exit_code == 1 and "The preset 'acme:colourful' (acme 1.2.3) sets colour" in train.stderr


# ------------------------------------------------------------------ case

def test_names_in_the_wrong_case_get_a_suggestion(cli, tmp_path):
    registry = Registry.discover()
    with pytest.raises(UnknownNameError, match=r"^Unknown loss 'HINGE'\. Did you mean: hinge\b"):
        registry.get("loss", "HINGE")
    with pytest.raises(UnknownNameError, match=r"^Unknown generator 'DcGan'\. Did you mean: dcgan"):
        registry.get("generator", "DcGan")
    result = cli("train", "--loss", "HINGE", "--runs-dir", str(tmp_path))
    assert result.exit_code == 2 and result.stderr.startswith("Error: Unknown loss 'HINGE'. Did you mean: hinge")
