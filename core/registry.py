"""The plugin registry: discovery through entry points, lookup by kind and name.

Every component a user picks by name (built-ins included) comes from a module listed under the
``gantk`` entry-point group. :class:`Registry` loads those modules one at a time into a pluggy
``PluginManager``, calls their ``register_*`` hooks, and answers lookups:

- ``registry.get("generator", "dcgan")`` or ``registry.get("generator", "gantk:dcgan")``;
- ``registry.list("loss", "h*")`` with shell wildcards;
- unknown names raise :class:`~gantk.errors.UnknownNameError` with close-match suggestions;
- one name registered by two packages raises :class:`~gantk.errors.AmbiguousNameError` at lookup,
  naming both packages, unless one of them is gantk itself: a bare name then means gantk's built-in
  (with a one-time note on stderr), and ``package:name`` picks the other.

A plugin module that fails to import (or whose hook fails), with any exception but Ctrl-C (a
``SystemExit`` included), is isolated: one line on stderr, the failure is recorded for
``gantk plugins``, and every other plugin keeps working.
``GANTK_STRICT_PLUGINS=1`` turns such a failure into an exception.
"""

from __future__ import annotations

import contextvars
import dataclasses
import fnmatch
import importlib.metadata
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pluggy

from gantk import hookspecs
from gantk.errors import AmbiguousNameError, PluginLoadError, UnknownNameError
from gantk.names import check_name, close_matches, normalise_package

#: Component kinds, each with the hook that registers it.
KIND_HOOKS: dict[str, str] = {
    "generator": "register_generators",
    "discriminator": "register_discriminators",
    "loss": "register_losses",
    "conditioning": "register_conditionings",
    "dataset": "register_datasets",
    "metric": "register_metrics",
    "augmentation": "register_augmentations",
    "procedure": "register_procedures",
    "monitor": "register_monitors",
    "preset": "register_presets",
}
KINDS = tuple(KIND_HOOKS)
ENTRY_POINT_GROUP = "gantk"
#: The package of gantk's own plugins: its names win over a third-party package's same name.
BUILTIN_PACKAGE = "gantk"
STRICT_ENV = "GANTK_STRICT_PLUGINS"


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin came from: the distribution (package) that provides it and its module."""

    package: str
    version: str
    module: str
    entry_point: str = ""

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}".strip()


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be imported or whose hook raised."""

    source: PluginSource
    stage: str  # "import", "validate" or the hook's name
    error: str

    def describe(self) -> str:
        where = f"entry point '{self.source.entry_point}' -> {self.source.module}"
        return (
            f"plugin package '{self.source.package}' ({where}) failed at {self.stage}: {self.error}"
        )


@dataclass(frozen=True)
class Entry:
    """One registered component."""

    kind: str
    name: str
    factory: Callable[..., Any]
    summary: str
    aliases: tuple[str, ...]
    source: PluginSource
    registry: "Registry | None" = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.source.package}:{self.name}"

    def create(self, *args: Any, **kwargs: Any) -> Any:
        """Call the factory and check what it returns (:data:`~gantk.factories.RESULT_CHECKS`).

        An option the factory does not take is a usage error listing the ones it does; a result of the
        wrong kind is an error naming this plugin.

        While the factory runs, :func:`current_registry` is the registry this entry came from, so a
        factory that looks other plugins up by name (an architecture its conditioning) uses it too.
        """
        from gantk.factories import call_factory, check_result

        token = _building_with.set(self.registry) if self.registry is not None else None
        try:
            return check_result(self, call_factory(self.kind, self.name, self.factory, *args, **kwargs))
        finally:
            if token is not None:
                _building_with.reset(token)


#: The registry whose entry's factory is running (see :meth:`Entry.create`).
_building_with: contextvars.ContextVar["Registry | None"] = contextvars.ContextVar("gantk_registry", default=None)


@dataclass
class _Loaded:
    plugin: object
    source: PluginSource
    hooks: list[str] = field(default_factory=list)


def iter_entry_points(group: str = ENTRY_POINT_GROUP) -> Iterable[importlib.metadata.EntryPoint]:
    """The installed entry points of ``group`` (tests replace this to disable discovery)."""
    return importlib.metadata.entry_points(group=group)


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _first_docstring_line(obj: object) -> str:
    doc = getattr(obj, "__doc__", None) or ""
    for line in doc.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


class Registry:
    """Plugins by kind and name. Build one with :meth:`discover`, or add plugins directly."""

    def __init__(self) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self._loaded: dict[str, _Loaded] = {}
        self.failures: list[PluginFailure] = []
        self._entries: dict[str, list[Entry]] | None = None
        self._noted: set[tuple[str, str]] = set()  # (kind, name) of built-ins whose shadowing was noted

    # ------------------------------------------------------------------ loading
    @classmethod
    def discover(cls, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> "Registry":
        """A registry holding every plugin of the ``gantk`` entry-point group."""
        registry = cls()
        for entry_point in iter_entry_points() if entry_points is None else entry_points:
            registry.load_entry_point(entry_point)
        return registry

    def load_entry_point(self, entry_point: importlib.metadata.EntryPoint) -> None:
        """Import one entry point's module and register it; isolate it if it fails."""
        dist = getattr(entry_point, "dist", None)
        package = dist.metadata["Name"] if dist is not None else entry_point.value.split(".")[0]
        version = dist.version if dist is not None else ""
        source = PluginSource(normalise_package(package), version, entry_point.value, entry_point.name)
        key = f"{source.package}:{source.entry_point}"
        if key in self._loaded:  # the same distribution seen twice on sys.path
            return
        try:
            plugin = entry_point.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - any import failure is isolated, SystemExit too
            self._fail(source, "import", exc)
            return
        self.add_plugin(plugin, source, key=key)

    def add_plugin(self, plugin: object, source: PluginSource | None = None, *, key: str | None = None) -> None:
        """Register a plugin object (usually a module) directly, as unit tests and apps may."""
        if source is None:
            module = getattr(plugin, "__name__", type(plugin).__name__)
            source = PluginSource(normalise_package(module.split(".")[0]), "", module, module)
        source = dataclasses.replace(source, package=normalise_package(source.package))
        key = key or f"{source.package}:{source.entry_point}"
        if self.plugin_manager.is_registered(plugin):
            return
        if key in self._loaded:  # several objects added directly under one source
            key = f"{key}#{len(self._loaded)}"
        try:
            self.plugin_manager.register(plugin, name=key)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a hook with wrong arguments, for example
            self._fail(source, "validate", exc)
            return
        unknown = [
            caller.name
            for caller in self.plugin_manager.get_hookcallers(plugin) or []
            if caller.spec is None
        ]
        if unknown:
            self.plugin_manager.unregister(plugin)
            known = ", ".join(sorted(KIND_HOOKS.values()) + ["register_commands"])
            self._fail(source, "validate", ValueError(
                f"implements unknown hook(s) {', '.join(unknown)}; gantk's hooks are {known}"))
            return
        hooks = sorted(c.name for c in self.plugin_manager.get_hookcallers(plugin) or [])
        self._loaded[key] = _Loaded(plugin, source, hooks)
        self._entries = None

    def _fail(self, source: PluginSource, stage: str, exc: BaseException) -> None:
        detail = " ".join(str(exc).split())  # one line, whatever the exception's message
        failure = PluginFailure(source, stage, f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)
        if _strict():
            raise PluginLoadError(
                f"gantk: {failure.describe()}. {STRICT_ENV} is set, so this is an error; "
                f"fix or uninstall '{source.package}', or unset {STRICT_ENV} to skip it."
            ) from exc
        self.failures.append(failure)
        print(f"gantk: {failure.describe()} (other plugins still work)", file=sys.stderr)

    # --------------------------------------------------------------- collection
    def call_hook(self, hook_name: str, arguments_for: Callable[[PluginSource], dict[str, Any]],
                  after: Callable[[PluginSource], None] | None = None) -> None:
        """Call one hook on every plugin in turn, isolating a plugin whose hook raises (anything but Ctrl-C).

        ``arguments_for(source)`` gives the keyword arguments for the plugin from ``source``
        (so that ``register`` can record which package registered each name); ``after(source)``, if
        given, runs after each plugin's hook, whether it returned or failed.
        """
        caller = getattr(self.plugin_manager.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # in the order pluggy calls them: last-registered first
            source = self._loaded[impl.plugin_name].source
            arguments = {k: v for k, v in arguments_for(source).items() if k in impl.argnames}
            try:
                impl.function(**arguments)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - isolate the failing plugin, SystemExit too
                self._fail(source, hook_name, exc)
            if after is not None:
                after(source)

    def _collect(self) -> dict[str, list[Entry]]:
        if self._entries is not None:
            return self._entries
        entries: dict[str, list[Entry]] = {kind: [] for kind in KINDS}
        for kind, hook_name in KIND_HOOKS.items():
            def make_register(source: PluginSource, kind: str = kind):
                def register(name: str, factory: Callable[..., Any], *, summary: str = "",
                             aliases: Iterable[str] = ()) -> None:
                    check_name(name, f"{kind} name")
                    alias_tuple = tuple(check_name(a, f"{kind} alias") for a in aliases)
                    if not callable(factory):
                        raise TypeError(f"the factory registered for {kind} '{name}' is not callable")
                    entries[kind].append(Entry(kind, name, factory, summary or _first_docstring_line(factory),
                                               alias_tuple, source, registry=self))
                return register
            self.call_hook(hook_name, lambda source, make=make_register: {"register": make(source)})
        self._entries = entries
        return entries

    # ------------------------------------------------------------------ queries
    def get(self, kind: str, name: str) -> Entry:
        """The entry for ``name`` (or ``package:name``); raises a user-facing error if none or several."""
        entries = self._entries_of(kind)
        package, _, bare = name.rpartition(":")
        candidates = entries
        if package:
            candidates = [e for e in entries if e.source.package == normalise_package(package)]
        found = [e for e in candidates if e.name == bare] or [e for e in candidates if bare in e.aliases]
        if len(found) == 1:
            return found[0]
        if not found:
            raise self._unknown(kind, name, package, candidates)
        builtins = [e for e in found if e.source.package == BUILTIN_PACKAGE]
        if len(builtins) == 1:  # a third-party package shadows a built-in: the bare name keeps meaning gantk's
            self._note_shadowed(kind, bare, [e for e in found if e is not builtins[0]])
            return builtins[0]
        choices = " or ".join(f"'{e.qualified_name}'" for e in found)
        providers = " and ".join(f"{e.source.label} ({e.source.module})" for e in found)
        raise AmbiguousNameError(
            f"The {kind} name '{bare}' is registered by more than one plugin package: {providers}. "
            f"Pick one by qualifying the name with its package, e.g. {choices}, or uninstall one of them."
        )

    def _note_shadowed(self, kind: str, bare: str, others: list[Entry]) -> None:
        """Say once per registry that ``bare`` also comes from other packages, and how to pick theirs."""
        if (kind, bare) in self._noted:
            return
        self._noted.add((kind, bare))
        packages = ", ".join(sorted({e.source.package for e in others}))
        theirs = " or ".join(sorted({e.qualified_name for e in others}))
        print(f"gantk: note: the {kind} '{bare}' also comes from package {packages}; using gantk's; write {theirs} "
              "for theirs.", file=sys.stderr)

    def _unknown(self, kind: str, name: str, package: str, candidates: list[Entry]) -> UnknownNameError:
        names = sorted({e.name for e in candidates} | {a for e in candidates for a in e.aliases})
        suggestions = close_matches(name.rpartition(":")[2], names)
        message = f"Unknown {kind} '{name}'."
        if suggestions:
            message += f" Did you mean: {', '.join(suggestions)}?"
        if package and not candidates:
            message += f" No installed plugin package named '{package}' provides a {kind}."
        message += f" Available: {', '.join(names) if names else '(none installed)'}."
        message += f" Run 'gantk list {kind}' for details, or install the plugin package that provides it."
        return UnknownNameError(message)

    def _entries_of(self, kind: str) -> list[Entry]:
        if kind not in KIND_HOOKS:
            raise UnknownNameError(
                f"Unknown plugin kind '{kind}'. Did you mean: {', '.join(close_matches(kind, list(KINDS))) or '-'}? "
                f"Kinds: {', '.join(KINDS)}."
            )
        return self._collect()[kind]

    def create(self, kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
        """Look ``name`` up and call its factory."""
        return self.get(kind, name).create(*args, **kwargs)

    def list(self, kind: str | None = None, pattern: str | None = None) -> list[Entry]:
        """Entries of one kind (or all), optionally filtered by a shell wildcard on the name."""
        kinds = [kind] if kind else list(KINDS)
        result: list[Entry] = []
        for k in kinds:
            for entry in self._entries_of(k):
                if pattern is None or fnmatch.fnmatchcase(entry.name, pattern) or any(
                        fnmatch.fnmatchcase(a, pattern) for a in entry.aliases):
                    result.append(entry)
        return sorted(result, key=lambda e: (KINDS.index(e.kind), e.name, e.source.package))

    def names(self, kind: str) -> list[str]:
        """Every name (and alias) of one kind, for shell completion."""
        return sorted({n for e in self._entries_of(kind) for n in (e.name, *e.aliases)})

    def plugins(self) -> list[tuple[PluginSource, list[str]]]:
        """The loaded plugin modules with the hooks each implements."""
        self._collect()
        return [(loaded.source, loaded.hooks) for loaded in self._loaded.values()]


_default: Registry | None = None


def get_registry(*, reload: bool = False) -> Registry:
    """The process-wide registry, discovered from entry points on first use."""
    global _default
    if _default is None or reload:
        _default = Registry.discover()
    return _default


def current_registry() -> Registry:
    """The registry to look names up in: the one building the component being created, else the process-wide one."""
    return _building_with.get() or get_registry()


def discovered_registry() -> Registry | None:
    """The process-wide registry if :func:`get_registry` has discovered it, without discovering it."""
    return _default
