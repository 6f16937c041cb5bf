"""The training configuration: every choice needed to rebuild a run, saved as ``config.json``.

A run is fully described by a :class:`TrainConfig`. Presets give a partial dict of these fields;
options given explicitly on the command line override the preset; the rest keep the defaults
below. ``config.json`` in the run directory is ``TrainConfig.to_dict()``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from gantk.engine.train_options import (
    BETAS, CLI, DECAY_OR_OFF, LEARNING_RATE, PLUGIN_CHOICE, TERM_ASSIGNMENTS, CliOption, Codec, Plain, betas,
    learning_rate, option, plugin_choice, split_names,
)
from gantk.engine.atomic_files import write_json
from gantk.errors import GantkError, UsageError
from gantk.memory_budget import parse_size


@dataclass
class OptimizerConfig:
    """One network's optimizer: ``adam`` (Kingma & Ba 2015) or ``rmsprop`` (the WGAN paper's)."""

    name: str = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise UsageError(f"Unknown optimizer '{self.name}'. Choose one of: {', '.join(OPTIMIZERS)}.")
        self.lr = learning_rate(self.lr, "The learning rate (--lr, --g-lr, --d-lr)")
        self.betas = betas(self.betas, "The betas (--betas, --g-betas, --d-betas)")


OPTIMIZERS = ("adam", "rmsprop", "sgd")


def _optimizer_option(name: str, help: str, default: Any, codec: Codec, sides: str, **cli: Any) -> CliOption:
    """A flat optimizer option; ``sides`` "gd" sets both networks' optimizers, "g" or "d" one."""
    sets = tuple(f"{side}_optimizer" for side in sides)
    return CliOption(help=help, codec=codec, sets=sets, **cli).named(name, None, default)


_STOCK = OptimizerConfig()
#: The flat optimizer options of ``gantk train`` (and presets). :meth:`TrainConfig.from_options` folds them into
#: ``g_optimizer`` and ``d_optimizer``; a network's own option beats the shared one.
OPTIMIZER_OPTIONS: tuple[CliOption, ...] = (
    _optimizer_option("lr", "Learning rate of both networks.", _STOCK.lr, LEARNING_RATE, "gd",
                      supersedes=("g_lr", "d_lr")),
    _optimizer_option("g_lr", "Generator learning rate.", None, LEARNING_RATE, "g", default_text="the --lr value"),
    _optimizer_option("d_lr", "Discriminator learning rate.", None, LEARNING_RATE, "d", default_text="the --lr value"),
    _optimizer_option("g_opt", f"Generator optimizer: {', '.join(OPTIMIZERS)}.", _STOCK.name, Plain(str), "g"),
    _optimizer_option("d_opt", f"Discriminator optimizer: {', '.join(OPTIMIZERS)}.", _STOCK.name, Plain(str), "d"),
    _optimizer_option("betas", "Adam betas of both networks (SGD: β₁ is the momentum; RMSprop ignores them).",
                      _STOCK.betas, BETAS, "gd", supersedes=("g_betas", "d_betas")),
    _optimizer_option("g_betas", "Generator betas.", None, BETAS, "g", default_text="the --betas value"),
    _optimizer_option("d_betas", "Discriminator betas.", None, BETAS, "d", default_text="the --betas value"),
)


@dataclass
class TrainConfig:
    """Everything ``gantk train`` decides. Field names are the CLI's option names with ``_``; each field's
    metadata declares its option (:func:`~gantk.engine.train_options.option`)."""

    # what to train
    procedure: str = option("gan", help="What one training step does (a procedure plugin; gan: noise to sample).",
                            supersedes=("procedure_options",), complete="procedure")
    procedure_options: dict[str, Any] = option(factory=dict, flag="--procedure-option", short="-P",
                                               help="Procedure option KEY=VALUE (repeatable).")
    gen: str = option("dcgan", help="Generator architecture.", supersedes=("gen_options",), complete="generator")
    disc: str | None = option(None, help="Discriminator architecture.", default_text="the same name as --gen",
                              supersedes=("disc_options",), complete="discriminator")
    loss: str = option("ns", help="Loss expression, e.g. ns, hinge+0.5*r1, wgan+10*gp.", supersedes=("loss_options",),
                       complete="loss")
    augment: str | None = option(None, codec=PLUGIN_CHOICE, complete="augmentation",
                                 help="Augment everything D sees, real and fake: NAME[:KEY=VALUE,...] (diffaugment, "
                                      "ada, flip, e.g. ada:target=0.6; none: off).")
    dataset: str = option("mnist5k", help="Data set (mnist5k: the embedded MNIST digits).",
                          supersedes=("dataset_options", "data_root", "image_size"), complete="dataset")
    gen_options: dict[str, Any] = option(factory=dict, flag="--gen-option", short="-G",
                                         help="Generator option KEY=VALUE (repeatable).")
    disc_options: dict[str, Any] = option(factory=dict, flag="--disc-option", short="-D",
                                          help="Discriminator option KEY=VALUE (repeatable).")
    loss_options: dict[str, dict[str, Any]] = option(factory=dict, flag="--loss-option", short="-L",
                                                     codec=TERM_ASSIGNMENTS,  # term name -> options
                                                     help="Loss term option TERM.KEY=VALUE (repeatable).")
    dataset_options: dict[str, Any] = option(factory=dict, flag="--data-option", short="-O",
                                             help="Data set option KEY=VALUE (repeatable).")
    dataset_b: str | None = option(None, supersedes=("dataset_b_options",), complete="dataset", default_text="none",
                                   help="A second data set of the same image shape, as domain B of unpaired "
                                        "translation (--dataset is domain A).")
    dataset_b_options: dict[str, Any] = option(factory=dict, flag="--dataset-b-option",
                                               help="Option KEY=VALUE of --dataset-b (repeatable); data_root=DIR "
                                                    "reads it from its own folder (default: --data-root).")
    data_root: str | None = option(None, help="Folder holding a data set's files (mnist, cifar10, folder).")
    image_size: int | None = option(None, help="Resize images to this square size.",
                                    default_text="the data set's own size")
    download: bool = option(False, help="Download the data set if missing (needs network).")
    # how long and how
    steps: int = option(3500, help="Training steps (one D phase + one G update each).", resumable=True)
    batch_size: int = option(64, help="Batch size (the global batch: under torchrun it is split over the processes).")
    accumulate: int = option(1, resumable=True,
                             help="Run each batch as K micro-batches, one after another, summing their gradients "
                                  "(memory ÷ K, same maths).")
    lr_schedule: str = option("constant", help="Learning-rate schedule: constant, linear-decay:START (to 0 at --steps, "
                                               "from step START or START% of --steps) or cosine (to 0 at --steps).")
    n_critic: int = option(1, help="D updates per G update.")
    g_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)  # set by OPTIMIZER_OPTIONS
    d_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    ema: float | None = option(0.999, codec=DECAY_OR_OFF, help="EMA decay of G's weights (β), or 'off'.")
    ema_warmup: bool = option(True, help="Warm the EMA up: decay min(β, (1+t)/(10+t)) at update t, so the initial "
                                         "weights fade out at once (off: β from the first update, as runs made "
                                         "before the warm-up, whose config.json lacks ema_warmup).")
    precision: str = option("auto", help="auto (bf16 where fast), fp32, bf16 or fp16.")
    cpu_kernels: str = option("auto", resumable=True,
                              help="gantk's own bf16 CPU convolution kernels (gantk.accel): auto (where they apply) "
                                   "or off.")
    device: str = option("auto", help="auto, cpu, cuda or cuda:N.", resumable=True)
    threads: str = option("auto", resumable=True,
                          help="CPU threads: auto (the cores other processes leave free, looked at every 2 s) or a "
                               "number.")
    workers: str = option("auto", resumable=True,
                          help="Processes that decode a streamed image folder: auto (one per two cores, at most 4) or a "
                               "number (0: decode in the training process).")
    compile: bool = option(False, resumable=True,
                           help="torch.compile G and D (compiling takes a while at the start; see docs/scaling.md).")
    sync_bn: bool = option(False, help="Under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm, "
                                       "CUDA only).")
    max_memory: str | None = option(None, resumable=True, default_text="the memory available",
                                    help="Refuse a run whose estimated memory (networks, optimizer state, one "
                                         "batch, sample pictures, the data set) is above this, e.g. 8G or 512M.")
    time_limit: str | None = option(None, resumable=True, default_text="none",
                                    help="Stop training after this much time in this invocation, e.g. 90s, 20m or "
                                         "1.5h: the step reached is then the last one (samples, checkpoint, export); "
                                         "--resume continues towards --steps.")
    seed: int = option(0, help="Random seed.")
    # what to write
    log_every: int = option(50, help="Read losses back and log every N steps.", resumable=True)
    sample_every: int = option(500, help="Save a sample picture every N steps.", resumable=True)
    checkpoint_every: int = option(500, help="Checkpoint every N steps.", resumable=True)
    keep_checkpoints: int = option(2, help="How many checkpoints to keep.", resumable=True)
    num_samples: int = option(64, help="Samples in each picture.")
    tensorboard: bool = option(False, help="Also log to TensorBoard.", resumable=True)
    eval_every: int = option(0, help="Score the generator with --eval-metrics every N steps (0: off).", resumable=True)
    eval_metrics: list[str] = option(factory=list, resumable=True, complete="metric",
                                     default_text="accuracy for a conditional generator",
                                     help="Metric plugins for --eval-every, comma-separated.")
    keep_best: str | None = option(None, resumable=True,
                                   help="Export the generator at its best evaluation of this value (fid, accuracy, "
                                        "...; :min/:max to set the direction).")
    preset: str | None = None  # the preset the run started from (gantk train --preset)

    def __post_init__(self) -> None:
        for name in ("g_optimizer", "d_optimizer"):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, OptimizerConfig(**value))
        if self.disc is None:
            self.disc = self.gen
        for name in ("steps", "batch_size", "n_critic", "log_every", "sample_every", "checkpoint_every",
                     "keep_checkpoints", "num_samples"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        if int(self.eval_every) < 0:
            raise UsageError(f"--eval-every must be 0 (off) or a number of steps, got {self.eval_every}.")
        self.eval_metrics = split_names(self.eval_metrics)
        if isinstance(self.augment, str) and self.augment.strip().lower() in ("none", "off", ""):
            self.augment = None  # a preset or config.json may spell "off" so
        if self.augment is not None:
            plugin_choice(self.augment, "--augment")
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise UsageError(f"--ema must be between 0 and 1 (e.g. 0.999) or 'off', got {self.ema}.")
        reserved = sorted({"data_root", "image_size", "download"} & set(self.dataset_options)
                          | {"image_size", "download"} & set(self.dataset_b_options))  # B may name its own data_root
        if reserved:
            raise UsageError(f"{', '.join(reserved)} cannot be given as --data-option; use "
                             f"{', '.join('--' + r.replace('_', '-') for r in reserved)} instead.")
        if self.cpu_kernels not in ("auto", "off"):
            raise UsageError(f"--cpu-kernels must be auto or off, got '{self.cpu_kernels}'.")
        if self.threads != "auto" and not (str(self.threads).isdigit() and int(self.threads) >= 1):
            raise UsageError(f"--threads must be auto (follow the cores other processes leave free) or a number of "
                             f"threads of at least 1, got '{self.threads}'.")
        if self.workers != "auto" and not str(self.workers).isdigit():
            raise UsageError(f"--workers must be auto or a number of processes (0: decode in the training process), "
                             f"got '{self.workers}'.")
        if int(self.accumulate) < 1:
            raise UsageError(f"--accumulate must be at least 1 (micro-batches per batch), got {self.accumulate}.")
        if self.batch_size % self.accumulate:
            raise UsageError(f"--batch-size {self.batch_size} cannot be split into --accumulate {self.accumulate} "
                             "equal micro-batches: use a batch size that is a multiple of it.")
        parse_lr_schedule(self.lr_schedule, self.steps)
        if self.max_memory is not None:
            parse_size(self.max_memory, "--max-memory")
        if self.time_limit is not None:
            parse_duration(self.time_limit, "--time-limit")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'.")

    @property
    def worker_count(self) -> int | None:
        """``--workers`` as a number, or None for ``auto``."""
        return None if self.workers == "auto" else int(self.workers)

    @property
    def thread_count(self) -> int | None:
        """``--threads`` as a number, or None for ``auto``."""
        return None if self.threads == "auto" else int(self.threads)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "TrainConfig":
        """A config from flat option names, as the CLI and presets use them.

        ``g_opt``/``g_lr``/``g_betas`` and ``d_opt``/``d_lr``/``d_betas`` set each network's optimizer
        (``lr``/``betas`` set both); every other key is a field of this class.
        """
        options = dict(options)
        optimizers = {}
        for side in ("g", "d"):
            optimizer = OptimizerConfig()
            values = {"name": options.pop(f"{side}_opt", optimizer.name),
                      "lr": options.pop(f"{side}_lr", options.get("lr", optimizer.lr)),
                      "betas": options.pop(f"{side}_betas", options.get("betas", optimizer.betas))}
            optimizers[f"{side}_optimizer"] = OptimizerConfig(**values)
        options.pop("lr", None)
        options.pop("betas", None)
        return cls.from_dict({**options, **optimizers})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json_dict(self) -> dict[str, Any]:
        """The config as ``config.json`` holds it (tuples read back as lists), to compare with a saved one."""
        return json.loads(json.dumps(self.to_dict()))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """A config from fields (``to_dict()``'s form); an unknown field or a value of the wrong type is a UsageError."""
        if not isinstance(data, dict):
            raise UsageError(f"A training configuration is an object of options, got {json_type(data)}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(
                f"Unknown training option(s) {', '.join(unknown)}. Valid options: {', '.join(sorted(known))}.")
        for name, value in data.items():
            problem = type_mismatch(name, value)
            if problem:
                raise UsageError(f"The training option '{name}' {problem}.")
        return cls(**data)

    def save(self, path: Path) -> None:
        """Write ``config.json`` atomically."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        """A run's ``config.json``; invalid JSON, unknown fields and wrong types are UsageErrors naming the file."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise GantkError(f"Cannot read '{path}': {error.strerror}. Check the file and its permissions.") from error
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise UsageError(f"'{path}' is not valid JSON ({error}). It is the run's saved configuration: undo the "
                             "edit that broke it, or start a new run.") from error
        try:
            return cls.from_dict(as_saved(data) if isinstance(data, dict) else data)
        except UsageError as error:
            raise UsageError(f"'{path}' is not a valid run configuration: {error} Fix that field in the file, or "
                             "start a new run.") from error


#: Fields added after runs were first saved, with the value that trains as a run saved before the field existed did
#: (a config.json without the key is read with it), so that --resume and --config retrain such a run exactly.
ADDED_FIELDS: dict[str, Any] = {"ema_warmup": False}
#: The fields of the first config.json: every saved configuration holds them all, a hand-written config file seldom.
_FIRST_SAVED_FIELDS = frozenset({
    "gen", "disc", "loss", "dataset", "gen_options", "disc_options", "loss_options", "data_root", "image_size",
    "download", "steps", "batch_size", "n_critic", "g_optimizer", "d_optimizer", "ema", "precision", "device",
    "seed", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "num_samples", "tensorboard",
    "preset"})


def as_saved(data: dict[str, Any]) -> dict[str, Any]:
    """A saved configuration's fields, with the :data:`ADDED_FIELDS` it lacks set as its run had them."""
    return {**ADDED_FIELDS, **data}


def is_saved_configuration(data: dict[str, Any]) -> bool:
    """Whether ``data`` is a whole saved configuration (a run's config.json, 'gantk presets --export'), not a
    hand-written file of a few keys (whose missing keys take today's defaults)."""
    return _FIRST_SAVED_FIELDS <= set(data)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a config value (as read from JSON or given by a preset) has the type of its field's annotation."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint in (int, float):  # an integer is a number too; a bool is neither
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and _fits(v, args[1]) for k, v in value.items())
    if origin is list:  # a list of names may also be given as one comma-separated string
        return isinstance(value, str) or (isinstance(value, (list, tuple)) and all(_fits(v, args[0]) for v in value))
    if dataclasses.is_dataclass(hint):
        names = {f.name for f in dataclasses.fields(hint)}
        return isinstance(value, hint) or (isinstance(value, dict) and set(value) <= names)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    """A field's type in words, for an error message."""
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in get_args(hint))
    if dataclasses.is_dataclass(hint):
        return f"an object with {', '.join(f.name for f in dataclasses.fields(hint))}"
    words = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null",
             dict: "an object of KEY: VALUE options", list: "a list of names (or one comma-separated string)"}
    return words.get(get_origin(hint) or hint, str(hint))


@functools.lru_cache(maxsize=None)
def field_types() -> dict[str, Any]:
    """TrainConfig's fields and their types (its annotations, resolved once)."""
    return get_type_hints(TrainConfig)


def type_mismatch(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be the TrainConfig field ``name`` ("must be an integer, got '10' (a string)"), or None
    when its type fits."""
    hint = field_types()[name]
    if _fits(value, hint):
        return None
    return f"must be {_describe(hint)}, got {value!r} ({json_type(value)})"


def json_type(value: Any) -> str:
    """A JSON value's kind in words ("a string", "an integer", "null"), for an error message."""
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
             tuple: "a list", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LR_SCHEDULES = ("constant", "linear-decay:START", "cosine")


_SECONDS_PER_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: Any, flag: str) -> float:
    """A duration in seconds from ``90``, ``90s``, ``20m`` or ``1.5h`` (a bare number is seconds)."""
    value = str(text).strip().lower()
    number, unit = (value[:-1], value[-1]) if value[-1:] in _SECONDS_PER_UNIT else (value, "s")
    try:
        seconds = float(number) * _SECONDS_PER_UNIT[unit]
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError(f"{flag} must be a positive duration: seconds, or a number followed by s, m or h "
                         f"(e.g. 90s, 20m, 1.5h), got '{text}'.")
    return seconds


def parse_lr_schedule(text: str, steps: int) -> tuple[str, int]:
    """``--lr-schedule`` as (kind, start step): ("constant", 0), ("linear-decay", START) or ("cosine", 0)."""
    kind, _, start = str(text).partition(":")
    if kind in ("constant", "cosine") and not start:
        return kind, 0
    if kind == "linear-decay" and start.endswith("%") and start[:-1].isdigit() and int(start[:-1]) < 100:
        return kind, steps * int(start[:-1]) // 100  # a share of --steps: linear-decay:50% is CycleGAN's
    if kind == "linear-decay" and start.isdigit() and int(start) < steps:
        return kind, int(start)
    if kind == "linear-decay" and start.isdigit():
        raise UsageError(f"--lr-schedule {text} starts its decay at step {start}, but the run has only --steps "
                         f"{steps}: give a START below {steps} (CycleGAN decays over the second half: START = "
                         f"{steps // 2}).")
    raise UsageError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)} (START: the step where the linear "
                     f"decay to 0 begins, e.g. linear-decay:{steps // 2}, or a share of --steps below 100%, e.g. "
                     f"linear-decay:50%), got '{text}'.")


def _train_options() -> tuple[CliOption, ...]:
    """The options read from TrainConfig's metadata, in its order; the optimizer options where G's optimizer is."""
    hints = get_type_hints(TrainConfig)
    options: list[CliOption] = []
    for config_field in dataclasses.fields(TrainConfig):
        if CLI in config_field.metadata:
            has_default = config_field.default is not dataclasses.MISSING
            default = config_field.default if has_default else config_field.default_factory()  # type: ignore[misc]
            options.append(config_field.metadata[CLI].named(config_field.name, hints[config_field.name], default))
        elif config_field.name == "g_optimizer":
            options.extend(OPTIMIZER_OPTIONS)
    return tuple(options)


#: Every ``gantk train`` option that sets the configuration (not --preset, --name, --runs-dir, --resume, --quiet).
TRAIN_OPTIONS: tuple[CliOption, ...] = _train_options()
OPTIONS_BY_NAME: dict[str, CliOption] = {option.name: option for option in TRAIN_OPTIONS}
#: Options that may change when a run is resumed (everything else must match the saved config).
RESUMABLE = frozenset(option.name for option in TRAIN_OPTIONS if option.resumable)
#: When an explicit option is given, these preset options no longer apply (they belong to what it replaced).
_SUPERSEDES = {option.name: option.supersedes for option in TRAIN_OPTIONS if option.supersedes}
#: Explicit KEY=VALUE options add to the preset's when what they configure stays.
_MERGED_WITH_PRESET = tuple(option.name for option in TRAIN_OPTIONS if option.codec.merges_with_preset)
_MISSING = object()


def option_for(name: str, value: Any = None) -> CliOption:
    """The option of a flat name; an unknown name (a plugin's preset key) is read by its value's type."""
    return OPTIONS_BY_NAME.get(name) or CliOption().named(name, type(value), value)


def apply_overrides(preset: dict[str, Any], explicit: dict[str, Any]) -> dict[str, Any]:
    """A preset's options overridden by explicit ones (flat option names, as in :meth:`TrainConfig.from_options`).

    An explicit option replaces the preset's and also drops the preset options that belonged to
    what it replaced: ``--lr`` beats the preset's ``g_lr``/``d_lr``; a new ``--gen``, ``--disc`` or
    ``--loss`` drops the preset's options for the old one; ``--gen`` without ``--disc`` makes D the
    same architecture. Explicit architecture options add to the preset's when the architecture stays.
    """
    merged = dict(preset)
    # only a value that differs from the preset's replaces anything ('--preset wgan-gp --gen dcgan' keeps D's options);
    # every explicit value is still kept ('--dataset folder --image-size 64' when the preset also says 64)
    changed = {key for key, value in explicit.items() if merged.get(key, _MISSING) != value or key.endswith("_options")}
    if "gen" in changed and "disc" not in explicit:
        merged.pop("disc", None)
        merged.pop("disc_options", None)
    for key in changed:
        for dropped in _SUPERSEDES.get(key, ()):
            merged.pop(dropped, None)
    for key in _MERGED_WITH_PRESET:
        if key in explicit and key in merged:
            explicit = {**explicit, key: {**merged[key], **explicit[key]}}
    return {**merged, **explicit}


def as_flags(options: dict[str, Any]) -> str:
    """Flat options written as the ``gantk train`` flags that would set them."""
    return " ".join(flag for key, value in options.items() for flag in option_for(key, value).as_flags(value))
