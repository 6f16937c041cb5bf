"""Logit losses: a GAN loss that is a function of D's logits alone, written as two pure functions.

``gantk.logit_loss(discriminator_loss, generator_loss)`` turns the two functions into a loss
factory for ``register_losses``::

    def hinge_d(real, fake):  # E relu(1 − D(x)) + E relu(1 + D(x~))
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def hinge_g(real, fake):  # −E D(x~)
        return -fake.mean()

    register("hinge", gantk.logit_loss(hinge_d, hinge_g), summary="Hinge loss (Lim & Ye 2017)")

Both functions take ``(real, fake)``: float32 logit tensors of shape (B,), or (B, H', W') from a patch
discriminator (average over every element, as ``.mean()`` does, and both shapes work). In the generator's
function ``real`` is None unless the loss was made with ``generator_needs_real=True`` (then it is
D's output on the latest real batch, computed afresh in G's update). Keyword-only parameters with
defaults become the loss's options (``--loss-option ns.real_target=0.9``); ``checks`` maps an
option to a validator from :mod:`gantk.options` (``check(owner, name, value) -> value``).
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, Callable, Mapping

from torch import Tensor

from gantk.errors import UsageError
from gantk.protocols import DataSpec, DiscriminatorPhase, GeneratorPhase, LossTerm

#: D's or G's loss from the real and fake logits (float32, (B,)) and the options it declares.
LogitFunction = Callable[..., Tensor]
#: A validator of one option, as those of gantk.options: ``check(owner, name, value) -> value``.
OptionCheck = Callable[[str, str, Any], Any]

REAL_IN_GENERATOR_PHASE = "real_in_generator_phase"


class LogitLoss(LossTerm):
    """A loss term computed by two pure functions of D's logits (see :func:`logit_loss`).

    ``options`` holds every option's value; each function receives the ones it declares.
    Subclass it for a loss that also acts on D between steps (``wgan``'s weight clipping).
    """

    def __init__(self, discriminator_fn: LogitFunction, generator_fn: LogitFunction,
                 options: Mapping[str, Any] | None = None, *, generator_needs_real: bool = False,
                 name: str = "") -> None:
        super().__init__()
        self.discriminator_fn, self.generator_fn, self.name = discriminator_fn, generator_fn, name
        self.generator_needs_real = generator_needs_real
        self.needs = frozenset({REAL_IN_GENERATOR_PHASE}) if generator_needs_real else frozenset()
        self._options = dict(options or {})
        self._discriminator_options = _options_taken_by(discriminator_fn, self._options)
        self._generator_options = _options_taken_by(generator_fn, self._options)

    def discriminator_loss(self, step: DiscriminatorPhase) -> Tensor:
        return self.discriminator_fn(step.real_out.logits, step.fake_out.logits, **self._discriminator_options)

    def generator_loss(self, step: GeneratorPhase) -> Tensor:
        real = None
        if self.generator_needs_real:
            if step.real_out is None:
                raise UsageError(
                    f"The loss '{self.name or type(self).__name__}' needs D's output on real data in the generator's "
                    "update, but this training procedure gave none. Train with the default 'gan' procedure, or "
                    f"one that honours the '{REAL_IN_GENERATOR_PHASE}' need, or choose another loss.")
            real = step.real_out.logits
        return self.generator_fn(real, step.fake_out.logits, **self._generator_options)

    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def extra_repr(self) -> str:
        functions = f"{self.discriminator_fn.__name__}, {self.generator_fn.__name__}"
        parts = [f"{self.name}: {functions}" if self.name else functions, super().extra_repr()]
        return ", ".join(part for part in parts if part)


def logit_loss(discriminator_loss: LogitFunction, generator_loss: LogitFunction, *,
               generator_needs_real: bool = False, checks: Mapping[str, OptionCheck] | None = None,
               name: str = "") -> Callable[..., LogitLoss]:
    """A loss factory ``factory(spec, **options) -> LossTerm`` from D's and G's loss on logits.

    ``generator_needs_real`` declares the ``"real_in_generator_phase"`` need (relativistic
    losses); ``checks`` validates options; ``name`` names the loss in error messages.
    """
    parameters = _option_parameters(discriminator_loss, generator_loss)
    names = {p.name for p in parameters}
    checks = dict(checks or {})
    if set(checks) - names:
        raise TypeError(f"logit_loss: checks for {sorted(set(checks) - names)}, which neither function takes "
                        f"as a keyword-only option (they take {sorted(names) or 'none'})")
    owner = f"loss '{name}'" if name else "loss"

    def factory(spec: DataSpec, **options: Any) -> LogitLoss:
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"the {owner} got unexpected options {unknown}; it takes {sorted(names) or 'none'}")
        values = {p.name: options.get(p.name, p.default) for p in parameters}
        for option, check in checks.items():
            values[option] = check(owner, option, values[option])
        return LogitLoss(discriminator_loss, generator_loss, values, generator_needs_real=generator_needs_real,
                         name=name)

    spec_parameter = inspect.Parameter("spec", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=DataSpec)
    factory.__signature__ = inspect.Signature([spec_parameter, *parameters])  # what call_factory and `gantk list` read
    factory.__doc__ = _module_summary(discriminator_loss)
    factory.__name__ = factory.__qualname__ = f"logit_loss({discriminator_loss.__name__}, {generator_loss.__name__})"
    factory.__module__ = discriminator_loss.__module__  # the plugin module that defines the loss, not this one
    factory.component_functions = (discriminator_loss, generator_loss)  # what gantk.blame ties errors to
    return factory


def _option_parameters(*functions: LogitFunction) -> list[inspect.Parameter]:
    """The keyword-only parameters of the functions (the options), after two positional ones (real, fake)."""
    found: dict[str, inspect.Parameter] = {}
    for function in functions:
        parameters = list(inspect.signature(function).parameters.values())
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        keywords = [p for p in parameters if p.kind is p.KEYWORD_ONLY]
        if len(positional) != 2 or len(keywords) + 2 != len(parameters) or any(p.default is p.empty for p in keywords):
            raise TypeError(f"logit_loss: {function.__name__} must take (real, fake) and options as keyword-only "
                            f"parameters with defaults, e.g. def {function.__name__}(real, fake, *, margin=1.0)")
        for parameter in keywords:
            known = found.setdefault(parameter.name, parameter)
            if known.default != parameter.default:
                raise TypeError(f"logit_loss: option {parameter.name!r} has the default {known.default!r} in one "
                                f"function and {parameter.default!r} in {function.__name__}; give it one default")
    return list(found.values())


def _options_taken_by(function: LogitFunction, options: Mapping[str, Any]) -> dict[str, Any]:
    taken = {p.name for p in inspect.signature(function).parameters.values() if p.kind is p.KEYWORD_ONLY}
    return {key: value for key, value in options.items() if key in taken}


def _module_summary(function: LogitFunction) -> str:
    """The first line of the docstring of the module defining ``function`` (the default `gantk list` summary)."""
    module = sys.modules.get(function.__module__)
    lines = [line.strip() for line in (getattr(module, "__doc__", None) or "").splitlines() if line.strip()]
    return lines[0] if lines else f"Loss on D's logits: {function.__name__}"


__all__ = ["LogitLoss", "logit_loss"]
