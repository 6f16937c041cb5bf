"""The registry: direct registration (tier 1) and fake installed packages (tier 2)."""

from __future__ import annotations

import types

import pytest

import gantk
from gantk.errors import AmbiguousNameError, PluginLoadError, UnknownNameError
from gantk.registry import PluginSource, Registry

from fake_plugins import BROKEN_PLUGIN, GOOD_PLUGIN


def make_plugin(module_name: str, **hooks) -> types.ModuleType:
    """A module object whose hook implementations are the given functions."""
    module = types.ModuleType(module_name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, gantk.hookimpl(function))
    return module


def registering(kind_hook: str, *names: str, **register_kwargs):
    """A plugin module registering ``names`` through ``kind_hook`` with a trivial factory."""
    def hook(register):
        for name in names:
            register(name, lambda *a, _n=name, **k: f"built {_n}", **register_kwargs)
    return make_plugin(f"plugin_{kind_hook}_{'_'.join(names)}".replace("-", "_"), **{kind_hook: hook})


def source(package: str, version: str = "1.0") -> PluginSource:
    return PluginSource(package, version, f"{package.replace('-', '_')}.plugin", "main")


def test_direct_registration_lookup_and_create():
    registry = Registry()
    registry.add_plugin(registering("register_generators", "dcgan", "mlp"), source("acme"))
    entry = registry.get("generator", "dcgan")
    assert (entry.name, entry.kind, entry.source.package) == ("dcgan", "generator", "acme")
    assert registry.create("generator", "mlp") == "built mlp"
    assert registry.get("generator", "acme:dcgan") is entry


def test_summary_defaults_to_factory_docstring_and_aliases_resolve():
    def build():
        """Builds the thing.

        More text."""
    plugin = make_plugin("p", register_losses=lambda register: register("nsgan", build, aliases=("ns-gan",)))
    registry = Registry()
    registry.add_plugin(plugin, source("acme"))
    assert registry.get("loss", "nsgan").summary == "Builds the thing."
    assert registry.get("loss", "ns-gan").name == "nsgan"
    assert registry.names("loss") == ["ns-gan", "nsgan"]


def test_wildcard_listing_filters_by_kind_and_pattern():
    registry = Registry()
    registry.add_plugin(registering("register_generators", "dcgan", "stylegan", "mlp"), source("acme"))
    registry.add_plugin(registering("register_losses", "hinge"), source("acme"))
    assert [e.name for e in registry.list("generator", "*gan")] == ["dcgan", "stylegan"]
    assert [(e.kind, e.name) for e in registry.list(pattern="h*")] == [("loss", "hinge")]
    assert len(registry.list()) == 4


def test_unknown_name_suggests_close_matches_and_lists_available():
    registry = Registry()
    registry.add_plugin(registering("register_generators", "dcgan", "mlp"), source("acme"))
    with pytest.raises(UnknownNameError) as info:
        registry.get("generator", "dcgn")
    message = str(info.value)
    assert message.startswith("Unknown generator 'dcgn'. Did you mean: dcgan?")
    assert "Available: dcgan, mlp." in message
    assert info.value.exit_code == 2


def test_unknown_kind_is_a_usage_error():
    with pytest.raises(UnknownNameError, match="Kinds: generator"):
        Registry().list("generatr")


def test_duplicate_name_error_names_both_packages_and_qualification_picks_one():
    registry = Registry()
    registry.add_plugin(registering("register_losses", "hinge"), source("acme-gan", "1.0"))
    registry.add_plugin(registering("register_losses", "hinge"), source("other-gan", "2.5"))
    with pytest.raises(AmbiguousNameError) as info:
        registry.get("loss", "hinge")
    message = str(info.value)
    assert "acme-gan 1.0" in message and "other-gan 2.5" in message
    assert "'acme-gan:hinge'" in message and "'other-gan:hinge'" in message
    assert registry.get("loss", "other-gan:hinge").source.version == "2.5"
    assert registry.get("loss", "Other_Gan:hinge").source.package == "other-gan"  # PEP 503 names


def test_qualified_name_of_missing_package_says_so():
    registry = Registry()
    registry.add_plugin(registering("register_losses", "hinge"), source("acme"))
    with pytest.raises(UnknownNameError, match="No installed plugin package named 'nope'"):
        registry.get("loss", "nope:hinge")


@pytest.mark.parametrize("bad", ["DCGAN", "hinge+r1", "a:b", "w=1", "-x", "", "two words"])
def test_invalid_names_are_rejected_and_isolated(bad, capsys):
    registry = Registry()
    registry.add_plugin(registering("register_generators", bad), source("sloppy"))
    registry.add_plugin(registering("register_generators", "good"), source("tidy"))
    assert [e.name for e in registry.list("generator")] == ["good"]
    assert registry.failures and "Invalid generator name" in registry.failures[0].error
    assert "sloppy" in capsys.readouterr().err


def test_hook_that_raises_is_isolated_and_recorded(capsys):
    def broken(register):
        raise RuntimeError("boom")
    registry = Registry()
    registry.add_plugin(make_plugin("broken", register_losses=broken), source("broken-pkg"))
    registry.add_plugin(registering("register_losses", "hinge"), source("fine"))
    assert [e.name for e in registry.list("loss")] == ["hinge"]
    (failure,) = registry.failures
    assert (failure.source.package, failure.stage) == ("broken-pkg", "register_losses")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken-pkg" in err[0] and "RuntimeError: boom" in err[0]


def test_strict_mode_raises_on_a_failing_hook(monkeypatch):
    monkeypatch.setenv("GANTK_STRICT_PLUGINS", "1")
    registry = Registry()
    registry.add_plugin(make_plugin("broken", register_losses=lambda register: 1 / 0), source("broken-pkg"))
    with pytest.raises(PluginLoadError, match="broken-pkg"):
        registry.list("loss")


def test_misspelt_hook_name_is_reported_not_silently_ignored():
    registry = Registry()
    registry.add_plugin(make_plugin("typo", register_generator=lambda register: None), source("typo-pkg"))
    (failure,) = registry.failures
    assert "register_generator" in failure.error and "register_generators" in failure.error


# ---------------------------------------------------------------- tier 2: fake installed packages

def test_fake_dist_info_is_discovered_with_its_package_name(fake_package):
    fake_package("gantk-fake", {"gantk_fake_plugin": GOOD_PLUGIN}, {"fake": "gantk_fake_plugin"}, version="3.1.4")
    registry = Registry.discover()
    entry = registry.get("generator", "fakegen")
    assert (entry.source.package, entry.source.version, entry.source.module) == (
        "gantk-fake", "3.1.4", "gantk_fake_plugin")
    assert entry.summary == "A generator from a fake package"


def test_import_error_in_one_package_leaves_the_others_working(fake_package, capsys):
    fake_package("gantk-broken", {"gantk_broken_plugin": BROKEN_PLUGIN}, {"broken": "gantk_broken_plugin"})
    fake_package("gantk-fake", {"gantk_fake_plugin": GOOD_PLUGIN}, {"fake": "gantk_fake_plugin"})
    registry = Registry.discover()
    assert registry.get("generator", "fakegen").source.package == "gantk-fake"
    assert registry.get("loss", "hinge").source.package == "gantk"  # built-ins unaffected
    failures = [f for f in registry.failures if f.source.package == "gantk-broken"]
    assert len(failures) == 1 and failures[0].stage == "import"
    assert "ModuleNotFoundError" in failures[0].error
    lines = [line for line in capsys.readouterr().err.splitlines() if "gantk-broken" in line]
    assert len(lines) == 1


def test_strict_mode_makes_an_import_error_raise(fake_package, monkeypatch):
    fake_package("gantk-broken", {"gantk_broken_plugin": BROKEN_PLUGIN}, {"broken": "gantk_broken_plugin"})
    monkeypatch.setenv("GANTK_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="gantk-broken"):
        Registry.discover()


def test_builtins_come_through_entry_points(monkeypatch):
    with_entry_points = Registry.discover()
    builtin = {(e.kind, e.name) for e in with_entry_points.list() if e.source.package == "gantk"}
    assert {("generator", "dcgan"), ("discriminator", "dcgan"), ("loss", "hinge"), ("dataset", "mnist5k"),
            ("preset", "dcgan")} <= builtin
    monkeypatch.setattr(gantk.registry, "iter_entry_points", lambda group="gantk": [])
    assert Registry.discover().list() == []
