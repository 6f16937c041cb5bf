"""``gantk train``: pick components by name, start from a preset or a config file, override with flags, train.

The training options are not written out here: the command's signature is built from the
:class:`~gantk.engine.config.TrainConfig` fields' metadata (:data:`~gantk.engine.config.TRAIN_OPTIONS`),
which Typer reads through ``train_command.__signature__``.
"""

from __future__ import annotations

import inspect
import os
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, NoReturn, Optional, get_origin

import typer

from gantk.cli.listing import preset_options
from gantk.completion import names_of
from gantk.engine.config import RESUMABLE, TRAIN_OPTIONS, TrainConfig, option_for
from gantk.engine.config_file import layered_options, read_config_file
from gantk.engine.qualified_names import as_typed, names_on_resume, qualified_config
from gantk.engine.run_dir import find_run, is_main_process, launched_by_torchrun, new_run_dir
from gantk.engine.train_options import SWITCH, CliOption, negated
from gantk.errors import AmbiguousNameError, UnknownNameError, UsageError
from gantk.registry import Entry, get_registry

#: the options that choose what to train: a --dataset given without any of them (nor --preset or --config) trains
#: the preset registered under the data set's name (:func:`dataset_preset`)
WHAT_TO_TRAIN = ("gen", "disc", "loss")


@contextmanager
def processes_joined(device: Any) -> Iterator[None]:
    """Under torchrun: this rank in the process group while the block runs (the run directory's name is shared)."""
    from gantk.engine.distributed import join_process_group, leave_process_group  # torch-heavy: when training

    if not launched_by_torchrun():
        yield
        return
    join_process_group(device)
    yield  # after a failure the process just exits: torchrun stops the other ranks
    leave_process_group()


def end_rank_without_teardown() -> NoReturn:
    """End a torchrun rank that trained well, skipping the interpreter's teardown.

    gloo's C++ threads can outlive ``destroy_process_group``; tearing the interpreter down under them
    now and then aborts the rank ("terminate called without an active exception", 1 run in about 35
    on 2026-11-30), and torchrun then reports a failure after a good run (pytorch/pytorch#179291
    describes the race). Every file is written and closed by now, so ``os._exit`` skips only that teardown.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def resumed_config(saved: TrainConfig, explicit: dict, run_dir: Path) -> TrainConfig:
    """The saved config of a run being resumed, with the few options that may change."""
    same_names = names_on_resume(saved.to_dict(), explicit)  # '--gen acme:dcgan' for a saved 'dcgan': no change
    changed = sorted(set(explicit) - RESUMABLE - set(same_names))
    if changed:
        flags = ", ".join(option_for(key).flag for key in changed)
        allowed = ", ".join(option_for(key).flag for key in sorted(RESUMABLE))
        raise UsageError(f"A resumed run keeps its saved configuration; only {allowed} may change, but {flags} "
                         "was given. Start a new run to change them.")
    config = TrainConfig.from_dict({**saved.to_dict(), **explicit, **same_names})
    return config


def _run_options(
    preset: Optional[str] = typer.Option(None, help="A named bundle of options (see 'gantk presets'); flags override it.",
                                         autocompletion=names_of("preset")),
    config_file: Optional[Path] = typer.Option(
        None, "--config", help="Read training options from this JSON or TOML file, with the keys of a run's "
                               "config.json ('--config runs/X/config.json' trains run X again). It overrides the "
                               "preset (--preset, or the one the file names); flags override it."),
    name: Optional[str] = typer.Option(None, help="Run name (default: <gen>-<dataset>-<time>)."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where runs are written."),
    resume: Optional[str] = typer.Option(None, help="Continue this run (a directory or a name under --runs-dir)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    nproc: int = typer.Option(1, min=1, help="Train in N processes on this machine (data-parallel, started by "
                                             "torchrun; the batch is split over them). See docs/scaling.md."),
) -> None:
    """The options of ``gantk train`` that are not part of the training configuration (a signature only)."""


def _typer_parameter(option: CliOption) -> inspect.Parameter:
    """``option`` as a keyword parameter with a ``typer.Option`` default; None (or []) means "not given"."""
    declarations = [option.flag + "/" + negated(option.flag) if option.codec is SWITCH else option.flag]
    repeatable = get_origin(option.codec.typer_type) is list
    resumable = " May change on --resume." if option.resumable else ""
    # the value Typer sees is None when the option is not given (a preset may set it): the default goes in the help
    help_text = f"{option.help}{resumable}  [default: {option.default_text}]"
    typer_option = typer.Option([] if repeatable else None, *declarations, *([option.short] if option.short else []),
                                help=help_text, show_default=False,
                                autocompletion=names_of(option.complete) if option.complete else None)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=typer_option,
                             annotation=option.codec.typer_type)


def _command_signature() -> inspect.Signature:
    """--preset and --config, then every training option in TrainConfig's order, then --name, --runs-dir, --resume,
    --quiet, --nproc."""
    preset, config_file, *others = inspect.signature(_run_options, eval_str=True).parameters.values()
    parameters = [preset, config_file, *map(_typer_parameter, TRAIN_OPTIONS), *others]
    return inspect.Signature([p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters])


def explicit_options(arguments: dict[str, Any]) -> dict[str, Any]:
    """The training options given on the command line, read into their values (an option not given is absent)."""
    given = {option: arguments[option.name] for option in TRAIN_OPTIONS}
    return {option.name: option.parse(raw) for option, raw in given.items() if raw is not None and raw != []}


def dataset_preset(explicit: dict[str, Any]) -> Optional[Entry]:
    """The preset a bare ``--dataset X`` trains: the one registered under the name X, if it trains on X (None when
    there is none, or the command names --gen, --disc or --loss). A data set opts in by registering such a preset."""
    dataset = explicit.get("dataset")
    if dataset is None or any(key in explicit for key in WHAT_TO_TRAIN):
        return None
    registry = get_registry()
    try:
        entry = registry.get("preset", dataset)
        trains_on_it = registry.get("dataset", str(entry.create().get("dataset"))) == registry.get("dataset", dataset)
    except (UnknownNameError, AmbiguousNameError):  # no such preset, or not one for data (the build names the data)
        return None
    return entry if trains_on_it else None


def new_run_config(preset: Optional[str], config_file: Optional[Path], explicit: dict[str, Any]) -> TrainConfig:
    """A new run's configuration, names as given: defaults < the preset < the --config file < the flags.

    The preset is ``--preset``, or else the one the file names (its ``preset`` key), or else, for a ``--dataset X``
    with no --gen, --disc or --loss, the preset X when it trains on X (:func:`dataset_preset`; one note says so).
    The rules of each layer are :func:`~gantk.engine.config_file.layered_options`'.
    """
    for_the_data = dataset_preset(explicit) if not preset and config_file is None else None
    if for_the_data is not None:
        config = new_run_config(explicit["dataset"], None, explicit)
        if is_main_process():
            typer.echo(f"gantk: note: --dataset {explicit['dataset']} alone trains the '{for_the_data.name}' preset "
                       f"({for_the_data.summary.rstrip('.')}) for {config.steps:,} steps; name --gen/--disc/--loss or "
                       "a --preset to choose otherwise.", err=True)
        return config
    from_file = read_config_file(config_file) if config_file is not None else {}
    named_in_file = from_file.pop("preset", None)
    from_the_file = not preset and bool(named_in_file)
    preset = preset or named_in_file  # --preset replaces the file's
    try:
        options = preset_options(get_registry().get("preset", preset)) if preset else {}  # checked, naming the preset
    except UsageError as error:
        if not from_the_file:
            raise
        raise UsageError(f"{error} The preset is named by the key 'preset' in '{config_file}': fix that key, or "
                         "remove it.") from error
    return TrainConfig.from_options({**layered_options(options, from_file, explicit), "preset": preset})


def train_command(*, preset: Optional[str], config_file: Optional[Path], name: Optional[str], runs_dir: Path,
                  resume: Optional[str], quiet: bool, nproc: int, **arguments: Any) -> None:
    """Train a GAN chosen by name. With no options: a DCGAN on the embedded MNIST digits."""
    if nproc > 1 and not launched_by_torchrun():
        from gantk.cli.torchrun import train_in_processes

        flags = [part for key, value in explicit_options(arguments).items()  # "--gen dcgan" → "--gen", "dcgan"
                 for flag in option_for(key, value).as_flags(value) for part in flag.split(" ", 1)]
        run_flags = [*(["--preset", preset] if preset else []),
                     *(["--config", str(config_file)] if config_file is not None else []),
                     *(["--name", name] if name is not None else []),
                     "--runs-dir", str(runs_dir), *(["--resume", resume] if resume is not None else []),
                     *(["--quiet"] if quiet else [])]
        raise typer.Exit(train_in_processes(nproc, ["train", *run_flags, *flags]))
    from gantk.engine.build import resolve_device  # torch-heavy: imported when training
    from gantk.engine.distributed import rank_device, text_from_rank0
    from gantk.engine.trainer import Trainer

    explicit = explicit_options(arguments)
    if resume is not None:
        if config_file is not None:
            raise UsageError("--config starts a new run from a file, while --resume continues a run with its own "
                             "saved config.json. Drop --config (the options that may change on resume are given as "
                             "flags), or drop --resume to start a new run from the file.")
        if name is not None or preset:
            raise UsageError("--resume continues an existing run under its own name and settings; drop "
                             f"{'--name' if name is not None else '--preset'}, or start a new run without --resume.")
        found = find_run(resume, runs_dir)
        config = shown = resumed_config(TrainConfig.load(found / "config.json"), explicit, found)
        run_dir_claimed = nullcontext(found)
    else:
        config = new_run_config(preset, config_file, explicit)
        shown = config  # the names as the user gave them, for the last message
        config = qualified_config(config, get_registry())  # config.json records package:name for every plugin
        stem = f"{config.gen.rpartition(':')[2]}-{config.dataset.rpartition(':')[2]}"
        # created here (by rank 0 under torchrun); removed again if nothing gets written
        run_dir_claimed = new_run_dir(runs_dir, name, stem) if is_main_process() else nullcontext(None)

    device = rank_device(resolve_device(config.device))
    with processes_joined(device), run_dir_claimed as run_dir:  # the Trainer locks it from here until training ends
        run_dir = Path(text_from_rank0(str(run_dir) if run_dir else None, device))  # rank 0's, on every rank
        result = Trainer(config, run_dir, resume=resume is not None, show_progress=not quiet).train()
    if is_main_process():
        report_trained(result, shown, config.steps)
    if launched_by_torchrun():
        end_rank_without_teardown()


def report_trained(result: Any, shown: TrainConfig, steps: int) -> None:
    """The last lines of ``gantk train`` (rank 0): what was trained, how fast, where the run and its model are."""
    from gantk.engine.trainer import TRANSLATOR_FILE

    gen, disc, loss, dataset = (as_typed(name) for name in (shown.gen, shown.disc, shown.loss, shown.dataset))
    typer.echo(f"Trained {gen}/{disc} with {loss} on {dataset} to step {result.step} "
               f"in {result.seconds:.1f} s ({result.steps_per_s:.1f} steps/s, {result.precision}).")
    if result.time_limit_reached:
        typer.echo(f"The --time-limit ended training at step {result.step} of {steps}; 'gantk train --resume "
                   f"{result.run_dir}' continues it.")
    typer.echo(f"Run: {result.run_dir}")
    typer.echo(f"Samples: {result.run_dir / 'samples'}")
    if result.exported and result.exported.name == TRANSLATOR_FILE:
        typer.echo(f"Translator: {result.exported}  (try: gantk translate {result.exported} --direction a2b "
                   "--input IMAGES --out translated)")
    elif result.exported:
        typer.echo(f"Generator: {result.exported}  (try: gantk sample {result.exported} --out samples.png)")


train_command.__signature__ = _command_signature()  # type: ignore[attr-defined]  # Typer reads it


def add_commands(app: typer.Typer) -> None:
    app.command("train")(train_command)
