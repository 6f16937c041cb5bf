"""``gantk train``: pick components by name, override a preset with flags, train, export."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from gantk.completion import names_of
from gantk.engine.config import TrainConfig, apply_overrides
from gantk.errors import UsageError
from gantk.options import parse_assignments, parse_term_assignments, parse_value
from gantk.registry import get_registry
from gantk.engine.run_dir import find_run, new_run_dir

#: Options that may change when a run is resumed (everything else must match the saved config).
RESUMABLE = {"steps", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "device", "tensorboard",
             "cpu_kernels",
             "eval_every", "eval_metrics", "keep_best"}


def _betas(text: Optional[str]) -> Optional[tuple]:
    if text is None:
        return None
    value = parse_value(text)
    if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)):
        raise UsageError(f"Betas are two numbers separated by a comma, e.g. 0.5,0.999; got '{text}'.")
    return tuple(float(v) for v in value)


def _ema(text: str) -> Optional[float]:
    value = parse_value(text)
    if value is False or value is None or value == 0:
        return None
    if not isinstance(value, (int, float)):
        raise UsageError(f"--ema takes a decay such as 0.999, or 'off'; got '{text}'.")
    return float(value)


def resumed_config(saved: TrainConfig, explicit: dict, run_dir: Path) -> TrainConfig:
    """The saved config of a run being resumed, with the few options that may change."""
    changed = sorted(set(explicit) - RESUMABLE)
    if changed:
        flags = ", ".join("--" + key.replace("_options", "-option").replace("_", "-") for key in changed)
        allowed = ", ".join("--" + key.replace("_", "-") for key in sorted(RESUMABLE))
        raise UsageError(f"A resumed run keeps its saved configuration; only {allowed} may change, but {flags} "
                         "was given. Start a new run to change them.")
    config = TrainConfig.from_dict({**saved.to_dict(), **explicit})
    return config


def train_command(
    preset: Optional[str] = typer.Option(None, help="A named bundle of options (see 'gantk presets'); flags override it.",
                                         autocompletion=names_of("preset")),
    gen: Optional[str] = typer.Option(None, help="Generator architecture.", autocompletion=names_of("generator")),
    disc: Optional[str] = typer.Option(None, help="Discriminator architecture (default: same name as --gen).",
                                       autocompletion=names_of("discriminator")),
    loss: Optional[str] = typer.Option(None, help="Loss expression, e.g. ns, hinge+0.5*r1, wgan+10*gp.",
                                       autocompletion=names_of("loss")),
    dataset: Optional[str] = typer.Option(None, help="Data set (default: the embedded mnist5k digits).",
                                          autocompletion=names_of("dataset")),
    data_root: Optional[str] = typer.Option(None, help="Folder holding a data set's files (mnist, cifar10, folder)."),
    image_size: Optional[int] = typer.Option(None, help="Resize images to this square size."),
    download: Optional[bool] = typer.Option(None, "--download/--no-download", help="Download the data set if missing (needs network)."),
    gen_option: List[str] = typer.Option([], "--gen-option", "-G", help="Generator option KEY=VALUE (repeatable)."),
    disc_option: List[str] = typer.Option([], "--disc-option", "-D", help="Discriminator option KEY=VALUE (repeatable)."),
    loss_option: List[str] = typer.Option([], "--loss-option", "-L", help="Loss term option TERM.KEY=VALUE (repeatable)."),
    data_option: List[str] = typer.Option([], "--data-option", "-O", help="Data set option KEY=VALUE (repeatable)."),
    steps: Optional[int] = typer.Option(None, help="Training steps (one D phase + one G update each)."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size."),
    n_critic: Optional[int] = typer.Option(None, help="D updates per G update."),
    lr: Optional[float] = typer.Option(None, help="Learning rate of both networks."),
    g_lr: Optional[float] = typer.Option(None, help="Generator learning rate."),
    d_lr: Optional[float] = typer.Option(None, help="Discriminator learning rate."),
    g_opt: Optional[str] = typer.Option(None, help="Generator optimizer: adam, rmsprop or sgd."),
    d_opt: Optional[str] = typer.Option(None, help="Discriminator optimizer: adam, rmsprop or sgd."),
    betas: Optional[str] = typer.Option(None, help="Adam betas of both networks, e.g. 0.5,0.999 (SGD: β₁ is the momentum; RMSprop ignores them)."),
    g_betas: Optional[str] = typer.Option(None, help="Generator betas."),
    d_betas: Optional[str] = typer.Option(None, help="Discriminator betas."),
    ema: Optional[str] = typer.Option(None, help="EMA decay of G's weights (e.g. 0.999), or 'off'."),
    precision: Optional[str] = typer.Option(None, help="auto (bf16 where fast), fp32, bf16 or fp16."),
    cpu_kernels: Optional[str] = typer.Option(None, help="gantk's own bf16 CPU convolution kernels: auto or off."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    log_every: Optional[int] = typer.Option(None, help="Read losses back and log every N steps."),
    sample_every: Optional[int] = typer.Option(None, help="Save a sample picture every N steps."),
    checkpoint_every: Optional[int] = typer.Option(None, help="Checkpoint every N steps."),
    keep_checkpoints: Optional[int] = typer.Option(None, help="How many checkpoints to keep."),
    num_samples: Optional[int] = typer.Option(None, help="Samples in each picture."),
    tensorboard: Optional[bool] = typer.Option(None, "--tensorboard/--no-tensorboard", help="Also log to TensorBoard."),
    eval_every: Optional[int] = typer.Option(None, help="Score the generator with --eval-metrics every N steps (0: off)."),
    eval_metrics: Optional[str] = typer.Option(None, help="Metric plugins for --eval-every, comma-separated "
                                               "(default: accuracy for a conditional generator).",
                                               autocompletion=names_of("metric")),
    keep_best: Optional[str] = typer.Option(None, help="Export the generator at its best evaluation of this value "
                                            "(fid, accuracy, ...; :min/:max to set the direction)."),
    name: Optional[str] = typer.Option(None, help="Run name (default: <gen>-<dataset>-<time>)."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where runs are written."),
    resume: Optional[str] = typer.Option(None, help="Continue this run (a directory or a name under --runs-dir)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Train a GAN chosen by name. With no options: a DCGAN on the embedded MNIST digits."""
    from gantk.engine.trainer import Trainer  # torch-heavy: imported when training

    explicit = {key: value for key, value in {
        "gen": gen, "disc": disc, "loss": loss, "dataset": dataset, "data_root": data_root, "image_size": image_size,
        "download": download, "steps": steps, "batch_size": batch_size, "n_critic": n_critic, "lr": lr,
        "g_lr": g_lr, "d_lr": d_lr, "g_opt": g_opt, "d_opt": d_opt, "betas": _betas(betas),
        "g_betas": _betas(g_betas), "d_betas": _betas(d_betas), "precision": precision,
        "cpu_kernels": cpu_kernels, "device": device, "seed": seed, "log_every": log_every, "sample_every": sample_every,
        "checkpoint_every": checkpoint_every, "keep_checkpoints": keep_checkpoints, "num_samples": num_samples,
        "tensorboard": tensorboard, "eval_every": eval_every, "eval_metrics": eval_metrics,
        "keep_best": keep_best,
        "gen_options": parse_assignments(gen_option, "--gen-option") or None,
        "disc_options": parse_assignments(disc_option, "--disc-option") or None,
        "loss_options": parse_term_assignments(loss_option, "--loss-option") or None,
        "dataset_options": parse_assignments(data_option, "--data-option") or None,
    }.items() if value is not None}
    if ema is not None:  # 'off' is an explicit None
        explicit["ema"] = _ema(ema)

    if resume:
        if name or preset:
            raise UsageError("--resume continues an existing run under its own name and settings; drop "
                             f"{'--name' if name else '--preset'}, or start a new run without --resume.")
        run_dir = find_run(resume, runs_dir)
        config = resumed_config(TrainConfig.load(run_dir / "config.json"), explicit, run_dir)
    else:
        options = get_registry().create("preset", preset) if preset else {}
        config = TrainConfig.from_options({**apply_overrides(options, explicit), "preset": preset})
        stem = f"{config.gen.rpartition(':')[2]}-{config.dataset.rpartition(':')[2]}"
        run_dir = new_run_dir(runs_dir, name, stem)

    trainer = Trainer(config, run_dir, resume=bool(resume), show_progress=not quiet)
    result = trainer.train()
    typer.echo(f"Trained {config.gen}/{config.disc} with {config.loss} on {config.dataset} to step {result.step} "
               f"in {result.seconds:.1f} s ({result.steps_per_s:.1f} steps/s, {result.precision}).")
    typer.echo(f"Run: {result.run_dir}")
    typer.echo(f"Samples: {result.run_dir / 'samples'}")
    if result.exported:
        typer.echo(f"Generator: {result.exported}  (try: gantk sample {result.exported} --out samples.png)")


def add_commands(app: typer.Typer) -> None:
    app.command("train")(train_command)
