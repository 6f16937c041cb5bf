"""How a training option appears on ``gantk train``: its help, how its text is read, and its rules.

Each field of :class:`gantk.engine.config.TrainConfig` is declared with :func:`option`, which keeps a
:class:`CliOption` in the field's metadata: the help text, the flag, how the command line's text
becomes the value (a :class:`Codec`), whether the option may change on ``--resume``, which preset
options an explicit value drops, and which plugin kind completes it. The ``gantk train`` command,
the resume rule, the preset overrides and :func:`gantk.engine.config.as_flags` all read these.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Union, get_args, get_origin

from gantk.errors import UsageError
from gantk.options import number_in, parse_assignments, parse_term_assignments, parse_value

#: The key of a field's metadata that holds its :class:`CliOption`.
CLI = "gantk_cli"


def value_text(value: Any) -> str:
    """A value as the command line spells it: (0.5, 0.999) → ``0.5,0.999``, None → ``none``, True → ``true``."""
    if isinstance(value, (tuple, list)):
        return ",".join(value_text(v) for v in value)
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


# --------------------------------------------------------------------------- checks of optimizer values
def learning_rate(value: Any, name: str) -> float:
    """``value`` as a learning rate: a finite number > 0; a usage error naming ``name`` (the flag) otherwise."""
    number = value if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(number) and number > 0):
        raise UsageError(f"{name} must be a finite number > 0 (a learning rate such as 2e-4), got {value_text(value)}.")
    return float(number)


def betas(value: Any, name: str) -> tuple[float, float]:
    """``value`` as Adam's (β₁, β₂): two numbers, each in [0, 1); a usage error naming ``name`` otherwise."""
    pair = isinstance(value, (tuple, list)) and len(value) == 2
    if not pair or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        raise UsageError(f"{name} takes two numbers separated by a comma, e.g. 0.5,0.999; got '{value_text(value)}'.")
    if not all(0.0 <= v < 1.0 for v in value):  # NaN fails too
        raise UsageError(f"{name} must be two numbers each in [0, 1) (Adam's β₁ and β₂, e.g. 0.5,0.999; β₁ is SGD's "
                         f"momentum), got {value_text(value)}.")
    return float(value[0]), float(value[1])


# --------------------------------------------------------------------------- codecs: text <-> value
class Codec:
    """Reads an option's command-line text into its value, and writes a value back as flags."""

    #: the type Typer reads the option as (a list: the option is repeatable)
    typer_type: Any = Optional[str]
    #: an explicit value adds to the preset's instead of replacing it (KEY=VALUE options)
    merges_with_preset = False

    def parse(self, raw: Any, flag: str) -> Any:
        return raw

    def flags(self, flag: str, value: Any) -> list[str]:
        return [f"{flag} {value_text(value)}"]

    def default_text(self, default: Any) -> str:
        return value_text(default)


class Plain(Codec):
    """A number or a word, read by Typer as ``kind``."""

    def __init__(self, kind: type) -> None:
        self.typer_type = Optional[kind]


class Switch(Codec):
    """A bool as ``--x/--no-x``."""

    typer_type = Optional[bool]

    def flags(self, flag: str, value: Any) -> list[str]:
        return [flag if value else negated(flag)]


class Assignments(Codec):
    """Repeatable ``KEY=VALUE`` plugin options (``-G width=32 -G z_dim=16``)."""

    typer_type = List[str]
    merges_with_preset = True

    def parse(self, raw: Any, flag: str) -> Any:
        return parse_assignments(list(raw), flag)

    def flags(self, flag: str, value: Any) -> list[str]:
        return [f"{flag} {key}={value_text(v)}" for key, v in value.items()]

    def default_text(self, default: Any) -> str:
        return "none"


class TermAssignments(Codec):
    """Repeatable ``TERM.KEY=VALUE`` options of the loss terms (``-L ns.real_target=0.9``)."""

    typer_type = List[str]

    def parse(self, raw: Any, flag: str) -> Any:
        return parse_term_assignments(list(raw), flag)

    def flags(self, flag: str, value: Any) -> list[str]:
        return [f"{flag} {term}.{key}={value_text(v)}" for term, options in value.items() for key, v in options.items()]

    def default_text(self, default: Any) -> str:
        return "none"


class Names(Codec):
    """Plugin names separated by commas (``accuracy,fid``)."""

    def parse(self, raw: Any, flag: str) -> Any:
        return split_names(raw)

    def default_text(self, default: Any) -> str:
        return value_text(default) or "none"


class LearningRate(Codec):
    """A finite number > 0 (``2e-4``)."""

    typer_type = Optional[float]

    def parse(self, raw: Any, flag: str) -> Any:
        return learning_rate(raw, flag)


class Betas(Codec):
    """Two numbers separated by a comma, each in [0, 1) (``0.5,0.999``)."""

    def parse(self, raw: Any, flag: str) -> Any:
        value = parse_value(raw)
        return betas(value if isinstance(value, tuple) else raw, flag)


class DecayOrOff(Codec):
    """A decay in (0, 1) such as ``0.999``, or ``off`` (None)."""

    def parse(self, raw: Any, flag: str) -> Any:
        value = parse_value(raw)
        if value is False or value is None or value == 0:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{flag} takes a decay such as 0.999, or 'off'; got '{raw}'.")
        return number_in("", flag, value, above=0.0, below=1.0, what="a decay", hint="such as 0.999, or 'off'")

    def flags(self, flag: str, value: Any) -> list[str]:
        return [f"{flag} off" if value is None else f"{flag} {value_text(value)}"]

    def default_text(self, default: Any) -> str:
        return "off" if default is None else value_text(default)


def split_plugin_choice(text: str) -> tuple[str, str]:
    """``NAME[:KEY=VALUE,...]`` as (name, options text): ``ada:target=0.7`` → ("ada", "target=0.7"); a name may be
    qualified, ``acme:ada:p=0.1`` → ("acme:ada", "p=0.1"). The options start at the first ':'-part holding '='
    (names never hold one)."""
    parts = str(text).split(":")
    first_option = next((index for index, part in enumerate(parts) if "=" in part), len(parts))
    return ":".join(parts[:first_option]).strip().rstrip(":").strip(), ":".join(parts[first_option:]).strip()


def plugin_choice(text: str, flag: str) -> tuple[str, dict[str, Any]]:
    """``NAME[:KEY=VALUE,...]`` as (name, options): ``diffaugment:policy=color+cutout`` → ("diffaugment",
    {"policy": "color+cutout"}); a usage error for text that is not of that form."""
    name, options = split_plugin_choice(text)
    items = [item.strip() for item in options.split(",") if item.strip()]
    malformed = [item for item in items if "=" not in item or not item.partition("=")[0].strip()]
    if not name or malformed:
        raise UsageError(f"{flag} takes a name and optional KEY=VALUE options separated by commas, NAME:KEY=VALUE,..."
                         f" (e.g. {flag} ada:target=0.6,speed=100), got '{text}'.")
    return name, parse_assignments(items, flag)


class PluginChoice(Codec):
    """A plugin name with its options, ``NAME[:KEY=VALUE,...]`` (``ada:target=0.6``), or ``none``."""

    def parse(self, raw: Any, flag: str) -> Any:
        if str(raw).strip().lower() in ("none", "off"):
            return None
        plugin_choice(raw, flag)  # refuse malformed text here, before anything loads
        return str(raw).strip()


SWITCH, ASSIGNMENTS, TERM_ASSIGNMENTS, NAMES, LEARNING_RATE, BETAS, DECAY_OR_OFF, PLUGIN_CHOICE = (
    Switch(), Assignments(), TermAssignments(), Names(), LearningRate(), Betas(), DecayOrOff(), PluginChoice())


def codec_for(annotation: Any) -> Codec:
    """The codec a field's type implies: bool → switch, dict → KEY=VALUE, list → names, else a plain value."""
    if get_origin(annotation) in (Union, types.UnionType):  # X | None
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    origin = get_origin(annotation) or annotation
    if origin is bool:
        return SWITCH
    if origin is dict:
        return ASSIGNMENTS
    if origin is list:
        return NAMES
    return Plain(origin)


def negated(flag: str) -> str:
    """``--download`` → ``--no-download``."""
    return "--no-" + flag.removeprefix("--")


def split_names(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"accuracy, fid"`` or ``["accuracy", "fid"]`` → ``["accuracy", "fid"]`` (order kept, no repeats)."""
    parts = [] if value is None else value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for part in (str(p).strip() for p in parts):
        if part and part not in names:
            names.append(part)
    return names


# --------------------------------------------------------------------------- the option record
@dataclass(frozen=True)
class CliOption:
    """One ``gantk train`` option that sets the training configuration."""

    name: str = ""  # the flat option name (a TrainConfig field, or lr, g_opt, ... for the optimizers)
    help: str = ""
    codec: Codec | None = None  # None: implied by the field's type
    flag: str = ""  # "": --name with '-' for '_'
    short: str = ""  # e.g. "-G"
    resumable: bool = False  # may change when a run is resumed
    supersedes: tuple[str, ...] = ()  # preset options that an explicit value of this one drops
    complete: str | None = None  # the plugin kind whose names complete the value
    default_text: str | None = None  # the default as -h shows it; None: the field's default, as flags write it
    sets: tuple[str, ...] = ()  # the TrainConfig fields it sets; (): the field of its name

    def named(self, name: str, annotation: Any, default: Any) -> "CliOption":
        """This option completed for the field ``name``: flag, codec and shown default filled in."""
        codec = self.codec or codec_for(annotation)
        return dataclasses.replace(
            self, name=name, codec=codec, flag=self.flag or "--" + name.replace("_", "-"), sets=self.sets or (name,),
            default_text=self.default_text if self.default_text is not None else codec.default_text(default))

    def as_flags(self, value: Any) -> list[str]:
        """``value`` written as the flags that set it (short forms for the repeatable ones)."""
        return self.codec.flags(self.short or self.flag, value)

    def parse(self, raw: Any) -> Any:
        return self.codec.parse(raw, self.flag)


def option(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None, **cli: Any) -> Any:
    """A TrainConfig field whose metadata declares its ``gantk train`` option (keywords of :class:`CliOption`)."""
    metadata = {CLI: CliOption(**cli)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)
