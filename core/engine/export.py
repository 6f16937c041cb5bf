"""Export a trained generator to safetensors with its config, and load it back by name.

The file holds the generator's weights and, in its metadata header: ``format=pt``,
``gantk.version``, ``gantk.kind`` (``generator``), ``gantk.name`` (the registry name),
``gantk.plugin`` (``package==version`` of the plugin that provides it) and ``gantk.config``
(JSON: the factory's options, the DataSpec and the latent size). :func:`load_generator` looks
the name up in the registry, rebuilds the module and loads the weights strictly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import gantk
from gantk.errors import GantkError, UnknownNameError
from gantk.protocols import ComponentRecord, DataSpec
from gantk.engine.safetensors_io import read_metadata, read_safetensors, write_safetensors


def export_generator(path: Path, generator: nn.Module, record: ComponentRecord, spec: DataSpec,
                     extra: dict[str, Any] | None = None) -> Path:
    """Write ``generator``'s weights and everything needed to rebuild it to ``path`` (atomically)."""
    config = {"options": record.options, "spec": spec.to_dict(), "z_dim": int(generator.z_dim), **(extra or {})}
    metadata = {
        "format": "pt",
        "gantk.version": gantk.__version__,
        "gantk.kind": "generator",
        "gantk.name": record.name,
        "gantk.plugin": f"{record.package}=={record.version}",
        "gantk.config": json.dumps(config),
    }
    write_safetensors(Path(path), generator.state_dict(), metadata)
    return Path(path)


@dataclass
class ExportedGenerator:
    """The metadata of an exported generator file, parsed."""

    name: str
    package: str
    version: str
    spec: DataSpec
    options: dict[str, Any]
    z_dim: int
    config: dict[str, Any]
    metadata: dict[str, str]

    @classmethod
    def read(cls, path: Path) -> "ExportedGenerator":
        metadata = read_metadata(path)
        if metadata.get("gantk.kind") != "generator":
            raise GantkError(
                f"'{path}' is a safetensors file but not a gantk generator export (its metadata has no "
                "gantk.kind=generator). Export one with 'gantk export RUN', or pass a run directory.")
        config = json.loads(metadata["gantk.config"])
        package, _, version = metadata.get("gantk.plugin", "gantk==").partition("==")
        return cls(metadata["gantk.name"], package, version, DataSpec.from_dict(config["spec"]),
                   config.get("options", {}), int(config["z_dim"]), config, metadata)


def build_generator(exported: ExportedGenerator, registry=None) -> nn.Module:
    """Rebuild the (untrained) generator module an export describes, from the installed plugin."""
    registry = registry or gantk.get_registry()
    try:
        entry = registry.get("generator", f"{exported.package}:{exported.name}")
    except UnknownNameError as error:
        raise GantkError(
            f"This generator ('{exported.name}') was made by the plugin package '{exported.package}' "
            f"{exported.version}, which is not installed here. Install it (pip install "
            f"{exported.package}=={exported.version}) and try again.") from error
    return entry.create(exported.spec, **exported.options)


def load_generator(path: str | Path, *, device: str | torch.device = "cpu", registry=None) -> nn.Module:
    """Load an exported generator: rebuild it by name from the registry and load its weights strictly.

    The module is returned in eval mode on ``device``; its ``spec`` attribute is the DataSpec it
    generates for. Example::

        generator = gantk.load_generator("runs/latest/generator.safetensors")
        images = generator(torch.randn(16, generator.z_dim))
    """
    path = Path(path)
    exported = ExportedGenerator.read(path)
    generator = build_generator(exported, registry)
    tensors, _ = read_safetensors(path)
    try:
        generator.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise GantkError(
            f"The weights in '{path}' do not fit the generator '{exported.name}' built from its recorded options "
            f"({error}). The file may come from a different version of the plugin "
            f"'{exported.package}' (it was made with {exported.version}).") from error
    generator.spec = exported.spec
    return generator.to(device).eval()
