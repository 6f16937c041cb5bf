"""Plugin options: reading ``KEY=VALUE`` from the command line, and checking the values in factories.

The validators take the option's owner as a phrase (``"generator 'dcgan'"``, ``"metric 'fid'"``,
``"loss 'ns'"``), the option's name and its value; they return the value in its proper type or
raise :class:`gantk.UsageError` with one paragraph, e.g. ``The generator 'dcgan' option 'width' must
be a positive integer, got True.`` ``True`` and ``False`` are refused wherever a number is expected
(Python counts ``bool`` as an ``int``). Plugin factories call them on their keyword options::

    width = gantk.options.positive_int("generator 'mine'", "width", width)
    rate = gantk.options.number_in("discriminator 'mine'", "dropout", dropout, at_least=0, below=1, what="a rate")
    norm = gantk.options.choice("discriminator 'mine'", "norm", norm, ("batch", "none"))
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

from gantk.errors import UsageError
from gantk.names import close_matches


def parse_value(text: str) -> Any:
    """``"3"`` → 3, ``"0.5"`` → 0.5, ``"true"`` → True, ``"none"`` → None, ``"128,256"`` → (128, 256), else the text.

    A whole number in scientific notation is an int when the float it reads as is that number exactly
    (``"1e6"`` → 1000000); otherwise (``"1e-3"``, ``"2.5e3"``, ``"1e23"``, ``"inf"``) it stays a float.
    """
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
            value = convert(text)
        except ValueError:
            continue
        return _exact_int(lowered, value) if isinstance(value, float) else value
    return text


def _exact_int(text: str, value: float) -> float | int:
    """``value`` as an int when ``text`` writes a whole number as mantissa and exponent and the float is exact."""
    mantissa, e, exponent = text.partition("e")
    if not (e and mantissa.lstrip("+-").isdigit() and exponent.lstrip("+").isdigit() and value.is_integer()):
        return value
    exact = int(mantissa) * 10 ** int(exponent)
    return exact if exact == value else value


TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


# --------------------------------------------------------------------------- validators
def option_error(owner: str, name: str, value: Any, expected: str, hint: str = "") -> UsageError:
    """The validators' one-paragraph error, for checks of a plugin's own: ``The {owner} option '{name}' must be
    {expected} ({hint}), got {value!r}.`` An empty ``owner`` names the option alone (``--image-size must be ...``)."""
    subject = f"The {owner} option '{name}'" if owner else name
    detail = f" ({hint})" if hint else ""
    return UsageError(f"{subject} must be {expected}{detail}, got {value!r}.")


def as_bool(owner: str, name: str, value: Any) -> bool:
    """A plugin option as a bool: a bool, 0/1, or the words true/false, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise option_error(owner, name, value, "true or false")


def positive_int(owner: str, name: str, value: Any, hint: str = "") -> int:
    """``value`` as an int ≥ 1: an int or a string of digits; bools and fractional numbers are refused."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise option_error(owner, name, value, "a positive integer", hint)
    return int(value)


def positive_ints(owner: str, name: str, value: Any, hint: str = "") -> list[int]:
    """A non-empty list of positive ints from ``(128, 256)``, ``[128, 256]``, ``"128,256"`` or ``128``."""
    items = split_items(value)
    expected = "one or more positive integers such as 128,256"
    if not items:
        raise option_error(owner, name, value, expected, hint)
    try:
        return [positive_int(owner, name, item) for item in items]
    except UsageError:
        raise option_error(owner, name, value, expected, hint) from None


def number_in(owner: str, name: str, value: Any, *, at_least: float | None = None, above: float | None = None,
              at_most: float | None = None, below: float | None = None, what: str = "a number",
              hint: str = "") -> float:
    """``value`` as a float in a range: ``at_least``/``at_most`` are closed ends, ``above``/``below`` open ones.

    ``number_in(owner, "dropout", v, at_least=0, below=1, what="a rate")`` accepts 0 ≤ v < 1 and otherwise
    says "must be a rate in [0, 1)". Numeric strings are read; bools and NaN are refused.
    """
    if at_least is not None and above is not None or at_most is not None and below is not None:
        raise TypeError("number_in takes one lower end (at_least or above) and one upper end (at_most or below).")
    low = (above, True) if above is not None else (at_least, False)  # (end, open)
    high = (below, True) if below is not None else (at_most, False)
    number = _as_float(value)
    if number is None or not _inside(number, low, high):
        raise option_error(owner, name, value, f"{what}{_range_text(low, high)}", hint)
    return number


def choice(owner: str, name: str, value: Any, choices: Sequence[Any], hint: str = "") -> Any:
    """``value`` as one of ``choices``. Words compare case-insensitively and None reads as ``"none"`` (``-D norm=none``
    parses to None); other choices (numbers) compare by value, bools never matching a number."""
    if value is None and "none" in choices:
        return "none"
    for candidate in choices:
        if isinstance(candidate, str):
            if isinstance(value, str) and value.strip().lower() == candidate.lower():
                return candidate
        elif value == candidate and isinstance(value, bool) == isinstance(candidate, bool):
            return candidate
    error = option_error(owner, name, value, "one of " + ", ".join(map(str, choices)), hint)
    suggestions = close_matches(value.strip().lower(), list(map(str, choices))) if isinstance(value, str) else []
    raise UsageError(f"{error} Did you mean: {', '.join(suggestions)}?") if suggestions else error


def split_items(value: Any) -> list[Any]:
    """A comma string, a single value or a sequence, as a list of items (strings stripped, empty ones dropped)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _inside(number: float, low: tuple[float | None, bool], high: tuple[float | None, bool]) -> bool:
    (low_end, low_open), (high_end, high_open) = low, high
    if math.isnan(number):
        return False
    above_low = low_end is None or (number > low_end if low_open else number >= low_end)
    below_high = high_end is None or (number < high_end if high_open else number <= high_end)
    return above_low and below_high


def _range_text(low: tuple[float | None, bool], high: tuple[float | None, bool]) -> str:
    """`` in [0, 1)``, `` > 0``, `` ≤ 1`` or nothing, for (end, open) pairs."""
    (low_end, low_open), (high_end, high_open) = low, high
    if low_end is not None and high_end is not None:
        return f" in {'(' if low_open else '['}{low_end:g}, {high_end:g}{')' if high_open else ']'}"
    if low_end is not None:
        return f" {'>' if low_open else '≥'} {low_end:g}"
    if high_end is not None:
        return f" {'<' if high_open else '≤'} {high_end:g}"
    return ""


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
