"""Export a trained generator to safetensors with its config, and load it back by name.

The file holds the generator's weights and, in its metadata header: ``format=pt``,
``gantk.version``, ``gantk.kind`` (``generator``), ``gantk.name`` (the registry name),
``gantk.plugin`` (``package==version`` of the plugin that provides it) and ``gantk.config``
(JSON: the factory's options, the DataSpec and the latent size). :func:`load_generator` looks
the name up in the registry, rebuilds the module and loads the weights strictly. It also reads a model
directory (``gantk export RUN --out DIR/``, :mod:`gantk.engine.model_dir`): its ``model.safetensors`` is
this file.

A file's config is not trusted: :func:`load_generator` first builds the network on the meta
device (shapes only, nothing allocated), compares every tensor name and shape with the file's
header, and checks that the network and one sample fit in memory; only then is anything real built
or read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

import gantk
from gantk import memory_budget
from gantk.errors import GantkError, UnknownNameError
from gantk.protocols import ComponentRecord, DataSpec
from gantk.engine.footprint import on_meta, parameter_bytes
from gantk.engine.model_dir import check_config_matches, model_file
from gantk.engine.safetensors_io import read_metadata, read_safetensors, write_safetensors


def export_generator(path: Path, generator: nn.Module, record: ComponentRecord, spec: DataSpec,
                     extra: dict[str, Any] | None = None) -> Path:
    """Write ``generator``'s weights and everything needed to rebuild it to ``path`` (atomically)."""
    config = {"options": record.options, "spec": spec.to_dict(), "z_dim": int(generator.z_dim), **(extra or {})}
    write_safetensors(Path(path), generator.state_dict(), export_metadata("generator", record, config))
    return Path(path)


def export_metadata(kind: str, record: ComponentRecord, config: dict[str, Any], **more: str) -> dict[str, str]:
    """The metadata header of an export of ``kind``: format, versions, the plugin that rebuilds it, its config."""
    return {"format": "pt", "gantk.version": gantk.__version__, "gantk.kind": kind, "gantk.name": record.name,
            "gantk.plugin": f"{record.package}=={record.version}", **more, "gantk.config": json.dumps(config)}


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
        """The export at ``path``: a generator file, or a model directory (its ``model.safetensors``, whose
        ``config.json`` must describe the same generator)."""
        if Path(path).is_dir():
            exported = cls.read(model_file(path))
            check_config_matches(path, exported.metadata)
            return exported
        metadata = read_metadata(path)
        if metadata.get("gantk.kind") == "translator":
            raise GantkError(f"'{path}' is a translator export (both directions of an image translation), not a "
                             "generator: load it with gantk.load_translator, or translate images with 'gantk "
                             "translate'.")
        if metadata.get("gantk.kind") != "generator":
            raise GantkError(
                f"'{path}' is a safetensors file but not a gantk generator export (its metadata has no "
                "gantk.kind=generator). Export one with 'gantk export RUN', or pass a run directory.")
        try:
            config = json.loads(metadata["gantk.config"])
            package, _, version = metadata.get("gantk.plugin", "gantk==").partition("==")
            options = config.get("options", {})
            if not isinstance(options, dict):
                raise TypeError(f"options is a {type(options).__name__}, not a JSON object")
            return cls(str(metadata["gantk.name"]), package, version, DataSpec.from_dict(config["spec"]),
                       options, int(config["z_dim"]), config, metadata)
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise GantkError(f"'{path}' claims to be a gantk generator export, but its metadata is damaged "
                             f"({type(error).__name__}: {error}). Export the generator again with 'gantk export "
                             "RUN'.") from error


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


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in a safetensors file, read from its header (no tensor data)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise GantkError(f"Cannot read the tensors of '{path}' ({type(error).__name__}: {error}); the file is "
                         "damaged. Export or copy it again.") from error


def check_tensor_shapes(path: Path, exported: ExportedGenerator, expected: dict[str, tuple[int, ...]]) -> None:
    """Refuse a file whose tensors differ from ``expected`` (name -> shape), naming the first that differs."""
    stored = tensor_shapes(path)
    for name in [*expected, *(name for name in stored if name not in expected)]:
        if expected.get(name) == stored.get(name):
            continue
        if name not in stored:
            problem = f"lacks the tensor '{name}' {list(expected[name])}"
        elif name not in expected:
            problem = f"holds a tensor '{name}' {list(stored[name])} that the network does not have"
        else:
            problem = (f"holds the tensor '{name}' with shape {list(stored[name])}, but the network built from "
                       f"its config needs {list(expected[name])}")
        raise GantkError(
            f"'{path}' does not match the generator '{exported.name}' its own config describes: it {problem}. "
            f"The file is damaged or forged, or it comes from a different version of the plugin "
            f"'{exported.package}' (it was made with {exported.version}); nothing was loaded.")


def check_generator_memory(path: Path, exported: ExportedGenerator, skeleton: nn.Module, device: Any) -> None:
    """Refuse a generator (built on meta) whose weights and one sample do not fit on ``device``.

    One sample counts twice: roughly the sample and the layer that makes it. (A forward pass on meta would
    measure every layer, but its Python meta kernels import ``torch._dynamo``, seconds on every load.)
    """
    weights, sample = parameter_bytes(skeleton), 4 * math.prod(exported.spec.shape)
    shape = "x".join(map(str, exported.spec.shape))
    memory_budget.check_fits(
        weights + 2 * sample,
        f"Loading the generator in '{path}' ({memory_budget.format_size(weights)} of weights, samples "
        f"of {shape}) and drawing one sample", "Load it where there is more memory (another device=...), or "
        "check where the file comes from: its config may be forged.",
        str(device) if torch.device(device).type == "cuda" else None)


def load_generator(path: str | Path, *, device: str | torch.device = "cpu", registry=None) -> nn.Module:
    """Load an exported generator: rebuild it by name from the registry and load its weights strictly.

    The network is first built on the meta device from the file's config and checked against the
    file's tensor names and shapes and against the memory available, so a forged or damaged file is
    refused before anything is allocated. The module is returned in eval mode on ``device``; its
    ``spec`` attribute is the DataSpec it generates for. ``path`` is a generator file or a model directory
    (``gantk export RUN --out DIR/``: its ``model.safetensors``). Example::

        generator = gantk.load_generator("runs/latest/generator.safetensors")
        images = generator(torch.randn(16, generator.z_dim))
    """
    path = Path(path)
    exported = ExportedGenerator.read(path)
    path = model_file(path) if path.is_dir() else path
    skeleton = on_meta(lambda: build_generator(exported, registry))
    if skeleton is not None:  # None: the plugin cannot build on meta; its tensors are still checked below
        check_tensor_shapes(path, exported, {name: tuple(t.shape) for name, t in skeleton.state_dict().items()})
        check_generator_memory(path, exported, skeleton, device)
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
