"""Composite losses from expressions such as ``hinge+0.5*r1`` or ``wgan+10*gp``.

Grammar: ``term ('+' term)*`` with ``term = [number '*'] name``; ``name`` may be qualified as
``package:name``. A term without a number takes its own ``default_weight`` (``gp`` and ``r1``
default to 10). The discriminator minimises ``Σ wᵢ·Lᴰᵢ`` and the generator ``Σ wᵢ·Lᴳᵢ``; every
term's unweighted value is also reported on its own (``d/hinge``, ``d/r1``, ``g/hinge``).

Every weight is a finite number > 0. A weight of 0 would keep a term that does nothing, and a
negative one would turn its objective around (a penalty that rewards, a loss that trains
against itself); both are refused, and so are infinities and NaN.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from gantk.errors import UsageError
from gantk.protocols import DataSpec, DiscriminatorPhase, GeneratorPhase, LossTerm, describe_needs

_TERM = re.compile(r"^\s*(?:(?P<weight>[^*\s]+)\s*\*\s*)?(?P<name>[A-Za-z0-9_.:-]+)\s*$")
_SYNTAX = ("Write terms joined by '+', each optionally weighted as NUMBER*NAME, e.g. 'hinge', 'hinge+0.5*r1' or "
           "'wgan+10*gp'.")


@dataclass(frozen=True)
class TermSpec:
    """One parsed term: its name (possibly ``package:name``) and explicit weight, if any."""

    name: str
    weight: float | None

    @property
    def bare_name(self) -> str:
        return self.name.rpartition(":")[2]


def parse_loss_expression(expression: str) -> list[TermSpec]:
    """``"hinge+0.5*r1"`` -> ``[TermSpec("hinge", None), TermSpec("r1", 0.5)]``."""
    terms = []
    for part in expression.split("+"):
        match = _TERM.match(part)
        if not match:
            raise UsageError(f"Cannot read the loss expression '{expression}' (at '{part.strip()}'). {_SYNTAX}")
        weight = match.group("weight")
        terms.append(TermSpec(match.group("name"), None if weight is None else read_weight(weight, expression)))
    names = [t.bare_name for t in terms]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"The loss expression '{expression}' names {', '.join(repeated)} more than once; "
                         "give each term once with its total weight.")
    return terms


def read_weight(text: str, expression: str) -> float:
    """A term's weight as written in ``expression``: a finite number > 0, else a usage error saying why."""
    try:
        weight = float(text)
    except ValueError:
        raise UsageError(f"Cannot read the weight '{text}' in the loss expression '{expression}'. {_SYNTAX}") from None
    problem = check_weight(weight)
    if problem:
        raise UsageError(f"The weight {text} in the loss expression '{expression}' {problem}")
    return weight


def check_weight(weight: float) -> str | None:
    """What is wrong with a term's weight (the end of a sentence), or None when it is a finite number > 0."""
    if not math.isfinite(weight):
        return "is not a finite number; give each weight as a finite number > 0, e.g. 'hinge+0.5*r1'."
    if weight == 0:
        return "is 0, and a weight of 0 switches the term off; drop it from --loss."
    if weight < 0:
        return ("is negative, which would turn the term's objective around; weights must be > 0 (to weaken a "
                "term, give it a small weight such as 0.1).")
    return None


class CompositeLoss(nn.Module):
    """A weighted sum of loss terms; owns the terms (and so any parameters they train with D).

    Each term sees, in D's phase, the needs of the whole loss (``step.needs``, which the procedure
    fills from :attr:`needs`), so that a term can adapt to its partners (``wgan`` stops clipping when
    a term penalises D's input gradients).
    """

    def __init__(self, names: list[str], terms: list[LossTerm], weights: list[float]) -> None:
        super().__init__()
        self.names = names
        self.terms = nn.ModuleList(terms)
        self.weights = weights

    @property
    def needs(self) -> frozenset[str]:
        return frozenset().union(*(term.needs for term in self.terms))

    def describe(self) -> str:
        return "+".join(f"{w:g}*{n}" if w != 1 else n for n, w in zip(self.names, self.weights))

    def _combine(self, values: list[tuple[str, float, Tensor | None]], prefix: str) -> tuple[Tensor, dict[str, Tensor]]:
        total: Tensor | None = None
        parts: dict[str, Tensor] = {}
        for name, weight, value in values:
            if value is None:
                continue
            parts[f"{prefix}/{name}"] = value.detach()
            weighted = value if weight == 1.0 else weight * value
            total = weighted if total is None else total + weighted  # L = Σ wᵢ Lᵢ
        if total is None:
            raise UsageError(f"The loss '{self.describe()}' has no term that trains the "
                             f"{'discriminator' if prefix == 'd' else 'generator'}; add an adversarial loss "
                             "such as 'ns', 'hinge' or 'wgan' (e.g. 'hinge+0.5*r1').")
        return total, parts

    def discriminator_loss(self, step: DiscriminatorPhase) -> tuple[Tensor, dict[str, Tensor]]:
        return self._combine([(name, weight * term.every, term.discriminator_loss(step))
                              for name, weight, term in self._due(step.step)], "d")

    def generator_loss(self, step: GeneratorPhase) -> tuple[Tensor, dict[str, Tensor]]:
        return self._combine([(name, weight * term.every, term.generator_loss(step))
                              for name, weight, term in self._due(step.step)], "g")

    def _due(self, step: int) -> list[tuple[str, float, LossTerm]]:
        """The terms that run at training step ``step``: lazy ones (``every`` = k) only when k divides it, their
        weight then multiplied by k (Karras et al. 2020's lazy regularisation)."""
        return [(name, weight, term) for name, weight, term in zip(self.names, self.weights, self.terms)
                if step % term.every == 0]

    def lazy_interval(self, side: str) -> int:
        """The interval k at which the terms regularising ``side`` ("generator" or "discriminator") run lazily
        (1: none does). With several intervals on one side, the shortest, whose steps change Adam's statistics
        most often."""
        intervals = [term.every for term in self.terms if side in term.lazy_sides()]
        return min(intervals, default=1)

    def attach(self, discriminator: nn.Module) -> None:
        for term in self.terms:
            term.attach(discriminator)

    def after_discriminator_update(self, discriminator: nn.Module) -> None:
        for term in self.terms:
            term.after_discriminator_update(discriminator)


def build_loss(expression: str, spec: DataSpec, options: dict[str, dict[str, Any]], registry) -> CompositeLoss:
    """Parse ``expression``, build each term from the registry with its options, check its needs."""
    specs = parse_loss_expression(expression)
    unused = sorted(set(options) - {t.bare_name for t in specs})
    if unused:
        raise UsageError(f"Loss options were given for {', '.join(unused)}, which is not a term of "
                         f"'{expression}'. Use --loss-option TERM.KEY=VALUE with a TERM from the expression.")
    terms, weights = [], []
    for term_spec in specs:
        entry = registry.get("loss", term_spec.name)
        term = entry.create(spec, **options.get(term_spec.bare_name, {}))  # checked to be a LossTerm
        if "labels" in term.needs and not spec.labelled:
            raise UsageError(
                f"The loss term '{entry.name}' needs {describe_needs(frozenset({'labels'}))}, but the data set "
                f"'{spec.name}' has no labels. Use a labelled data set (e.g. --dataset mnist5k) or drop the term.")
        weight = term_spec.weight if term_spec.weight is not None else term.default_weight
        problem = check_weight(float(weight))
        if problem:
            raise UsageError(f"The loss plugin '{entry.qualified_name}' declares default_weight {weight}, which "
                             f"{problem} Give the term an explicit weight (e.g. '1*{term_spec.bare_name}'), or report "
                             "the plugin to its authors.")
        terms.append(term)
        weights.append(weight)
    if all(term.auxiliary for term in terms):
        names = ", ".join(t.bare_name for t in specs)
        raise UsageError(f"The loss '{expression}' has no adversarial term: {names} only add to one (regularisers, "
                         f"classifier or contrastive heads). Add an adversarial loss such as 'ns', 'hinge' or "
                         f"'wgan', e.g. 'hinge+{specs[0].bare_name}'.")
    return CompositeLoss([t.bare_name for t in specs], terms, weights)


