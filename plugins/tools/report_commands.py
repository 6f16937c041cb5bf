"""``gantk report`` and ``gantk interpolate``: a run's HTML report, and latent interpolation strips and GIFs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import gantk


def report_command(
    run: str = typer.Argument(..., help="A run directory or a run name under --runs-dir."),
    out: Optional[Path] = typer.Option(None, help="Folder for index.html and its pictures (default: <run>/report)."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run names are looked up."),
) -> None:
    """Write an HTML report of a run: losses, metrics (and the results of 'gantk eval'), samples over time, a latent
    interpolation."""
    from gantk.plugins.tools.report import build_report, find_run_to_report

    typer.echo(str(build_report(find_run_to_report(run, runs_dir), out)))


def interpolate_command(
    model: str = typer.Argument(..., help="An exported generator (.safetensors), a run directory, or a run name."),
    out: Path = typer.Option(Path("interpolation.png"), help="Output: .png picture, .gif animation (images), .npz or "
                                                             ".safetensors raw frames."),
    steps: int = typer.Option(10, help="Frames from one latent to the other (at least 2)."),
    frame_ms: int = typer.Option(100, "--frame-ms", metavar="MS", help="How long each frame of a .gif shows, in "
                                                                       "milliseconds."),
    seed: int = typer.Option(0, help="Seed of the two end latents (the first two of 'gantk sample --seed')."),
    label: Optional[int] = typer.Option(None, help="One row of this class (conditional generators; default: "
                                                   "a row per class)."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run names are looked up."),
) -> None:
    """Draw a spherical interpolation between two latents: a strip of images or an animated GIF of them, or a plot for
    vector data."""
    from gantk.engine.export import load_generator
    from gantk.plugins.tools.interpolation import save_interpolation
    from gantk.engine.sampling import resolve_model

    generator = load_generator(resolve_model(model, runs_dir), device=device)
    written = save_interpolation(generator, out, steps=steps, seed=seed, label=label, device=device,
                                 frame_ms=frame_ms)
    typer.echo(f"Wrote a {steps}-frame interpolation to {written}")


@gantk.hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("report")(report_command)
    app.command("interpolate")(interpolate_command)
