"""The model card (``README.md``) of a model directory: what the generator is, how to load it, how it was trained.

The card follows the Hugging Face Hub's convention (a Markdown file with YAML metadata at the top:
``library_name``, ``tags``, ``datasets``, ``metrics``, ``pipeline_tag``; Mitchell et al. 2019, "Model
Cards for Model Reporting"). Everything in it is read from the run: its ``config.json``, the
checkpoint exported, ``metrics.jsonl`` (evaluations during training), ``best.json`` (``--keep-best``)
and the results of ``gantk eval`` under ``<run>/eval/``, with the protocol each one recorded.
Nothing is invented: what the run did not record is said to be unrecorded.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantk.engine.config import TrainConfig, option_for
from gantk.engine.model_dir import CONFIG_FILE, GRID_FILE, MODEL_FILE, TRAINING_KEY
from gantk.engine.safetensors_io import HASH_KEY, read_metadata
from gantk.errors import GantkError

#: Samples in the card's grid, and their seed.
GRID_SAMPLES, GRID_SEED = 64, 0


@dataclass
class CardFacts:
    """What a card says, gathered from the run and the export."""

    config: dict[str, Any]  # the model directory's config.json (with ``training``)
    run_dir: Path
    weights_sha256: str = ""  # the exported tensors' SHA-256 (gantk.sha256), to recognise evaluations of them
    grid: bool = False  # samples.png was written
    name: str = "DIR"  # the directory's name, as the card's code loads it
    dataset_summary: str = ""
    evaluations: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (file name, gantk eval result)

    @property
    def training(self) -> dict[str, Any]:
        return self.config.get(TRAINING_KEY) or {}


def bare(name: Any) -> str:
    """A plugin name without its package: ``gantk:digits`` → ``digits``."""
    return str(name or "").rpartition(":")[2]


# --------------------------------------------------------------------------- what the run recorded
def read_evaluations(run_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """The results ``gantk eval`` wrote under ``<run>/eval/`` (oldest first), skipping files that are not one."""
    results = []
    for path in sorted((Path(run_dir) / "eval").glob("*.json")):
        try:
            result = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(result, dict) and isinstance(result.get("values"), dict):
            results.append((path.name, result))
    return results


def training_evaluations(run_dir: Path) -> list[dict[str, Any]]:
    """The evaluation records of ``metrics.jsonl`` (``--eval-every``): each a step and its ``eval/<key>`` values."""
    records = []
    path = Path(run_dir) / "metrics.jsonl"
    lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        values = {key.removeprefix("eval/"): value for key, value in record.items() if key.startswith("eval/")} \
            if isinstance(record, dict) else {}
        if values:
            records.append({"step": record.get("step"), "values": values})
    return records


def best_record(run_dir: Path) -> dict[str, Any] | None:
    """``best.json`` of ``--keep-best``: the step and value of the best evaluation, or None."""
    try:
        record = json.loads((Path(run_dir) / "best.json").read_bytes())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def same_weights(result: dict[str, Any], weights_sha256: str) -> str:
    """Whether a ``gantk eval`` result scored the exported weights: compares the SHA-256 of the file it scored."""
    path = Path(str(result.get("generator", "")))
    path = path / MODEL_FILE if path.is_dir() else path  # a model directory was scored
    try:
        scored = read_metadata(path).get(HASH_KEY) if path.is_file() else None
    except GantkError:
        scored = None
    if scored is None:
        return "the file is no longer there to compare"
    return "these weights" if scored == weights_sha256 else "other weights than these"


# --------------------------------------------------------------------------- the training command
def _flat(training: dict[str, Any]) -> dict[str, Any]:
    """A run configuration as the flat options of ``gantk train`` (``g_optimizer`` → ``g_opt``, ``g_lr``,
    ``g_betas``)."""
    flat = {key: value for key, value in training.items() if key not in ("g_optimizer", "d_optimizer", "preset")}
    for side in "gd":
        optimizer = training.get(f"{side}_optimizer") or {}
        flat.update({f"{side}_opt": optimizer.get("name"), f"{side}_lr": optimizer.get("lr"),
                     f"{side}_betas": optimizer.get("betas")})
    return flat


def training_flags(training: dict[str, Any]) -> str:
    """The ``gantk train`` flags that rebuild ``training`` (a run's config.json): every value that is not the
    default, quoted for a POSIX shell. A preset is not named: config.json holds its values already applied."""
    defaults = _flat(TrainConfig().to_json_dict())
    words = []
    for key, value in _flat(training).items():
        if key in defaults and defaults[key] == value:
            continue
        for flag in option_for(key, value).as_flags(value):
            name, _, text = flag.partition(" ")
            words.append(f"{name} {shlex.quote(text)}" if text else name)
    return " ".join(words)


# --------------------------------------------------------------------------- rendering
def _yaml_list(key: str, items: list[str]) -> list[str]:
    # JSON strings are YAML scalars, so json.dumps quotes any name safely
    return [f"{key}:", *(f"- {json.dumps(item)}" for item in items)] if items else []


def front_matter(facts: CardFacts) -> str:
    """The card's YAML metadata: library, tags, data set, metrics and pipeline (no licence: gantk does not know
    the data's licence, so the user adds ``license:`` before publishing)."""
    config, spec = facts.config, facts.config.get("spec") or {}
    image = len(spec.get("shape") or ()) == 3
    conditional = bool(config.get("conditional"))
    tags = ["gantk", "gan", bare(config.get("architecture"))]
    tags += ["class-conditional" if conditional else "unconditional", "image-generation" if image else "vector-data"]
    metrics = sorted({str(name) for _, result in facts.evaluations for name in result.get("protocol") or {}}
                     | ({bare(name) for name in facts.training.get("eval_metrics") or []}
                        if training_evaluations(facts.run_dir) else set()))
    lines = ["---", "library_name: gantk", *_yaml_list("tags", [tag for tag in tags if tag])]
    lines += _yaml_list("datasets", [bare(config.get("dataset") or facts.training.get("dataset"))])
    lines += _yaml_list("metrics", metrics)
    if image and not conditional:
        lines.append("pipeline_tag: unconditional-image-generation")
    return "\n".join([*lines, "---"])


def _shape(spec: dict[str, Any]) -> str:
    return "×".join(str(size) for size in spec.get("shape") or ())


def _summary(facts: CardFacts) -> str:
    config, spec = facts.config, facts.config.get("spec") or {}
    classes = int(spec.get("num_classes") or 0) if config.get("conditional") else 0
    kind = "images" if len(spec.get("shape") or ()) == 3 else "vectors"
    weights = "the exponential moving average (EMA) of the generator's weights" if config.get("ema") \
        else "the generator's trained weights"
    steps = facts.training.get("steps")
    trained = f"step {config.get('step')}" + (f" of {steps}" if steps else "")
    condition = f", class-conditional on {classes} classes" if classes else ""
    return (f"A `{config.get('architecture')}` generator (built by the plugin `{config.get('plugin')}`), trained with "
            f"gantk {config.get('gantk_version')} on the `{bare(config.get('dataset'))}` data set. It maps a "
            f"{config.get('z_dim')}-dimensional standard normal latent to {_shape(spec)} {kind} in [-1, 1]"
            f"{condition}. The weights are {weights} at {trained}; they are stored as safetensors (nothing is "
            "unpickled when they load).")


def _grid_section(facts: CardFacts) -> list[str]:
    spec = facts.config.get("spec") or {}
    conditional = bool(facts.config.get("conditional"))
    command = f"gantk sample {shlex.quote(facts.name)} --n {GRID_SAMPLES} --seed {GRID_SEED}" \
        + (" --labels all" if conditional else "")
    if not facts.grid:
        return [f"The samples are vectors of shape ({_shape(spec)}); plot {GRID_SAMPLES} of them with "
                f"`{command} --out {GRID_FILE}` (a histogram or a scatter plot).", ""]
    layout = "one row per class" if conditional else "an 8×8 grid"
    return [f"![{GRID_SAMPLES} samples, seed {GRID_SEED}]({GRID_FILE})", "",
            f"*Samples with seed {GRID_SEED}, {layout}: `{command} --out {GRID_FILE}` draws the same.*", ""]


def _usage_section(facts: CardFacts) -> list[str]:
    spec = facts.config.get("spec") or {}
    classes = int(spec.get("num_classes") or 0) if facts.config.get("conditional") else 0
    call = "generator(z, labels)" if classes else "generator(z)"
    labels = [f"    labels = torch.arange(16) % {classes}  # one class per sample"] if classes else []
    return [
        "## Load and sample", "",
        "With gantk installed (`pip install gantk`, and the plugin package above if it is not gantk):", "",
        "```python", "import torch", "import gantk", "",
        f'generator = gantk.load_generator({json.dumps(facts.name)})  # this directory; eval mode, on the CPU',
        "with torch.no_grad():",
        "    z = torch.randn(16, generator.z_dim)", *labels,
        f"    samples = {call}  # (16, {', '.join(str(s) for s in spec.get('shape') or ())}) in [-1, 1]", "```", "",
        "Or through the Hugging Face Hub's tools (`pip install 'gantk[hub]'`), from a Hub repository or this "
        "directory:", "",
        "```python", "from gantk.engine.hub import PretrainedGenerator", "",
        f"generator = PretrainedGenerator.from_pretrained({json.dumps(facts.name)})  # or a Hub repository id",
        "```", "",
        f"From the command line: `gantk sample {shlex.quote(facts.name)} --n 64 --out grid.png`.",
        "",
    ]


def _training_section(facts: CardFacts) -> list[str]:
    training, config = facts.training, facts.config
    lines = ["## Training", ""]
    if not training:
        return [*lines, "The run's configuration was not recorded with this export.", ""]
    preset = training.get("preset")
    lines += [f"Trained for {config.get('step')} steps (of `--steps {training.get('steps')}`) with batch size "
              f"{training.get('batch_size')}, seed {training.get('seed')}"
              + (f", from the preset `{bare(preset)}`" if preset else "") + ". "
              f"`{CONFIG_FILE}` holds the run's whole configuration under `{TRAINING_KEY}`; train it again with:", "",
              "```bash", f"gantk train --config {CONFIG_FILE}", "```", "",
              "or, with the same values as flags (the options left out take gantk's defaults):", "",
              "```bash", f"gantk train {training_flags(training)}".rstrip(), "```", ""]
    return lines


def _dataset_section(facts: CardFacts) -> list[str]:
    training = facts.training
    name = bare(facts.config.get("dataset") or training.get("dataset"))
    details = [f"`{name}`" + (f": {facts.dataset_summary}" if facts.dataset_summary else "") + "."]
    for key, label in (("dataset_options", "options"), ("data_root", "read from"), ("image_size", "resized to")):
        if training.get(key):
            value = training[key]
            text = ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
            details.append(f"{label.capitalize()}: `{text}`.")
    if training.get("dataset_b"):
        details.append(f"Second domain: `{bare(training['dataset_b'])}`.")
    return ["## Data set", "", " ".join(details), ""]


def _protocol_text(protocol: dict[str, Any]) -> str:
    """One metric's recorded protocol in words: features, sample counts, seed, data, and anything else recorded."""
    protocol = dict(protocol)
    parts = []
    extractor = protocol.pop("extractor", None)
    dim = protocol.pop("feature_dim", None)
    sha = protocol.pop("weights_sha256", None)
    if extractor:
        parts.append(f"features: {extractor}" + (f", {dim}-d" if dim else "") + (f", weights sha256 {sha[:12]}…"
                                                                                 if sha else ""))
    real, generated = protocol.pop("real_samples", None), protocol.pop("generated_samples", None)
    if real is not None or generated is not None:
        parts.append(f"{real if real is not None else '?'} real / {generated if generated is not None else '?'} "
                     "generated samples")
    if "seed" in protocol:
        parts.append(f"seed {protocol.pop('seed')}")
    data, data_sha = protocol.pop("dataset", None), protocol.pop("data_sha256", None)
    if data:
        parts.append(f"data {data}" + (f" (sha256 {data_sha[:12]}…)" if data_sha else ""))
    for key in ("metric", "data_fingerprint", "gantk_version"):
        protocol.pop(key, None)
    parts += [f"{key} {value}" for key, value in protocol.items()]
    return "; ".join(parts) or "no protocol recorded"


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _evaluation_section(facts: CardFacts) -> list[str]:
    lines = ["## Evaluation", ""]
    for name, result in facts.evaluations:
        lines += [f"`gantk eval` result `eval/{name}`: the file `{Path(str(result.get('generator', '?'))).name}` "
                  f"({same_weights(result, facts.weights_sha256)}), against `{result.get('dataset')}`, on "
                  f"{result.get('device', '?')} with gantk {result.get('gantk_version', '?')}.", "",
                  "| value | result |", "|---|---|",
                  *(f"| {key} | {_number(value)} |" for key, value in result["values"].items()), "",
                  "Protocol, as recorded:", "",
                  *(f"- `{metric}`: {_protocol_text(protocol if isinstance(protocol, dict) else {})}"
                    for metric, protocol in (result.get("protocol") or {}).items()), ""]
    records = training_evaluations(facts.run_dir)
    if records:
        last = records[-1]
        every = facts.training.get("eval_every")
        names = ", ".join(bare(name) for name in facts.training.get("eval_metrics") or []) or "the defaults"
        lines += [f"During training (`--eval-every {every}`, metrics {names}), {len(records)} evaluations; the "
                  f"last, at step {last['step']}:", "", "| value | result |", "|---|---|",
                  *(f"| {key} | {_number(value)} |" for key, value in last["values"].items()), "",
                  "`metrics.jsonl` records these values but not their protocol (feature extractor, sample counts); "
                  "`gantk eval` records both.", ""]
    best = best_record(facts.run_dir)
    if best:
        lines += [f"Best `{best.get('metric')}` during training: {_number(best.get('value'))} at step "
                  f"{best.get('step')} (`--keep-best`; that generator is the run's `best_generator.safetensors`, "
                  f"this export is step {facts.config.get('step')}).", ""]
    if len(lines) == 2:
        lines += ["No evaluation was recorded for this run. Score it with `gantk eval RUN --metrics fid` (it records "
                  "the values with their protocol under `RUN/eval/`) and export again to list the result here.", ""]
    return lines


def render_card(facts: CardFacts) -> str:
    """The whole ``README.md``."""
    config = facts.config
    title = f"{bare(config.get('architecture'))} generator trained on {bare(config.get('dataset'))} with gantk"
    lines = [front_matter(facts), "", f"# {title}", "", _summary(facts), "", *_grid_section(facts),
             *_usage_section(facts), *_training_section(facts), *_dataset_section(facts),
             *_evaluation_section(facts),
             "## Files", "",
             "- `model.safetensors`: the weights, and in its metadata header what rebuilds the network (the file "
             "`gantk export RUN --out FILE.safetensors` writes);",
             f"- `{CONFIG_FILE}`: that description as JSON, and the run's configuration under `{TRAINING_KEY}`;",
             *([f"- `{GRID_FILE}`: the samples above;"] if facts.grid else []),
             "- `README.md`: this card. Its metadata has no `license:`: add the licence that applies to the weights "
             "(and the data they were trained on) before publishing.", ""]
    return "\n".join(lines)


__all__ = ["CardFacts", "GRID_SAMPLES", "GRID_SEED", "read_evaluations", "render_card", "training_flags"]
