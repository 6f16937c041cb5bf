"""``gantk sample``, ``gantk export`` and ``gantk info``: working with trained generators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from gantk.errors import UsageError


def sample_command(
    model: str = typer.Argument(..., help="An exported generator (.safetensors), a run directory, or a run name."),
    n: int = typer.Option(64, "--n", help="How many samples."),
    seed: int = typer.Option(0, help="Seed of the latent noise (same seed, same samples)."),
    out: Path = typer.Option(Path("samples.png"), help="Output: .png picture, .npz or .safetensors raw samples."),
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
    """Draw samples from a trained generator."""
    from gantk.engine.export import load_generator
    from gantk.engine.sampling import SAMPLES_FIX, class_labels, draw, resolve_model
    from gantk.memory_budget import allocation_failures_reported, limited
    from gantk.plugins.tools.pictures import write_samples

    if n < 1:
        raise UsageError(f"--n must be at least 1, got {n}.")
    if labels not in (None, "all"):
        raise UsageError(f"--labels takes 'all' (a grid with one row per class), got '{labels}'. For one class use --label K.")
    with limited(max_memory):
        generator = load_generator(resolve_model(model, runs_dir), device=device)
        class_ids, row = class_labels(generator, n, label, labels == "all")
        count = len(class_ids) if class_ids is not None else n
        samples = draw(generator, count, seed=seed, labels=class_ids, device=device, truncation=truncation,
                       truncation_cutoff=truncation_cutoff)
        with allocation_failures_reported(f"Writing {count:,} samples to '{out}'", SAMPLES_FIX):
            written = write_samples(samples, class_ids, generator.spec, out, nrow=row)
    n = samples.shape[0]
    typer.echo(f"Wrote {n} samples to {written}")


def export_command(
    run: str = typer.Argument(..., help="A run directory or a run name under --runs-dir."),
    out: Optional[Path] = typer.Option(None, help="Output file (default: <run>/generator.safetensors)."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run names are looked up."),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="The EMA weights when the run keeps them (--no-ema: the "
                                                          "trained weights themselves)."),
) -> None:
    """Export a run's generator (EMA weights when present) from its newest checkpoint to safetensors."""
    from gantk.engine.run_dir import find_run
    from gantk.engine.run_export import export_run

    written = export_run(find_run(run, runs_dir), out, ema=ema)
    typer.echo(f"Exported {written}")


def info_command(path: Path = typer.Argument(
        ..., help="A generator or translator export, or a checkpoint (.safetensors).")) -> None:
    """Print what a gantk safetensors file holds: kind, plugin, version, config, tensors."""
    from gantk.engine.safetensors_io import read_safetensors

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
