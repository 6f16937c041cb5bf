"""Rules for plugin names, and close-match suggestions for misspelt ones."""

from __future__ import annotations

import difflib
import re

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")
RESERVED_CHARACTERS = "+*:="


def is_valid_name(name: str) -> bool:
    """True when ``name`` matches ``[a-z0-9][a-z0-9_-]*`` (so it cannot clash with ``+ * : =``)."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def check_name(name: str, what: str = "plugin name") -> str:
    """Return ``name`` or raise ``ValueError`` saying which rule it breaks."""
    if not is_valid_name(name):
        raise ValueError(
            f"Invalid {what} {name!r}: names must match [a-z0-9][a-z0-9_-]* "
            f"(lower case, digits, '_' and '-'; the characters {RESERVED_CHARACTERS} are reserved "
            "for composing names on the command line)."
        )
    return name


def normalise_package(name: str) -> str:
    """Distribution names compare as PEP 503 does: case-insensitive, runs of ``-_.`` equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def close_matches(name: str, candidates: list[str], limit: int = 3) -> list[str]:
    """The few candidates that look most like ``name`` (for "Did you mean" messages), ignoring case."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    return [by_lower[match] for match in difflib.get_close_matches(name.lower(), list(by_lower), n=limit, cutoff=0.5)]
