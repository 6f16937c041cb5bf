"""Calling plugin factories with user options, with errors a user can act on."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from gantk.errors import UsageError


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
