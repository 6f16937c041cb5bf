"""CycleGAN between the emoji styles, scored on the held-out pairs: the translation table of docs/results.md.

Trains ``--preset cyclegan-emoji`` (Noto = domain A, Twemoji = domain B, 64 px) in a fresh ``gantk
train`` process for at most ``--minutes`` (nothing else may run), then scores its export against
two baselines on the held-out split of ``emoji-styles`` (382 emoji drawn in both styles; the
pairing by file name is the ground truth the unpaired training never saw), for each direction:

- **identity**: the input copied unchanged (what translation must beat);
- **CycleGAN**: the trained translator.

Columns:

- **L1**: the mean absolute difference to the true counterpart, pixels in [0, 1];
- **FID**: Fréchet distance to the real target-style images of the train split (3,399), on the
  features of gantk's emoji category classifier (the extractor of the emoji tables, trained on
  Noto's train split), from the 382 translated test images; the "real held-out" row is the
  target style's own 382 test images, the floor at this sample size;
- **target style**: the share a Noto-vs-Twemoji style classifier (trained here on both styles'
  train splits; its held-out accuracy is printed) assigns to the target style.

It writes ``docs/images/cyclegan_a2b.png`` and ``cyclegan_b2a.png`` (rows: input, translation,
reconstruction, ground truth) and prints the Markdown table; it writes nothing into docs itself.

    python benchmarks/cyclegan_emoji.py --data-root DIR [--minutes 30] [--runs-dir DIR] [--score-only]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
RUN_NAME = "cyclegan-emoji"
GRID_PAIRS = 8


def train(data_root: str, runs_dir: Path, minutes: float) -> None:
    command = [str(Path(sys.executable).parent / "gantk"), "train", "--preset", "cyclegan-emoji", "--data-root",
               data_root, "--time-limit", f"{minutes:g}m", "--runs-dir", str(runs_dir), "--name", RUN_NAME, "--quiet"]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def emoji_styles(data_root: str, split: str):
    import gantk

    return gantk.get_registry().get("dataset", "emoji-styles").create(data_root=data_root, image_size=None,
                                                                      download=False, split=split)


def in_unit_range(images: torch.Tensor) -> torch.Tensor:
    from gantk.protocols import signed_unit

    return signed_unit(images)


@torch.no_grad()
def translate(translator, images: torch.Tensor, direction: str, batch: int = 64) -> torch.Tensor:
    return torch.cat([translator(images[i:i + batch], direction).float().clamp(-1, 1)
                      for i in range(0, len(images), batch)])


def fid(extractor, first: torch.Tensor, second_stats) -> float:
    from gantk.plugins.metrics.formulas import frechet_distance, gaussian_statistics

    return frechet_distance(gaussian_statistics(extractor.features(first)), second_stats)


def style_classifier(train_a: torch.Tensor, train_b: torch.Tensor):
    """A Noto (0) vs Twemoji (1) classifier on both styles' train images; it and its held-out accuracy."""
    from gantk.plugins.metrics.classifier import train_classifier

    samples = torch.cat([train_a, train_b])
    labels = torch.cat([torch.zeros(len(train_a)), torch.ones(len(train_b))]).long()
    return train_classifier(samples, labels, 2, seed=0)


def write_grid(translator, inputs: torch.Tensor, truths: torch.Tensor, direction: str, out: Path) -> None:
    from torchvision.utils import save_image

    back = "b2a" if direction == "a2b" else "a2b"
    picks = torch.linspace(0, len(inputs) - 1, GRID_PAIRS).round().long()
    source, target = inputs[picks], truths[picks]
    translated = translate(translator, source, direction)
    rows = torch.cat([source, translated, translate(translator, translated, back), target])
    save_image(rows, out, nrow=GRID_PAIRS, normalize=True, value_range=(-1, 1), padding=2)
    print(f"wrote {out}")


def score(run_dir: Path, data_root: str) -> None:
    import gantk
    from gantk.plugins.metrics.classifier import classify
    from gantk.plugins.metrics.features import ClassifierFeatures
    from gantk.plugins.metrics.formulas import gaussian_statistics

    translator = gantk.load_translator(run_dir / "translator.safetensors")
    test, train_set = emoji_styles(data_root, "test"), emoji_styles(data_root, "train")
    assert test.paired and len(test.domain_data[0]) == len(test.domain_data[1])
    tests = [in_unit_range(part.samples) for part in test.domain_data]
    trains = [part.samples for part in train_set.domain_data]
    extractor = ClassifierFeatures(train_set.domain_data[0])  # the emoji category classifier of the emoji tables
    print(f"feature extractor: emoji category classifier, held-out accuracy {extractor.heldout_accuracy:.3f}")
    styles, style_accuracy = style_classifier(*trains)
    print(f"style classifier (Noto vs Twemoji): held-out accuracy {style_accuracy:.3f}")
    rows = []
    for direction, source, target in (("a2b", 0, 1), ("b2a", 1, 0)):
        names = f"{test.domains[source]} → {test.domains[target]}"
        reference = gaussian_statistics(extractor.features(in_unit_range(trains[target])))
        translated = translate(translator, tests[source], direction)
        for label, images in (("identity (copy)", tests[source]), ("CycleGAN", translated),
                              ("real held-out target", tests[target])):
            l1 = ((images - tests[target]).abs().mean() / 2).item()  # pixels in [0, 1]: |x − y| / 2 in [-1, 1] units
            looks = (classify(styles, images) == target).float().mean().item()
            rows.append((names, label, l1, fid(extractor, images, reference), looks))
        write_grid(translator, tests[source], tests[target], direction, REPO / "docs" / "images" /
                   f"cyclegan_{direction}.png")
    print("\n| direction | images | L1 to the true counterpart | FID to the target style | target style |")
    print("|---|---|---:|---:|---:|")
    for names, label, l1, distance, looks in rows:
        l1_text = "0 (it is the truth)" if label.startswith("real") else f"{l1:.4f}"
        print(f"| {names} | {label} | {l1_text} | {distance:.2f} | {looks:.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--score-only", action="store_true", help="score the run already trained")
    args = parser.parse_args()
    if not args.score_only:
        train(args.data_root, args.runs_dir, args.minutes)
    score(args.runs_dir / RUN_NAME, args.data_root)


if __name__ == "__main__":
    main()
