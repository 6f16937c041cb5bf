"""Export a run's generator (or translator) from its newest usable checkpoint (``gantk export RUN``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gantk.engine.checkpoint import Checkpoint, restore_newest, why_none_usable
from gantk.errors import GantkError
from gantk.engine.export import ExportedGenerator, build_generator, export_generator
from gantk.engine.translator_export import ExportedTranslator, export_translator
from gantk.protocols import ComponentRecord, DataSpec


def _read_json(path: Path) -> Any:
    """A JSON file of the run; a readable error when it is damaged."""
    try:
        return json.loads(path.read_bytes())
    except ValueError as error:
        raise GantkError(f"'{path}' is not valid JSON ({error}); it was damaged or edited. Restore it from a backup "
                         "of the run.") from error


def export_run(run_dir: Path, out: Path | None = None, *, registry=None, ema: bool = True) -> Path:
    """Write the run's generator (or translator) to ``out``: its EMA weights when the run keeps them and ``ema`` is
    True, else the trained weights themselves (``gantk export --no-ema``)."""
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
    out = Path(out) if out else run_dir / f"{kind}.safetensors"
    config = checkpoint.config or (_read_json(run_dir / "config.json") if (run_dir / "config.json").is_file() else {})
    extra = {"ema": ema and checkpoint.has_module("ema"), "step": checkpoint.step,
             "dataset": config.get("dataset") if isinstance(config, dict) else None}
    if kind == "translator":
        return export_translator(out, model, record, spec, extra=extra)
    return export_generator(out, model, record, spec, extra=extra)
