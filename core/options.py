"""Reading ``KEY=VALUE`` options from the command line into Python values."""

from __future__ import annotations

from typing import Any

from gantk.errors import UsageError


def parse_value(text: str) -> Any:
    """``"3"`` → 3, ``"0.5"`` → 0.5, ``"true"`` → True, ``"none"`` → None, ``"128,256"`` → (128, 256), else the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null"):
        return None
    if "," in text:
        return tuple(parse_value(part) for part in text.split(",") if part.strip())
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def as_bool(owner: str, name: str, value: Any) -> bool:
    """A plugin option as a bool: a bool, 0/1, or the words true/false, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise UsageError(f"The {owner} option '{name}' must be true or false, got {value!r}.")


def _option_name(key: str) -> str:
    """Option names are Python keywords: ``real-target`` → ``real_target``."""
    return key.strip().replace("-", "_")


def _split_assignment(item: str, option: str, example: str, form: str = "KEY") -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"{option} takes {form}=VALUE, got '{item}'. Example: {option} {example}.")
    return key.strip(), parse_value(value.strip())


def parse_assignments(items: list[str], option: str) -> dict[str, Any]:
    """``["width=32", "norm=none"]`` → ``{"width": 32, "norm": "none"}``."""
    return {_option_name(key): value for key, value in (_split_assignment(i, option, "width=32") for i in items)}


def parse_term_assignments(items: list[str], option: str, what: str = "TERM",
                           example: str = "ns.real_target=0.9") -> dict[str, dict[str, Any]]:
    """``["ns.real_target=0.9"]`` → ``{"ns": {"real_target": 0.9}}`` (options per loss term, or per metric)."""
    result: dict[str, dict[str, Any]] = {}
    for item in items:
        key, value = _split_assignment(item, option, example, f"{what}.KEY")
        term, dot, name = key.partition(".")
        if not dot or not term or not name:
            raise UsageError(f"{option} takes {what}.KEY=VALUE, got '{item}'. Example: {option} {example}.")
        result.setdefault(term, {})[_option_name(name)] = value  # term names keep their '-'
    return result
