"""A run's report: one self-contained HTML page, ``RUN/report/index.html``, and its PNGs.

The page holds, top to bottom: a table of the run's configuration and ``summary.json``; the loss
curves (one plot per network, one line per term) and the evaluation metric curves (one plot per
``eval/<key>``) from ``metrics.jsonl``, with a table of the ``gantk eval`` results saved in
``eval/*.json`` (when, the weights, the values, the protocol); the sample grids over time
(``samples/*.png``, at most :data:`MAX_SAMPLE_PICTURES`, evenly spaced, the last always included); and a
latent interpolation
from ``generator.safetensors``. Images are PNG files beside the page, referenced by relative
paths; the page has no script and loads nothing from the network. A piece the run does not have
yet (no metrics, no samples, no generator, no summary) is a sentence on the page, not an error.

The interpolation strip comes from :mod:`gantk.interpolation`.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from gantk.errors import GantkError, UsageError
from gantk.plugins.tools.interpolation import (INTERPOLATION_STEPS, MAX_CLASS_ROWS, SCATTER_SAMPLES, known_modes,
                                 save_interpolation)
from gantk.engine.run_dir import find_run
from gantk.plugins.tools.pictures import pyplot, save_figure

REPORT_DIR = "report"
MAX_SAMPLE_PICTURES = 12
NETWORKS = {"d": "Discriminator", "g": "Generator"}
SUMMARY_LABELS = {"steps": "steps reached", "seconds": "wall time (s)", "steps_per_s": "steps/s",
                  "precision": "precision used", "device": "device used", "threads": "CPU threads"}
#: Evaluation keys that are bookkeeping, not scores: listed in the table, not plotted.
UNPLOTTED_EVAL_KEYS = {"eval/n"}
#: where ``gantk eval`` saves a run's results (plugins/tools/eval_command.py)
EVAL_DIR = "eval"
#: protocol entries the table of ``gantk eval`` results leaves to the JSON files (the checksums, ``*_sha256``, too)
UNLISTED_PROTOCOL_KEYS = {"metric", "dataset", "data_fingerprint", "gantk_version", "classifier"}
_EVAL_STAMP = re.compile(r"^(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)(\d\d)")
_STEP_PICTURE = re.compile(r"step_(\d+)\.png$")
_OWN_PICTURE = re.compile(r"^(loss_[dg]|metric_.+|step_\d+|interpolation)\.png$")


# ------------------------------------------------------------------ reading the run
def find_run_to_report(spec: str, runs_root: Path) -> Path:
    """The run directory named by ``spec`` (a path or a name under ``runs_root``), or a usage error."""
    try:
        return find_run(spec, runs_root)
    except GantkError as error:
        raise UsageError(_not_a_run(spec, runs_root)) from error


def _not_a_run(spec: str | Path, runs_root: Path | None = None) -> str:
    where = f" or a name under {runs_root} such as latest" if runs_root is not None else ""
    return (f"'{spec}' is not a run directory: a run directory is the folder 'gantk train' writes, "
            "runs/<name>/, holding config.json, metrics.jsonl, samples/ and generator.safetensors. "
            f"Give the path of one{where}, or make one with 'gantk train' (e.g. gantk train --steps 500 "
            "--name first).")


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when the file is missing or unreadable."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of ``metrics.jsonl`` and how many lines could not be read (e.g. one being written)."""
    records, unreadable = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            unreadable += 1
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), (int, float)):
            records.append(record)
        else:
            unreadable += 1
    return records, unreadable


def series(records: list[dict[str, Any]], keep) -> dict[str, list[tuple[float, float]]]:
    """``{key: [(step, value), ...]}`` sorted by step, for keys where ``keep(key)``; non-finite values dropped."""
    found: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        for key, value in record.items():
            if key != "step" and keep(key) and isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):
                    found.setdefault(key, []).append((record["step"], float(value)))
    return {key: sorted(points, key=lambda p: p[0]) for key, points in found.items()}


def is_plotted_eval_key(key: str) -> bool:
    """``eval/<name>`` with exactly one slash (per-class keys like ``eval/accuracy/3`` are not plotted)."""
    return key.startswith("eval/") and key.count("/") == 1 and key not in UNPLOTTED_EVAL_KEYS


def evenly_spaced(items: list, limit: int) -> list:
    """At most ``limit`` of ``items``, evenly spaced, always the first and the last."""
    if len(items) <= limit:
        return list(items)
    if limit <= 1:
        return items[-1:]
    picks = sorted({round(i * (len(items) - 1) / (limit - 1)) for i in range(limit)})  # i·(n−1)/(k−1)
    return [items[p] for p in picks]


def eval_results(run: Path) -> tuple[list[tuple[str, str, dict[str, Any]]], int]:
    """``(time, file name, result)`` of each ``gantk eval`` result in ``run/eval/*.json``, oldest first, and how many
    of those files are not a result (unreadable, or without ``values``)."""
    found, unreadable = [], 0
    for path in sorted((run / EVAL_DIR).glob("*.json")):
        result = read_json(path)
        if result is None or not isinstance(result.get("values"), dict):
            unreadable += 1
            continue
        found.append((_eval_time(path, result), path.name, result))
    return sorted(found, key=lambda item: item[:2]), unreadable


def _eval_time(path: Path, result: dict[str, Any]) -> str:
    """When a result was computed (local time): as recorded, else from its default name ``YYYYmmdd-HHMMSS.json``,
    else the file's modification time."""
    if isinstance(result.get("time"), str):
        return result["time"]
    stamp = _EVAL_STAMP.match(path.name)
    if stamp:
        year, month, day, hour, minute, second = stamp.groups()
        return f"{year}-{month}-{day} {hour}:{minute}:{second}"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(path.stat().st_mtime))


def sample_pictures(run: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the run's ``samples/step_XXXXXX.png``, by step."""
    found = []
    for path in (run / "samples").glob("step_*.png"):
        match = _STEP_PICTURE.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


# ------------------------------------------------------------------ plots
def plot_curves(curves: dict[str, list[tuple[float, float]]], title: str, ylabel: str, out: Path, *,
                legend: bool = True) -> Path:
    """One line per curve against the step; a ``*/total`` curve is drawn black and dashed."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for key, points in curves.items():
        steps, values = zip(*points)
        style = {"color": "black", "linestyle": "--"} if key.endswith("/total") else {}
        axes.plot(steps, values, marker="." if len(points) < 30 else None, label=key, **style)
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if legend:
        axes.legend(loc="best", fontsize="small")
    return save_figure(figure, out)


# ------------------------------------------------------------------ the page
def build_report(run: Path, out: Path | None = None, *, device: str | torch.device = "cpu") -> Path:
    """Write ``out/index.html`` (default ``run/report/``) and its PNGs; returns the page's path."""
    run = Path(run)
    if not (run / "config.json").is_file():
        raise UsageError(_not_a_run(run))
    out = Path(out) if out is not None else run / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):  # pictures of an earlier report, never anything else
        if _OWN_PICTURE.match(old.name):
            old.unlink()
    config = read_json(run / "config.json") or {}
    components = read_json(run / "components.json") or {}
    summary = read_json(run / "summary.json")
    records, unreadable = read_metrics(run / "metrics.jsonl") if (run / "metrics.jsonl").is_file() else (None, 0)
    body = [
        f"<h1>Run {_e(run.name)}</h1>",
        f"<p class='path'>{_e(str(run.resolve()))}</p>",
        _section("run", "Run", _run_table(config, components, summary)),
        _section("losses", "Losses", _losses(records, unreadable, out)),
        _section("metrics", "Evaluation metrics", _metrics(records, out) + _eval_table(run)),
    ]
    if "translator" in components:  # a translation run: its pictures are translations, and it has no latent space
        body.append(_section("samples", "Translations over time",
                             _samples(run, out, components.get("spec") or {}, TRANSLATION_PICTURES)))
    else:
        body += [_section("samples", "Samples over time", _samples(run, out, components.get("spec") or {})),
                 _section("interpolation", "Latent interpolation", _interpolation(run, out, device))]
    page = out / "index.html"
    page.write_text(_PAGE.format(title=_e(f"gantk report: {run.name}"), body="\n".join(body)), encoding="utf-8")
    return page


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _section(ident: str, title: str, content: str) -> str:
    return f"<section id='{ident}'>\n<h2>{_e(title)}</h2>\n{content}\n</section>"


def _figure(src: str, caption: str, alt: str) -> str:
    return (f"<figure><img src='{_e(src)}' alt='{_e(alt)}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _missing(text: str) -> str:
    return f"<p class='missing'>{_e(text)}</p>"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _options(options: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={_number(v)}" for k, v in (options or {}).items())


def _run_table(config: dict, components: dict, summary: dict | None) -> str:
    """Rows of the header table: what was trained and how (config.json), and how it went (summary.json)."""
    rows: list[tuple[str, str]] = []
    for network, key in (("generator", "gen"), ("discriminator", "disc")):
        # the options after defaults were filled in, when recorded (a translator's are its generators')
        built = components.get(network) or (components.get("translator") if network == "generator" else None) or {}
        options = built.get("options", config.get(f"{key}_options"))
        name = built.get("name", config.get(key, "?"))
        rows.append((network, f"{name} ({_options(options)})" if options else str(name)))
    loss_options = config.get("loss_options") or {}
    rows.append(("loss", config.get("loss", "?") + (f" ({json.dumps(loss_options)})" if loss_options else "")))
    spec = components.get("spec") or {}
    data = config.get("dataset", "?")
    if spec:
        shape = "×".join(str(s) for s in spec.get("shape", []))
        classes = spec.get("num_classes", 0)
        data += f" (samples {shape}" + (f", {classes} classes)" if classes else ", unlabelled)")
    rows.append(("data set", data))
    rows += [(label, _number(config[key])) for label, key in
             (("steps (target)", "steps"), ("batch size", "batch_size"), ("n_critic", "n_critic"), ("seed", "seed"))
             if key in config]
    optimizers = {side: config.get(f"{side}_optimizer") for side in ("g", "d")}
    if all(optimizers.values()):
        described = {side: f"{o['name']}, lr {_number(o['lr'])}, betas {tuple(o['betas'])}"
                     for side, o in optimizers.items()}
        if described["g"] == described["d"]:
            rows.append(("optimizers", described["g"] + " (both)"))
        else:
            rows += [("G optimizer", described["g"]), ("D optimizer", described["d"])]
    rows.append(("EMA", "off" if not config.get("ema") else f"decay {config['ema']}"))
    rows += [(key, str(config[key])) for key in ("precision", "device", "preset") if config.get(key) is not None]
    if summary is None:
        rows.append(("summary", "no summary.json: the run has not finished (still training, interrupted or "
                                "stopped on an error)"))
    else:
        for key, value in summary.items():
            if key.count("/") <= 1:  # per-class values (eval/accuracy/3) stay in summary.json
                rows.append((SUMMARY_LABELS.get(key, key), _number(value)))
    cells = "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table class='run'>\n{cells}\n</table>"


def _losses(records: list[dict] | None, unreadable: int, out: Path) -> str:
    if records is None:
        return _missing("No metrics.jsonl: the run has not logged any losses yet.")
    parts = []
    for prefix, network in NETWORKS.items():
        curves = series(records, lambda key, p=prefix: key.startswith(p + "/"))
        terms = [key for key in curves if not key.endswith("/total")]
        total = curves.get(f"{prefix}/total")
        if len(terms) == 1 and total is not None and _same_curve(total, curves[terms[0]]):
            del curves[f"{prefix}/total"]  # one term of weight 1: its total is the same line
        if curves:
            name = f"loss_{prefix}.png"
            plot_curves(curves, f"{network} loss", "loss", out / name)
            weighted = " and the weighted total" if f"{prefix}/total" in curves else ""
            parts.append(_figure(name, f"{network}: {', '.join(terms) or 'no term'}{weighted}",
                                 f"{network} loss curves"))
    if not parts:
        parts.append(_missing("metrics.jsonl holds no loss records yet."))
    if unreadable:
        parts.append(_missing(f"{unreadable} line(s) of metrics.jsonl could not be read and were skipped."))
    return "\n".join(parts)


def _same_curve(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    return len(a) == len(b) and all(p[0] == q[0] and math.isclose(p[1], q[1], rel_tol=1e-6, abs_tol=1e-9)
                                    for p, q in zip(a, b))


def _metrics(records: list[dict] | None, out: Path) -> str:
    curves = series(records or [], is_plotted_eval_key)
    seen = list(dict.fromkeys(key for record in records or [] for key in record if is_plotted_eval_key(key)))
    if not seen:
        return _missing("No evaluation metrics during training: the run was trained without --eval-every (or has not "
                        "evaluated yet). Train with e.g. --eval-every 500 --eval-metrics accuracy to see them here.")
    parts = []
    used: set[str] = set()
    for key, points in curves.items():
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", key.removeprefix("eval/"))
        while stem in used:
            stem += "_"
        used.add(stem)
        name = f"metric_{stem}.png"
        plot_curves({key: points}, key, key.removeprefix("eval/"), out / name, legend=False)
        parts.append(_figure(name, f"{key}: last value {_number(points[-1][1])} at step {points[-1][0]}", key))
    unplottable = [key for key in seen if key not in curves]
    if unplottable:
        parts.append(_missing(f"Not plotted, no finite value yet: {', '.join(unplottable)}."))
    return "\n".join(parts)


def _eval_table(run: Path) -> str:
    """The ``gantk eval`` results saved in the run folder, one row each: when, the weights, the data set, the values
    and each metric's protocol as recorded (per-class values and checksums stay in the files)."""
    results, unreadable = eval_results(run)
    parts = []
    if results:
        header = ("time", "weights evaluated", "data set", "values", "protocol", "file")
        rows = ["<tr>" + "".join(f"<th>{_e(name)}</th>" for name in header) + "</tr>"]
        for when, name, result in results:
            values = result["values"]
            cells = (when, _weights_evaluated(run, result), result.get("dataset", "?"),
                     "\n".join(f"{key} {_number(value)}" for key, value in values.items() if "/" not in key),
                     _protocols(result.get("protocol")), f"{EVAL_DIR}/{name}")
            rows.append("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in cells) + "</tr>")
        parts.append("<h3>Results of gantk eval</h3>\n<table class='evals'>\n" + "\n".join(rows) + "\n</table>")
    if unreadable:
        parts.append(_missing(f"{unreadable} file(s) in {EVAL_DIR}/ could not be read as gantk eval results and "
                              "were skipped."))
    return "".join("\n" + part for part in parts)


def _weights_evaluated(run: Path, result: dict[str, Any]) -> str:
    """The generator file (relative to the run when inside it), with the weights and step its export recorded."""
    recorded = str(result.get("generator", "?"))
    shown = recorded
    for base in (run.resolve(), run):
        try:
            shown = Path(recorded).relative_to(base).as_posix()
            break
        except ValueError:
            continue
    weights = result.get("weights") if isinstance(result.get("weights"), dict) else {}
    details = []
    if "ema" in weights:
        details.append("EMA weights" if weights["ema"] else "trained weights")
    if "step" in weights:
        details.append(f"step {weights['step']}")
    return shown + (f" ({', '.join(details)})" if details else "")


def _protocols(protocols: Any) -> str:
    """One line per metric: ``fid: extractor=raw, feature_dim=64, real_samples=100, ...``."""
    if not isinstance(protocols, dict):
        return ""
    lines = []
    for metric, protocol in protocols.items():
        shown = {key: value for key, value in protocol.items()
                 if key not in UNLISTED_PROTOCOL_KEYS and not key.endswith("sha256")} if isinstance(protocol, dict) else {}
        lines.append(f"{metric}: {_options(shown)}" if shown else str(metric))
    return "\n".join(lines)


#: What a translation run's pictures show (the cyclegan procedure's previews).
TRANSLATION_PICTURES = ("of fixed inputs (rows: inputs, translations, the translations translated back, and the true "
                        "counterparts when the data set is paired; domain A, then domain B)")


def _samples(run: Path, out: Path, spec: dict, source: str = "from fixed noise") -> str:
    pictures = sample_pictures(run)
    if not pictures:
        return _missing("No sample pictures yet (samples/step_XXXXXX.png appear every --sample-every steps).")
    shown = evenly_spaced(pictures, MAX_SAMPLE_PICTURES)
    kind = "grid pixels" if len(spec.get("shape", (1, 1, 1))) == 3 else "plots"  # image grids, or vector plots
    parts = [f"<p>{len(shown)} of {len(pictures)} pictures {source}, evenly spaced, the last included.</p>",
             f"<div class='{kind}'>"]
    for step, path in shown:
        shutil.copyfile(path, out / path.name)
        parts.append(_figure(path.name, f"step {step}", f"samples at step {step}"))
    parts.append("</div>")
    return "\n".join(parts)


def _interpolation(run: Path, out: Path, device: str | torch.device) -> str:
    from gantk.engine.export import load_generator

    exported = run / "generator.safetensors"
    if not exported.is_file():
        return _missing("No generator.safetensors yet (it is written when training finishes). Write one from the "
                        f"newest checkpoint with 'gantk export {run}' and build the report again.")
    try:
        generator = load_generator(exported, device=device)
        save_interpolation(generator, out / "interpolation.png", device=device)
    except GantkError as error:
        return _missing(f"The generator could not be drawn from: {error}")
    spec = generator.spec
    if not spec.is_image:
        modes = " over the data set's modes (red ×)" if known_modes(spec.name) is not None else ""
        caption = (f"{SCATTER_SAMPLES:,} generated samples{modes}; the black line is the generator's output along a "
                   f"spherical interpolation between two latents (seed 0), {INTERPOLATION_STEPS} points from the "
                   "green circle to the orange square.")
    elif generator.conditional:
        rows = min(spec.num_classes, MAX_CLASS_ROWS)
        caption = (f"One row per class (classes 0 to {rows - 1}), the same {INTERPOLATION_STEPS} latents in every "
                   "row: a spherical interpolation between two latents drawn from seed 0.")
    else:
        caption = (f"{INTERPOLATION_STEPS} frames of a spherical interpolation between two latents drawn from seed 0 "
                   "(the first two samples of gantk sample --seed 0).")
    kind = "pixels" if spec.is_image else "plots"
    return f"<div class='{kind}'>{_figure('interpolation.png', caption, 'latent interpolation')}</div>"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }}
h1 {{ margin-bottom: 0; }}
.path {{ color: #666; font-family: monospace; margin-top: 0.2em; }}
table.run, table.evals {{ border-collapse: collapse; }}
table.run th, table.run td, table.evals th, table.evals td {{ border: 1px solid #ccc; padding: 0.25em 0.6em;
  text-align: left; vertical-align: top; }}
table.run th, table.evals th {{ background: #f4f4f4; font-weight: normal; }}
table.evals td {{ white-space: pre-line; font-size: 0.9em; }}
figure {{ display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }}
figure img {{ max-width: 100%; border: 1px solid #ddd; }}
.pixels img {{ image-rendering: pixelated; }}
.grid figure img {{ width: 12em; }}
.plots figure img {{ width: 22em; }}
#losses img, #metrics img {{ width: 33em; }}
#interpolation .pixels img {{ min-width: 30em; }}
figcaption {{ color: #444; font-size: 0.9em; max-width: 40em; }}
.missing {{ color: #8a5a00; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""
