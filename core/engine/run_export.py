"""Export a run's generator (or translator) from its newest usable checkpoint (``gantk export RUN``): as one
safetensors file, or as a model directory in the Hugging Face layout (``--out DIR/``, see
:mod:`gantk.engine.model_dir`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

import gantk
from gantk.engine.atomic_files import write_atomic, write_json
from gantk.engine.checkpoint import Checkpoint, restore_newest, why_none_usable
from gantk.engine.export import ExportedGenerator, build_generator, export_generator, load_generator
from gantk.engine.model_card import GRID_SAMPLES, GRID_SEED, CardFacts, read_evaluations, render_card
from gantk.engine.model_dir import (
    CARD_FILE, CONFIG_FILE, GRID_FILE, MODEL_FILE, TRAINING_KEY, config_from_metadata, write_directory,
)
from gantk.engine.safetensors_io import HASH_KEY, read_metadata
from gantk.engine.sampling import class_labels, draw, png_bytes, sample_grid
from gantk.engine.translator_export import ExportedTranslator, export_translator
from gantk.errors import GantkError, UsageError
from gantk.protocols import ComponentRecord, DataSpec


def _read_json(path: Path) -> Any:
    """A JSON file of the run; a readable error when it is damaged."""
    try:
        return json.loads(path.read_bytes())
    except ValueError as error:
        raise GantkError(f"'{path}' is not valid JSON ({error}); it was damaged or edited. Restore it from a backup "
                         "of the run.") from error


@dataclass
class RunExport:
    """What a run exports, rebuilt from its newest usable checkpoint."""

    kind: str  # "generator" or "translator"
    model: nn.Module
    record: ComponentRecord
    spec: DataSpec
    extra: dict[str, Any]  # recorded in the export's config: ema, step, dataset
    config: dict[str, Any]  # the run's training configuration

    def write(self, out: Path) -> Path:
        """The export as one safetensors file at ``out`` (atomically)."""
        write = export_translator if self.kind == "translator" else export_generator
        return write(out, self.model, self.record, self.spec, extra=self.extra)


def restore_export(run_dir: Path, *, registry=None, ema: bool = True) -> RunExport:
    """The run's generator (or translator) from its newest usable checkpoint: its EMA weights when the run keeps
    them and ``ema`` is True, else the trained weights themselves (``gantk export --no-ema``)."""
    run_dir = Path(run_dir)
    components_file = run_dir / "components.json"
    if not components_file.is_file():
        raise GantkError(f"'{run_dir}' has no components.json, so it was not written by 'gantk train' "
                         "(or is from an older version). Give a run directory made by 'gantk train'.")
    components = _read_json(components_file)
    kind = "translator" if isinstance(components, dict) and "translator" in components else "generator"
    try:
        record = ComponentRecord(**components[kind])
        spec = DataSpec.from_dict(components["spec"])
        domains = tuple(components.get("domains") or ("A", "B"))
    except (KeyError, TypeError, ValueError) as error:
        raise GantkError(f"'{components_file}' does not describe a generator ({type(error).__name__}: {error}); it "
                         "was damaged or edited. Restore it from a backup of the run.") from error
    exported = ExportedGenerator(record.name, record.package, record.version, spec, record.options, 0, {}, {})
    model = ExportedTranslator(exported, domains).build(registry) if kind == "translator" \
        else build_generator(exported, registry)

    def restore(checkpoint: Checkpoint) -> None:
        checkpoint.restore_module("ema" if ema and checkpoint.has_module("ema") else kind, model)

    checkpoint = restore_newest(run_dir, restore)
    if checkpoint is None:
        raise GantkError(f"Cannot export '{run_dir}': {why_none_usable(run_dir)}. Train it first, or further "
                         f"(gantk train --resume {run_dir}).")
    config = checkpoint.config or (_read_json(run_dir / "config.json") if (run_dir / "config.json").is_file() else {})
    config = config if isinstance(config, dict) else {}
    extra = {"ema": ema and checkpoint.has_module("ema"), "step": checkpoint.step, "dataset": config.get("dataset")}
    return RunExport(kind, model, record, spec, extra, config)


def export_run(run_dir: Path, out: Path | None = None, *, registry=None, ema: bool = True) -> Path:
    """Write the run's generator (or translator) to ``out`` (default ``<run>/generator.safetensors`` or
    ``translator.safetensors``); ``ema`` as for :func:`restore_export`."""
    restored = restore_export(run_dir, registry=registry, ema=ema)
    return restored.write(Path(out) if out else Path(run_dir) / f"{restored.kind}.safetensors")


def export_run_directory(run_dir: Path, out: Path, *, overwrite: bool = False, registry=None,
                         ema: bool = True) -> Path:
    """Write the run's generator as a model directory at ``out``, atomically (``gantk export RUN --out DIR/``);
    a non-empty ``out`` is replaced only with ``overwrite`` and only if gantk wrote it."""
    out = Path(out)
    return write_directory(out, lambda staging: fill_model_directory(staging, run_dir, registry=registry, ema=ema,
                                                                     name=out.name), overwrite=overwrite)


def fill_model_directory(directory: Path, run_dir: Path, *, registry=None, ema: bool = True,
                         name: str | None = None) -> None:
    """Write a model directory's files into the existing ``directory``: ``model.safetensors``, ``config.json``,
    ``samples.png`` (image data) and ``README.md``, the card, whose code loads the directory as ``name``."""
    directory = Path(directory)
    restored = restore_export(run_dir, registry=registry, ema=ema)
    if restored.kind != "generator":
        raise UsageError(f"'{run_dir}' trained a {restored.kind} (image translation), and a model directory holds a "
                         "generator. Export it as one file: gantk export RUN --out translator.safetensors.")
    weights = restored.write(directory / MODEL_FILE)
    metadata = read_metadata(weights)
    generator = load_generator(weights, registry=registry)  # what was written, read back as users will
    config = {**config_from_metadata(metadata), "conditional": bool(generator.conditional),
              TRAINING_KEY: restored.config}
    write_json(directory / CONFIG_FILE, config)
    grid = bool(generator.spec.is_image)
    if grid:
        write_sample_grid(generator, directory / GRID_FILE)
    facts = CardFacts(config, Path(run_dir), weights_sha256=metadata.get(HASH_KEY, ""), grid=grid,
                      name=name or directory.name, evaluations=read_evaluations(run_dir),
                      dataset_summary=dataset_summary(restored.config.get("dataset"), registry))
    write_atomic(directory / CARD_FILE, render_card(facts).encode())


def write_sample_grid(generator: nn.Module, path: Path) -> None:
    """The card's picture: 64 samples with seed 0, an 8×8 grid (one row per class for a conditional generator),
    exactly what ``gantk sample DIR --n 64 --seed 0 [--labels all]`` draws."""
    labels, row = class_labels(generator, GRID_SAMPLES, None, bool(generator.conditional))
    samples = draw(generator, GRID_SAMPLES if labels is None else len(labels), seed=GRID_SEED, labels=labels)
    write_atomic(path, png_bytes(sample_grid(samples, row)))  # (C, H, W) uint8, the grid gantk sample writes


def dataset_summary(name: Any, registry=None) -> str:
    """The data set plugin's one-line summary, or "" when it is not installed here."""
    try:
        return (registry or gantk.get_registry()).get("dataset", str(name)).summary if name else ""
    except GantkError:
        return ""
