"""``gantk list``, ``gantk plugins`` and ``gantk presets``: what is installed."""

from __future__ import annotations

import json
from typing import Optional

import typer

from gantk.completion import KIND_ALIASES, complete_kind, names_of
from gantk.engine.config import OPTIONS_BY_NAME, TrainConfig, as_flags
from gantk.engine.qualified_names import qualified_config
from gantk.errors import GantkError, UsageError
from gantk.names import close_matches
from gantk.registry import KINDS, Entry, get_registry


def _resolve_kind(kind: Optional[str]) -> Optional[str]:
    if kind is None:
        return None
    resolved = KIND_ALIASES.get(kind.lower())
    if resolved is None:
        hint = close_matches(kind.lower(), list(KIND_ALIASES))
        raise UsageError(
            f"Unknown plugin kind '{kind}'." + (f" Did you mean: {', '.join(hint)}?" if hint else "")
            + f" Kinds: {', '.join(KINDS)}. Example: 'gantk list loss'."
        )
    return resolved


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def list_command(
    kind: Optional[str] = typer.Argument(None, help="Only this kind: " + ", ".join(KINDS) + ".",
                                         autocompletion=complete_kind),
    pattern: Optional[str] = typer.Argument(None, help="Shell wildcard on the name, e.g. '*gan*'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered plugins: name, kind, summary and the package that provides each."""
    if kind is not None and pattern is None and any(c in kind for c in "*?[") and kind.lower() not in KIND_ALIASES:
        kind, pattern = None, kind  # 'gantk list "*gan*"': a pattern over every kind
    entries = get_registry().list(_resolve_kind(kind), pattern)
    if as_json:
        typer.echo(json.dumps([
            {"name": e.name, "kind": e.kind, "summary": e.summary, "aliases": list(e.aliases),
             "package": e.source.package, "version": e.source.version, "module": e.source.module}
            for e in entries], indent=2))
        return
    if not entries:
        criteria = [f"kind {kind}"] * bool(kind) + [f"pattern {pattern!r}"] * bool(pattern)
        typer.echo("No plugins match" + (f" ({', '.join(criteria)})." if criteria else "."))
        return
    rows = [(e.name, e.kind, e.summary, e.source.label) for e in entries]
    typer.echo(_table(rows, ("name", "kind", "summary", "package")))


def plugins_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text.")) -> None:
    """Installed plugin packages, the hooks each module implements, and plugins that failed to load."""
    registry = get_registry()
    by_package: dict[str, dict] = {}
    for source, hooks in registry.plugins():
        package = by_package.setdefault(source.package, {"package": source.package, "version": source.version,
                                                         "modules": [], "failures": []})
        package["modules"].append({"module": source.module, "entry_point": source.entry_point, "hooks": hooks})
    for failure in registry.failures:
        package = by_package.setdefault(failure.source.package, {
            "package": failure.source.package, "version": failure.source.version, "modules": [], "failures": []})
        package["failures"].append({"module": failure.source.module, "entry_point": failure.source.entry_point,
                                    "stage": failure.stage, "error": failure.error})
    packages = sorted(by_package.values(), key=lambda p: (p["package"] != "gantk", p["package"]))
    if as_json:
        typer.echo(json.dumps(packages, indent=2))
        return
    for package in packages:
        typer.echo(f"{package['package']} {package['version']}")
        for module in package["modules"]:
            typer.echo(f"  {module['module']}: {', '.join(module['hooks']) or '(no hooks)'}")
        for failure in package["failures"]:
            typer.echo(f"  FAILED {failure['module']} ({failure['stage']}): {failure['error']}")
    failed = sum(len(p["failures"]) for p in packages)
    if failed:
        typer.echo(f"\n{failed} plugin module(s) failed to load; the rest work. "
                   "Reinstall or fix the package named above, or uninstall it.")


def presets_command(
    name: Optional[str] = typer.Argument(None, help="Show one preset.", autocompletion=names_of("preset")),
    export: bool = typer.Option(False, "--export", help="Print the preset NAME as a config file to edit and pass to "
                                "'gantk train --config': the config.json 'gantk train --preset NAME' writes (JSON, "
                                "every training option)."),
) -> None:
    """List presets and the training options each one sets (flags given to 'gantk train' override them)."""
    registry = get_registry()
    if export:
        if name is None:
            raise UsageError("--export prints one preset as a config file: name it, e.g. 'gantk presets --export "
                             "wgan-gp > wgan-gp.json', then edit the file and train with 'gantk train --config "
                             "wgan-gp.json'.")
        typer.echo(json.dumps(exported_preset(registry.get("preset", name)), indent=2))
        return
    entries = [registry.get("preset", name)] if name else registry.list("preset")
    broken = 0
    for entry in entries:
        typer.echo(f"{entry.name}  ({entry.source.label}) {entry.summary}")
        try:
            typer.echo(f"  {as_flags(preset_options(entry))}")
        except Exception as error:  # noqa: BLE001 - a broken preset is listed as such; the others still list
            broken += 1
            reason = str(error) if isinstance(error, GantkError) else f"{type(error).__name__}: {error}"
            typer.echo(f"  BROKEN: {' '.join(reason.split())}")
    if broken:
        typer.echo(f"gantk: {broken} preset(s) are broken (see BROKEN above); fix or uninstall the package that "
                   "provides them.", err=True)
        raise typer.Exit(1)


def preset_options(entry: Entry) -> dict:
    """A preset's training options, checked: a dict of 'gantk train' options whose values a config accepts."""
    options = entry.create()
    unknown = sorted(set(options) - set(OPTIONS_BY_NAME))
    if unknown:
        raise GantkError(f"The preset '{entry.qualified_name}' ({entry.source.label}) sets {', '.join(unknown)}, "
                         "which 'gantk train' has no option for.")
    TrainConfig.from_options(options)  # values a run would refuse
    return options


def exported_preset(entry: Entry) -> dict:
    """The config.json that 'gantk train --preset NAME' writes: the preset applied on the defaults (every option,
    so the file shows all there is to edit and does not change when the preset or a default does), names qualified."""
    config = TrainConfig.from_options({**preset_options(entry), "preset": entry.qualified_name})
    return qualified_config(config, get_registry()).to_json_dict()


def add_commands(app: typer.Typer) -> None:
    app.command("list")(list_command)
    app.command("plugins")(plugins_command)
    app.command("presets")(presets_command)
