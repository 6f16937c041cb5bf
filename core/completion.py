"""Shell completion of plugin names for every option that takes one."""

from __future__ import annotations

from typing import Callable

from gantk.registry import KINDS, get_registry

#: Plural and short spellings accepted wherever a kind is named.
KIND_ALIASES = {
    **{kind: kind for kind in KINDS},
    **{f"{kind}s": kind for kind in KINDS if kind != "loss"},
    "losses": "loss", "gen": "generator", "disc": "discriminator", "gens": "generator", "discs": "discriminator",
}


def complete_kind(incomplete: str) -> list[str]:
    return [k for k in KINDS if k.startswith(incomplete)]


def names_of(kind: str) -> Callable[[str], list[str]]:
    """A Typer ``autocompletion`` callback listing the registered names of ``kind``."""

    def complete(incomplete: str) -> list[str]:
        # Composite expressions (losses: "hinge+0.5*r") complete their last term.
        head, sep, last = incomplete.rpartition("+") if kind == "loss" else ("", "", incomplete)
        weight, star, last = last.rpartition("*") if "*" in last else ("", "", last)
        prefix = head + sep + weight + star
        return [prefix + name for name in get_registry().names(kind) if name.startswith(last)]

    return complete
