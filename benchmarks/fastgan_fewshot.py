"""FastGAN's central claim on 100 emoji: the few-shot table of docs/results.md.

The few-shot set: the first 100 (by SHA-256 of the file name) of the 152 train-split Noto emoji of
the category "Smileys & Emotion", written as 64×64 PNGs into ``--work/fewshot/`` and trained at 128 px
(``--image-size 128``, antialiased bilinear upscaling). The held-out set: the category's other 69
Noto emoji (52 of the train split, 17 of the test split). Smileys were chosen because they are one
coherent kind of picture, like the paper's few-shot sets (faces, animals).

Contenders, each trained in a fresh ``gantk train`` process for ``--minutes`` of wall time (nothing
else may run), one after another:

- ``fastgan``: ``--preset fastgan``;
- ``stylegan2``: ``--preset stylegan2`` with ``--augment diffaugment:policy=color+translation``;
- ``dcgan``: ``--preset dcgan64`` with the same DiffAugment.

Each run is scored twice, with its EMA weights and with its trained weights, 500 samples each, against
the 100 training images and against
the 69 held-out ones: FID, KID, precision and recall (k = 3) on the features of gantk's emoji
category classifier (trained on Noto's train split at 64 px; samples are resized to 64 px for it).
With 100 and 69 real images these are small-sample figures: compare the rows with each other, not
with published FIDs. It prints the Markdown table and writes a 4×4 grid of the trained weights' first 16 samples to
``docs/images/fewshot_<row>.png``.

    python benchmarks/fastgan_fewshot.py --data-root DIR [--minutes 30] [--work DIR] [--rows fastgan,dcgan]
                                          [--score-only]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
CATEGORY = "Smileys & Emotion"
SHOTS = 100
SAMPLES = 500
AUGMENT = "diffaugment:policy=color+translation"
ROWS = {  # row: gantk train options beside the data and the time limit
    "fastgan": ["--preset", "fastgan"],
    "stylegan2": ["--preset", "stylegan2", "--augment", AUGMENT],
    "dcgan": ["--preset", "dcgan64", "--augment", AUGMENT],
}


def category_images(data_root: str) -> tuple[list[Path], list[Path]]:
    """The few-shot files and the held-out files of the category, in Noto's style."""
    from gantk.plugins.datasets.emoji import emoji_folder, emoji_images, held_out

    folder = emoji_folder(Path(data_root), "google", download=False)
    names = [name for name, category in emoji_images(folder, "google") if category == CATEGORY]
    image = lambda name: folder / "img" / name  # noqa: E731  (the extracted 64-px images)
    train = sorted((name for name in names if not held_out(name)), key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    test = [name for name in names if held_out(name)]
    return [image(name) for name in train[:SHOTS]], [image(name) for name in train[SHOTS:] + test]


def write_folder(files: list[Path], out: Path) -> Path:
    """The images composited on white, as the emoji data sets are, into ``out`` (once)."""
    import numpy as np
    from PIL import Image

    from gantk.plugins.datasets.emoji import read_rgb

    out.mkdir(parents=True, exist_ok=True)
    for path in files:
        target = out / path.name
        if not target.exists():
            Image.fromarray(np.ascontiguousarray(read_rgb(path, 255).transpose(1, 2, 0))).save(target)
    return out


def train(row: str, fewshot: Path, runs_dir: Path, minutes: float) -> None:
    command = [str(Path(sys.executable).parent / "gantk"), "train", *ROWS[row], "--dataset", "folder", "--data-root",
               str(fewshot), "--image-size", "128", "--time-limit", f"{minutes:g}m", "--runs-dir", str(runs_dir),
               "--name", row, "--quiet"]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def pixels(files: list[Path]) -> torch.Tensor:
    from gantk.plugins.datasets.emoji import read_rgb

    return torch.stack([torch.from_numpy(read_rgb(path, 255)) for path in files])  # uint8 (N, 3, 64, 64)


def score(row: str, runs_dir: Path, real_sets: dict[str, torch.Tensor], extractor) -> list[tuple]:
    """Both weights of a row, EMA (the export) and trained (``gantk export --no-ema``): a short run leaves an EMA
    with β = 0.999 close to its first weights, so the trained weights are scored too."""
    import gantk
    from gantk.engine.run_export import export_run
    from gantk.engine.sampling import draw
    from gantk.plugins.datasets._images import resize_images
    from gantk.plugins.metrics.formulas import (
        frechet_distance, gaussian_statistics, kernel_inception_distance, precision_recall,
    )
    from torchvision.utils import save_image

    trained = export_run(runs_dir / row, runs_dir / row / "trained.safetensors", ema=False)
    rows = []
    for weights, path in (("EMA", runs_dir / row / "generator.safetensors"), ("trained", trained)):
        samples = draw(gantk.load_generator(path), SAMPLES, seed=0).float().clamp(-1, 1)
        if weights == "trained":  # the EMA of a ~500-step run still holds β^500 ≈ 60 % of its first weights
            save_image(samples[:16], REPO / "docs" / "images" / f"fewshot_{row}.png", nrow=4, normalize=True,
                       value_range=(-1, 1))
        fake = extractor.features(resize_images(samples, 64, 64))
        for name, real in real_sets.items():
            features = extractor.features(real)
            fid = frechet_distance(gaussian_statistics(fake), gaussian_statistics(features))
            kid_mean, _ = kernel_inception_distance(features, fake)
            precision, recall = precision_recall(features, fake, k=3)
            rows.append((f"{row} ({weights})", name, fid, kid_mean, precision, recall))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--work", type=Path, default=Path("fewshot-work"))
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--score-only", action="store_true")
    args = parser.parse_args()
    rows = args.rows.split(",")
    shots, held = category_images(args.data_root)
    fewshot = write_folder(shots, args.work / "fewshot")
    print(f"{len(shots)} training images of '{CATEGORY}' in {fewshot}; {len(held)} held out", flush=True)
    if not args.score_only:
        for row in rows:
            train(row, fewshot, args.work / "runs", args.minutes)
    from gantk.plugins.datasets.emoji import load_emoji
    from gantk.plugins.metrics.features import ClassifierFeatures

    extractor = ClassifierFeatures(load_emoji(data_root=args.data_root, style="google", split="train"))
    print(f"feature extractor: emoji category classifier, held-out accuracy {extractor.heldout_accuracy:.3f}")
    from gantk.protocols import signed_unit

    real_sets = {"the 100 training images": signed_unit(pixels(shots)), "the 69 held-out": signed_unit(pixels(held))}
    table = [line for row in rows for line in score(row, args.work / "runs", real_sets, extractor)]
    print("\n| model | against | FID | KID | precision | recall |\n|---|---|---:|---:|---:|---:|")
    for row, name, fid, kid_mean, precision, recall in table:
        print(f"| `{row}` | {name} | {fid:.2f} | {kid_mean:.4f} | {precision:.3f} | {recall:.3f} |")


if __name__ == "__main__":
    main()
