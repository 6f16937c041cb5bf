"""gantk: a GAN toolkit for PyTorch in which every component is a plugin.

The public API for plugin authors and Python users:

- :data:`hookimpl` marks a plugin's hook implementations (see :mod:`gantk.hookspecs`);
- :func:`get_registry` gives the registry of installed plugins;
- the protocols :class:`DataSpec`, :class:`DiscriminatorOutput`, :class:`LossTerm`, ...;
- :mod:`gantk.options` checks plugin options in factories (``positive_int``, ``number_in``, ``choice``, ...);
- :func:`load_generator` rebuilds an exported generator from its safetensors file.

Heavy modules (torch) load on first use of the names that need them, so that ``gantk list``
stays quick.
"""

from __future__ import annotations

import importlib
import importlib.metadata

from gantk import options  # validators for plugin options: gantk.options.positive_int(...), ...
from gantk.errors import AmbiguousNameError, GantkError, UnknownNameError, UsageError
from gantk.hookspecs import hookimpl, hookspec
from gantk.registry import KINDS, Registry, get_registry

try:
    __version__ = importlib.metadata.version("gantk")
except importlib.metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# name -> module that defines it; imported on first access (PEP 562).
_LAZY = {
    "DataSpec": "gantk.protocols",
    "Dataset": "gantk.protocols",
    "DiscriminatorOutput": "gantk.protocols",
    "LossTerm": "gantk.protocols",
    "Augmentation": "gantk.protocols",
    "DiscriminatorPhase": "gantk.protocols",
    "GeneratorPhase": "gantk.protocols",
    "DiscriminatorStep": "gantk.protocols",  # deprecated name of DiscriminatorPhase (warns)
    "GeneratorStep": "gantk.protocols",  # deprecated name of GeneratorPhase (warns)
    "Generator": "gantk.protocols",
    "StyleGenerator": "gantk.protocols",
    "SelfSupervisedDiscriminator": "gantk.protocols",
    "truncate_styles": "gantk.protocols",
    "Discriminator": "gantk.protocols",
    "logit_loss": "gantk.logit_losses",
    "ComponentRecord": "gantk.protocols",
    "GanNetworks": "gantk.protocols",
    "Procedure": "gantk.protocols",
    "PreviewProcedure": "gantk.protocols",
    "Translator": "gantk.protocols",
    "two_domain_dataset": "gantk.protocols",
    "Metric": "gantk.protocols",
    "TrainingSetup": "gantk.protocols",
    "load_generator": "gantk.engine.export",
    "load_translator": "gantk.engine.translator_export",
    "export_generator": "gantk.engine.export",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gantk' has no attribute {name!r}")


__all__ = [
    "AmbiguousNameError", "GantkError", "KINDS", "Registry", "UnknownNameError", "UsageError",
    "__version__", "get_registry", "hookimpl", "hookspec", "options", *_LAZY,
]
