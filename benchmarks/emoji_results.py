"""Image GANs on the emoji data set for the same CPU time: the results tables of docs/results.md.

Two experiments, each run in fresh ``gantk train`` processes, one after another (nothing else may
run: the rows are compared at equal wall time):

- ``models``: ``dcgan64``, ``sngan`` and ``stylegan2`` presets on ``emoji`` (style google, 64 px,
  the 3,399-image train split), unconditional, each for ``--minutes`` of training (``--time-limit``);
- ``augment``: one network (``--augment-preset``) on a tenth of the train split (``-O share=0.1``,
  360 images) with no augmentation, ``diffaugment`` and ``ada``, each for ``--augment-minutes``.

Every run is then scored with ``gantk eval`` against the whole train split: FID, KID, precision and
recall on the features of gantk's emoji category classifier (the same network for every row; its
held-out accuracy is printed), ``--n`` samples a side, twice: the export (EMA weights) and the
trained weights themselves (``gantk export --no-ema``). ``--score-only`` scores rows already trained. A 64-sample grid of each row's generator is
written to ``docs/images/emoji_<row>.png``. The script prints the Markdown tables; it writes nothing
into docs/results.md itself.

    python benchmarks/emoji_results.py --data-root DIR [--minutes 20] [--augment-minutes 10]
                                       [--only models|augment] [--rows dcgan,sngan] [--runs-dir DIR]
                                       [--score-only]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UNCONDITIONAL = ["-G", "conditioning=none", "-D", "conditioning=none"]
MODEL_ROWS = {  # row: gantk train options (beside --dataset emoji, --time-limit, --name)
    "dcgan": ["--preset", "dcgan64", *UNCONDITIONAL],
    # SNGAN's 64 px ResNet at width 64 trains at ~10 img/s here (benchmarks/architectures.py): width 32 for a CPU
    "sngan": ["--preset", "sngan", *UNCONDITIONAL, "-G", "width=32", "-D", "width=32"],
    "stylegan2": ["--preset", "stylegan2", *UNCONDITIONAL],
}
# ADA's p may move from 0 to 1 in `kimg` thousand images: the paper's 500 assumes millions of images shown; a
# 10-minute run here shows about 70k, so 50 lets p move as far, relative to the run, as the paper intends
AUGMENT_ROWS = {"none": [], "diffaugment": ["--augment", "diffaugment"], "ada": ["--augment", "ada:kimg=50"]}
METRICS = "fid,kid,pr"


def gantk(*args: str, capture: bool = False) -> subprocess.CompletedProcess:
    script = os.path.join(os.path.dirname(sys.executable), "gantk")
    print("$ gantk " + " ".join(args), flush=True)
    return subprocess.run([script, *args], check=True, text=True, capture_output=capture)


def train(row: str, options: list[str], minutes: float, args: argparse.Namespace) -> Path:
    run = Path(args.runs_dir) / row
    gantk("train", *options, "--dataset", "emoji", "--data-root", args.data_root, "--time-limit", f"{minutes}m",
          "--steps", "1000000", "--sample-every", "1000000", "--runs-dir", args.runs_dir, "--name", row, "--quiet")
    return run


def evaluate(generator: Path, out: Path, args: argparse.Namespace) -> dict:
    if args.score_only and out.is_file():  # scored before: the same generator, seed and samples give the same values
        return json.loads(out.read_text())["values"]
    gantk("eval", str(generator), "--dataset", "emoji", "--data-root", args.data_root, "--features", "classifier",
          "--metrics", METRICS, "--n", str(args.n), "--out", str(out))
    return json.loads(out.read_text())["values"]


def score(run: Path, args: argparse.Namespace) -> dict:
    """The metrics of the run's export (EMA weights) and of its trained weights themselves (``raw/…``): after a
    short run an EMA with a long memory still holds much of the first weights (β^steps of them)."""
    values = evaluate(run / "generator.safetensors", run / "eval" / "results.json", args)
    raw = run / "raw-generator.safetensors"
    gantk("export", str(run), "--no-ema", "--out", str(raw))
    raw_values = evaluate(raw, run / "eval" / "raw-results.json", args)
    summary = json.loads((run / "summary.json").read_text())
    return {**values, **{f"raw/{key}": value for key, value in raw_values.items()}, "steps": summary["steps"],
            "seconds": summary["seconds"]}


def grid(run: Path, row: str) -> str:
    picture = REPO / "docs" / "images" / f"emoji_{row}.png"
    gantk("sample", str(run / "generator.safetensors"), "--n", "64", "--seed", "0", "--out", str(picture))
    return f"images/{picture.name}"


def classifier_accuracy() -> str:
    """The held-out accuracy recorded in the cached emoji classifier's header."""
    cache = Path(os.environ.get("GANTK_CACHE_DIR", Path.home() / ".cache" / "gantk")) / "classifiers"
    for path in sorted(cache.glob("emoji-*.safetensors")):
        with open(path, "rb") as handle:
            header = json.loads(handle.read(struct.unpack("<Q", handle.read(8))[0]))
        return header["__metadata__"]["gantk.heldout_accuracy"]
    return "unknown"


def table(rows: dict[str, dict], pictures: dict[str, str]) -> str:
    lines = ["| row | steps | weights | FID ↓ | KID ↓ | precision ↑ | recall ↑ | samples (EMA) |",
             "|---|---|---|---|---|---|---|---|"]
    for row, values in rows.items():
        for weights, prefix in (("EMA", ""), ("trained", "raw/")):
            get = lambda key: values[prefix + key]  # noqa: E731
            lines.append(f"| {row} | {values['steps']:,} | {weights} | {get('fid'):.2f} | {get('kid'):.2f} ± "
                         f"{get('kid_std'):.2f} | {get('precision'):.3f} | {get('recall'):.3f} | "
                         f"{f'![{row}]({pictures[row]})' if not prefix else ''} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--augment-minutes", type=float, default=10.0)
    parser.add_argument("--augment-preset", default="dcgan64")
    parser.add_argument("--only", choices=("models", "augment"))
    parser.add_argument("--rows", default="", help="comma-separated rows to run (default: all)")
    parser.add_argument("--n", type=int, default=3399, help="samples a side for the metrics")
    parser.add_argument("--runs-dir", default="runs/emoji-results")
    parser.add_argument("--score-only", action="store_true", help="score the rows already trained in --runs-dir")
    args = parser.parse_args()
    wanted = set(filter(None, args.rows.split(",")))
    experiments = []
    if args.only in (None, "models"):
        experiments.append(("models", {row: (options, args.minutes) for row, options in MODEL_ROWS.items()}))
    if args.only in (None, "augment"):
        base = ["--preset", args.augment_preset, *UNCONDITIONAL, "-O", "share=0.1"]
        experiments.append(("augment", {f"share0.1-{row}": ([*base, *options], args.augment_minutes)
                                        for row, options in AUGMENT_ROWS.items()}))
    for name, rows in experiments:
        results, pictures = {}, {}
        for row, (options, minutes) in rows.items():
            if wanted and row not in wanted:
                continue
            run = Path(args.runs_dir) / row
            if not (args.score_only and (run / "summary.json").is_file()):
                run = train(row, options, minutes, args)
            results[row], pictures[row] = score(run, args), grid(run, row)
            print(json.dumps({row: results[row]}), flush=True)
        print(f"\n## {name}: {args.minutes if name == 'models' else args.augment_minutes} min each; classifier "
              f"held-out accuracy {classifier_accuracy()}\n\n{table(results, pictures)}\n", flush=True)


if __name__ == "__main__":
    main()
