"""Calling plugin factories with user options, and checking what they return, with errors a user can act on."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from gantk.errors import GantkError, UsageError


def option_parameters(factory: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """The keyword parameters a factory takes, or None when it takes any keyword.

    A class whose ``__init__`` forwards ``**options`` to its base takes the base's parameters too
    (the whole chain, up to the first ``__init__`` without ``**``).
    """
    functions = [klass.__init__ for klass in inspect.getmro(factory) if "__init__" in vars(klass)] \
        if inspect.isclass(factory) else [factory]
    found: list[inspect.Parameter] = []
    for function in functions:
        try:
            parameters = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):
            return None
        found += [p for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
                  and p.name not in {q.name for q in found}]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return found
    return None


def call_factory(kind: str, name: str, factory: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """Call a plugin factory, turning an unknown option into a usage error that lists the valid ones."""
    parameters = option_parameters(factory)
    if parameters is not None:
        valid = parameters[len(args):]
        unknown = sorted(set(options) - {p.name for p in valid})
        if unknown:
            listing = ", ".join(f"{p.name}={p.default!r}" if p.default is not p.empty else p.name for p in valid)
            raise UsageError(f"The {kind} '{name}' has no option {', '.join(repr(u) for u in unknown)}. "
                             f"Its options are: {listing or '(none)'}.")
    return factory(*args, **options)


@dataclass(frozen=True)
class ResultCheck:
    """What a factory of one kind must return: ``needs`` says it; ``problem(result)`` is None when the result is
    fine, else what is wrong with it ("" when only its type is)."""

    needs: str
    problem: Callable[[Any], "str | None"]


def _instance_of(module: str, name: str) -> Callable[[Any], "str | None"]:
    """A check that the result is an instance of ``module.name`` (imported when first needed: torch-heavy)."""
    def problem(result: Any) -> str | None:
        return None if isinstance(result, getattr(importlib.import_module(module), name)) else ""
    return problem


def _with_members(*members: str, methods: bool = False, or_none: bool = False) -> Callable[[Any], "str | None"]:
    """A check that the result has ``members`` (callable ones when ``methods``); None passes when ``or_none``."""
    def problem(result: Any) -> str | None:
        if result is None:
            return None if or_none else ""
        missing = [m for m in members if not (callable(getattr(result, m, None)) if methods else hasattr(result, m))]
        return f"without {', '.join(missing)}" if missing else None
    return problem


def _options_dict(result: Any) -> str | None:
    """A check that the result is a dict keyed by option names."""
    if not isinstance(result, dict):
        return ""
    keys = [key for key in result if not isinstance(key, str)]
    return f"with non-text keys {', '.join(map(repr, keys))}" if keys else None


#: What each kind's factory must return. Generators and discriminators are checked where they are built
#: (``gantk.engine.build``), against the members the engine reads.
RESULT_CHECKS: dict[str, ResultCheck] = {
    "dataset": ResultCheck("a gantk.protocols.Dataset", _instance_of("gantk.protocols", "Dataset")),
    "preset": ResultCheck("a dict of training options (such as {'gen': 'dcgan', 'steps': 1000})", _options_dict),
    "metric": ResultCheck("a gantk.Metric (a callable with lower_is_better, default_for_conditional, "
                          "shares_features and protocol)",
                          _with_members("__call__", "lower_is_better", "default_for_conditional", "shares_features",
                                        "protocol")),
    "loss": ResultCheck("a gantk.LossTerm", _instance_of("gantk.protocols", "LossTerm")),
    "augmentation": ResultCheck("a gantk.Augmentation (an nn.Module with forward(x, *, real), observe and logged)",
                                _instance_of("gantk.protocols", "Augmentation")),
    "conditioning": ResultCheck("a gantk.conditioning.Conditioning",
                                _instance_of("gantk.conditioning", "Conditioning")),
    "monitor": ResultCheck("a gantk.protocols.Monitor (a callable) or None", _with_members("__call__", or_none=True)),
    "procedure": ResultCheck("a gantk.Procedure",
                             _with_members("modules", "optimizers", "run", "state", "load_state", "exports",
                                           methods=True)),
}


def check_result(entry: Any, result: Any) -> Any:
    """``result`` if it is what ``entry``'s kind needs; else an error naming the plugin, what it returned and why."""
    check = RESULT_CHECKS.get(entry.kind)
    problem = check.problem(result) if check is not None else None
    if problem is None:
        return result
    returned = "None" if result is None else f"a {type(result).__name__}"
    raise GantkError(
        f"The {entry.kind} plugin '{entry.qualified_name}' ({entry.source.label}, {entry.source.module}) returned "
        f"{returned}{' ' + problem if problem else ''}, but a {entry.kind} factory must return {check.needs}. The "
        f"plugin is broken: report it to {entry.source.package}, or uninstall it.")
