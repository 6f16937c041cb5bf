"""Export a trained translator (both directions of an unpaired translation) to one safetensors file, and load it.

The file holds the tensors of :class:`gantk.Translator`, ``a2b.*`` and ``b2a.*``, and in its metadata
header ``format=pt``, ``gantk.version``, ``gantk.kind`` (``translator``), ``gantk.name`` (the generator
plugin both directions are built from), ``gantk.plugin``, ``gantk.domains`` (JSON: the names of the
domains A and B) and ``gantk.config`` (JSON: the generator's options, the DataSpec, the domains).
As for generators, :func:`load_translator` checks the file against networks built on the meta
device before anything real is allocated or read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gantk.engine.export import (
    ExportedGenerator, build_generator, check_generator_memory, check_tensor_shapes, export_metadata,
)
from gantk.engine.footprint import on_meta
from gantk.engine.safetensors_io import read_metadata, read_safetensors, write_safetensors
from gantk.errors import GantkError
from gantk.protocols import ComponentRecord, DataSpec, Translator

KIND = "translator"


def export_translator(path: Path, translator: Translator, record: ComponentRecord, spec: DataSpec,
                      extra: dict[str, Any] | None = None) -> Path:
    """Write ``translator``'s two directions and what rebuilds them to ``path`` (atomically)."""
    domains = list(translator.domains)
    config = {"options": record.options, "spec": spec.to_dict(), "domains": domains, **(extra or {})}
    metadata = export_metadata(KIND, record, config, **{"gantk.domains": json.dumps(domains)})
    write_safetensors(Path(path), translator.state_dict(), metadata)
    return Path(path)


@dataclass
class ExportedTranslator:
    """The metadata of an exported translator file, parsed; ``direction`` describes either generator."""

    direction: ExportedGenerator
    domains: tuple[str, str]

    @classmethod
    def read(cls, path: Path) -> "ExportedTranslator":
        metadata = read_metadata(path)
        kind = metadata.get("gantk.kind")
        if kind != KIND:
            what = "a generator export: load it with gantk.load_generator, sample it with 'gantk sample'" \
                if kind == "generator" else "not a gantk translator export (its metadata has no gantk.kind=translator)"
            raise GantkError(f"'{path}' is {what}. A translator comes from a run of a translation procedure "
                             "(e.g. --preset cyclegan-emoji): its translator.safetensors, or 'gantk export RUN'.")
        try:
            config = json.loads(metadata["gantk.config"])
            package, _, version = metadata.get("gantk.plugin", "gantk==").partition("==")
            domains = tuple(str(name) for name in json.loads(metadata["gantk.domains"]))
            options = config.get("options", {})
            if len(domains) != 2 or not isinstance(options, dict):
                raise ValueError("it must name two domains and hold the generator's options as a JSON object")
            direction = ExportedGenerator(str(metadata["gantk.name"]), package, version,
                                          DataSpec.from_dict(config["spec"]), options, 0, config, metadata)
            return cls(direction, (domains[0], domains[1]))
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise GantkError(f"'{path}' claims to be a gantk translator export, but its metadata is damaged "
                             f"({type(error).__name__}: {error}). Export it again with 'gantk export RUN'.") from error

    def build(self, registry=None) -> Translator:
        """The (untrained) translator the file describes, from the installed generator plugin."""
        return Translator(build_generator(self.direction, registry), build_generator(self.direction, registry),
                          self.domains)


def load_translator(path: str | Path, *, device: str | torch.device = "cpu", registry=None) -> Translator:
    """Load an exported translator: both directions rebuilt by name from the registry, weights loaded strictly.

    Returns a :class:`gantk.Translator` in eval mode on ``device``: ``translator.a2b(x)`` maps images of
    domain A (``translator.domains[0]``) to domain B, ``translator.b2a`` back; ``translator.spec`` is the
    image shape. Example::

        translator = gantk.load_translator("runs/latest/translator.safetensors")
        twemoji = translator.a2b(noto_images)  # (B, 3, 64, 64) in [-1, 1]
    """
    path = Path(path)
    exported = ExportedTranslator.read(path)
    skeleton = on_meta(lambda: exported.build(registry))
    if skeleton is not None:  # None: the plugin cannot build on meta; the tensors are still checked on loading
        check_tensor_shapes(path, exported.direction, {name: tuple(t.shape) for name, t in skeleton.state_dict().items()})
        check_generator_memory(path, exported.direction, skeleton, device)
    translator = exported.build(registry)
    tensors, _ = read_safetensors(path)
    try:
        translator.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise GantkError(f"The weights in '{path}' do not fit the translator '{exported.direction.name}' built from "
                         f"its recorded options ({error}). The file may come from a different version of the plugin "
                         f"'{exported.direction.package}' (it was made with {exported.direction.version}).") from error
    translator.spec = exported.direction.spec
    return translator.to(device).eval()


__all__ = ["ExportedTranslator", "export_translator", "load_translator"]
