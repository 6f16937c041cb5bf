"""``gantk train --config FILE``: training options read from a JSON or TOML file.

A config file holds the keys of a run's ``config.json`` (the fields of
:class:`~gantk.engine.config.TrainConfig`), as many or as few as it likes, so a run's own
``config.json`` is one. It may also use the flat optimizer options of ``gantk train`` (``lr``,
``g_lr``, ``betas``, ``g_opt``, ...) instead of the ``g_optimizer``/``d_optimizer`` objects.
:func:`read_config_file` reads it into flat options (those of
:meth:`~gantk.engine.config.TrainConfig.from_options`); :func:`layered_options` stacks
defaults < preset < file < flags.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

from gantk.engine.config import (
    OPTIMIZER_OPTIONS, OPTIMIZERS, apply_overrides, as_saved, field_types, is_saved_configuration, json_type,
    type_mismatch,
)
from gantk.engine.model_dir import training_section
from gantk.engine.qualified_names import names_on_resume
from gantk.engine.train_options import betas, learning_rate
from gantk.errors import UsageError
from gantk.names import close_matches

SUFFIXES = (".json", ".toml")
#: config.json's optimizer objects, and the prefix of the flat options they stand for (g_opt, g_lr, g_betas)
OPTIMIZER_OBJECTS = {"g_optimizer": "g", "d_optimizer": "d"}
#: a key of an optimizer object -> the end of its flat option's name (g_optimizer.name is g_opt)
_FLAT_SUFFIX = {"name": "opt", "lr": "lr", "betas": "betas"}
#: options of 'gantk train' that say where and how to run, not what to train: never in a file
_RUN_FLAGS = ("name", "runs_dir", "resume", "quiet", "nproc", "config")
_NULL_WORDS = ("none", "off")  # TOML has no null: these strings stand for it


def read_config_file(path: Path) -> dict[str, Any]:
    """The training options a JSON or TOML file sets, as flat option names (``preset`` included when it names one).

    A missing or unreadable file, a syntax error, an unknown key or a value of the wrong type is a
    :class:`~gantk.errors.UsageError` naming the file and the key.
    """
    path = Path(path)
    data = training_section(_parsed(path))  # a model directory's config.json: the run's, under "training"
    if not isinstance(data, dict):
        raise UsageError(f"'{path}' holds {json_type(data)}, not a set of training options. A config file is one "
                         "object of KEY: VALUE pairs, as a run's config.json is ('gantk presets --export dcgan' "
                         "prints a complete one).")
    if is_saved_configuration(data):  # a run saved before a field existed trains as it did (ADDED_FIELDS)
        data = as_saved(data)
    return _flat_options(data, path, toml=path.suffix.lower() == ".toml")


def layered_options(preset: dict[str, Any], from_file: dict[str, Any], explicit: dict[str, Any]) -> dict[str, Any]:
    """A new run's flat options: defaults < preset < config file < flags.

    The file overrides the preset by the rules flags follow (a ``gen`` of its own drops the preset's
    ``gen_options`` and discriminator, ``lr`` drops ``g_lr``/``d_lr``, ...), except that an options object
    the file sets (``gen_options``, ``loss_options``, ...) replaces the preset's whole: a file states complete
    values, so applying the preset a run's config.json names cannot change that run's values. Flags override
    the file by the preset rules (``-G`` adds to the file's ``gen_options``). A plugin named with its package
    in one layer and without in the other (``gantk:dcgan``, ``dcgan``) is the same choice and replaces nothing.
    """
    under_file = apply_overrides(*_spelled_alike(preset, from_file))
    under_file.update({key: value for key, value in from_file.items() if isinstance(value, dict)})
    return apply_overrides(*_spelled_alike(under_file, explicit))


def _spelled_alike(base: dict[str, Any], given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``base`` and ``given`` with each plugin name they share spelt the same way (the qualified spelling)."""
    same = names_on_resume(base, given)  # field -> the more qualified of two spellings of one component
    return {**base, **same}, {**given, **same}


# --------------------------------------------------------------------------- reading the file
def _parsed(path: Path) -> Any:
    """The file's content as JSON or TOML data (by its suffix)."""
    if path.is_dir():
        inside = path / "config.json"
        hint = f" ('{inside}' is the configuration of the run in it)" if inside.is_file() else ""
        raise UsageError(f"--config takes a file, but '{path}' is a folder{hint}. Give a .json or .toml file.")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"--config reads JSON or TOML, chosen by the file's ending, but '{path}' ends in "
                         f"'{suffix or '(nothing)'}'. Name it .json or .toml.")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"Cannot read the config file '{path}': {error.strerror or error}. Check the path (a run's "
                         "configuration is runs/<name>/config.json) and its permissions.") from error
    except UnicodeDecodeError as error:
        raise UsageError(f"'{path}' is not a text file in UTF-8 ({error.reason} at byte {error.start}). Give a "
                         "JSON or TOML file.") from error
    if suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as error:
            raise UsageError(f"'{path}' is not valid JSON ({error}). Fix the file there (a missing comma or quote, "
                             "or a trailing comma, is the usual cause).") from error
    try:
        return _toml_reader().loads(text)
    except ValueError as error:  # tomllib.TOMLDecodeError is a ValueError
        raise UsageError(f"'{path}' is not valid TOML ({error}). Fix the file there.") from error


def _toml_reader() -> Any:
    """``tomllib`` (Python 3.11+), or the same parser from the ``tomli`` package on Python 3.10."""
    try:
        import tomllib

        return tomllib
    except ImportError:
        pass
    try:
        import tomli

        return tomli
    except ImportError:
        raise UsageError("Reading a TOML config file needs Python 3.11 or later, or on Python 3.10 the tomli "
                         "package: pip install tomli. Or write the file as JSON.") from None


def _flat_options(data: dict[str, Any], path: Path, toml: bool) -> dict[str, Any]:
    """The file's keys checked and written as flat options: ``g_optimizer: {lr: x}`` becomes ``g_lr: x``."""
    fields = field_types()
    flat_optimizer_names = {option.name for option in OPTIMIZER_OPTIONS}
    options: dict[str, Any] = {}
    from_objects: dict[str, str] = {}  # flat name -> the object key it came from, e.g. g_lr -> g_optimizer.lr
    for key, value in data.items():
        if key in OPTIMIZER_OBJECTS:
            for flat, (dotted, item) in _optimizer_object(key, value, path).items():
                options[flat], from_objects[flat] = item, dotted
        elif key in flat_optimizer_names:
            options[key] = _optimizer_value(key, value, f"'{key}' in '{path}'")
        elif key in fields:
            options[key] = _field_value(key, value, fields[key], path, toml)
        else:
            raise _unknown_key(key, path, [*fields, *flat_optimizer_names])
    twice = sorted(set(from_objects) & set(data))
    if twice:
        raise UsageError(f"'{path}' sets {from_objects[twice[0]]} and {twice[0]}, which are the same option. Keep "
                         "one of them.")
    return options


def _field_value(key: str, value: Any, hint: Any, path: Path, toml: bool) -> Any:
    """A TrainConfig field's value from the file, its type checked; in TOML "none" (or "off") is null."""
    may_be_null = type(None) in get_args(hint)
    if toml and may_be_null and isinstance(value, str) and value.strip().lower() in _NULL_WORDS:
        return None
    problem = type_mismatch(key, value)
    if problem:
        null_hint = ' (TOML has no null: write "none")' if toml and may_be_null else ""
        raise UsageError(f"The key '{key}' in '{path}' {problem}{null_hint}. Fix it in the file, or override it with "
                         f"the flag --{key.replace('_', '-')}.")
    return value


def _optimizer_object(key: str, value: Any, path: Path) -> dict[str, tuple[str, Any]]:
    """``g_optimizer``/``d_optimizer`` (any of name, lr, betas) as flat options: {g_lr: ("g_optimizer.lr", x)}."""
    if not isinstance(value, dict):
        raise UsageError(f"The key '{key}' in '{path}' must be an object with name, lr and betas (each optional), "
                         f"e.g. {{\"name\": \"adam\", \"lr\": 0.0002, \"betas\": [0.5, 0.999]}}, got {value!r}.")
    flat: dict[str, tuple[str, Any]] = {}
    for item, item_value in value.items():
        dotted = f"{key}.{item}"
        if item not in _FLAT_SUFFIX:
            raise _unknown_key(dotted, path, [f"{key}.{known}" for known in _FLAT_SUFFIX])
        name = f"{OPTIMIZER_OBJECTS[key]}_{_FLAT_SUFFIX[item]}"
        flat[name] = (dotted, _optimizer_value(name, item_value, f"'{dotted}' in '{path}'"))
    return flat


def _optimizer_value(flat_name: str, value: Any, where: str) -> Any:
    """An optimizer setting checked as gantk train checks the flag: a learning rate, betas or an optimizer's name."""
    setting = flat_name.rpartition("_")[2]  # lr, betas or opt (g_lr, d_betas, g_opt; lr, betas)
    if setting == "lr":
        return learning_rate(value, where)
    if setting == "betas":
        return betas(value, where)
    if value not in OPTIMIZERS:
        raise UsageError(f"{where} must name an optimizer: {', '.join(OPTIMIZERS)}; got {value!r}.")
    return value


def _unknown_key(key: str, path: Path, known: list[str]) -> UsageError:
    """The error for a key that is not a training option, with the nearest names."""
    if key.replace("-", "_") in _RUN_FLAGS:
        flag = "--" + key.replace("_", "-")
        return UsageError(f"'{path}' sets '{key}', which says where or how to run, not what to train, so it is no "
                          f"part of a config file. Remove it from the file and give {flag} on the command line.")
    spelt = key.replace("-", "_")
    suggestions = [spelt] if spelt in known else close_matches(key, known)
    hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
    return UsageError(f"'{path}' sets '{key}', which is not a training option.{hint} A config file takes the keys of "
                      "a run's config.json, the flags' names with '_' for '-' ('gantk presets --export dcgan' prints "
                      "every one): fix or remove that key.")

