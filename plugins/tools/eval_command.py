"""``gantk eval``: metric plugins on an exported generator or a run, written as JSON with their protocol."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer

import gantk

from gantk.completion import names_of
from gantk.engine.config import split_names
from gantk.errors import GantkError, UsageError
from gantk.options import parse_term_assignments, positive_int
from gantk.registry import get_registry


def eval_command(
    model: str = typer.Argument(..., help="An exported generator (.safetensors), a run directory, or a run name."),
    metrics: str = typer.Option("fid", help="Comma-separated metric plugins (see 'gantk list metric')."),
    n: Optional[int] = typer.Option(None, "--n", help="Samples per side for the feature metrics (default 5000)."),
    seed: int = typer.Option(0, help="Seed of the latents and of the real subset."),
    features: Optional[str] = typer.Option(None, help="Feature extractor: auto, classifier, inception or raw."),
    inception_weights: Optional[str] = typer.Option(
        None, help="The FID Inception weights as .safetensors (else $GANTK_INCEPTION_WEIGHTS)."),
    dataset: Optional[str] = typer.Option(None, help="Data set to compare with (default: the one it was trained on).",
                                          autocompletion=names_of("dataset")),
    data_root: Optional[str] = typer.Option(None, help="Folder holding the data set's files."),
    metric_option: List[str] = typer.Option([], "--metric-option", "-M", help="METRIC.KEY=VALUE (repeatable)."),
    out: Optional[Path] = typer.Option(None, help="Result file (default: <run>/eval/<time>.json, or eval.json)."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run names are looked up."),
) -> None:
    """Score a generator with metric plugins; writes the values and the protocol as JSON."""
    from gantk.plugins.tools.eval_result import build_metrics, evaluate, resolve_target, write_result  # torch-heavy

    registry = get_registry()
    if n is not None:
        positive_int("", "--n", n, hint="the number of samples per side")
    names = split_names(metrics)
    if not names:
        raise UsageError("--metrics needs at least one metric name, e.g. --metrics fid,kid (see 'gantk list metric').")
    target = resolve_target(model, runs_dir, registry, dataset=dataset, data_root=data_root)
    common = {"n": n, "seed": seed, "features": features, "inception_weights": inception_weights}
    specific = parse_term_assignments(metric_option, "--metric-option", "METRIC", "kid.subsets=50")
    result = evaluate(target, build_metrics(names, registry, common, specific), device=device)
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = target.run_dir / "eval" / f"{stamp}.json" if target.run_dir else Path("eval.json")
    try:
        write_result(result, out)
    except OSError as error:  # a read-only or full disk, --out naming a folder, ...: keep the computed result
        typer.echo(json.dumps(result, indent=2))
        reason = str(error.strerror or error)
        raise GantkError(f"Could not write the result to '{out}' ({reason[:1].lower()}{reason[1:]}); it is printed "
                         "above on standard output instead. To save it, pass --out with the path of a file in a "
                         "writable folder (free some space first if the disk is full).") from error
    for key, value in result["values"].items():
        if key.count("/") == 0:
            typer.echo(f"{key:<20} {value:.6g}")
    typer.echo(f"Result and protocol: {out}")


@gantk.hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
