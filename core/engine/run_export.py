"""Export a run's generator from its newest checkpoint (``gantk export RUN``)."""

from __future__ import annotations

import json
from pathlib import Path

from gantk.engine.checkpoint import load_latest_checkpoint
from gantk.errors import GantkError
from gantk.engine.export import ExportedGenerator, build_generator, export_generator
from gantk.protocols import ComponentRecord, DataSpec


def export_run(run_dir: Path, out: Path | None = None, *, registry=None) -> Path:
    """Write the run's generator (EMA weights when the run keeps them) to ``out``."""
    run_dir = Path(run_dir)
    components_file = run_dir / "components.json"
    if not components_file.is_file():
        raise GantkError(f"'{run_dir}' has no components.json, so it was not written by 'gantk train' "
                         "(or is from an older version). Give a run directory made by 'gantk train'.")
    components = json.loads(components_file.read_text())
    record = ComponentRecord(**components["generator"])
    spec = DataSpec.from_dict(components["spec"])
    checkpoint = load_latest_checkpoint(run_dir)
    if checkpoint is None:
        raise GantkError(f"The run '{run_dir}' has no readable checkpoint to export yet; train it first "
                         f"(gantk train --resume {run_dir}).")
    exported = ExportedGenerator(record.name, record.package, record.version, spec, record.options, 0, {}, {})
    generator = build_generator(exported, registry)
    use_ema = checkpoint.has_module("ema")
    checkpoint.restore_module("ema" if use_ema else "generator", generator)
    out = Path(out) if out else run_dir / "generator.safetensors"
    dataset = json.loads((run_dir / "config.json").read_text()).get("dataset") if (run_dir / "config.json").is_file() else None
    return export_generator(out, generator, record, spec,
                            extra={"ema": use_ema, "step": checkpoint.step, "dataset": dataset})
