"""Plugin names in a run's configuration written as ``package:name``.

A new run records the package behind every name it uses (``gantk:dcgan``), so that resuming it later
means the same components whatever else has been installed since. On ``--resume``, a name given again
with its package (``--gen acme:dcgan`` for a run saved with ``dcgan``) only says which one was meant.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from gantk.engine.config import TrainConfig
from gantk.engine.loss_composition import parse_loss_expression
from gantk.engine.train_options import split_plugin_choice
from gantk.names import normalise_package
from gantk.registry import Registry

#: Config fields holding one plugin name, with the kind each names.
NAME_FIELDS = {"procedure": "procedure", "gen": "generator", "disc": "discriminator", "dataset": "dataset",
               "dataset_b": "dataset"}


def qualified_config(config: TrainConfig, registry: Registry) -> TrainConfig:
    """``config`` with every plugin name (procedure, networks, data set, loss terms, metrics, preset) qualified."""
    def qualified(kind: str, name: str) -> str:
        return registry.get(kind, name).qualified_name

    names = {field: qualified(kind, getattr(config, field)) for field, kind in NAME_FIELDS.items()
             if getattr(config, field) is not None}  # dataset_b: None without one
    terms = [qualified("loss", term.name) for term in parse_loss_expression(config.loss)]
    if config.augment is not None:
        name, options = split_plugin_choice(config.augment)
        names["augment"] = qualified("augmentation", name) + (f":{options}" if options else "")
    return dataclasses.replace(
        config, **names, loss=renamed_terms(config.loss, terms),
        eval_metrics=[qualified("metric", name) for name in config.eval_metrics],
        preset=qualified("preset", config.preset) if config.preset else None)


def renamed_terms(expression: str, names: list[str]) -> str:
    """The loss ``expression`` with its terms' names replaced by ``names``, its weights written as they were."""
    parts = expression.split("+")
    return "+".join(weight.strip() + star + name
                    for (weight, star, _), name in zip((part.rpartition("*") for part in parts), names))


def same_component(saved: str, given: str) -> str | None:
    """The more qualified of two spellings of one name (``dcgan`` and ``acme:dcgan``), or None if they differ."""
    saved_package, _, saved_bare = saved.rpartition(":")
    given_package, _, given_bare = given.rpartition(":")
    if saved_bare != given_bare:
        return None
    if saved_package and given_package and normalise_package(saved_package) != normalise_package(given_package):
        return None
    return given if given_package and not saved_package else saved


def names_on_resume(saved: dict[str, Any], explicit: dict[str, Any]) -> dict[str, str]:
    """The plugin-name options of ``explicit`` that name the ``saved`` config's components (qualified or not), as the
    config keeps them: they are no change, so ``--resume`` takes them."""
    kept: dict[str, str] = {}
    for field in (*NAME_FIELDS, "loss"):
        if not isinstance(explicit.get(field), str) or not isinstance(saved.get(field), str):
            continue
        if field == "loss":
            saved_terms, given_terms = parse_loss_expression(saved["loss"]), parse_loss_expression(explicit["loss"])
            if len(saved_terms) != len(given_terms) or any(s.weight != g.weight
                                                           for s, g in zip(saved_terms, given_terms)):
                continue
            names = [same_component(s.name, g.name) for s, g in zip(saved_terms, given_terms)]
            if None not in names:
                kept[field] = renamed_terms(saved["loss"], names)
        else:
            name = same_component(saved[field], explicit[field])
            if name is not None:
                kept[field] = name
    if isinstance(explicit.get("augment"), str) and isinstance(saved.get("augment"), str):
        (saved_name, saved_options), (given_name, given_options) = map(split_plugin_choice,
                                                                       (saved["augment"], explicit["augment"]))
        if saved_options == given_options and same_component(saved_name, given_name) is not None:
            kept["augment"] = saved["augment"]  # the same augmentation with the same options
    return kept


def as_typed(text: str) -> str:
    """A name or loss expression as a user would type it: gantk's own names without ``gantk:`` (a bare name
    means the built-in)."""
    return re.sub(r"(?<![\w.-])gantk:", "", text)
