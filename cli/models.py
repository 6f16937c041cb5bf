"""``gantk sample``, ``gantk export`` and ``gantk info``: working with trained generators."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer

from gantk.errors import UsageError


def sample_command(
    model: str = typer.Argument(..., help="An exported generator (.safetensors), a run directory, or a run name."),
    n: int = typer.Option(64, "--n", help="How many samples."),
    seed: int = typer.Option(0, help="Seed of the latent noise (same seed, same samples)."),
    out: str = typer.Option("samples.png", metavar="PATH",
                            help="Output: a .png picture, .npz or .safetensors raw samples, or a folder of numbered "
                                 "PNG files, one per sample (a path ending in '/', an existing directory, or a name "
                                 "without suffix)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", metavar="B",
                                             help="The most samples the generator makes at a time, which bounds the "
                                                  "memory. A folder is made 64 at a time whatever larger value is "
                                                  "given, so its files do not change with it; lower it when 64 "
                                                  "samples do not fit in memory.  [default: 64 for a folder, 256 for "
                                                  "a file]"),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Write into a folder that already holds files: the numbered PNG files of an "
                                        "earlier 'gantk sample' there are removed first, other files are kept."),
    label: Optional[int] = typer.Option(None, help="Generate this class (conditional generators)."),
    labels: Optional[str] = typer.Option(None, help="'all': a grid with one row per class (--n in total)."),
    truncation: Optional[float] = typer.Option(None, metavar="PSI",
                                               help="Truncation trick of style-based generators (stylegan2): styles "
                                                    "pulled towards their average, w_avg + PSI·(w − w_avg); 1 changes "
                                                    "nothing, 0 gives the average image, 0.5 to 0.7 is usual."),
    truncation_cutoff: Optional[int] = typer.Option(None, metavar="N",
                                                    help="Truncate only the first N styles (the coarse layers).  "
                                                         "[default: all]"),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run names are looked up."),
    max_memory: Optional[str] = typer.Option(None, help="Refuse samples (and a generator) needing more memory than "
                                             "this, e.g. 8G or 512M.  [default: the memory available]"),
) -> None:
    """Draw samples from a trained generator: a grid picture, raw arrays, or a folder of PNG files."""
    from gantk.engine.export import load_generator
    from gantk.engine.model_dir import names_a_directory
    from gantk.engine.sampling import GENERATION_BLOCK, SAMPLES_FIX, class_labels, draw, resolve_model
    from gantk.memory_budget import allocation_failures_reported, limited
    from gantk.options import positive_int
    from gantk.plugins.tools.image_files import folder_labels, write_sample_folder
    from gantk.plugins.tools.pictures import write_samples

    if n < 1:
        raise UsageError(f"--n must be at least 1, got {n}.")
    if batch_size is not None:
        positive_int("", "--batch-size", batch_size, hint="how many samples the generator makes at a time")
    if labels not in (None, "all"):
        raise UsageError(f"--labels takes 'all' (a grid with one row per class), got '{labels}'. For one class use --label K.")
    with limited(max_memory):
        generator = load_generator(resolve_model(model, runs_dir), device=device)
        if names_a_directory(out):
            class_ids = folder_labels(generator, n, label, labels == "all")
            count = len(class_ids) if class_ids is not None else n
            block = min(batch_size or GENERATION_BLOCK, GENERATION_BLOCK)
            with _progress_line(count, block) as advance:
                folder = write_sample_folder(generator, Path(out), count, seed=seed, labels=class_ids,
                                             batch_size=block, device=device, truncation=truncation,
                                             truncation_cutoff=truncation_cutoff, overwrite=overwrite,
                                             on_batch=advance)
            typer.echo(f"Wrote {count} samples to {folder}/")
            return
        class_ids, row = class_labels(generator, n, label, labels == "all")
        count = len(class_ids) if class_ids is not None else n
        samples = draw(generator, count, seed=seed, labels=class_ids, batch_size=batch_size or 256, device=device,
                       truncation=truncation, truncation_cutoff=truncation_cutoff)
        with allocation_failures_reported(f"Writing {count:,} samples to '{out}'", SAMPLES_FIX):
            written = write_samples(samples, class_ids, generator.spec, out, nrow=row)
    n = samples.shape[0]
    typer.echo(f"Wrote {n} samples to {written}")


@contextlib.contextmanager
def _progress_line(total: int, batch_size: int) -> Iterator[Callable[[int], None]]:
    """A rich progress line on stderr (on a terminal) while more than one batch of samples is written; yields the
    callback that takes the number written so far."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    console = Console(stderr=True)
    if total <= batch_size or not console.is_terminal:
        yield lambda done: None
        return
    with Progress(TextColumn("[bold]sample"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("sample", total=total)
        yield lambda done: bar.update(task, completed=done)


def export_command(
    run: str = typer.Argument(..., help="A run directory or a run name under --runs-dir."),
    out: Optional[str] = typer.Option(None, metavar="PATH",
                                      help="A .safetensors file, or a model directory (a name ending in '/', an "
                                           "existing directory or a name without suffix): config.json, "
                                           "model.safetensors, README.md (the model card), samples.png.  [default: "
                                           "<run>/generator.safetensors]"),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run names are looked up."),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="The EMA weights when the run keeps them (--no-ema: the "
                                                          "trained weights themselves)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty model directory that gantk wrote "
                                                              "(the files it did not write are kept)."),
) -> None:
    """Export a run's generator (EMA weights when present) from its newest checkpoint: a safetensors file, or a
    model directory in the Hugging Face layout."""
    from gantk.engine.model_dir import names_a_directory
    from gantk.engine.run_dir import find_run
    from gantk.engine.run_export import export_run, export_run_directory

    run_dir = find_run(run, runs_dir)
    if out and names_a_directory(out):
        written = export_run_directory(run_dir, Path(out), overwrite=overwrite, ema=ema)
        typer.echo(f"Exported {written}/ ({', '.join(sorted(path.name for path in written.iterdir()))})")
        return
    written = export_run(run_dir, Path(out) if out else None, ema=ema)
    typer.echo(f"Exported {written}")


def info_command(path: Path = typer.Argument(
        ..., help="A generator or translator export, or a checkpoint (.safetensors), or a model directory.")) -> None:
    """Print what a gantk safetensors file holds: kind, plugin, version, config, tensors."""
    from gantk.engine.model_dir import is_model_directory, model_file
    from gantk.engine.safetensors_io import read_safetensors

    path = model_file(path) if is_model_directory(path) else path  # a model directory: its model.safetensors
    tensors, metadata = read_safetensors(path)
    typer.echo(f"file: {path}")
    for key, value in sorted(metadata.items()):
        if key in ("gantk.config", "gantk.state"):
            continue
        typer.echo(f"{key}: {value}")
    if "gantk.config" in metadata:
        typer.echo("gantk.config: " + json.dumps(json.loads(metadata["gantk.config"]), indent=2, sort_keys=True))
    parameters = sum(t.numel() for t in tensors.values())
    typer.echo(f"tensors: {len(tensors)} ({parameters:,} values)")


def add_commands(app: typer.Typer) -> None:
    app.command("sample")(sample_command)
    app.command("export")(export_command)
    app.command("info")(info_command)
