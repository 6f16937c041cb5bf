"""The training configuration: every choice needed to rebuild a run, saved as ``config.json``.

A run is fully described by a :class:`TrainConfig`. Presets give a partial dict of these fields;
options given explicitly on the command line override the preset; the rest keep the defaults
below. ``config.json`` in the run directory is ``TrainConfig.to_dict()``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantk.errors import UsageError


@dataclass
class OptimizerConfig:
    """One network's optimizer: ``adam`` (Kingma & Ba 2015) or ``rmsprop`` (the WGAN paper's)."""

    name: str = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        if self.name not in OPTIMIZERS:
            raise UsageError(f"Unknown optimizer '{self.name}'. Choose one of: {', '.join(OPTIMIZERS)}.")
        if not self.lr > 0:
            raise UsageError(f"The learning rate must be positive, got {self.lr}.")


OPTIMIZERS = ("adam", "rmsprop", "sgd")


@dataclass
class TrainConfig:
    """Everything ``gantk train`` decides. Field names are the CLI's option names with ``_``."""

    # what to train
    gen: str = "dcgan"
    disc: str | None = None  # None: the same name as ``gen``
    loss: str = "ns"
    dataset: str = "mnist5k"
    gen_options: dict[str, Any] = field(default_factory=dict)
    disc_options: dict[str, Any] = field(default_factory=dict)
    loss_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # term name -> options
    dataset_options: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    image_size: int | None = None
    download: bool = False
    # how long and how
    steps: int = 3500
    batch_size: int = 64
    n_critic: int = 1
    g_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    d_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    ema: float | None = 0.999  # β of the EMA of G; None disables it
    precision: str = "auto"
    cpu_kernels: str = "auto"  # gantk.accel's bf16 CPU convolutions: auto (where they apply) or off
    device: str = "auto"
    seed: int = 0
    # what to write
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    num_samples: int = 64
    tensorboard: bool = False
    eval_every: int = 0  # 0: no metrics during training
    eval_metrics: list[str] = field(default_factory=list)  # metric plugin names; [] with eval_every: accuracy
    keep_best: str | None = None  # an evaluation value to follow ("fid", "accuracy:max"): export the best G
    preset: str | None = None

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
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise UsageError(f"--ema must be between 0 and 1 (e.g. 0.999) or 'off', got {self.ema}.")
        reserved = sorted({"data_root", "image_size", "download"} & set(self.dataset_options))
        if reserved:
            raise UsageError(f"{', '.join(reserved)} cannot be given as --data-option; use "
                             f"{', '.join('--' + r.replace('_', '-') for r in reserved)} instead.")
        if self.cpu_kernels not in ("auto", "off"):
            raise UsageError(f"--cpu-kernels must be auto or off, got '{self.cpu_kernels}'.")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'.")

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(
                f"Unknown training option(s) {', '.join(unknown)}. Valid options: {', '.join(sorted(known))}.")
        return cls(**data)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        return cls.from_dict(json.loads(path.read_text()))


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def split_names(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"accuracy, fid"`` or ``["accuracy", "fid"]`` → ``["accuracy", "fid"]`` (order kept, no repeats)."""
    parts = [] if value is None else value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for part in (str(p).strip() for p in parts):
        if part and part not in names:
            names.append(part)
    return names

_MISSING = object()

#: When an explicit option is given, these preset options no longer apply (they belong to what it replaced).
_SUPERSEDES = {
    "lr": ("g_lr", "d_lr"),
    "betas": ("g_betas", "d_betas"),
    "gen": ("gen_options",),
    "disc": ("disc_options",),
    "loss": ("loss_options",),
    "dataset": ("dataset_options", "data_root", "image_size"),
}


def apply_overrides(preset: dict[str, Any], explicit: dict[str, Any]) -> dict[str, Any]:
    """A preset's options overridden by explicit ones (flat option names, as in :meth:`TrainConfig.from_options`).

    An explicit option replaces the preset's and also drops the preset options that belonged to
    what it replaced: ``--lr`` beats the preset's ``g_lr``/``d_lr``; a new ``--gen``, ``--disc`` or
    ``--loss`` drops the preset's options for the old one; ``--gen`` without ``--disc`` makes D the
    same architecture. Explicit architecture options add to the preset's when the architecture stays.
    """
    merged = dict(preset)
    # only a value that differs from the preset's replaces anything ('--preset wgan-gp --gen dcgan' keeps D's options)
    explicit = {key: value for key, value in explicit.items() if merged.get(key, _MISSING) != value or
                key.endswith("_options")}
    if "gen" in explicit and "disc" not in explicit:
        merged.pop("disc", None)
        merged.pop("disc_options", None)
    for key in explicit:
        for dropped in _SUPERSEDES.get(key, ()):
            merged.pop(dropped, None)
    for key in ("gen_options", "disc_options", "dataset_options"):
        if key in explicit and key in merged:
            explicit = {**explicit, key: {**merged[key], **explicit[key]}}
    return {**merged, **explicit}


def as_flags(options: dict[str, Any]) -> str:
    """Flat options written as the ``gantk train`` flags that would set them."""
    def value_text(value: Any) -> str:
        if isinstance(value, (tuple, list)):
            return ",".join(value_text(v) for v in value)
        return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    flags = []
    for key, value in options.items():
        if key in ("gen_options", "disc_options", "dataset_options"):
            short = {"gen_options": "-G", "disc_options": "-D", "dataset_options": "-O"}[key]
            flags += [f"{short} {k}={value_text(v)}" for k, v in value.items()]
        elif key == "loss_options":
            flags += [f"-L {term}.{k}={value_text(v)}" for term, opts in value.items() for k, v in opts.items()]
        elif isinstance(value, bool):
            flags.append(f"--{key.replace('_', '-')}" if value else f"--no-{key.replace('_', '-')}")
        elif key == "ema" and value is None:
            flags.append("--ema off")
        else:
            flags.append(f"--{key.replace('_', '-')} {value_text(value)}")
    return " ".join(flags)
