"""``gantk eval``: score an exported generator or a run with metric plugins, and record the protocol.

The data set is the one the generator was trained on: a run's ``config.json`` gives it (name,
--data-root, --image-size, options); an exported file records its name and sample shape, and
``--dataset``/``--data-root`` can say where it lives. The result is a JSON document holding each
metric's values and the protocol behind them (see docs/evaluation.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import gantk
from gantk.engine.config import TrainConfig
from gantk.errors import UsageError
from gantk.engine.export import ExportedGenerator, load_generator
from gantk.engine.atomic_files import write_json
from gantk.engine.build import build_dataset
from gantk.engine.scoring import build_metrics as checked_metrics, run_metrics
from gantk.factories import option_parameters
from gantk.protocols import Dataset
from gantk.registry import Registry
from gantk.engine.sampling import resolve_model


@dataclass(frozen=True)
class EvaluationTarget:
    """What to score: the generator file, the run it came from (if any) and the data set to compare with."""

    generator_path: Path
    run_dir: Path | None
    dataset: Dataset


def dataset_for(generator_path: Path, registry: Registry, *, dataset: str | None = None,
                data_root: str | None = None) -> Dataset:
    """The data set a generator was trained on, from its run's config.json or its export metadata."""
    config_path = generator_path.parent / "config.json"
    exported = ExportedGenerator.read(generator_path)
    if config_path.is_file() and dataset is None:
        config = TrainConfig.load(config_path)
        name, root, size, options = config.dataset, data_root or config.data_root, config.image_size, \
            config.dataset_options
    else:
        name = dataset or exported.config.get("dataset")
        if not name:
            raise UsageError(f"'{generator_path}' does not record the data set it was trained on. Name it with "
                             "--dataset (and --data-root for data on disk).")
        spec = exported.spec
        size = spec.shape[-1] if spec.is_image and spec.shape[-1] == spec.shape[-2] else None
        root, options = data_root, {}
    data = build_dataset(registry, name, data_root=root, image_size=size, download=False, options=options)
    if tuple(data.spec.shape) != tuple(exported.spec.shape):
        raise UsageError(f"The generator makes samples of shape {tuple(exported.spec.shape)} but the data set "
                         f"'{name}' holds {tuple(data.spec.shape)}. Evaluate it against the data it was trained on "
                         "(--dataset, --data-root).")
    return data


def build_metrics(names: list[str], registry: Registry, common: dict[str, Any],
                  specific: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Metric objects by name; ``common`` options go to each metric that takes them, ``specific`` to one."""
    options = {}
    for name in names:
        parameters = option_parameters(registry.get("metric", name).factory)
        takes = {p.name for p in parameters} if parameters is not None else set(common)
        options[name] = {**{key: value for key, value in common.items() if key in takes and value is not None},
                         **specific.get(name, {})}
    return checked_metrics(names, registry, options)


def evaluate(target: EvaluationTarget, metrics: dict[str, Any], *, device: str | torch.device = "cpu") -> dict:
    """Run the metrics on the target's generator; the JSON-ready result with values and protocols, when it started
    (local time) and which weights were scored (EMA or trained, the step, as the export records them)."""
    generator = load_generator(target.generator_path, device=device)
    exported = ExportedGenerator.read(target.generator_path).config
    when, started = time.strftime("%Y-%m-%d %H:%M:%S"), time.perf_counter()
    values = run_metrics(metrics, generator, target.dataset, device, shared={})
    protocols = {name: metric.protocol or {"metric": name} for name, metric in metrics.items()}
    return {
        "time": when, "generator": str(target.generator_path),
        "weights": {key: exported[key] for key in ("ema", "step") if key in exported},
        "run": str(target.run_dir) if target.run_dir else None,
        "dataset": target.dataset.spec.name, "values": values, "protocol": protocols,
        "device": str(device), "seconds": round(time.perf_counter() - started, 3), "gantk_version": gantk.__version__,
    }


def resolve_target(model: str, runs_root: Path, registry: Registry, *, dataset: str | None = None,
                   data_root: str | None = None) -> EvaluationTarget:
    path = resolve_model(model, runs_root)
    run_dir = path.parent if (path.parent / "config.json").is_file() else None
    return EvaluationTarget(path, run_dir, dataset_for(path, registry, dataset=dataset, data_root=data_root))


def write_result(result: dict, path: Path) -> None:
    """The result as indented JSON, written atomically (creating its folder)."""
    write_json(path, result)
