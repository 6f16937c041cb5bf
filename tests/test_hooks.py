"""Every hook is documented in its spec and in docs/plugin-reference.md, tested, and reaches the registry."""

from __future__ import annotations

import ast
import inspect
import re
import types

import pytest

import gantk
from gantk import hookspecs
from gantk.errors import GantkError
from gantk.factories import RESULT_CHECKS
from gantk.registry import KIND_HOOKS, Registry, PluginSource

from conftest import REPO_ROOT

HOOKS = sorted(name for name, obj in vars(hookspecs).items()
               if inspect.isfunction(obj) and hasattr(obj, "gantk_spec"))


def test_all_eleven_hooks_exist():
    assert HOOKS == sorted([*KIND_HOOKS.values(), "register_commands"])


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_spec_documents_each_argument_and_return(hook):
    function = getattr(hookspecs, hook)
    doc = inspect.getdoc(function) or ""
    assert doc, f"{hook} has no docstring"
    for argument in inspect.signature(function).parameters:
        assert f":param {argument}:" in doc, f"{hook}'s docstring does not describe '{argument}'"
    assert ":returns:" in doc


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_section_in_the_plugin_guide(hook):
    guide = (REPO_ROOT / "docs" / "plugin-reference.md").read_text()
    assert re.search(rf"^### `?{hook}`?", guide, re.MULTILINE), f"docs/plugin-reference.md lacks a '### {hook}' section"


def test_every_hook_has_a_test_named_after_it():
    test_names = set()
    for path in (REPO_ROOT / "tests").glob("test_*.py"):
        test_names |= {node.name for node in ast.walk(ast.parse(path.read_text()))
                       if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    missing = [hook for hook in HOOKS if not any(name.startswith(f"test_{hook}") for name in test_names)]
    assert missing == [], f"write a test named test_<hook>... for {missing}"


def registry_with(hook: str, name: str = "thing") -> Registry:
    module = types.ModuleType(f"plugin_for_{hook}")
    setattr(module, hook, gantk.hookimpl(lambda register: register(name, lambda *a, **k: (a, k))))
    registry = Registry()
    registry.add_plugin(module, PluginSource("acme", "1.0", module.__name__, "main"))
    return registry


def assert_hook_registers_kind(hook: str) -> None:
    kind = {h: k for k, h in KIND_HOOKS.items()}[hook]
    entry = registry_with(hook).get(kind, "thing")
    assert (entry.kind, entry.source.package) == (kind, "acme")
    if kind in RESULT_CHECKS:  # the factory ran, but a tuple is no component of this kind (tests/test_plugin_isolation.py)
        with pytest.raises(GantkError, match=rf"The {kind} plugin 'acme:thing' .* returned a tuple"):
            entry.create(1, option=2)
    else:
        assert entry.create(1, option=2) == ((1,), {"option": 2})


def test_register_generators():
    assert_hook_registers_kind("register_generators")


def test_register_discriminators():
    assert_hook_registers_kind("register_discriminators")


def test_register_losses():
    assert_hook_registers_kind("register_losses")


def test_register_conditionings():
    assert_hook_registers_kind("register_conditionings")


def test_register_datasets():
    assert_hook_registers_kind("register_datasets")


def test_register_metrics():
    assert_hook_registers_kind("register_metrics")


def test_register_augmentations():
    assert_hook_registers_kind("register_augmentations")


def test_register_presets():
    assert_hook_registers_kind("register_presets")


def test_register_procedures():
    assert_hook_registers_kind("register_procedures")


def test_register_monitors():
    assert_hook_registers_kind("register_monitors")


def test_register_commands_adds_a_cli_command():
    from typer.testing import CliRunner

    from gantk.cli.app import build_app

    module = types.ModuleType("plugin_with_command")

    def register_commands(app):
        @app.command("hello")
        def hello(name: str = "world") -> None:
            """Say hello."""
            print(f"hello {name}")

    module.register_commands = gantk.hookimpl(register_commands)
    registry = Registry()
    registry.add_plugin(module, PluginSource("acme", "1.0", "plugin_with_command", "main"))
    result = CliRunner().invoke(build_app(registry), ["hello", "--name", "gantk"])
    assert result.exit_code == 0 and result.stdout == "hello gantk\n"
