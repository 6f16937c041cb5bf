"""Which plugin an unexpected exception came from, so that its message can name the package to report it to.

An exception that is not a :class:`~gantk.errors.GantkError` is a bug somewhere. :func:`find_culprit`
walks its traceback from the innermost frame outwards and stops at the first frame that lies in
plugin code, which is one of:

- the code of a registered factory (the exception was raised while building the component), or of
  a function it declares it is made of (``factory.component_functions``: ``gantk.logit_loss``'s two);
- a method whose ``self`` is an instance of a registered factory class, or of the class a factory
  is annotated to return (``def build(spec) -> MyLoss``), where that class is plugin code;
- a module registered through the ``gantk`` entry points, or a module below the package those
  modules share (``acme_gan._helpers`` beside ``acme_gan.losses``; ``gantk.plugins.*`` for the
  built-ins, while gantk's engine and contract are not plugin code).

The culprit names the entry (kind and name) when one can be pinned down, else the plugin module
and the entries it provides. Import and hook failures never get here: the registry isolates them.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any, Callable, Iterator

from gantk.registry import Entry, PluginSource, Registry, discovered_registry


@dataclass(frozen=True)
class Culprit:
    """The plugin an exception was raised in: its source, the module, and the entry if known."""

    source: PluginSource
    module: str
    entry: Entry | None = None
    #: the entries the module registers, when the exception cannot be pinned on one of them
    candidates: tuple[Entry, ...] = ()

    def describe(self) -> str:
        """``loss 'rahinge' (acme_gan.losses)``, or
        ``plugin module acme_gan.models (generator 'x', discriminator 'x')``."""
        if self.entry is not None:
            return f"{self.entry.kind} '{self.entry.name}' ({self.module})"
        provides = ", ".join(f"{e.kind} '{e.name}'" for e in self.candidates)
        return f"plugin module {self.module}" + (f" ({provides})" if provides else "")


def culprit_of(exception: BaseException) -> Culprit | None:
    """The plugin to blame for ``exception`` (or for the exception it was raised from), per the
    process-wide registry; ``None`` when no registry was discovered or no plugin frame is found."""
    registry = discovered_registry()
    if registry is None:
        return None
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:  # `raise X from plugin_error` blames the plugin
        seen.add(id(current))
        try:
            culprit = find_culprit(registry, current.__traceback__)
        except Exception:  # noqa: BLE001 - the lookup must never hide the error being reported
            return None
        if culprit is not None:
            return culprit
        current = current.__cause__
    return None


def find_culprit(registry: Registry, traceback: TracebackType | None) -> Culprit | None:
    """The innermost frame of ``traceback`` that lies in plugin code, as a :class:`Culprit`.

    When that frame names no entry (a helper module, or a module registering several components),
    the next frames out that belong to the same package are asked, and the first that names an
    entry wins; a frame of another package ends the search.
    """
    index = _PluginIndex(registry)
    innermost: Culprit | None = None
    for frame in reversed(list(_frames(traceback))):
        culprit = index.culprit_for(frame)
        if culprit is None:
            continue
        if innermost is None:
            innermost = culprit
        elif culprit.source.package != innermost.source.package:
            break
        if culprit.entry is not None:  # a helper module's frame: an outer frame of its package may name the entry
            return culprit
    return innermost


def _frames(traceback: TracebackType | None) -> Iterator[FrameType]:
    while traceback is not None:  # outermost first
        yield traceback.tb_frame
        traceback = traceback.tb_next


def _unwrap(factory: Callable[..., Any]) -> Callable[..., Any]:
    while isinstance(factory, functools.partial):
        factory = factory.func
    return inspect.unwrap(factory)


def _module_of(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    return module if isinstance(module, str) else ""


def _returned_class(factory: Callable[..., Any]) -> type | None:
    """The class a factory function is annotated to return, if it names one."""
    try:
        annotation = inspect.get_annotations(factory, eval_str=True).get("return")
    except Exception:  # noqa: BLE001 - an annotation that does not evaluate says nothing
        return None
    return annotation if isinstance(annotation, type) else None


def _package_root(modules: list[str]) -> str:
    """The package the modules share: ``gantk.plugins`` for gantk's built-ins, ``acme_gan`` for
    ``acme_gan.losses`` alone; ``""`` when they share none."""
    parents = [m.rpartition(".")[0] or m for m in modules]
    common = parents[0].split(".")
    for parent in parents[1:]:
        parts = parent.split(".")
        length = 0
        while length < min(len(common), len(parts)) and common[length] == parts[length]:
            length += 1
        common = common[:length]
    return ".".join(common)


class _PluginIndex:
    """The registry's plugin modules, package roots, factories and factory classes, for frame lookups."""

    def __init__(self, registry: Registry) -> None:
        self.sources: dict[str, PluginSource] = {}  # plugin module -> its source
        modules_of_package: dict[str, list[str]] = {}
        for source, _hooks in registry.plugins():
            module = source.module.partition(":")[0]  # an entry point may name `module:attribute`
            self.sources[module] = source
            modules_of_package.setdefault(source.package, []).append(module)
        self.roots: dict[str, PluginSource] = {}  # package root -> a source of that package
        for package, modules in modules_of_package.items():
            root = _package_root(modules)
            if root:
                self.roots[root] = self.sources[modules[0]]
        self.entries_of_module: dict[str, list[Entry]] = {}
        self.entry_of_code: dict[Any, Entry] = {}
        self.entries_of_class: dict[type, list[Entry]] = {}
        for entry in registry.list():
            factory = _unwrap(entry.factory)
            self.entries_of_module.setdefault(_module_of(factory) or entry.source.module, []).append(entry)
            # the factory's own code, and the functions it is made of (gantk.logit_loss's D and G losses)
            for function in (factory, *getattr(factory, "component_functions", ())):
                code = getattr(function, "__code__", None)
                if code is not None:
                    self.entry_of_code[code] = entry
            component_class = factory if inspect.isclass(factory) else _returned_class(factory)
            if component_class is not None and self.source_of(_module_of(component_class)) is not None:
                self.entries_of_class.setdefault(component_class, []).append(entry)

    def source_of(self, module: str) -> PluginSource | None:
        """The plugin source that ``module`` belongs to, by exact module or the longest package root."""
        if module in self.sources:
            return self.sources[module]
        roots = [r for r in self.roots if module == r or module.startswith(r + ".")]
        return self.roots[max(roots, key=len)] if roots else None

    def culprit_for(self, frame: FrameType) -> Culprit | None:
        module = frame.f_globals.get("__name__", "")
        entry = self.entry_of_code.get(frame.f_code)
        if entry is not None:  # raised inside the factory itself, or in one of its component functions
            return Culprit(entry.source, module, entry)
        by_self = self._entries_of_self(frame)
        source = self.source_of(module)
        if len(by_self) == 1:  # a method of the component, or a torch/gantk base-class method running on it
            entry = by_self[0]
            return Culprit(entry.source, module if source else _module_of(_unwrap(entry.factory)), entry)
        if source is None:
            return None
        in_module = [e for e in self.entries_of_module.get(module, []) if e.source.package == source.package]
        if len(in_module) == 1:
            return Culprit(in_module[0].source, module, in_module[0])
        return Culprit(source, module, None, tuple(by_self or in_module))

    def _entries_of_self(self, frame: FrameType) -> list[Entry]:
        """The entries whose component class is in the MRO of the frame's ``self`` (most derived first)."""
        if "self" not in frame.f_code.co_varnames[:1]:
            return []
        owner = frame.f_locals.get("self")
        for klass in type(owner).__mro__:
            if klass in self.entries_of_class:
                return self.entries_of_class[klass]
        return []
