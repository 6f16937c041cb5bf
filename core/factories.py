"""Calling plugin factories with user options, with errors a user can act on."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from gantk.errors import UsageError


def call_factory(kind: str, name: str, factory: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """Call a plugin factory, turning an unknown option into a usage error that lists the valid ones."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None
    if signature is not None and not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        valid = [p for p in signature.parameters.values()
                 if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)][len(args):]
        unknown = sorted(set(options) - {p.name for p in valid})
        if unknown:
            listing = ", ".join(f"{p.name}={p.default!r}" if p.default is not p.empty else p.name for p in valid)
            raise UsageError(f"The {kind} '{name}' has no option {', '.join(repr(u) for u in unknown)}. "
                             f"Its options are: {listing or '(none)'}.")
    return factory(*args, **options)
